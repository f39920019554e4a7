//go:build unix

package udptest

import (
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// probeBind binds a UDP socket to addr and closes it, all with
// syscall.ForkLock held for reading. Go's fork (syscall.ForkExec, so
// os/exec) holds ForkLock for writing around the fork, so no child is
// forked while the probe is open and none can carry a copy of it past
// its close. The lock must cover the whole life of the socket, not only
// its creation: close-on-exec acts only when the child execs, and a
// child forked with the probe open would hold the port until then. The
// probe is close-on-exec as well, against forks that take no ForkLock
// (C code). Nothing in between blocks: socket, bind and close of a UDP
// socket return at once.
func probeBind(network string, addr *net.UDPAddr) error {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	var family int
	var sa unix.Sockaddr
	if ip4 := addr.IP.To4(); network == "udp4" && ip4 != nil {
		family, sa = unix.AF_INET, &unix.SockaddrInet4{Port: addr.Port, Addr: [4]byte(ip4)}
	} else {
		family, sa = unix.AF_INET6, &unix.SockaddrInet6{Port: addr.Port, Addr: [16]byte(addr.IP.To16())}
	}
	fd, err := cloexecSocket(family)
	if err != nil {
		return &net.OpError{Op: "listen", Net: network, Addr: addr, Err: os.NewSyscallError("socket", err)}
	}
	if family == unix.AF_INET6 {
		// As net opens "udp6": IPv6 only.
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
	}
	err = unix.Bind(fd, sa)
	if cerr := unix.Close(fd); err == nil && cerr != nil {
		return &net.OpError{Op: "close", Net: network, Addr: addr, Err: os.NewSyscallError("close", cerr)}
	}
	if err != nil {
		return &net.OpError{Op: "listen", Net: network, Addr: addr, Err: os.NewSyscallError("bind", err)}
	}
	return nil
}

// plainBind binds addr as net.ListenUDP does and closes it again, with
// ForkLock held for reading for the reason given at probeBind. Where net
// itself takes ForkLock to create a socket (netTakesForkLock), taking it
// here too would be a recursive read lock, which deadlocks against a fork
// waiting for the write lock: there the probe (close-on-exec, IPv6-only
// for "udp6", as net makes its sockets) is all the check there is.
func plainBind(network string, addr *net.UDPAddr) error {
	if netTakesForkLock {
		return nil
	}
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	pc, err := net.ListenUDP(network, addr)
	if err != nil {
		return err
	}
	return pc.Close()
}
