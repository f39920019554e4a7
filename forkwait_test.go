package safeudp

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/safeudp/safeudp/internal/kinfo"
)

// The wait for children between fork and exec (forkwait.go), on fake
// process tables: this process is pid 100, its parent pid 1.

const fakeSelf, fakeParent = 100, 1

// fakeTable returns a lister that answers tables[i] at its i-th read, and
// the last one after, and counts the reads.
func fakeTable(tables ...[]kinfo.Proc) (procLister, *atomic.Int32) {
	var n atomic.Int32
	return func() ([]kinfo.Proc, error) {
		i := int(n.Add(1)) - 1
		return tables[min(i, len(tables)-1)], nil
	}, &n
}

// table is this process plus procs.
func table(procs ...kinfo.Proc) []kinfo.Proc {
	return append([]kinfo.Proc{{PID: fakeSelf, PPID: fakeParent, Flags: kinfo.PExec, Command: "a.test"}}, procs...)
}

var (
	forked  = kinfo.Proc{PID: 101, PPID: fakeSelf, Command: "a.test"}                    // between fork and exec
	execed  = kinfo.Proc{PID: 101, PPID: fakeSelf, Flags: kinfo.PExec, Command: "sleep"} // the same child after exec
	other   = kinfo.Proc{PID: 200, PPID: fakeParent, Command: "sibling"}                 // forked, not ours
	grandch = kinfo.Proc{PID: 300, PPID: 101, Command: "grandchild"}                     // our child's child
)

func fakeWait(list procLister) forkWait {
	return forkWait{list: list, self: fakeSelf, parent: func() int32 { return fakeParent }}
}

func fakeTarget(timeout time.Duration, log *slog.Logger) releaseTarget {
	return releaseTarget{network: "udp", addr: "127.0.0.1:5353", timeout: timeout, log: log}
}

func TestForkWaitUntilTheChildExecs(t *testing.T) {
	list, reads := fakeTable(table(forked), table(forked), table(forked), table(execed))
	tg := fakeTarget(time.Minute, nil)
	attempts, err := tg.verifyForkChildren(context.Background(), fakeWait(list))
	require.NoError(t, err, "the child execed: the socket is released")
	assert.Equal(t, 4, attempts)
	assert.EqualValues(t, 4, reads.Load(), "no read after the child execed")
}

func TestForkWaitChildExitsOrIsReplaced(t *testing.T) {
	// The child exits (gone from the table), and a child forked after the
	// first look, so after the close, is not waited for.
	later := kinfo.Proc{PID: 102, PPID: fakeSelf, Command: "a.test"}
	list, _ := fakeTable(table(forked), table(later))
	tg := fakeTarget(time.Minute, nil)
	attempts, err := tg.verifyForkChildren(context.Background(), fakeWait(list))
	require.NoError(t, err)
	assert.Equal(t, 2, attempts)
}

func TestForkWaitGivesUpAtTheBoundNamingTheChild(t *testing.T) {
	list, _ := fakeTable(table(forked, other))
	for name, run := range map[string]func(tg releaseTarget) (int, error){
		"Close (ReleaseTimeout)": func(tg releaseTarget) (int, error) {
			return tg.verifyForkChildren(context.Background(), fakeWait(list))
		},
		"Shutdown (its ctx)": func(tg releaseTarget) (int, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			tg.timeout = time.Hour // not used: the ctx bounds a Shutdown
			return tg.verifyForkChildren(ctx, fakeWait(list))
		},
	} {
		t.Run(name, func(t *testing.T) {
			var logs bytes.Buffer
			attempts, err := run(fakeTarget(20*time.Millisecond, slog.New(slog.NewTextHandler(&logs, nil))))
			var re *ReleaseError
			require.ErrorAs(t, err, &re)
			assert.ErrorIs(t, err, ErrNotReleased)
			assert.NotErrorIs(t, err, ErrHeldElsewhere, "a child between fork and exec is transient")
			require.Len(t, re.Holders, 1, "only our child: %v", re.Holders)
			assert.Equal(t, Holder{Kind: HolderForking, PID: 101, FD: -1, Command: "a.test"}, re.Holders[0])
			assert.Greater(t, attempts, 1)
			assert.Equal(t, attempts, re.Attempts)
			assert.GreaterOrEqual(t, re.Waited, 10*time.Millisecond)
			assert.Contains(t, err.Error(), `held by pid 101 "a.test", a child of this process between fork and exec`)
			assert.Contains(t, logs.String(), "socket still held")
		})
	}
}

func TestForkWaitIgnoresExecedChildrenAndOthers(t *testing.T) {
	list, reads := fakeTable(table(execed, other, grandch))
	tg := fakeTarget(time.Minute, nil)
	attempts, err := tg.verifyForkChildren(context.Background(), fakeWait(list))
	require.NoError(t, err)
	assert.Equal(t, 1, attempts, "no child between fork and exec: one read, no wait")
	assert.EqualValues(t, 1, reads.Load())
}

func TestForkWaitUnverifiedTable(t *testing.T) {
	failing := func() ([]kinfo.Proc, error) { return nil, errors.New("sysctl kern.proc.all: cannot allocate memory") }
	misread, _ := fakeTable([]kinfo.Proc{forked, other}) // this process missing: a layout misread
	wrongParent, _ := fakeTable([]kinfo.Proc{{PID: fakeSelf, PPID: 77}, forked})
	layout := func() ([]kinfo.Proc, error) { return kinfo.Parse(make([]byte, 100), kinfo.Darwin) }
	afterFirst := func() procLister { // readable at first, not while waiting
		n := 0
		return func() ([]kinfo.Proc, error) {
			if n++; n == 1 {
				return table(forked), nil
			}
			return nil, errors.New("sysctl: interrupted")
		}
	}()
	for name, list := range map[string]procLister{
		"a failing sysctl": failing, "this process missing": misread, "another parent": wrongParent,
		"an unrecognised layout": layout, "failing while waiting": afterFirst,
	} {
		t.Run(name, func(t *testing.T) {
			unverifiedOnce = sync.Once{}
			var logs bytes.Buffer
			tg := fakeTarget(time.Hour, slog.New(slog.NewTextHandler(&logs, nil)))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // never reached: no wait
			defer cancel()
			_, err := tg.verifyForkChildren(ctx, fakeWait(list))
			require.NoError(t, err, "a table that cannot be read is never a false error")
			_, err = tg.verifyForkChildren(ctx, fakeWait(list))
			require.NoError(t, err)
			assert.NoError(t, ctx.Err(), "no wait to the bound")
			assert.Equal(t, 1, bytes.Count(logs.Bytes(), []byte("cannot be read")), "logged once: %s", logs.String())
		})
	}
}
