package safeudp

import "time"

// SetSlowCloseAfter lets tests shorten the wait before Close logs what it
// is waiting for; it returns a func that restores the default.
func SetSlowCloseAfter(d time.Duration) (restore func()) {
	old := slowCloseAfter
	slowCloseAfter = d
	return func() { slowCloseAfter = old }
}
