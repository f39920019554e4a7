package safeudp

import (
	"golang.org/x/sys/unix"

	"github.com/safeudp/safeudp/internal/kinfo"
)

// listProcs reads the process table: sysctl kern.proc.proc, one struct
// kinfo_proc a process, threads not listed (FreeBSD sys/sys/user.h),
// parsed by internal/kinfo, which checks each ki_structsize.
func listProcs() ([]kinfo.Proc, error) {
	b, err := unix.SysctlRaw("kern.proc.proc")
	if err != nil {
		return nil, err
	}
	return kinfo.Parse(b, kinfo.FreeBSD)
}
