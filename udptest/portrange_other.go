//go:build !linux

package udptest

// ephemeralRange reports false: the ephemeral range is not read on this
// system, and ReservePorts uses a fixed range outside the default ones.
func ephemeralRange() (portRange, bool) { return portRange{}, false }
