//go:build linux || darwin || freebsd

package safeudp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/safeudp/safeudp/internal/kinfo"
	"github.com/safeudp/safeudp/internal/pcblist"
)

// Release verification from the kernel's socket tables, as macOS and
// FreeBSD allow it without cgo. The decisions are here, in portable code
// that the tests run on Linux against fakes; release_darwin.go and
// release_freebsd.go only call sysctl and hand over the bytes.
//
// After the underlying Close, the socket's table (pcblist) must no longer
// list the socket, named by its kernel handle and generation count (read
// before the underlying Close), which no later socket shares: then Close
// returns nil, whatever children there are. While it is still listed,
// this process's children between fork and exec (a child whose parent is
// this process and whose flags lack P_EXEC, from the kern.proc table),
// each holding a copy of every descriptor until it execs, are waited out.
// Every such child counts, not only those forked while the socket was
// open: a start time compared with the socket's open time would lean on
// the wall clock (a clock stepped back would hide a child that holds the
// socket), and a conn taken over by Wrap has no known open time. That
// costs nothing when the socket is gone (the table is asked first), and
// otherwise a wait of the child's few milliseconds before exec. With no
// such child left, the holders the table shows are watched with the same
// rule as on Linux (see holderWatch): a holder still there at two looks,
// 20 ms apart, is long-lived and reported at once.
//
// Fail-safe: a table this code does not recognise (a newer release, a
// changed struct), a socket it could not identify, or a sysctl the
// process may not read never turns a Close into an error or a wait: the
// release is then not verified, as before this check existed, and this
// is logged once per process.

// bsdKernel is what the verification asks the system.
type bsdKernel interface {
	// forkChildren lists this process's children that have not exec'd.
	forkChildren() ([]kinfo.Proc, error)
	// listed reports whether the socket table still lists id.
	listed(id tableID) (bool, error)
	// holders describes what the table shows of id's holders.
	holders(id tableID) []Holder
}

// errUnverifiable wraps the errors after which the release cannot be
// verified at all on this system (an unrecognised table, a sysctl the
// process may not read): the fallback, not a *ReleaseError.
var errUnverifiable = errors.New("safeudp: the kernel's socket tables cannot be read here")

// unverifiable marks err as one after which the release cannot be
// verified here (see errUnverifiable).
func unverifiable(err error) error { return fmt.Errorf("%w: %w", errUnverifiable, err) }

// unverified says once per process why releases are not verified.
var unverified struct {
	once sync.Once // guards the one log line
}

// logUnverified logs, once per process, that releases are not verified and
// why, to log or to slog's default logger.
func logUnverified(log *slog.Logger, why error) {
	unverified.once.Do(func() {
		if log == nil {
			log = slog.Default()
		}
		log.LogAttrs(context.Background(), slog.LevelWarn,
			"safeudp: Close cannot verify the release on this system; it drains and closes only (see the README's per-OS table)",
			slog.Any("err", why))
	})
}

// verifyFromTable is verifyReleased for macOS and FreeBSD, asking k.
func verifyFromTable(ctx context.Context, t releaseTarget, k bsdKernel) (attempts int, err error) {
	if !t.tid.ok {
		if t.tid.why != nil {
			logUnverified(t.log, t.tid.why)
		}
		return 0, t.openCopiesError()
	}
	if ctx.Done() == nil { // Close: bound the wait ourselves
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.timeout)
		defer cancel()
	}
	begun := time.Now()
	p := newPacer(firstBackoff, maxBackoff)
	defer p.stop()
	w := holderWatch{look: func() ([]Holder, error) { return t.withCopies(k.holders(t.tid)), nil }, every: rescanEvery}
	w.next = begun.Add(firstScanAfter)
	if len(t.openCopies()) > 0 {
		w.next = begun // an open copy of ours: look and report now
	}
	scan := func() []Holder {
		if !w.looked {
			_ = w.scan()
		}
		return w.hs
	}
	// Go forks under ForkLock: after the barrier no child of a Go fork
	// made before it is still between fork and exec; a child of a plain
	// fork (C code), or one slow to exec (golang/go#56784), is seen in
	// the kern.proc table below.
	forkBarrier()
	for {
		attempts++
		held, err := k.listed(t.tid)
		if errors.Is(err, errUnverifiable) {
			logUnverified(t.log, err)
			return attempts, t.openCopiesError()
		}
		if errors.Is(err, pcblist.ErrChanged) && p.wait(ctx) {
			continue // the table kept changing as it was read: again, within the bound
		}
		if err != nil {
			return attempts, t.releaseError(scan(), time.Since(begun), attempts, err)
		}
		if !held {
			return attempts, nil // whatever children there are: none holds it
		}
		// Still listed: children between fork and exec hold a copy of
		// every descriptor until they exec. They are waited out (an open
		// File() copy of ours, long-lived, is reported at once instead).
		kids, err := k.forkChildren()
		if err != nil {
			logUnverified(t.log, err)
			return attempts, t.openCopiesError()
		}
		if len(kids) > 0 && len(t.openCopies()) == 0 {
			if !p.wait(ctx) {
				return attempts, t.releaseError(forkingHolders(kids, t.addr, t.addr), time.Since(begun), attempts, nil)
			}
			continue
		}
		if w.due() {
			_ = w.scan() // never fails
			if w.longLived() {
				waited := time.Duration(0)
				if attempts > 1 {
					waited = time.Since(begun)
				}
				return attempts, t.releaseError(w.hs, waited, attempts, nil)
			}
		}
		if !p.wait(ctx) {
			return attempts, t.releaseError(scan(), time.Since(begun), attempts, nil)
		}
	}
}

// forkingHolders describes children between fork and exec.
func forkingHolders(kids []kinfo.Proc, addr, asked string) []Holder {
	hs := make([]Holder, 0, len(kids))
	for _, p := range kids {
		hs = append(hs, Holder{Kind: HolderForking, PID: p.PID, FD: -1, Command: p.Comm, Addr: addr, asked: asked})
	}
	return hs
}

// withCopies adds the target's open File() copies that hs does not show.
func (t *releaseTarget) withCopies(hs []Holder) []Holder {
	for _, h := range t.openCopies() {
		dup := false
		for _, o := range hs {
			dup = dup || (o.self && o.FD == h.FD)
		}
		if !dup {
			hs = append(hs, h)
		}
	}
	if len(hs) > 1 { // a descriptor seen: the unseen entry says nothing more
		out := hs[:0]
		for _, h := range hs {
			if h.Kind != HolderUnseen || h.PID != 0 {
				out = append(out, h)
			}
		}
		hs = out
	}
	return hs
}

// tableHolders describes what a table shows of a socket's holders: the
// descriptors kern.file lists for it (FreeBSD), each classified by
// process, or, where the table has no descriptors (macOS), one
// HolderUnseen with the pid of the last process that used the socket.
// procs (the kern.proc table) names the processes and tells children
// apart; it may be nil.
func tableHolders(files []pcblist.File, lastPID int, procs []kinfo.Proc, addr, asked string) []Holder {
	self := os.Getpid()
	byPID := make(map[int]kinfo.Proc, len(procs))
	for _, p := range procs {
		byPID[p.PID] = p
	}
	if len(files) == 0 {
		h := Holder{Kind: HolderUnseen, PID: lastPID, FD: -1, Addr: addr, asked: asked, self: lastPID == self}
		if p, ok := byPID[lastPID]; ok {
			h.Command = p.Comm
		}
		return []Holder{h}
	}
	var hs []Holder
	for _, f := range files {
		h := Holder{Kind: HolderProcess, PID: f.PID, FD: f.FD, Addr: addr, asked: asked}
		p, ok := byPID[f.PID]
		h.Command = p.Comm
		switch {
		case f.PID == self:
			h.self = true
		case ok && p.PPID == self && !p.Execed():
			h.Kind = HolderForking
		case ok && p.PPID == self:
			h.Kind = HolderChild
		}
		hs = append(hs, h)
	}
	return hs
}
