package safeudp

import (
	"golang.org/x/sys/unix"

	"github.com/safeudp/safeudp/internal/kinfo"
)

// listProcs reads the process table: sysctl kern.proc.all, an array of
// struct kinfo_proc (xnu bsd/sys/sysctl.h), parsed by internal/kinfo.
func listProcs() ([]kinfo.Proc, error) {
	b, err := unix.SysctlRaw("kern.proc.all")
	if err != nil {
		return nil, err
	}
	return kinfo.Parse(b, kinfo.Darwin)
}
