// Package kinfo parses the process tables that the kern.proc sysctls of
// macOS and FreeBSD return (arrays of struct kinfo_proc), keeping only what
// safeudp needs to find this process's children between fork and exec: the
// pid, the parent pid, the process flags and the start time.
//
// The parsers are plain Go on bytes and build on every system, so their
// tests and fuzzers run anywhere. Both read the layout of the 64-bit
// systems, amd64 and arm64 alike (the offsets below are the same on both),
// in little-endian order. A table whose records do not have the expected
// size gives ErrLayout: the caller must then fall back, never guess.
package kinfo

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// PExec is P_EXEC, the process flag that exec sets and that a fork child
// does not inherit: 0x4000 on both systems (xnu bsd/sys/proc.h, FreeBSD
// sys/sys/proc.h). A child of this process without it has not exec'd yet,
// and holds a copy of every descriptor of the parent.
const PExec = 0x4000

// Proc is one process of the table.
type Proc struct {
	PID, PPID int
	Flag      int64     // p_flag (darwin) or ki_flag (FreeBSD)
	Start     time.Time // when the process was forked
	Comm      string    // the command name, as the kernel keeps it
}

// Execed reports whether the process has called exec since it was forked.
func (p Proc) Execed() bool { return p.Flag&PExec != 0 }

// ErrLayout is returned for a table whose records are not laid out as
// this package expects (a newer system, say).
var ErrLayout = errors.New("kinfo: unrecognised kinfo_proc layout")

// Darwin layout of struct kinfo_proc (xnu bsd/sys/sysctl.h: struct
// extern_proc kp_proc, then struct eproc kp_eproc), identical on amd64 and
// arm64; checked against golang.org/x/sys/unix.KinfoProc (cgo -godefs)
// at compile time on darwin (see layout_darwin_test.go).
const (
	DarwinSize        = 648 // sizeof(struct kinfo_proc)
	darwinStartOff    = 0   // kp_proc.p_starttime (struct timeval: tv_sec int64, tv_usec int32)
	darwinFlagOff     = 32  // kp_proc.p_flag (int)
	darwinPIDOff      = 40  // kp_proc.p_pid
	darwinCommOff     = 243 // kp_proc.p_comm[MAXCOMLEN+1]
	darwinCommLen     = 17
	darwinEprocPPIDOf = 560 // kp_eproc.e_ppid
)

// ParseDarwin parses the answer of the darwin sysctl kern.proc.all: an
// array of struct kinfo_proc with no header.
func ParseDarwin(b []byte) ([]Proc, error) {
	if len(b)%DarwinSize != 0 {
		return nil, fmt.Errorf("%w: %d bytes is not a whole number of %d-byte records", ErrLayout, len(b), DarwinSize)
	}
	out := make([]Proc, 0, len(b)/DarwinSize)
	for r := b; len(r) >= DarwinSize; r = r[DarwinSize:] {
		out = append(out, Proc{
			PID:   int(int32(le.Uint32(r[darwinPIDOff:]))),
			PPID:  int(int32(le.Uint32(r[darwinEprocPPIDOf:]))),
			Flag:  int64(int32(le.Uint32(r[darwinFlagOff:]))),
			Start: timeval(r[darwinStartOff:]),
			Comm:  cstring(r[darwinCommOff : darwinCommOff+darwinCommLen]),
		})
	}
	return out, nil
}

// FreeBSD layout of struct kinfo_proc (FreeBSD sys/sys/user.h, stable
// since FreeBSD 7 in its first fields, KINFO_PROC_SIZE 1088 on amd64 and
// arm64). Each record begins with ki_structsize, which must be FreeBSDSize.
const (
	FreeBSDSize      = 1088 // KINFO_PROC_SIZE
	freebsdPIDOff    = 72   // ki_pid, after two ints and eight pointers
	freebsdPPIDOff   = 76   // ki_ppid
	freebsdStartOff  = 336  // ki_start (struct timeval: two int64)
	freebsdFlagOff   = 368  // ki_flag (long)
	freebsdCommOff   = 447  // ki_comm[COMMLEN+1]
	freebsdCommLen   = 20
	freebsdSizeField = 0 // ki_structsize (int)
)

// ParseFreeBSD parses the answer of the FreeBSD sysctl kern.proc.proc: an
// array of struct kinfo_proc, each starting with its size.
func ParseFreeBSD(b []byte) ([]Proc, error) {
	if len(b)%FreeBSDSize != 0 {
		return nil, fmt.Errorf("%w: %d bytes is not a whole number of %d-byte records", ErrLayout, len(b), FreeBSDSize)
	}
	out := make([]Proc, 0, len(b)/FreeBSDSize)
	for r := b; len(r) >= FreeBSDSize; r = r[FreeBSDSize:] {
		if n := int32(le.Uint32(r[freebsdSizeField:])); n != FreeBSDSize {
			return nil, fmt.Errorf("%w: ki_structsize %d, want %d", ErrLayout, n, FreeBSDSize)
		}
		out = append(out, Proc{
			PID:   int(int32(le.Uint32(r[freebsdPIDOff:]))),
			PPID:  int(int32(le.Uint32(r[freebsdPPIDOff:]))),
			Flag:  int64(le.Uint64(r[freebsdFlagOff:])),
			Start: time.Unix(int64(le.Uint64(r[freebsdStartOff:])), int64(le.Uint64(r[freebsdStartOff+8:]))*1000),
			Comm:  cstring(r[freebsdCommOff : freebsdCommOff+freebsdCommLen]),
		})
	}
	return out, nil
}

// ForkChildren returns the children of parent that have not exec'd: the
// processes that may hold a copy of its descriptors only until exec.
func ForkChildren(procs []Proc, parent int) []Proc {
	var out []Proc
	for _, p := range procs {
		if p.PPID == parent && p.PID != parent && !p.Execed() {
			out = append(out, p)
		}
	}
	return out
}

var le = binary.LittleEndian

// timeval reads a darwin struct timeval: tv_sec int64, tv_usec int32.
func timeval(b []byte) time.Time {
	return time.Unix(int64(le.Uint64(b)), int64(int32(le.Uint32(b[8:])))*1000)
}

// cstring returns b up to its first NUL.
func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
