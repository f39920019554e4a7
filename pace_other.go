//go:build !(linux || darwin || freebsd)

package safeudp

import "time"

// sleepShort is not used here: every wait of a pacer takes a timer (on
// Windows, which Close does not verify on, only the bind retries pace).
func sleepShort(time.Duration) {}

// timerGrain is zero: no wait is short enough for sleepShort.
const timerGrain = 0
