package safeudp

import (
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// canOverlap: Linux lets the new socket of a RebindingConn bind next to the
// old one (SO_REUSEPORT, same user), and lets the old one be taken out of
// the kernel's delivery by connecting it.
const canOverlap = true

// Flags of a datagram truncated on the way to a read.
const (
	msgTrunc  = unix.MSG_TRUNC
	msgCtrunc = unix.MSG_CTRUNC
)

// drainOOBSize is how much out-of-band data is kept for a datagram taken
// off a replaced socket.
const drainOOBSize = 1024

// drainMax bounds one drain. The old socket is connected to its own address
// when it is drained, so nothing but a datagram the conn sends to itself
// refills its queue; the bound only guards against that.
const drainMax = 1 << 20

// drainErrMax bounds the errors a drain reads past in a row. An error
// other than EAGAIN (a pending ICMP error, reported once by the next read)
// does not mean that the queue is empty; one that repeats means the
// socket cannot be read at all.
const drainErrMax = 16

// overlapControl runs the user's Control, if any, then sets SO_REUSEPORT,
// so that the new socket of a RebindingConn can join the old one's
// address. The conn clears the option again right after the bind (see
// allowJoin).
func overlapControl(user func(network, address string, c syscall.RawConn) error) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, c syscall.RawConn) error {
		if user != nil {
			if err := user(network, address, c); err != nil {
				return err
			}
		}
		return setReuseport(c, true)
	}
}

// setReuseport sets or clears SO_REUSEPORT on the socket of rc.
func setReuseport(rc syscall.RawConn, on bool) error {
	v := 0
	if on {
		v = 1
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, v)
	}); err != nil {
		return err
	}
	if serr != nil {
		return os.NewSyscallError("setsockopt SO_REUSEPORT", serr)
	}
	return nil
}

// reuseportSet reports whether SO_REUSEPORT is set on pc's socket.
func reuseportSet(pc net.PacketConn) bool {
	rc := rawConnOf(pc)
	if rc == nil {
		return false
	}
	v := 0
	_ = rc.Control(func(fd uintptr) {
		v, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT)
	})
	return v == 1
}

// stopReceiving connects uc to its own address. In a SO_REUSEPORT group
// with connected members, the kernel delivers a datagram to a connected
// socket only if it comes from that socket's peer, so from then on every
// datagram goes to the unconnected new socket, except one sent from the
// conn's own address to itself. What uc had queued stays queued.
func stopReceiving(uc *UDPConn, laddr net.Addr) error {
	a, ok := laddr.(*net.UDPAddr)
	if !ok {
		return nil
	}
	var sa unix.Sockaddr
	if ip4 := a.IP.To4(); ip4 != nil && len(a.IP) == net.IPv4len {
		if ip4.IsUnspecified() {
			ip4 = net.IPv4(127, 0, 0, 1).To4()
		}
		sa = &unix.SockaddrInet4{Port: a.Port, Addr: [4]byte(ip4)}
	} else {
		ip := a.IP
		if ip.IsUnspecified() {
			ip = net.IPv6loopback
		}
		s6 := &unix.SockaddrInet6{Port: a.Port, Addr: [16]byte(ip.To16())}
		if a.Zone != "" {
			if ifi, err := net.InterfaceByName(a.Zone); err == nil {
				s6.ZoneId = uint32(ifi.Index)
			} else if n, err := strconv.Atoi(a.Zone); err == nil {
				s6.ZoneId = uint32(n)
			}
		}
		sa = s6
	}
	rc := rawConnOf(uc)
	if rc == nil {
		return net.ErrClosed
	}
	var cerr error
	if err := rc.Control(func(fd uintptr) { cerr = unix.Connect(int(fd), sa) }); err != nil {
		return err
	}
	if cerr != nil {
		return &net.OpError{Op: "connect", Net: uc.network, Source: laddr, Addr: laddr, Err: os.NewSyscallError("connect", cerr)}
	}
	return nil
}

// drainQueued reads, without blocking, every datagram queued on uc and
// passes each to push, oldest first. Each datagram is first peeked at for
// its length, so an empty queue costs one system call and no allocation.
// It stops at EAGAIN (the queue is empty); past any other error (a pending
// ICMP error is reported once, ahead of the queue) it carries on, up to
// drainErrMax errors in a row.
func drainQueued(uc *UDPConn, push func(b, oob []byte, flags int, from netip.AddrPort)) {
	rc := rawConnOf(uc)
	if rc == nil {
		return
	}
	var peek [1]byte
	var oob []byte
	_ = rc.Control(func(fd uintptr) {
		errs := 0
		for range drainMax {
			// With MSG_TRUNC, a datagram socket returns the datagram's
			// full length, whatever the buffer's.
			n, _, err := unix.Recvfrom(int(fd), peek[:], unix.MSG_PEEK|unix.MSG_TRUNC|unix.MSG_DONTWAIT)
			if err == nil {
				if oob == nil {
					oob = make([]byte, drainOOBSize)
				}
				b := make([]byte, max(n, 1))
				var oobn, flags int
				var from unix.Sockaddr
				n, oobn, flags, from, err = unix.Recvmsg(int(fd), b, oob, unix.MSG_DONTWAIT)
				if err == nil {
					errs = 0
					push(b[:n], append([]byte(nil), oob[:oobn]...), flags, sockaddrToAddrPort(from))
					continue
				}
			}
			switch {
			case err == unix.EAGAIN || err == unix.EWOULDBLOCK:
				return // the queue is empty
			case err == unix.EINTR:
			default:
				if errs++; errs >= drainErrMax {
					return
				}
			}
		}
	})
}

// sockaddrToAddrPort converts a sender's address as net's ReadFromUDPAddrPort
// does: an IPv4 sender on an IPv6 socket stays IPv4-mapped.
func sockaddrToAddrPort(sa unix.Sockaddr) netip.AddrPort {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *unix.SockaddrInet6:
		ip := netip.AddrFrom16(a.Addr)
		if a.ZoneId != 0 {
			zone := strconv.Itoa(int(a.ZoneId))
			if ifi, err := net.InterfaceByIndex(int(a.ZoneId)); err == nil {
				zone = ifi.Name
			}
			ip = ip.WithZone(zone)
		}
		return netip.AddrPortFrom(ip, uint16(a.Port))
	}
	return netip.AddrPort{}
}

// hasQueued reports whether a datagram (or a pending error) is queued on
// uc, without reading it.
func hasQueued(uc *UDPConn) bool {
	rc := rawConnOf(uc)
	if rc == nil {
		return false
	}
	queued := false
	var peek [1]byte
	_ = rc.Control(func(fd uintptr) {
		_, _, err := unix.Recvfrom(int(fd), peek[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		queued = err != unix.EAGAIN && err != unix.EWOULDBLOCK
	})
	return queued
}
