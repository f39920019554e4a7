package safeudp

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"weak"
)

// Reload in one process: several handles on one socket.
//
// A conn opened with ListenConfig.Shared belongs to a shareGroup. A later
// ListenPacket with Shared on the same network and address joins the
// group instead of binding: the new handle gets its own descriptor of the
// same socket (a close-on-exec dup), so that it has its own deadlines and
// its own Close: closing one handle's descriptor wakes only that handle's
// calls. The kernel gives each datagram to exactly one recvfrom, whichever
// descriptor it is made on.
//
// The group counts the handles whose descriptor is still open. A handle
// leaves the group right after its descriptor is closed, so the one that
// brings the count to zero knows that no handle's descriptor is left: it
// alone verifies the release (see core.release) and removes a unixgram
// socket file. Every earlier Close returns once its own calls are
// drained.

// shareGroup is the handles of one socket opened with ListenConfig.Shared.
type shareGroup struct {
	// Fixed at creation, read without locks.
	network string
	laddr   net.Addr

	mu       sync.Mutex           // guards the fields below
	open     int                  // handles whose descriptor is not yet closed
	members  []weak.Pointer[core] // every handle that joined, for exposure and hand-off marks
	sockFile *sockFile            // the unixgram socket file, moved to the last handle to leave
	handedTo int                  // pid of the process the socket was handed to by Upgrade, or 0
}

// shared holds the groups with at least one handle open.
var shared struct {
	mu     sync.Mutex // guards groups
	groups []*shareGroup
}

// share makes c, just opened with Shared, the first handle of a new group.
func (c *core) share() {
	g := &shareGroup{network: c.network, laddr: c.laddr, open: 1, members: []weak.Pointer[core]{c.key}}
	g.sockFile, c.sockFile = c.sockFile, nil // the last handle to leave removes it
	c.group = g
	shared.mu.Lock()
	shared.groups = append(shared.groups, g)
	shared.mu.Unlock()
}

// joinShared returns a new handle on the socket of an open group bound to
// network and address, or nil if there is none. The handle is a conn of
// the same type, with a descriptor of its own.
func (lc *ListenConfig) joinShared(network, address string, opened uintptr) (net.PacketConn, error) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	for _, g := range shared.groups {
		if g.network != network || !addrMatches(network, address, g.laddr) {
			continue
		}
		pc, err := g.dup()
		if err != nil {
			return nil, &net.OpError{Op: "listen", Net: network, Addr: g.laddr,
				Err: fmt.Errorf("safeudp: a second handle on the shared socket cannot be made: %w", err)}
		}
		if pc == nil {
			continue // every handle is closing: bind as usual
		}
		nc := wrap(pc, network, opened, lc)
		c := coreOf(nc)
		c.group = g
		g.mu.Lock()
		g.open++
		g.members = append(g.members, c.key)
		g.mu.Unlock()
		return nc, nil
	}
	return nil, nil
}

// dup makes a new descriptor of the group's socket from a handle that is
// still open, or returns nil if every handle is closing. Called under
// shared.mu, so that no group is both joined and removed at once.
func (g *shareGroup) dup() (net.PacketConn, error) {
	g.mu.Lock()
	members := slices.Clone(g.members)
	open := g.open
	g.mu.Unlock()
	if open == 0 {
		return nil, nil
	}
	for _, w := range members {
		c := w.Value()
		if c == nil || c.inflight.closing() {
			continue
		}
		// File holds a reference on the descriptor while it dups it: a
		// Close that begins meanwhile waits for it, and a File after the
		// descriptor is closed fails (then the next handle is tried). The
		// copy is ours, never handed out: the handle is not exposed.
		fc, ok := c.pc.(interface{ File() (*os.File, error) })
		if !ok {
			return nil, fmt.Errorf("a %T cannot be duplicated", c.pc)
		}
		f, err := fc.File()
		if err != nil {
			if c.inflight.closing() {
				continue
			}
			return nil, err // windows: "not supported by windows"
		}
		pc, err := net.FilePacketConn(f)
		_ = f.Close()
		return pc, err
	}
	return nil, nil
}

// leave is called by each handle right after its descriptor is closed. It
// reports whether c was the last handle of its group (or has no group):
// then c verifies the release, and takes the socket file to remove.
func (c *core) leave() (last bool) {
	g := c.group
	if g == nil {
		return true
	}
	g.mu.Lock()
	g.open--
	last = g.open == 0
	if last {
		c.sockFile, g.sockFile = g.sockFile, nil
	}
	g.mu.Unlock()
	if last {
		shared.mu.Lock()
		shared.groups = slices.DeleteFunc(shared.groups, func(o *shareGroup) bool { return o == g })
		shared.mu.Unlock()
	}
	return last
}

// groupExposed reports whether any handle of c's group may have a copy of
// the socket that safeudp does not know of (see core.exposed). Read by
// the last handle after every other handle has left, so that a File or
// SyscallConn on a handle that closed earlier is seen.
func (c *core) groupExposed() bool {
	g := c.group
	if g == nil {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, w := range g.members {
		if m := w.Value(); m != nil && m.exposed.Load() {
			return true
		}
	}
	return false
}

// addrMatches reports whether a bind of network and address would ask for
// the address have is bound to: the same port (never 0) and the same IP,
// or a wildcard on both sides; for unixgram, the same path.
func addrMatches(network, address string, have net.Addr) bool {
	switch h := have.(type) {
	case *net.UDPAddr:
		want, err := net.ResolveUDPAddr(network, address)
		if err != nil || want.Port == 0 || want.Port != h.Port {
			return false
		}
		if want.IP == nil || want.IP.IsUnspecified() {
			return h.IP.IsUnspecified() && (want.IP == nil || (want.IP.To4() == nil) == (h.IP.To4() == nil))
		}
		return want.IP.Equal(h.IP)
	case *net.UnixAddr:
		if address == "" || address[0] == '@' || h.Name == "" {
			return address != "" && address == h.Name // abstract names compare as written
		}
		a, err1 := filepath.Abs(address)
		b, err2 := filepath.Abs(h.Name)
		return err1 == nil && err2 == nil && a == b
	}
	return false
}
