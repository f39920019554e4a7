package sockdiag

import (
	"errors"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// A kernel without the diag module for a family answers ENOENT to every
// lookup, which would pass for "the socket is gone". So before a Key of a
// family is used, Works looks up a socket that certainly exists.

// Probe answers, per family.
const (
	unknown uint32 = iota // not probed yet, or the last probe could not be made
	works                 // a lookup found a socket that exists
	broken                // the kernel answered, and not with that socket
)

// probe holds the answer for each family (AF_INET, AF_INET6, AF_UNIX).
// Only an answer of the kernel is kept: a probe that could not be made
// (EMFILE, ENOBUFS: the process or the machine is short of something for
// a moment) leaves the family unknown, and the next Works probes again.
var probe struct {
	mu                sync.Mutex    // serializes probes; the answers are read without it
	inet, inet6, unix atomic.Uint32 // unknown, works or broken
}

// Works reports whether sock_diag finds sockets of family on this kernel.
// Once the kernel has answered, the answer is kept for the life of the
// process and costs one atomic load; until then each call probes.
func Works(family uint8) bool {
	answer := probeAnswer(family)
	if answer == nil {
		return false
	}
	if v := answer.Load(); v != unknown {
		return v == works
	}
	probe.mu.Lock()
	defer probe.mu.Unlock()
	if v := answer.Load(); v != unknown { // another caller probed meanwhile
		return v == works
	}
	var v uint32
	inProcessNetns(func() { v = probeFamily(int(family)) })
	answer.Store(v)
	return v == works
}

// probeAnswer returns where the answer for family is kept, or nil for a
// family sock_diag is not used for.
func probeAnswer(family uint8) *atomic.Uint32 {
	switch family {
	case unix.AF_INET:
		return &probe.inet
	case unix.AF_INET6:
		return &probe.inet6
	case unix.AF_UNIX:
		return &probe.unix
	}
	return nil
}

// probeFamily opens a throwaway socket of family (UDP on loopback, or an
// autobound abstract unix datagram socket) and looks it up. It returns
// unknown when the probe could not be made for a reason that may pass.
func probeFamily(family int) uint32 {
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return final(err)
	}
	defer unix.Close(fd)
	var sa unix.Sockaddr
	switch family {
	case unix.AF_INET:
		sa = &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}
	case unix.AF_INET6:
		sa = &unix.SockaddrInet6{Addr: [16]byte{15: 1}}
	default:
		sa = &unix.SockaddrUnix{} // autobind to an abstract name
	}
	if err := unix.Bind(fd, sa); err != nil {
		return final(err)
	}
	k, _, ok := keyOf(fd, false, false)
	if !ok {
		return broken // no cookie: this kernel cannot make exact lookups
	}
	found, _, err := k.Lookup(Inode(fd))
	switch {
	case err == nil && found:
		return works
	case err == nil, errors.Is(err, ErrUnsupported):
		return broken // the kernel answered: it does not find the socket
	default:
		return final(err)
	}
}

// final says whether a failed probe step is the kernel's answer (no such
// family, no netlink, no loopback address) or a shortage that may pass.
func final(err error) uint32 {
	switch {
	case errors.Is(err, unix.EMFILE), errors.Is(err, unix.ENFILE), errors.Is(err, unix.ENOBUFS),
		errors.Is(err, unix.ENOMEM), errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
		return unknown
	}
	return broken
}
