package safeudp

import (
	"log/slog"
	"time"

	"github.com/safeudp/safeudp/internal/sockdiag"
)

// releaseTarget is what one Close verifies the release of, built once,
// after the drain: the socket's identity and this process's File() copies
// of it that were open then (no copy can be made after Close began). The
// platform's verifyReleased and the reports read only this, never the
// conn.
type releaseTarget struct {
	network, addr string
	sock          sockdiag.Socket // zero outside Linux, or for a socket not identified
	tid           tableID         // macOS and FreeBSD: the socket in the kernel's tables
	copies        []*fileCopy     // open File() copies when the release began
	timeout       time.Duration   // the bound of a Close (ReleaseTimeout); a Shutdown's ctx bounds it instead
	log           *slog.Logger
}

// releaseTarget builds c's target. Its identity was read before the
// underlying Close (see prepareRelease).
func (c *core) releaseTarget() releaseTarget {
	t := releaseTarget{network: c.network, sock: c.sock, tid: c.tid, copies: copiesOf(c, false),
		timeout: c.lc.releaseTimeout(), log: c.log}
	if c.laddr != nil {
		t.addr = c.laddr.String()
	}
	return t
}

// openCopies returns the holders that the target's copies still are,
// from what this process recorded, without asking the OS.
func (t *releaseTarget) openCopies() []Holder {
	var hs []Holder
	for _, fc := range t.copies {
		if open, _ := fc.state(); open {
			hs = append(hs, copyHolder(fc))
		}
	}
	return hs
}

// openCopiesError reports the target's File() copies that are still
// open: a *ReleaseError wrapping ErrHeldElsewhere, or nil.
func (t *releaseTarget) openCopiesError() error {
	hs := t.openCopies()
	if len(hs) == 0 {
		return nil
	}
	return &ReleaseError{Network: t.network, Addr: t.addr, Holders: hs}
}

// defaultReleaseTimeout bounds Close's wait for a transient holder when
// ListenConfig.ReleaseTimeout is zero.
const defaultReleaseTimeout = time.Second

// releaseTimeout is ReleaseTimeout or its default.
func (lc *ListenConfig) releaseTimeout() time.Duration {
	if lc.ReleaseTimeout > 0 {
		return lc.ReleaseTimeout
	}
	return defaultReleaseTimeout
}
