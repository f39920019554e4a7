package safeudp

import (
	"sync"
	"weak"
)

// live holds every conn of this process that is not yet released, so that
// reports can say which sockets are still open and where they were opened.
// It holds them weakly: a conn dropped without Close is still collected,
// and net's finalizer still closes its descriptor, as without safeudp.
var live struct {
	mu    sync.Mutex                      // guards conns
	conns map[weak.Pointer[core]]struct{} // added at init, removed at release
}

// register adds c and returns its key, for unregister: a weak pointer is
// made once per conn (a second weak.Make of the same conn looks its handle
// up again under the runtime's lock).
func register(c *core) weak.Pointer[core] {
	w := weak.Make(c)
	live.mu.Lock()
	if live.conns == nil {
		live.conns = make(map[weak.Pointer[core]]struct{})
	}
	live.conns[w] = struct{}{}
	live.mu.Unlock()
	return w
}

func unregister(w weak.Pointer[core]) {
	live.mu.Lock()
	delete(live.conns, w)
	live.mu.Unlock()
}

// liveConns returns the conns not yet released, forgetting those that were
// collected.
func liveConns() []*core {
	live.mu.Lock()
	defer live.mu.Unlock()
	out := make([]*core, 0, len(live.conns))
	for w := range live.conns {
		if c := w.Value(); c != nil {
			out = append(out, c)
		} else {
			delete(live.conns, w)
		}
	}
	return out
}

// OpenConn describes a conn of this process that is not yet fully closed.
type OpenConn struct {
	Network  string // "udp", "udp4", "udp6" or "unixgram"
	Addr     string // the local address
	OpenedAt string // file:line of the code that called ListenPacket or Wrap
	InFlight int    // calls running on it when the snapshot was taken
}

// OpenConns returns the conns that [ListenPacket] or [Wrap] returned in this
// process and that no Close or Shutdown has fully released yet, in no
// particular order. A conn dropped without Close is listed until the
// garbage collector frees it. Test helpers use it to find sockets a test
// left open.
func OpenConns() []OpenConn {
	conns := liveConns()
	out := make([]OpenConn, 0, len(conns))
	for _, c := range conns {
		addr := ""
		if c.laddr != nil {
			addr = c.laddr.String()
		}
		out = append(out, OpenConn{Network: c.network, Addr: addr, OpenedAt: c.openedAt(), InFlight: c.InFlight()})
	}
	return out
}
