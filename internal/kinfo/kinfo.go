// Package kinfo parses the process table that the kern.proc sysctls of
// darwin and FreeBSD return: arrays of struct kinfo_proc, read here for a
// process's pid, its parent's pid and its process flags. It has no build
// tags: its parsers run, and are tested, on every system, on byte fixtures
// built from the published layouts.
//
// The layouts are those of the 64-bit little-endian systems Go supports
// there (amd64 and arm64, which share them):
//
//   - darwin: struct kinfo_proc of xnu bsd/sys/sysctl.h (kp_proc, a struct
//     extern_proc of bsd/sys/proc.h, then kp_eproc), 648 bytes; p_flag at
//     32, p_pid at 40, p_comm at 243, kp_eproc.e_ppid at 560. These are
//     the offsets of golang.org/x/sys/unix's KinfoProc (ztypes_darwin_amd64.go
//     and ztypes_darwin_arm64.go, v0.50.0, generated from those headers).
//     The array carries no size or version: a length that is not a
//     multiple of 648 is refused.
//   - FreeBSD: struct kinfo_proc of sys/sys/user.h, KINFO_PROC_SIZE 1088
//     on amd64 and arm64; ki_structsize at 0, ki_pid at 72, ki_ppid at 76,
//     ki_flag (a long) at 368, ki_comm at 447. The fields up to ki_flag
//     have kept their offsets since FreeBSD 7 (new fields take the spare
//     arrays at the end; FreeBSD 12 renamed ki_tdev at 100 to
//     ki_tdev_freebsd11 and kept its size). Every record's ki_structsize
//     must be 1088, or the table is refused.
//
// A refused table is an error wrapping [ErrLayout]: the caller cannot
// tell which processes are its children and must say so, never guess.
package kinfo

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// PExec is P_EXEC, the process flag set by exec and clear in a child
// between fork and exec: 0x4000 in xnu bsd/sys/proc.h and in FreeBSD
// sys/sys/proc.h.
const PExec = 0x4000

// Proc is one process of the table.
type Proc struct {
	PID, PPID int32
	Flags     uint32 // the process flags (p_flag, the low 32 bits of ki_flag)
	Command   string // the command name (p_comm, ki_comm)
}

// Execed reports whether the process has called exec (P_EXEC is set).
func (p Proc) Execed() bool { return p.Flags&PExec != 0 }

// ErrLayout is wrapped by the errors of a table whose layout is not the
// one this package knows.
var ErrLayout = errors.New("kinfo: unrecognised kinfo_proc layout")

// Layout says where a system's struct kinfo_proc keeps the fields read
// here. The zero value is not usable; use [Darwin] or [FreeBSD].
type Layout struct {
	Name    string
	Size    int // sizeof(struct kinfo_proc)
	SizeAt  int // offset of a 32-bit size field that must equal Size; -1 if none
	PIDAt   int // offset of the pid (32 bits)
	PPIDAt  int // offset of the parent's pid (32 bits)
	FlagsAt int // offset of the process flags (the low 32 bits, little-endian)
	CommAt  int // offset of the NUL-terminated command name
	CommLen int // its capacity
}

// Darwin is struct kinfo_proc of xnu (bsd/sys/sysctl.h, bsd/sys/proc.h),
// on amd64 and arm64, as sysctl kern.proc.all returns it.
var Darwin = Layout{Name: "darwin", Size: 648, SizeAt: -1, PIDAt: 40, PPIDAt: 560, FlagsAt: 32, CommAt: 243, CommLen: 17}

// FreeBSD is struct kinfo_proc of FreeBSD sys/sys/user.h, on amd64 and
// arm64 (KINFO_PROC_SIZE 1088), as sysctl kern.proc.proc returns it.
var FreeBSD = Layout{Name: "freebsd", Size: 1088, SizeAt: 0, PIDAt: 72, PPIDAt: 76, FlagsAt: 368, CommAt: 447, CommLen: 20}

// Parse reads a table of records of layout l. It never reads past b: a
// length that is not a whole number of records, or a record whose size
// field is not l.Size, is an error wrapping [ErrLayout], and no process of
// such a table is returned.
func Parse(b []byte, l Layout) ([]Proc, error) {
	if l.Size <= 0 || max(l.SizeAt+4, l.PIDAt+4, l.PPIDAt+4, l.FlagsAt+4, l.CommAt+l.CommLen) > l.Size {
		return nil, fmt.Errorf("%w: layout %q does not fit its size %d", ErrLayout, l.Name, l.Size)
	}
	if len(b)%l.Size != 0 {
		return nil, fmt.Errorf("%w: %s: %d bytes is not a whole number of %d-byte records", ErrLayout, l.Name, len(b), l.Size)
	}
	procs := make([]Proc, 0, len(b)/l.Size)
	le := binary.LittleEndian
	for off := 0; off < len(b); off += l.Size {
		r := b[off : off+l.Size]
		if l.SizeAt >= 0 {
			if got := int32(le.Uint32(r[l.SizeAt:])); got != int32(l.Size) {
				return nil, fmt.Errorf("%w: %s: record %d says its size is %d, want %d", ErrLayout, l.Name, off/l.Size, got, l.Size)
			}
		}
		p := Proc{
			PID:   int32(le.Uint32(r[l.PIDAt:])),
			PPID:  int32(le.Uint32(r[l.PPIDAt:])),
			Flags: le.Uint32(r[l.FlagsAt:]),
		}
		if p.PID < 0 || p.PPID < 0 {
			return nil, fmt.Errorf("%w: %s: record %d has pid %d, parent %d", ErrLayout, l.Name, off/l.Size, p.PID, p.PPID)
		}
		comm := r[l.CommAt : l.CommAt+l.CommLen]
		for i, c := range comm {
			if c == 0 {
				comm = comm[:i]
				break
			}
		}
		p.Command = string(comm)
		procs = append(procs, p)
	}
	return procs, nil
}
