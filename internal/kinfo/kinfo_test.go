package kinfo

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// field is one member of a C struct on an LP64 system: its name, size and
// alignment.
type field struct {
	name        string
	size, align int
}

// offsets lays fields out as a C compiler does on LP64 and returns each
// one's offset, and the end of the last.
func offsets(fs []field) (map[string]int, int) {
	m := map[string]int{}
	off := 0
	for _, f := range fs {
		off = (off + f.align - 1) / f.align * f.align
		m[f.name] = off
		off += f.size
	}
	return m, off
}

const ptr = 8

// darwinExternProc is struct extern_proc, xnu bsd/sys/proc.h (xnu-10002,
// macOS 14; unchanged since 10.x), up to p_comm.
var darwinExternProc = []field{
	{"p_un", 16, 8}, // union { struct { p_forw, p_back }; struct timeval __p_starttime }
	{"p_vmspace", ptr, ptr}, {"p_sigacts", ptr, ptr},
	{"p_flag", 4, 4}, {"p_stat", 1, 1}, {"p_pid", 4, 4}, {"p_oppid", 4, 4}, {"p_dupfd", 4, 4},
	{"user_stack", ptr, ptr}, {"exit_thread", ptr, ptr},
	{"p_debugger", 4, 4}, {"sigwait", 4, 4}, {"p_estcpu", 4, 4}, {"p_cpticks", 4, 4}, {"p_pctcpu", 4, 4},
	{"p_wchan", ptr, ptr}, {"p_wmesg", ptr, ptr}, {"p_swtime", 4, 4}, {"p_slptime", 4, 4},
	{"p_realtimer", 32, 8}, {"p_rtime", 16, 8},
	{"p_uticks", 8, 8}, {"p_sticks", 8, 8}, {"p_iticks", 8, 8},
	{"p_traceflag", 4, 4}, {"p_tracep", ptr, ptr}, {"p_siglist", 4, 4}, {"p_textvp", ptr, ptr},
	{"p_holdcnt", 4, 4}, {"p_sigmask", 4, 4}, {"p_sigignore", 4, 4}, {"p_sigcatch", 4, 4},
	{"p_priority", 1, 1}, {"p_usrpri", 1, 1}, {"p_nice", 1, 1}, {"p_comm", 17, 1}, // MAXCOMLEN+1
	{"p_pgrp", ptr, ptr}, {"p_addr", ptr, ptr}, {"p_xstat", 2, 2}, {"p_acflag", 2, 2}, {"p_ru", ptr, ptr},
}

// darwinEproc is struct eproc, xnu bsd/sys/sysctl.h, up to e_ppid.
var darwinEproc = []field{
	{"e_paddr", ptr, ptr}, {"e_sess", ptr, ptr},
	{"e_pcred", 104, 8}, // struct _pcred: char pc_lock[72]; struct ucred *; 4 ids; int p_refcnt
	{"e_ucred", 76, 4},  // struct _ucred: int32 cr_ref; uid_t; short cr_ngroups; gid_t cr_groups[16]
	{"e_vm", 64, 8},     // struct vmspace: int; caddr_t; int[5]; caddr_t[3]
	{"e_ppid", 4, 4},
}

// freebsdKinfoProc is struct kinfo_proc, FreeBSD sys/sys/user.h
// (releng/14.1; the prefix up to ki_comm is the same since 7.0, with
// ki_tdev_freebsd11 in place of ki_tdev from 12.0 and ki_cow in place of
// ki_spareint1 from 10.0), on amd64 and arm64.
var freebsdKinfoProc = []field{
	{"ki_structsize", 4, 4}, {"ki_layout", 4, 4},
	{"ki_args", ptr, ptr}, {"ki_paddr", ptr, ptr}, {"ki_addr", ptr, ptr}, {"ki_tracep", ptr, ptr},
	{"ki_textvp", ptr, ptr}, {"ki_fd", ptr, ptr}, {"ki_vmspace", ptr, ptr}, {"ki_wchan", ptr, ptr},
	{"ki_pid", 4, 4}, {"ki_ppid", 4, 4}, {"ki_pgid", 4, 4}, {"ki_tpgid", 4, 4}, {"ki_sid", 4, 4}, {"ki_tsid", 4, 4},
	{"ki_jobc", 2, 2}, {"ki_spare_short1", 2, 2}, {"ki_tdev_freebsd11", 4, 4},
	{"ki_siglist", 16, 4}, {"ki_sigmask", 16, 4}, {"ki_sigignore", 16, 4}, {"ki_sigcatch", 16, 4},
	{"ki_uid", 4, 4}, {"ki_ruid", 4, 4}, {"ki_svuid", 4, 4}, {"ki_rgid", 4, 4}, {"ki_svgid", 4, 4},
	{"ki_ngroups", 2, 2}, {"ki_spare_short2", 2, 2}, {"ki_groups", 64, 4}, // KI_NGROUPS 16
	{"ki_size", 8, 8}, {"ki_rssize", 8, 8}, {"ki_swrss", 8, 8}, {"ki_tsize", 8, 8}, {"ki_dsize", 8, 8}, {"ki_ssize", 8, 8},
	{"ki_xstat", 2, 2}, {"ki_acflag", 2, 2}, {"ki_pctcpu", 4, 4}, {"ki_estcpu", 4, 4}, {"ki_slptime", 4, 4},
	{"ki_swtime", 4, 4}, {"ki_cow", 4, 4}, {"ki_runtime", 8, 8},
	{"ki_start", 16, 8}, {"ki_childtime", 16, 8}, {"ki_flag", 8, 8}, {"ki_kiflag", 8, 8},
	{"ki_traceflag", 4, 4}, {"ki_stat", 1, 1}, {"ki_nice", 1, 1}, {"ki_lock", 1, 1}, {"ki_rqindex", 1, 1},
	{"ki_oncpu_old", 1, 1}, {"ki_lastcpu_old", 1, 1}, {"ki_tdname", 17, 1}, // TDNAMLEN+1
	{"ki_wmesg", 9, 1}, {"ki_login", 18, 1}, {"ki_lockname", 9, 1}, {"ki_comm", 20, 1}, // COMMLEN+1
}

// TestLayoutsMatchHeaders checks the offsets the parser reads against the
// headers' field lists, laid out as an LP64 C compiler does.
func TestLayoutsMatchHeaders(t *testing.T) {
	ep, epEnd := offsets(darwinExternProc)
	e, _ := offsets(darwinEproc)
	assert.Equal(t, 296, epEnd, "sizeof(struct extern_proc)")
	assert.Equal(t, ep["p_flag"], Darwin.FlagsAt)
	assert.Equal(t, ep["p_pid"], Darwin.PIDAt)
	assert.Equal(t, ep["p_comm"], Darwin.CommAt)
	assert.Equal(t, epEnd+e["e_ppid"], Darwin.PPIDAt)

	f, _ := offsets(freebsdKinfoProc)
	assert.Equal(t, 256, f["ki_size"])
	assert.Equal(t, f["ki_pid"], FreeBSD.PIDAt)
	assert.Equal(t, f["ki_ppid"], FreeBSD.PPIDAt)
	assert.Equal(t, f["ki_flag"], FreeBSD.FlagsAt)
	assert.Equal(t, f["ki_comm"], FreeBSD.CommAt)
	assert.Equal(t, f["ki_structsize"], FreeBSD.SizeAt)
}

// record builds one kinfo_proc at the header's offsets (numbers written
// out, not taken from the Layout under test).
type rec struct {
	pid, ppid int32
	flags     uint64
	comm      string
}

// darwinTable builds a kern.proc.all answer: 648-byte records, p_flag at
// 32, p_pid at 40, p_comm at 243, e_ppid at 296+264 (xnu bsd/sys/proc.h
// and bsd/sys/sysctl.h, macOS 14; x/sys/unix v0.50.0 KinfoProc).
func darwinTable(rs ...rec) []byte {
	b := make([]byte, 648*len(rs))
	for i, r := range rs {
		x := b[648*i:]
		binary.LittleEndian.PutUint32(x[32:], uint32(r.flags))
		binary.LittleEndian.PutUint32(x[40:], uint32(r.pid))
		copy(x[243:243+16], r.comm)
		binary.LittleEndian.PutUint32(x[560:], uint32(r.ppid))
		x[44] = 0xff // p_oppid: noise next to the fields read
	}
	return b
}

// freebsdTable builds a kern.proc.proc answer: 1088-byte records
// (KINFO_PROC_SIZE on amd64 and arm64), ki_structsize at 0, ki_pid at 72,
// ki_ppid at 76, ki_flag (long) at 368, ki_comm at 447 (FreeBSD
// sys/sys/user.h, releng/14.1).
func freebsdTable(size int32, rs ...rec) []byte {
	b := make([]byte, 1088*len(rs))
	for i, r := range rs {
		x := b[1088*i:]
		binary.LittleEndian.PutUint32(x[0:], uint32(size))
		binary.LittleEndian.PutUint32(x[72:], uint32(r.pid))
		binary.LittleEndian.PutUint32(x[76:], uint32(r.ppid))
		binary.LittleEndian.PutUint64(x[368:], r.flags)
		copy(x[447:447+19], r.comm)
	}
	return b
}

func TestParseDarwin(t *testing.T) {
	ps, err := Parse(darwinTable(
		rec{pid: 1, ppid: 0, flags: 0x4004, comm: "launchd"},
		rec{pid: 700, ppid: 1, flags: 0x4000, comm: "a.test"},
		rec{pid: 701, ppid: 700, flags: 0x0004, comm: "a.test"}, // P_LP64, no P_EXEC: forked, not yet exec'd
		rec{pid: 702, ppid: 700, flags: 0x4004, comm: "sleep-with-a-long-name"},
	), Darwin)
	require.NoError(t, err)
	assert.Equal(t, []Proc{
		{PID: 1, PPID: 0, Flags: 0x4004, Command: "launchd"},
		{PID: 700, PPID: 1, Flags: 0x4000, Command: "a.test"},
		{PID: 701, PPID: 700, Flags: 0x0004, Command: "a.test"},
		{PID: 702, PPID: 700, Flags: 0x4004, Command: "sleep-with-a-lon"}, // MAXCOMLEN 16
	}, ps)
	assert.False(t, ps[2].Execed())
	assert.True(t, ps[3].Execed())
}

func TestParseFreeBSD(t *testing.T) {
	ps, err := Parse(freebsdTable(1088,
		rec{pid: 900, ppid: 1, flags: 0x10004000, comm: "a.test"},
		rec{pid: 901, ppid: 900, flags: 0x1 | 1<<40, comm: "a.test"}, // P_ADVLOCK, high bits of the long ignored
	), FreeBSD)
	require.NoError(t, err)
	assert.Equal(t, []Proc{
		{PID: 900, PPID: 1, Flags: 0x10004000, Command: "a.test"},
		{PID: 901, PPID: 900, Flags: 0x1, Command: "a.test"},
	}, ps)
	assert.False(t, ps[1].Execed())
}

func TestParseRefusesOtherLayouts(t *testing.T) {
	for name, c := range map[string]struct {
		b []byte
		l Layout
	}{
		"darwin, a torn record":         {darwinTable(rec{pid: 1})[:600], Darwin},
		"darwin, a longer struct":       {append(darwinTable(rec{pid: 1}), make([]byte, 24)...), Darwin},
		"darwin, a negative pid":        {darwinTable(rec{pid: -5}), Darwin},
		"freebsd, another structsize":   {freebsdTable(1096, rec{pid: 1}), FreeBSD},
		"freebsd, the 32-bit structure": {freebsdTable(768, rec{pid: 1})[:1088], FreeBSD},
		"freebsd, a torn record":        {freebsdTable(1088, rec{pid: 1}, rec{pid: 2})[:1500], FreeBSD},
		"a layout past its size":        {nil, Layout{Name: "bad", Size: 8, SizeAt: -1, PIDAt: 8}},
	} {
		ps, err := Parse(c.b, c.l)
		assert.ErrorIs(t, err, ErrLayout, name)
		assert.Nil(t, ps, name)
	}
	ps, err := Parse(nil, Darwin)
	assert.NoError(t, err, "an empty table is a table")
	assert.Empty(t, ps)
}

// FuzzParse: never a panic; a table is either refused with ErrLayout or
// every record it returns is the bytes at the layout's offsets.
func FuzzParse(f *testing.F) {
	f.Add(darwinTable(rec{pid: 3, ppid: 1, flags: 0x4000}), false)
	f.Add(freebsdTable(1088, rec{pid: 3, ppid: 1}), true)
	f.Add(freebsdTable(1096, rec{pid: 3, ppid: 1}), true)
	f.Add([]byte{1, 2, 3}, false)
	f.Fuzz(func(t *testing.T, b []byte, fbsd bool) {
		l := Darwin
		if fbsd {
			l = FreeBSD
		}
		ps, err := Parse(b, l)
		if err != nil {
			if !errors.Is(err, ErrLayout) {
				t.Fatalf("error %v does not wrap ErrLayout", err)
			}
			if ps != nil {
				t.Fatalf("a refused table returned %d processes", len(ps))
			}
			return
		}
		if len(ps)*l.Size != len(b) {
			t.Fatalf("%d records from %d bytes", len(ps), len(b))
		}
		for i, p := range ps {
			r := b[i*l.Size:]
			if l.SizeAt >= 0 && binary.LittleEndian.Uint32(r[l.SizeAt:]) != uint32(l.Size) {
				t.Fatalf("record %d accepted with a wrong size", i)
			}
			if p.PID != int32(binary.LittleEndian.Uint32(r[l.PIDAt:])) || p.PPID != int32(binary.LittleEndian.Uint32(r[l.PPIDAt:])) ||
				p.Flags != binary.LittleEndian.Uint32(r[l.FlagsAt:]) {
				t.Fatalf("record %d misread: %+v", i, p)
			}
		}
	})
}
