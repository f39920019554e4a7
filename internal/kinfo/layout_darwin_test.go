//go:build darwin

package kinfo

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The darwin offsets, checked at compile time against x/sys/unix's
// KinfoProc (generated with cgo -godefs from the SDK headers): a constant
// index out of range fails the build of this package's tests on darwin,
// which CI cross-vets for amd64 and arm64.
var k unix.KinfoProc

var (
	_ = [1]int{}[unsafe.Sizeof(k)-DarwinSize]
	_ = [1]int{}[unsafe.Offsetof(k.Proc.P_flag)-darwinFlagOff]
	_ = [1]int{}[unsafe.Offsetof(k.Proc.P_pid)-darwinPIDOff]
	_ = [1]int{}[unsafe.Offsetof(k.Proc.P_comm)-darwinCommOff]
	_ = [1]int{}[unsafe.Offsetof(k.Eproc)+unsafe.Offsetof(k.Eproc.Ppid)-darwinEprocPPIDOf]
	_ = [1]int{}[darwinFlagOff-unsafe.Offsetof(k.Proc.P_flag)]
	_ = [1]int{}[darwinPIDOff-unsafe.Offsetof(k.Proc.P_pid)]
	_ = [1]int{}[darwinEprocPPIDOf-unsafe.Offsetof(k.Eproc)-unsafe.Offsetof(k.Eproc.Ppid)]
	_ = [1]int{}[DarwinSize-unsafe.Sizeof(k)]
)
