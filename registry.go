package safeudp

import "sync"

// live holds every conn of this process that is not yet released, so that
// reports can say which sockets are still open and where they were opened.
var live struct {
	mu    sync.Mutex         // guards conns
	conns map[*core]struct{} // added at init, removed at release
}

func register(c *core) {
	live.mu.Lock()
	if live.conns == nil {
		live.conns = make(map[*core]struct{})
	}
	live.conns[c] = struct{}{}
	live.mu.Unlock()
}

func unregister(c *core) {
	live.mu.Lock()
	delete(live.conns, c)
	live.mu.Unlock()
}

// OpenConn describes a conn of this process that is not yet fully closed.
type OpenConn struct {
	Network  string // "udp", "udp4", "udp6" or "unixgram"
	Addr     string // the local address
	OpenedAt string // file:line of the code that called ListenPacket or Wrap
	InFlight int    // calls running on it when the snapshot was taken
}

// OpenConns returns the conns that ListenPacket or Wrap returned in this
// process and that no Close or Shutdown has fully released yet, in no
// particular order. Test helpers use it to find sockets a test left open.
func OpenConns() []OpenConn {
	live.mu.Lock()
	defer live.mu.Unlock()
	out := make([]OpenConn, 0, len(live.conns))
	for c := range live.conns {
		addr := ""
		if c.laddr != nil {
			addr = c.laddr.String()
		}
		out = append(out, OpenConn{Network: c.network, Addr: addr, OpenedAt: c.openedAt(), InFlight: c.InFlight()})
	}
	return out
}
