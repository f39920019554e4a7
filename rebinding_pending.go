package safeudp

import (
	"net/netip"
	"sync"
	"sync/atomic"
)

// datagram is one datagram taken off a replaced socket.
type datagram struct {
	b, oob []byte
	flags  int // recvmsg flags, MSG_TRUNC and MSG_CTRUNC included
	addr   netip.AddrPort
}

// copyMsg copies the datagram into b and oob as recvmsg would.
func (d *datagram) copyMsg(b, oob []byte) (n, oobn, flags int) {
	n, oobn, flags = copy(b, d.b), copy(oob, d.oob), d.flags
	if n < len(d.b) {
		flags |= msgTrunc
	}
	if oobn < len(d.oob) {
		flags |= msgCtrunc
	}
	return n, oobn, flags
}

// pendingQueue holds the datagrams taken off replaced sockets, oldest
// first. Reads take from it before they read a socket.
type pendingQueue struct {
	mu sync.Mutex // guards q
	q  []*datagram
	n  atomic.Int32 // len(q), so that reads skip the lock when it is empty
}

// add queues a datagram taken off a replaced socket.
func (p *pendingQueue) add(b, oob []byte, flags int, from netip.AddrPort) {
	p.push(&datagram{b: b, oob: oob, flags: flags, addr: from})
}

func (p *pendingQueue) push(d *datagram) {
	p.mu.Lock()
	p.q = append(p.q, d)
	p.n.Store(int32(len(p.q)))
	p.mu.Unlock()
}

func (p *pendingQueue) pop() *datagram {
	if p.n.Load() == 0 {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.q) == 0 {
		return nil
	}
	d := p.q[0]
	p.q[0] = nil
	p.q = p.q[1:]
	if len(p.q) == 0 {
		p.q = nil
	}
	p.n.Store(int32(len(p.q)))
	return d
}

func (p *pendingQueue) clear() {
	p.mu.Lock()
	p.q = nil
	p.n.Store(0)
	p.mu.Unlock()
}
