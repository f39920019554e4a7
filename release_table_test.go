//go:build linux || darwin || freebsd

package safeudp

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/safeudp/safeudp/internal/kinfo"
	"github.com/safeudp/safeudp/internal/pcblist"
)

// fakeKernel is a bsdKernel whose answers the test scripts: the children
// between fork and exec for the first kidsFor calls, the socket listed for
// the first listedFor lookups (-1: always), the holders it shows.
type fakeKernel struct {
	kidsFor, listedFor int
	kidsErr, listedErr error
	shown              []Holder

	kidCalls, listedCalls atomic.Int32
	kidsGone              atomic.Bool // set once forkChildren answered "none"
}

func (k *fakeKernel) forkChildren() ([]kinfo.Proc, error) {
	if k.kidsErr != nil {
		return nil, k.kidsErr
	}
	if n := int(k.kidCalls.Add(1)); k.kidsFor < 0 || n <= k.kidsFor {
		return []kinfo.Proc{{PID: 4242, PPID: os.Getpid(), Comm: "forking"}}, nil
	}
	k.kidsGone.Store(true)
	return nil, nil
}

func (k *fakeKernel) listed(tableID) (bool, error) {
	n := int(k.listedCalls.Add(1))
	if k.listedErr != nil {
		return false, k.listedErr
	}
	return k.listedFor < 0 || n <= k.listedFor, nil
}

func (k *fakeKernel) holders(tableID) []Holder { return append([]Holder(nil), k.shown...) }

// countingHandler counts the records logged through it.
type countingHandler struct {
	mu   sync.Mutex // guards msgs
	msgs []string
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs = append(h.msgs, r.Message)
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

func (h *countingHandler) count(substr string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.msgs {
		if strings.Contains(m, substr) {
			n++
		}
	}
	return n
}

func tableTarget(log *slog.Logger, timeout time.Duration) releaseTarget {
	return releaseTarget{network: "udp4", addr: "127.0.0.1:3001", tid: tableID{so: 0xff01, gen: 7, ok: true}, timeout: timeout, log: log}
}

// A child between fork and exec holds a copy of the socket: Close must
// not return before it is gone. (Before this check, verifyReleased on
// macOS and FreeBSD returned at once.)
func TestTableWaitsOutForkChildren(t *testing.T) {
	k := &fakeKernel{kidsFor: 5}
	attempts, err := verifyFromTable(context.Background(), tableTarget(nil, 5*time.Second), k)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if !k.kidsGone.Load() {
		t.Fatal("returned while a child between fork and exec was still there")
	}
	if attempts != 1 || k.listedCalls.Load() != 1 {
		t.Fatalf("attempts %d, table lookups %d: want one lookup after the children", attempts, k.listedCalls.Load())
	}
}

// A child that never execs is waited for up to the bound, then named.
func TestTableStuckChildIsReported(t *testing.T) {
	k := &fakeKernel{kidsFor: -1}
	_, err := verifyFromTable(context.Background(), tableTarget(nil, 30*time.Millisecond), k)
	var re *ReleaseError
	if !errors.As(err, &re) || !errors.Is(err, ErrNotReleased) || errors.Is(err, ErrHeldElsewhere) {
		t.Fatalf("err %v: want a *ReleaseError for a transient holder", err)
	}
	if len(re.Holders) != 1 || re.Holders[0].Kind != HolderForking || re.Holders[0].PID != 4242 {
		t.Fatalf("holders %+v, want the forking child", re.Holders)
	}
	if s := err.Error(); !strings.Contains(s, `pid 4242 "forking", a child of this process between fork and exec`) {
		t.Fatalf("error %q does not name the child", s)
	}
}

// The socket listed for a while (a closing socket), then gone: nil.
func TestTableListedThenGone(t *testing.T) {
	k := &fakeKernel{listedFor: 3, shown: []Holder{{Kind: HolderUnseen, FD: -1}}}
	attempts, err := verifyFromTable(context.Background(), tableTarget(nil, 5*time.Second), k)
	if err != nil || attempts != 4 {
		t.Fatalf("attempts %d err %v, want 4 and nil", attempts, err)
	}
}

// The socket stays listed: the holder the table shows is long-lived at
// its second look, and reported before the bound.
func TestTableLongLivedHolder(t *testing.T) {
	k := &fakeKernel{listedFor: -1, shown: []Holder{{Kind: HolderUnseen, PID: 99, Command: "other", FD: -1}}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := verifyFromTable(ctx, tableTarget(nil, time.Minute), k)
	if !errors.Is(err, ErrHeldElsewhere) {
		t.Fatalf("err %v, want ErrHeldElsewhere", err)
	}
	if ctx.Err() != nil {
		t.Fatal("waited for the bound")
	}
	if !strings.Contains(err.Error(), `last used by pid 99 "other"`) {
		t.Fatalf("error %q does not name the last user", err)
	}
}

// Fail-safe: a table that is not recognised, children that cannot be
// listed, a socket not identified: no error, no wait, one log line.
func TestTableUnrecognisedFallsBack(t *testing.T) {
	for name, k := range map[string]*fakeKernel{
		"table": {listedFor: -1, listedErr: unverifiable(pcblist.ErrLayout)},
		"procs": {kidsErr: unverifiable(kinfo.ErrLayout)},
	} {
		unverified.once = sync.Once{}
		h := &countingHandler{}
		log := slog.New(h)
		for range 3 {
			if _, err := verifyFromTable(context.Background(), tableTarget(log, time.Minute), k); err != nil {
				t.Fatalf("%s: err %v, want the unverified fallback", name, err)
			}
		}
		if n := h.count("cannot verify"); n != 1 {
			t.Fatalf("%s: logged %d times, want once", name, n)
		}
	}
	unverified.once = sync.Once{}
	h := &countingHandler{}
	tg := tableTarget(slog.New(h), time.Minute)
	tg.tid = tableID{why: errAmbiguous}
	if _, err := verifyFromTable(context.Background(), tg, &fakeKernel{listedFor: -1}); err != nil || h.count("cannot verify") != 1 {
		t.Fatalf("not identified: err %v, %d log lines", err, h.count("cannot verify"))
	}
}

// A lookup that fails for another reason is not a claim of release.
func TestTableLookupError(t *testing.T) {
	k := &fakeKernel{listedErr: errors.New("sysctl: ENOMEM")}
	_, err := verifyFromTable(context.Background(), tableTarget(nil, time.Minute), k)
	var re *ReleaseError
	if !errors.As(err, &re) || re.Err == nil {
		t.Fatalf("err %v, want a *ReleaseError with Err", err)
	}
}

func TestMatchSocket(t *testing.T) {
	self := os.Getpid()
	ap := netip.MustParseAddrPort
	a := pcblist.Socket{So: 1, Gen: 10, Local: ap("127.0.0.1:3001"), Remote: ap("0.0.0.0:0"), LastPID: self}
	b := pcblist.Socket{So: 2, Gen: 11, Local: ap("127.0.0.1:3001"), Remote: ap("0.0.0.0:0"), LastPID: 77}
	c := pcblist.Socket{So: 3, Gen: 12, Local: ap("[::]:3002"), LastPID: self}
	u := pcblist.Socket{So: 4, Gen: 13, Path: "/tmp/x.sock", LastPID: self}
	tb := pcblist.Table{Socks: []pcblist.Socket{a, b, c, u}}
	if id := matchSocket(tb, ap("127.0.0.1:3001"), netip.AddrPort{}, "", self); !id.ok || id.so != 1 {
		t.Errorf("two on the port, one used last by us: %+v", id)
	}
	if id := matchSocket(tb, ap("[::]:3002"), netip.AddrPort{}, "", self); !id.ok || id.so != 3 {
		t.Errorf("wildcard: %+v", id)
	}
	if id := matchSocket(tb, netip.AddrPort{}, netip.AddrPort{}, "/tmp/x.sock", self); !id.ok || id.so != 4 {
		t.Errorf("unix: %+v", id)
	}
	if id := matchSocket(tb, ap("127.0.0.1:9"), netip.AddrPort{}, "", self); id.ok || id.why == nil {
		t.Errorf("absent: %+v", id)
	}
	a2 := a
	a2.So = 5
	if id := matchSocket(pcblist.Table{Socks: []pcblist.Socket{a, a2}}, ap("127.0.0.1:3001"), netip.AddrPort{}, "", self); id.ok || !errors.Is(id.why, errAmbiguous) {
		t.Errorf("ambiguous: %+v", id)
	}
}

func TestJoinSocketAndHolders(t *testing.T) {
	self := os.Getpid()
	tb := pcblist.Table{Socks: []pcblist.Socket{{So: 0xa, Gen: 3, Local: netip.MustParseAddrPort("127.0.0.1:3001")}}}
	files := []pcblist.File{
		{PID: self, FD: 7, Type: pcblist.DTypeSocket, Data: 0xa},
		{PID: 500, FD: 3, Type: pcblist.DTypeSocket, Data: 0xa},
		{PID: 501, FD: 4, Type: pcblist.DTypeSocket, Data: 0xa},
		{PID: 502, FD: 5, Type: pcblist.DTypeSocket, Data: 0xa},
	}
	if id := joinSocket(files, tb, self, 7); !id.ok || id.so != 0xa || id.gen != 3 {
		t.Fatalf("joinSocket = %+v", id)
	}
	if id := joinSocket(files, tb, self, 8); id.ok {
		t.Fatalf("another fd: %+v", id)
	}
	procs := []kinfo.Proc{
		{PID: 500, PPID: self, Comm: "forking"},
		{PID: 501, PPID: self, Flag: kinfo.PExec, Comm: "child"},
		{PID: 502, PPID: 1, Flag: kinfo.PExec, Comm: "other"},
	}
	hs := socketHolders(tb.Socks, files, procs, "127.0.0.1:3001")
	kinds := []HolderKind{HolderProcess, HolderForking, HolderChild, HolderProcess}
	if len(hs) != 4 {
		t.Fatalf("holders %v", hs)
	}
	for i, h := range hs {
		if h.Kind != kinds[i] {
			t.Errorf("holder %d: %v, want %v", i, h, kinds[i])
		}
	}
	if !hs[0].self || hs[3].String() != `pid 502 "other" fd 5` {
		t.Errorf("holders %v", hs)
	}
	// macOS: our socket with children between fork and exec: they hold it.
	dh := darwinHolders([]pcblist.Socket{{So: 1, Local: netip.MustParseAddrPort("127.0.0.1:3001"), LastPID: self}}, procs, self, "127.0.0.1:3001")
	if len(dh) != 1 || dh[0].Kind != HolderForking || dh[0].PID != 500 || !dh[0].Transient() {
		t.Errorf("darwinHolders = %v", dh)
	}
	dh = darwinHolders([]pcblist.Socket{{So: 1, Local: netip.MustParseAddrPort("127.0.0.1:3001"), LastPID: 502}}, procs, self, "127.0.0.1:3001")
	if len(dh) != 1 || dh[0].Kind != HolderUnseen || !strings.Contains(dh[0].String(), `last used by pid 502 "other"`) {
		t.Errorf("darwinHolders = %v", dh)
	}
}
