package kinfo

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

// darwinRecord builds one struct kinfo_proc as macOS returns it on amd64
// and arm64 (xnu-11417.101.15 bsd/sys/sysctl.h and bsd/sys/proc.h: struct
// extern_proc then struct eproc, 648 bytes; the offsets agree with
// golang.org/x/sys/unix v0.50.0 ztypes_darwin_{amd64,arm64}.go).
func darwinRecord(pid, ppid int, flag int32, start time.Time, comm string) []byte {
	r := make([]byte, DarwinSize)
	binary.LittleEndian.PutUint64(r[0:], uint64(start.Unix()))            // p_starttime.tv_sec
	binary.LittleEndian.PutUint32(r[8:], uint32(start.Nanosecond()/1000)) // p_starttime.tv_usec
	binary.LittleEndian.PutUint32(r[32:], uint32(flag))                   // p_flag
	r[36] = 2                                                             // p_stat SRUN
	binary.LittleEndian.PutUint32(r[40:], uint32(pid))                    // p_pid
	copy(r[243:243+16], comm)                                             // p_comm
	binary.LittleEndian.PutUint32(r[560:], uint32(ppid))                  // e_ppid
	return r
}

// freebsdRecord builds one struct kinfo_proc as FreeBSD returns it on
// amd64 and arm64 (FreeBSD 14.1 sys/sys/user.h, KINFO_PROC_SIZE 1088).
func freebsdRecord(pid, ppid int, flag int64, start time.Time, comm string) []byte {
	r := make([]byte, FreeBSDSize)
	binary.LittleEndian.PutUint32(r[0:], FreeBSDSize)                       // ki_structsize
	binary.LittleEndian.PutUint32(r[72:], uint32(pid))                      // ki_pid
	binary.LittleEndian.PutUint32(r[76:], uint32(ppid))                     // ki_ppid
	binary.LittleEndian.PutUint64(r[336:], uint64(start.Unix()))            // ki_start.tv_sec
	binary.LittleEndian.PutUint64(r[344:], uint64(start.Nanosecond()/1000)) // ki_start.tv_usec
	binary.LittleEndian.PutUint64(r[368:], uint64(flag))                    // ki_flag
	copy(r[447:447+19], comm)                                               // ki_comm
	return r
}

func TestParseDarwin(t *testing.T) {
	start := time.Unix(1_700_000_000, 123_000)
	var b []byte
	b = append(b, darwinRecord(100, 1, PExec|0x4, start, "launchd-child")...)
	b = append(b, darwinRecord(200, 100, 0x4, start, "forking")...) // between fork and exec
	b = append(b, darwinRecord(201, 100, PExec, start, "true")...)
	procs, err := ParseDarwin(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(procs) != 3 || procs[1].PID != 200 || procs[1].PPID != 100 || procs[1].Execed() || !procs[2].Execed() ||
		procs[1].Comm != "forking" || !procs[0].Start.Equal(start) {
		t.Fatalf("parsed %+v", procs)
	}
	kids := ForkChildren(procs, 100)
	if len(kids) != 1 || kids[0].PID != 200 {
		t.Fatalf("ForkChildren = %+v, want only pid 200", kids)
	}
	if _, err := ParseDarwin(b[:len(b)-1]); !errors.Is(err, ErrLayout) {
		t.Fatalf("a truncated table: err %v, want ErrLayout", err)
	}
	if procs, err := ParseDarwin(nil); err != nil || len(procs) != 0 {
		t.Fatalf("empty table: %v %v", procs, err)
	}
}

func TestParseFreeBSD(t *testing.T) {
	start := time.Unix(1_700_000_000, 5_000)
	var b []byte
	b = append(b, freebsdRecord(300, 1, PExec, start, "daemon")...)
	b = append(b, freebsdRecord(301, 300, 0x10000000, start, "forking")...)
	procs, err := ParseFreeBSD(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(procs) != 2 || procs[1].PPID != 300 || procs[1].Execed() || !procs[0].Execed() || procs[0].Comm != "daemon" ||
		!procs[1].Start.Equal(start) {
		t.Fatalf("parsed %+v", procs)
	}
	if kids := ForkChildren(procs, 300); len(kids) != 1 || kids[0].PID != 301 {
		t.Fatalf("ForkChildren = %+v", kids)
	}
	bad := freebsdRecord(1, 0, 0, start, "x")
	binary.LittleEndian.PutUint32(bad, 1096) // a struct that grew
	if _, err := ParseFreeBSD(bad); !errors.Is(err, ErrLayout) {
		t.Fatalf("another ki_structsize: err %v, want ErrLayout", err)
	}
}

// FuzzParse: the parsers never panic, and a child they return is always
// one the table shows without P_EXEC.
func FuzzParse(f *testing.F) {
	f.Add(darwinRecord(2, 1, 0, time.Unix(1, 0), "a"))
	f.Add(freebsdRecord(2, 1, 0, time.Unix(1, 0), "a"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, parse := range []func([]byte) ([]Proc, error){ParseDarwin, ParseFreeBSD} {
			procs, err := parse(b)
			if err != nil {
				continue
			}
			for _, p := range ForkChildren(procs, 1) {
				if p.PPID != 1 || p.Flag&PExec != 0 {
					t.Fatalf("ForkChildren returned %+v", p)
				}
			}
		}
	})
}
