package udptest

import (
	"net"
	"sync"
	"testing"
	"time"
)

// MakePacketPipe creates two conns, c1 and c2, each able to reach the
// other: a datagram that c1 writes to c2.LocalAddr() arrives at c2 from
// c1.LocalAddr(), and the reverse. stop tears the pipe down: it closes both
// conns and frees whatever else the pipe holds. It is called once per pipe,
// after the subtest or when the watchdog gives up on it; the subtest may
// have closed c1 or c2 already, so stop must accept that.
//
// The suite sends at most a few dozen small datagrams at a time and expects
// them all to arrive, as loopback UDP and unixgram sockets deliver them; a
// pipe that may lose datagrams at that rate fails it.
type MakePacketPipe func() (c1, c2 net.PacketConn, stop func(), err error)

// Bounds of the suite, variables so that the package's own tests of broken
// conns can run it faster.
var (
	// watchdogTimeout is how long a subtest may run before the watchdog
	// reports it and calls stop.
	watchdogTimeout = time.Minute

	// callTimeout bounds every call the suite expects to return: a call
	// still running after it is reported as hung.
	callTimeout = 10 * time.Second

	// blockedGrace is how long a call may run before the suite takes it
	// to be blocked and tests what unblocks it.
	blockedGrace = 50 * time.Millisecond
)

// TestPacketConn tests that the conns made by mp keep the contract of
// [net.PacketConn], with one subtest per property and a fresh pipe for each:
//
//   - BasicIO, SenderAddress: a datagram arrives whole, both ways, from the
//     sender's LocalAddr, and a reply to that address arrives;
//   - DatagramBoundaries, Truncation, ZeroLengthDatagram: each ReadFrom
//     returns one datagram, never two merged; a datagram larger than the
//     buffer is cut to it and the rest is discarded; an empty datagram is
//     one datagram;
//   - ConcurrentReadWrite, ConcurrentMethods: many goroutines reading,
//     writing and setting deadlines at once (run under -race to catch data
//     races);
//   - PastReadDeadline, PastWriteDeadline, FutureDeadline,
//     ReadDeadlineExpires, ClearedDeadline, DeadlineUnblocksBlockedRead:
//     deadlines, with timeouts that report Timeout() and wrap
//     os.ErrDeadlineExceeded;
//   - CloseUnblocksRead, CloseUnblocksWrite, CallsAfterClose, CloseTwice,
//     CloseConcurrently, LocalAddrAfterClose: after Close, a blocked call
//     returns and every call fails with an error wrapping net.ErrClosed; a
//     second Close returns (nil or net.ErrClosed, both accepted, as net's
//     conns return the latter); LocalAddr keeps its value.
//
// A watchdog reports a subtest that runs longer than a minute and calls
// stop to tear its pipe down; every call the suite expects to return is
// bounded (10 seconds) and reported by name if it hangs. A conn whose Close
// cannot unblock a call leaves that call's goroutine behind.
//
// The suite can miss bugs: passing it does not prove a conn correct, and
// the checks of a blocked call are best effort (a call still running 50 ms
// after it started is taken to be blocked, which it may not be yet). It
// gives no false alarms on a correct conn: every check is something the net
// package documents for net.PacketConn and that net's own UDP and unixgram
// conns do on loopback, and the project runs it against them.
func TestPacketConn(t *testing.T, mp MakePacketPipe) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, c1, c2 net.PacketConn)
	}{
		{"BasicIO", testBasicIO},
		{"SenderAddress", testSenderAddress},
		{"DatagramBoundaries", testDatagramBoundaries},
		{"Truncation", testTruncation},
		{"ZeroLengthDatagram", testZeroLengthDatagram},
		{"ConcurrentReadWrite", testConcurrentReadWrite},
		{"ConcurrentMethods", testConcurrentMethods},
		{"PastReadDeadline", testPastReadDeadline},
		{"PastWriteDeadline", testPastWriteDeadline},
		{"FutureDeadline", testFutureDeadline},
		{"ReadDeadlineExpires", testReadDeadlineExpires},
		{"ClearedDeadline", testClearedDeadline},
		{"DeadlineUnblocksBlockedRead", testDeadlineUnblocksBlockedRead},
		{"CloseUnblocksRead", testCloseUnblocksRead},
		{"CloseUnblocksWrite", testCloseUnblocksWrite},
		{"CallsAfterClose", testCallsAfterClose},
		{"CloseTwice", testCloseTwice},
		{"CloseConcurrently", testCloseConcurrently},
		{"LocalAddrAfterClose", testLocalAddrAfterClose},
	} {
		t.Run(tc.name, func(t *testing.T) {
			withPipe(t, mp, tc.fn)
		})
	}
}

// withPipe runs fn on a fresh pipe under the watchdog and stops the pipe
// afterwards.
func withPipe(t *testing.T, mp MakePacketPipe, fn func(t *testing.T, c1, c2 net.PacketConn)) {
	t.Helper()
	c1, c2, stop, err := mp()
	if err != nil {
		t.Fatalf("udptest: MakePacketPipe: %v", err)
	}
	var stopOnce sync.Once
	teardown := func() { stopOnce.Do(stop) }
	defer teardown()

	// The watchdog may not touch t once the subtest has returned: mu
	// orders its report before the return, and finished after it.
	var (
		mu       sync.Mutex
		finished bool
	)
	watchdog := time.AfterFunc(watchdogTimeout, func() {
		mu.Lock()
		if finished {
			mu.Unlock()
			return
		}
		t.Errorf("udptest: watchdog: %s still running after %v, a call on the conns never returned; calling stop to tear the pipe down",
			t.Name(), watchdogTimeout)
		mu.Unlock()
		teardown()
	})
	defer func() {
		watchdog.Stop()
		mu.Lock()
		finished = true
		mu.Unlock()
	}()
	fn(t, c1, c2)
}
