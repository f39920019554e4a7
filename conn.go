package safeudp

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"syscall"
)

// Wrap takes ownership of pc and returns a conn whose Close drains every
// call made through it: closing the returned conn closes pc. Use the
// returned conn, not pc, from then on; calls made on pc directly are not
// tracked.
//
// A [*net.UDPConn] comes back as a [*UDPConn], a [*net.UnixConn] as a [*UnixConn]
// (its socket file, which safeudp did not create, is never removed), and
// any other conn as a [*PacketConn], which has only the methods of
// [net.PacketConn] plus Shutdown and InFlight: optional-interface assertions
// on it answer truthfully. A conn that safeudp already returned comes back
// unchanged. Wrap panics if pc is nil.
func Wrap(pc net.PacketConn) net.PacketConn {
	return wrap(pc, "", callerPC(2), nil)
}

// wrap builds the conn type for pc. network is the one pc was opened on
// (net names it in errors), or "" to take it from pc's address.
func wrap(pc net.PacketConn, network string, opened uintptr, lc *ListenConfig) net.PacketConn {
	switch p := pc.(type) {
	case nil:
		panic("safeudp: Wrap of a nil net.PacketConn")
	case Conn:
		return pc
	case *net.UDPConn:
		if p == nil {
			panic("safeudp: Wrap of a nil *net.UDPConn")
		}
		c := &UDPConn{uc: p}
		c.core.init(p, network, opened, lc)
		return c
	case *net.UnixConn:
		if p == nil {
			panic("safeudp: Wrap of a nil *net.UnixConn")
		}
		c := &UnixConn{uc: p}
		c.core.init(p, network, opened, lc)
		return c
	default:
		c := &PacketConn{}
		c.core.init(pc, network, opened, lc)
		return c
	}
}

// Conn is what every conn returned by this package has beyond
// [net.PacketConn].
//
// Conn is sealed (it has an unexported method): a value of type Conn is a
// conn of this package, with its Close guarantee, and [Wrap] and [Rebind]
// rely on that to recognise one. A type of your own that wraps a safeudp
// conn should not be taken for one; to accept both, declare the interface
// you need, which every conn of this package satisfies:
//
//	type shutdowner interface {
//		net.PacketConn
//		Shutdown(ctx context.Context) error
//	}
type Conn interface {
	net.PacketConn

	// Shutdown is Close bounded by ctx.
	Shutdown(ctx context.Context) error

	// InFlight returns the number of calls running on the conn.
	InFlight() int

	isSafeUDP()
}

// Compile-time checks that each conn type keeps its promises.
var (
	_ Conn = (*UDPConn)(nil)
	_ Conn = (*UnixConn)(nil)
	_ Conn = (*PacketConn)(nil)
)

// PacketConn is a [net.PacketConn] taken over by [Wrap] whose concrete type
// safeudp does not know. It has the methods of net.PacketConn, Shutdown
// and InFlight, and nothing else, whatever the wrapped conn has.
//
// Multiple goroutines may invoke methods on a PacketConn simultaneously.
// Close and Shutdown behave as documented on [UDPConn].
type PacketConn struct {
	core
}

// core is what the conn types over one socket share: the owned conn, its

// coreOf returns the lifecycle of a conn that wrap returned.
func coreOf(pc net.PacketConn) *core {
	switch c := pc.(type) {
	case *UDPConn:
		return &c.core
	case *UnixConn:
		return &c.core
	case *PacketConn:
		return &c.core
	}
	panic(fmt.Sprintf("safeudp: unexpected conn type %T", pc))
}

// rawConnOf returns the raw conn of pc's socket, or nil. For a conn of
// this package it is the socket's own, untracked: it serves a look at the
// socket that ends before pc is closed, and keeps the socket unexposed, so
// that Close keeps its fast path (see prepareRelease).
func rawConnOf(pc net.PacketConn) syscall.RawConn {
	var sc syscall.Conn
	switch c := pc.(type) {
	case *UDPConn:
		sc = c.uc
	case *UnixConn:
		sc = c.uc
	case syscall.Conn:
		sc = c
	default:
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// callerPC returns the program counter of the caller skip frames up, cheaply:
// it is resolved to a file:line only when a report needs it.
func callerPC(skip int) uintptr {
	var pcs [1]uintptr
	if runtime.Callers(skip+1, pcs[:]) == 0 {
		return 0
	}
	return pcs[0]
}

// openedAt returns file:line of the code that opened or wrapped the conn.
func (c *core) openedAt() string { return pcString(c.opened) }

// pcString returns file:line of a PC recorded by callerPC.
func pcString(pc uintptr) string {
	if pc == 0 {
		return "unknown"
	}
	frame, _ := runtime.CallersFrames([]uintptr{pc}).Next()
	return fmt.Sprintf("%s:%d", shortFile(frame.File), frame.Line)
}

// shortFile keeps the last directory and the file name.
func shortFile(path string) string {
	slash := 0
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '/' {
			slash++
			if slash == 2 {
				return path[i+1:]
			}
		}
	}
	return path
}
