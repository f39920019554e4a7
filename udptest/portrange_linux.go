package udptest

import (
	"fmt"
	"os"
)

// ephemeralRange returns the range the kernel picks ":0" ports from.
func ephemeralRange() (portRange, bool) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return portRange{32768, 60999}, true // the kernel's default
	}
	var r portRange
	if _, err := fmt.Sscan(string(b), &r.lo, &r.hi); err != nil || r.lo < 1 || r.hi > 65535 || r.lo > r.hi {
		return portRange{32768, 60999}, true
	}
	return r, true
}
