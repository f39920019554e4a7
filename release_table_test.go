//go:build linux || darwin || freebsd

package safeudp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	heldByKids         bool // listed while the children are there
	changedFor         int  // the table changes while it is read for the first changedFor lookups
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
	if n <= k.changedFor {
		return false, fmt.Errorf("sysctl: %w", pcblist.ErrChanged)
	}
	if k.listedErr != nil {
		return false, k.listedErr
	}
	if k.heldByKids { // the children hold the socket until they are gone
		return !k.kidsGone.Load(), nil
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
	k := &fakeKernel{kidsFor: 5, heldByKids: true}
	_, err := verifyFromTable(context.Background(), tableTarget(nil, 5*time.Second), k)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if !k.kidsGone.Load() {
		t.Fatal("returned while a child between fork and exec was still there")
	}
}

// A socket the table no longer lists is released, whatever children there
// are: a child that never execs (forked before the socket was opened, by C
// code, say) gives no error and no wait.
func TestTableGoneDespiteChildren(t *testing.T) {
	k := &fakeKernel{kidsFor: -1}
	attempts, err := verifyFromTable(context.Background(), tableTarget(nil, time.Minute), k)
	if err != nil || attempts != 1 || k.kidCalls.Load() != 0 {
		t.Fatalf("attempts %d err %v, children listed %d times: want nil at the first lookup", attempts, err, k.kidCalls.Load())
	}
}

// A child that never execs is waited for up to the bound, then named.
func TestTableStuckChildIsReported(t *testing.T) {
	k := &fakeKernel{kidsFor: -1, listedFor: -1}
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
		"procs": {listedFor: -1, kidsErr: unverifiable(kinfo.ErrLayout)},
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
	tg.tid = tableID{why: errors.New("not in the table")}
	if _, err := verifyFromTable(context.Background(), tg, &fakeKernel{listedFor: -1}); err != nil || h.count("cannot verify") != 1 {
		t.Fatalf("not identified: err %v, %d log lines", err, h.count("cannot verify"))
	}
}

// A table that keeps changing while it is read is read again within the
// bound; it is never taken for an answer.
func TestTableChangingIsReadAgain(t *testing.T) {
	k := &fakeKernel{changedFor: 3}
	attempts, err := verifyFromTable(context.Background(), tableTarget(nil, time.Minute), k)
	if err != nil || attempts != 4 {
		t.Fatalf("attempts %d err %v, want nil after 4", attempts, err)
	}
	k = &fakeKernel{changedFor: 1 << 30}
	_, err = verifyFromTable(context.Background(), tableTarget(nil, 20*time.Millisecond), k)
	var re *ReleaseError
	if !errors.As(err, &re) || !errors.Is(re.Err, pcblist.ErrChanged) {
		t.Fatalf("err %v, want a *ReleaseError whose Err says the table kept changing", err)
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
