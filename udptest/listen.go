package udptest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/safeudp/safeudp"
)

// TB is the part of testing.TB that the helpers of this package use.
// *testing.T, *testing.B and *testing.F satisfy it.
type TB interface {
	// Helper marks the calling function as a test helper, so that
	// failures are reported at its caller's line, as testing.T.Helper.
	Helper()
	// Cleanup registers a function to run when the test ends, as
	// testing.T.Cleanup: last-in first-out.
	Cleanup(func())
	// Errorf reports a failure and lets the test go on, as
	// testing.T.Errorf.
	Errorf(format string, args ...any)
	// Fatalf reports a failure and stops the test, as testing.T.Fatalf:
	// it must be called from the goroutine running the test.
	Fatalf(format string, args ...any)
}

// Compile-time checks that the standard test types are accepted.
var (
	_ TB = (*testing.T)(nil)
	_ TB = (*testing.B)(nil)
	_ TB = (*testing.F)(nil)
)

// Listen returns a safeudp conn (see [safeudp.ListenPacket]) for network,
// bound on loopback to a free port: "udp" and "udp4" on 127.0.0.1:0, "udp6"
// on [::1]:0. For "unixgram" the socket is a file in a fresh temporary
// directory whose path fits the 108-byte limit of socket names.
//
// The conn is closed at t.Cleanup, and the test fails with whatever error
// that Close returns (on Linux, when the kernel still holds the socket,
// for example through a File copy or a child process that inherited the
// descriptor, the error names the holder). An error wrapping [net.ErrClosed]
// is not reported: it means the test closed the conn itself, and saw the
// outcome of that Close.
// The temporary directory of a unixgram socket is removed after the close;
// if anything is left in it, the test fails.
//
// If the socket cannot be created (for example no IPv6 on the host for
// "udp6"), Listen fails the test with t.Fatalf, so it must be called from
// the goroutine running the test. Listen panics for any other network.
func Listen(t TB, network string) net.PacketConn {
	t.Helper()
	address, dir := listenAddress(t, network)
	pc, err := safeudp.ListenPacket(network, address)
	if err != nil {
		if dir != "" {
			_ = os.Remove(dir)
		}
		t.Fatalf("udptest: Listen(%q) on %s: %v", network, address, err)
		return nil
	}
	// Cleanups run last-in first-out: the directory goes after the conn.
	if dir != "" {
		t.Cleanup(func() { removeSocketDir(t, dir) })
	}
	t.Cleanup(func() { closeAtCleanup(t, pc) })
	return pc
}

// Pair returns two conns from Listen on the same network, each able to
// reach the other: send with a.WriteTo(p, b.LocalAddr()) and the datagram
// arrives at b, from a.LocalAddr(), and the reverse. The conns are not
// connected (net's WriteTo refuses connected conns), so each also accepts
// datagrams from any other sender. Both are closed at t.Cleanup, as Listen
// documents.
func Pair(t TB, network string) (a, b net.PacketConn) {
	t.Helper()
	return Listen(t, network), Listen(t, network)
}

// listenAddress returns the loopback address to listen on and, for
// unixgram, the temporary directory holding the socket.
func listenAddress(t TB, network string) (address, dir string) {
	t.Helper()
	switch network {
	case "udp", "udp4":
		return "127.0.0.1:0", ""
	case "udp6":
		return "[::1]:0", ""
	case "unixgram":
		// t.TempDir paths carry the test name and easily pass the
		// 108-byte limit of a socket path; a short directory of our own
		// does not.
		dir, err := os.MkdirTemp("", "udptest")
		if err != nil {
			t.Fatalf("udptest: Listen(%q): temporary directory: %v", network, err)
		}
		return filepath.Join(dir, "s"), dir
	default:
		panic(fmt.Sprintf(`udptest: Listen of unsupported network %q: use "udp", "udp4", "udp6" or "unixgram"`, network))
	}
}

// closeAtCleanup closes pc and fails the test with any error but
// net.ErrClosed.
func closeAtCleanup(t TB, pc net.PacketConn) {
	t.Helper()
	err := pc.Close()
	if err == nil || errors.Is(err, net.ErrClosed) {
		return
	}
	t.Errorf("udptest: closing %s conn %v at the end of the test: %v\n"+
		"If something still holds the socket: close every File() copy and every conn made from it, "+
		"and wait for child processes that inherited it, before the test ends.",
		pc.LocalAddr().Network(), pc.LocalAddr(), err)
}

// removeSocketDir removes the directory that Listen made for a unixgram
// socket. safeudp's Close removed the socket file; anything left there was
// put by someone else, and is reported rather than deleted.
func removeSocketDir(t TB, dir string) {
	t.Helper()
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		left, _ := os.ReadDir(dir)
		names := make([]string, 0, len(left))
		for _, e := range left {
			names = append(names, e.Name())
		}
		t.Errorf("udptest: removing the unixgram socket directory %s: %v (left in it: %v); "+
			"the socket file should be gone once Close returns, so check that the conn was closed", dir, err, names)
	}
}
