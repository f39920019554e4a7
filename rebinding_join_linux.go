package safeudp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/safeudp/safeudp/internal/procnet"
	"github.com/safeudp/safeudp/internal/sockdiag"
)

// The overlap of a Rebind sets SO_REUSEPORT on the old socket for each bind
// attempt of the new one. During that window any socket of the same user
// that sets SO_REUSEPORT can bind the address too, and it stays: a second
// program doing so in a tight loop got in during about one Rebind in two of
// a tight Rebind loop. So once the window is shut (SO_REUSEPORT cleared on
// both sockets: no bind can join from then on), refuseJoined looks at the
// port, and a Rebind that let a socket in fails.

// dumpPort lists the UDP sockets of a family on a port. Tests replace it,
// while no Rebind runs, to take the /proc/net path.
var dumpPort = sockdiag.UDPOnPort

// joinProbe is what refuseJoined reads of the conn's two sockets.
type joinProbe struct {
	cookies   [2]uint64 // SO_COOKIE of the old and the new socket
	inodes    [2]uint64 // their inodes
	cookiesOK bool      // the kernel gave both cookies (4.12 on)
	family    int       // SO_DOMAIN: AF_INET or AF_INET6
	v6only    bool      // IPV6_V6ONLY, on an AF_INET6 socket
	// shared: SO_REUSEADDR is set on the old socket (the user's Control
	// set it, or net did, for a multicast address). Other sockets may
	// then share the port at any time, not only during the bind.
	shared bool
}

// refuseJoined is called by bindNext with the overlap, once nu is bound
// and SO_REUSEPORT is cleared on old and nu again. It returns an error
// wrapping ErrHeldElsewhere, which names them, if sockets other than old
// and nu are on the port that could have joined it during the bind (same
// port; the same address, or a wildcard that covers the other's; not bound
// to different devices, as the kernel's bind check has it). The caller
// then discards nu and keeps old in service.
//
// When the user's Control set SO_REUSEPORT (keepReuseport) or
// SO_REUSEADDR, sharing the port is the user's choice, and nothing is
// checked.
//
// The port is looked at with one sock_diag dump (two for an IPv6 socket
// that also receives IPv4: a dual-stack wildcard or an IPv4-mapped
// address). If sock_diag cannot answer (no diag module, a kernel without
// SO_COOKIE, a failed dump) or its dump does not list the conn's own
// sockets (which would make it prove nothing), /proc/net/udp and udp6 are
// read instead: they list every socket, by address and inode, and cost
// more. If neither can be read (EMFILE, say), the port cannot be checked,
// and the Rebind fails, saying so: claiming no join there would be a
// guess, and the old socket, kept in service, works as before.
func (c *RebindingConn) refuseJoined(old, nu *rebindSocket) error {
	if c.keepReuseport {
		return nil
	}
	ua, ok := c.laddr.(*net.UDPAddr)
	if !ok {
		return c.joinUnchecked(fmt.Errorf("local address %v is not UDP", c.laddr))
	}
	laddr := ua.AddrPort()
	p, err := readJoinProbe(old.uc, nu.uc)
	if err != nil {
		return c.joinUnchecked(err)
	}
	if p.shared {
		return nil
	}
	// The conn's leftover sockets (rebinding_leftover.go) are its own:
	// those listed before the look, as one may be closed meanwhile.
	leftovers := c.leftovers.own()
	foreign, err := p.joined(laddr)
	if err != nil {
		return c.joinUnchecked(err)
	}
	kept := foreign[:0]
	for _, s := range foreign {
		if !leftovers(s.Cookie, s.Inode) {
			kept = append(kept, s)
		}
	}
	foreign = kept
	if len(foreign) == 0 {
		return nil
	}
	return c.joinedError(foreign)
}

// readJoinProbe reads the cookie and inode of old and nu, and the family
// and sharing options of old.
func readJoinProbe(old, nu *UDPConn) (joinProbe, error) {
	var p joinProbe
	var cookieOK [2]bool
	var serr error
	for i, uc := range []*UDPConn{old, nu} {
		rc := rawConnOf(uc)
		if rc == nil {
			return p, net.ErrClosed
		}
		if err := rc.Control(func(fd uintptr) {
			p.cookies[i], cookieOK[i] = sockdiag.Cookie(int(fd))
			p.inodes[i] = sockdiag.Inode(int(fd))
			if i > 0 {
				return
			}
			if p.family, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN); serr != nil {
				return
			}
			var v int
			if v, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR); serr != nil {
				return
			}
			p.shared = v != 0
			if p.family == unix.AF_INET6 {
				v, serr = unix.GetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_V6ONLY)
				p.v6only = v != 0
			}
		}); err != nil {
			return p, err
		}
	}
	if serr != nil {
		return p, serr
	}
	if p.inodes[0] == 0 || p.inodes[1] == 0 {
		return p, errors.New("no socket inode")
	}
	p.cookiesOK = cookieOK[0] && cookieOK[1]
	return p, nil
}

// families returns the families whose sockets can take datagrams sent to
// laddr from the conn's sockets. An IPv4 socket on the port is found by
// the AF_INET dump only: an AF_INET6 socket bound next to an IPv4 conn
// gets none of its datagrams (the kernel prefers an IPv4 socket for IPv4),
// so it is not looked for. An IPv6 conn that also receives IPv4 (the
// dual-stack wildcard, an IPv4-mapped address) loses IPv4 datagrams to an
// IPv4 socket on the port, so both dumps are made.
func (p joinProbe) families(laddr netip.AddrPort) []uint8 {
	a := laddr.Addr()
	switch {
	case p.family == unix.AF_INET:
		return []uint8{unix.AF_INET}
	case a.Is4In6() || a.IsUnspecified() && !p.v6only:
		return []uint8{unix.AF_INET6, unix.AF_INET}
	default:
		return []uint8{unix.AF_INET6}
	}
}

// joined returns the sockets on laddr's port, other than the conn's own,
// that could have joined it: from a sock_diag dump, or from /proc/net
// when sock_diag cannot answer.
func (p joinProbe) joined(laddr netip.AddrPort) ([]sockdiag.UDPSocket, error) {
	families := p.families(laddr)
	var derr error
	if p.cookiesOK {
		var socks []sockdiag.UDPSocket
		for _, f := range families {
			if socks, derr = dumpPort(socks, f, laddr.Port()); derr != nil {
				break
			}
		}
		if derr == nil {
			foreign, ok := p.sift(socks, func(s sockdiag.UDPSocket, i int) bool { return s.Cookie == p.cookies[i] })
			if ok {
				return foreign, nil
			}
			derr = errors.New("the sock_diag dump did not list the conn's own sockets")
		}
	} else {
		derr = errors.New("no SO_COOKIE on this kernel")
	}
	entries, err := procnet.UDP(procRoot)
	if err != nil {
		return nil, fmt.Errorf("sock_diag: %v; /proc/net: %w", derr, err)
	}
	var socks []sockdiag.UDPSocket
	for _, e := range entries {
		f := uint8(unix.AF_INET6)
		if e.Local.Addr().Is4() { // only /proc/net/udp, of AF_INET sockets, prints 4-byte addresses
			f = unix.AF_INET
		}
		if e.Local.Port() == laddr.Port() && (f == families[0] || len(families) > 1) {
			socks = append(socks, sockdiag.UDPSocket{Family: f, Local: e.Local, Inode: e.Inode})
		}
	}
	foreign, ok := p.sift(socks, func(s sockdiag.UDPSocket, i int) bool { return s.Inode == p.inodes[i] })
	if !ok {
		return nil, fmt.Errorf("sock_diag: %v; /proc/net does not list the conn's own sockets either (another network namespace?)", derr)
	}
	return foreign, nil
}

// sift finds the conn's two sockets among socks (ours(s, 0) for the old
// one, ours(s, 1) for the new one) and returns the others that could have
// joined their port. ok is false when either of the conn's sockets is
// missing: the list is then not the port's.
func (p joinProbe) sift(socks []sockdiag.UDPSocket, ours func(s sockdiag.UDPSocket, i int) bool) (foreign []sockdiag.UDPSocket, ok bool) {
	var own sockdiag.UDPSocket
	var found [2]bool
	for _, s := range socks {
		switch {
		case ours(s, 0):
			own, found[0] = s, true
		case ours(s, 1):
			found[1] = true
		}
	}
	if !found[0] || !found[1] {
		return nil, false
	}
	for _, s := range socks {
		if !ours(s, 0) && !ours(s, 1) && p.couldJoin(own, s) {
			foreign = append(foreign, s)
		}
	}
	return foreign, true
}

// couldJoin reports whether their socket can share the port of own, by
// the kernel's check at bind: the same address, or a wildcard covering the
// other (conflicts), unless they are bound to different devices or
// IPV6_V6ONLY keeps an IPv6 wildcard off IPv4. Where the list does not say
// (/proc/net shows neither devices nor IPV6_V6ONLY), the socket counts.
func (p joinProbe) couldJoin(own, their sockdiag.UDPSocket) bool {
	if own.Ifindex != 0 && their.Ifindex != 0 && own.Ifindex != their.Ifindex {
		return false
	}
	wildcard6 := func(a netip.Addr) bool { return a.Is6() && !a.Is4In6() && a.IsUnspecified() }
	ownAddr, theirAddr := own.Local.Addr(), their.Local.Addr()
	if p.v6only && wildcard6(ownAddr) && theirAddr.Unmap().Is4() ||
		their.V6Only && wildcard6(theirAddr) && ownAddr.Unmap().Is4() {
		return false
	}
	return conflicts(own.Local, their.Local)
}

// joinUnchecked is the error of a Rebind whose port could not be checked.
func (c *RebindingConn) joinUnchecked(err error) error {
	return fmt.Errorf("safeudp: rebind of %s %v: cannot check that no other socket joined the port during the bind; "+
		"the new socket is closed and the old socket stays in service (try again): %w", c.network, c.laddr, err)
}

// joinedError is the error of a Rebind during whose bind the foreign
// sockets joined the port. It names each, with what holds it.
func (c *RebindingConn) joinedError(foreign []sockdiag.UDPSocket) error {
	entries := make([]procnet.UDPEntry, len(foreign))
	for i, s := range foreign {
		entries[i] = procnet.UDPEntry{Local: s.Local, Inode: s.Inode}
	}
	hs := describe(entries, nil, c.laddr.String())
	var b strings.Builder
	for i, s := range foreign {
		if i > 0 {
			b.WriteString("; ")
		}
		if s.Inode == 0 {
			fmt.Fprintf(&b, "a socket being closed, bound to %v", s.Local)
			continue
		}
		fmt.Fprintf(&b, "socket inode %d bound to %v", s.Inode, s.Local)
		if s.Cookie != 0 { // from sock_diag, which gives the owner too
			fmt.Fprintf(&b, " (uid %d)", s.UID)
		}
		var mine []Holder
		for _, h := range hs {
			if h.Inode == s.Inode {
				h.asked = h.Addr // its address is printed already
				mine = append(mine, h)
			}
		}
		if len(mine) > 0 {
			b.WriteString(", held ")
			b.WriteString(joinHolders(mine))
		}
	}
	if c.lc.Logger != nil {
		c.lc.Logger.LogAttrs(context.Background(), slog.LevelWarn, "safeudp: a socket joined the port during a rebind",
			slog.String("network", c.network), slog.String("addr", c.laddr.String()), slog.String("joined", b.String()))
	}
	return fmt.Errorf("safeudp: rebind of %s %v: another socket joined the port during the bind, while SO_REUSEPORT was set for it: %s. "+
		"The new socket is closed and the old socket stays in service, sharing the port with it until it closes (where both are bound "+
		"to the same address, the kernel spreads the datagrams over them). A program of the same user binds this address with SO_REUSEPORT: "+
		"stop it, or set SO_REUSEPORT in the ListenConfig's Control if the port is meant to be shared: %w",
		c.network, c.laddr, b.String(), ErrHeldElsewhere)
}

// idOf reads the identity of uc's socket, for the look at the port.
func idOf(uc *UDPConn) socketID {
	var id socketID
	if rc := rawConnOf(uc); rc != nil {
		_ = rc.Control(func(fd uintptr) {
			id.cookie, _ = sockdiag.Cookie(int(fd))
			id.inode = sockdiag.Inode(int(fd))
		})
	}
	return id
}

// socketID is a socket's identity in the kernel's lists (0 where unknown).
type socketID struct{ cookie, inode uint64 }

// own returns a function that reports whether a socket with the given
// cookie or inode was one of the leftovers, or one being closed, when own
// was called.
func (l *leftoverSockets) own() func(cookie, inode uint64) bool {
	l.mu.Lock()
	ids := make([]socketID, 0, len(l.ids))
	for _, id := range l.ids {
		ids = append(ids, id)
	}
	l.mu.Unlock()
	return func(cookie, inode uint64) bool {
		for _, id := range ids {
			if cookie != 0 && id.cookie == cookie || inode != 0 && id.inode == inode {
				return true
			}
		}
		return false
	}
}
