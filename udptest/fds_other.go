//go:build !linux

package udptest

// fdSnapshot maps each open descriptor to what it refers to. This system
// has no descriptor check: snapshots are nil.
type fdSnapshot map[int]string

func takeFDSnapshot() fdSnapshot { return nil }

func runtimeFD(what string) bool { return false }

func describeFD(what string) string { return what }
