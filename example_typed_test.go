package safeudp_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/safeudp/safeudp"
)

// ListenUDP returns the *safeudp.UDPConn itself, as net.ListenUDP returns a
// *net.UDPConn: Shutdown, ReadFromUDP and the rest need no type assertion.
// A nil or port-0 address gets a port chosen by the system.
func ExampleListenUDP() {
	c, err := safeudp.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = c.WriteToUDP([]byte("to myself"), c.LocalAddr().(*net.UDPAddr))
	if err != nil {
		fmt.Println(err)
		return
	}
	buf := make([]byte, 64)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := c.ReadFromUDP(buf)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(buf[:n]))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fmt.Println("shutdown:", c.Shutdown(ctx))
	// Output:
	// to myself
	// shutdown: <nil>
}

// A client that reconnects from a fixed local port: DialUDP binds and
// connects in one step, and after Close the same local port can be dialed
// from again at once, even while child processes are being started (a
// child between fork and exec holds a copy of every descriptor).
func ExampleDialUDP() {
	server, err := safeudp.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer server.Close()
	raddr := server.LocalAddr().(*net.UDPAddr)

	// A fixed local port (taken from a first dial here; a real client
	// would have one configured).
	first, err := safeudp.DialUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}, raddr)
	if err != nil {
		fmt.Println(err)
		return
	}
	laddr := first.LocalAddr().(*net.UDPAddr)
	_ = first.Close()

	for attempt := 1; attempt <= 3; attempt++ {
		c, err := safeudp.DialUDP("udp4", laddr, raddr)
		if err != nil {
			fmt.Println(err) // an *AddrInUseError naming the holder, if one stays
			return
		}
		if _, err := c.Write([]byte("hello")); err != nil {
			fmt.Println(err)
		}
		if err := c.Close(); err != nil {
			fmt.Println(err)
		}
	}
	buf := make([]byte, 64)
	for range 3 {
		_ = server.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, from, err := server.ReadFromUDP(buf)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(string(buf[:n]), "from the same port:", from.Port == laddr.Port)
	}
	// Output:
	// hello from the same port: true
	// hello from the same port: true
	// hello from the same port: true
}

// ListenConfig.DialUDP is DialUDP with the options: Control, Logger and
// ReleaseTimeout. Rebind of the conn binds the same local port and
// connects it to the same peer again.
func ExampleListenConfig_DialUDP() {
	server, err := safeudp.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer server.Close()

	lc := safeudp.ListenConfig{ReleaseTimeout: 2 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := lc.DialUDP(ctx, "udp4", nil, server.LocalAddr().(*net.UDPAddr))
	if err != nil {
		fmt.Println(err)
		return
	}
	pc, err := safeudp.Rebind(ctx, c)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pc.Close()
	rebound := pc.(*safeudp.UDPConn)
	fmt.Println("same local address:", rebound.LocalAddr().String() == c.LocalAddr().String())
	fmt.Println("same peer:", rebound.RemoteAddr().String() == server.LocalAddr().String())
	// Output:
	// same local address: true
	// same peer: true
}

// A later Close of a conn that a library closed first (dropping the
// error) still reports the outcome: it wraps net.ErrClosed and, when the
// release failed, the *ReleaseError too. Here nothing held the socket, so
// the later Close is a plain second Close.
func ExampleUDPConn_Close() {
	c, err := safeudp.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = c.Close() // the library's Close, its error dropped
	err = c.Close()
	fmt.Println(errors.Is(err, net.ErrClosed), errors.Is(err, safeudp.ErrNotReleased))
	// Output: true false
}
