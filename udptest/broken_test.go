package udptest

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The suite must catch a broken conn. Each test below runs TestPacketConn
// on a deliberately broken conn in a child process (the test binary run
// again, so that the expected failures do not fail this run) and checks
// that exactly the subtests that test the broken property failed.

// brokenChildEnv names the broken conn the child process runs the suite on.
const brokenChildEnv = "UDPTEST_BROKEN_CHILD"

// ignoresDeadlines accepts every deadline and honors none.
type ignoresDeadlines struct{ net.PacketConn }

func (ignoresDeadlines) SetDeadline(time.Time) error      { return nil }
func (ignoresDeadlines) SetReadDeadline(time.Time) error  { return nil }
func (ignoresDeadlines) SetWriteDeadline(time.Time) error { return nil }

// errGone is the error of wrongErrorAfterClose: it does not wrap
// net.ErrClosed.
var errGone = errors.New("broken: the conn is gone")

// wrongErrorAfterClose fails every call after Close with errGone.
type wrongErrorAfterClose struct {
	net.PacketConn
	closed atomic.Bool // set by the first Close
}

func (c *wrongErrorAfterClose) gone(err error) error {
	if err != nil && c.closed.Load() {
		return errGone
	}
	return err
}

func (c *wrongErrorAfterClose) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(b)
	return n, addr, c.gone(err)
}

func (c *wrongErrorAfterClose) WriteTo(b []byte, addr net.Addr) (int, error) {
	n, err := c.PacketConn.WriteTo(b, addr)
	return n, c.gone(err)
}

func (c *wrongErrorAfterClose) SetDeadline(t time.Time) error {
	return c.gone(c.PacketConn.SetDeadline(t))
}

func (c *wrongErrorAfterClose) SetReadDeadline(t time.Time) error {
	return c.gone(c.PacketConn.SetReadDeadline(t))
}

func (c *wrongErrorAfterClose) SetWriteDeadline(t time.Time) error {
	return c.gone(c.PacketConn.SetWriteDeadline(t))
}

func (c *wrongErrorAfterClose) Close() error {
	c.closed.Store(true)
	return c.gone(c.PacketConn.Close())
}

// closeLeavesReadBlocked refuses calls after Close with net.ErrClosed, as
// it should, but its Close never reaches the socket, so a ReadFrom that is
// already blocked stays blocked. The pipe's stop closes the socket.
type closeLeavesReadBlocked struct {
	net.PacketConn
	closed atomic.Bool // set by the first Close
}

func (c *closeLeavesReadBlocked) errClosed(op string) error {
	return &net.OpError{Op: op, Net: "udp", Err: net.ErrClosed}
}

func (c *closeLeavesReadBlocked) ReadFrom(b []byte) (int, net.Addr, error) {
	if c.closed.Load() {
		return 0, nil, c.errClosed("read")
	}
	return c.PacketConn.ReadFrom(b)
}

func (c *closeLeavesReadBlocked) WriteTo(b []byte, addr net.Addr) (int, error) {
	if c.closed.Load() {
		return 0, c.errClosed("write")
	}
	return c.PacketConn.WriteTo(b, addr)
}

func (c *closeLeavesReadBlocked) SetDeadline(t time.Time) error {
	if c.closed.Load() {
		return c.errClosed("set")
	}
	return c.PacketConn.SetDeadline(t)
}

func (c *closeLeavesReadBlocked) SetReadDeadline(t time.Time) error {
	if c.closed.Load() {
		return c.errClosed("set")
	}
	return c.PacketConn.SetReadDeadline(t)
}

func (c *closeLeavesReadBlocked) SetWriteDeadline(t time.Time) error {
	if c.closed.Load() {
		return c.errClosed("set")
	}
	return c.PacketConn.SetWriteDeadline(t)
}

func (c *closeLeavesReadBlocked) Close() error {
	if c.closed.Swap(true) {
		return c.errClosed("close")
	}
	return nil
}

// writeSucceedsAfterClose closes its socket, but a WriteTo after Close
// pretends to succeed without touching it: a loop that writes until a
// write fails never ends.
type writeSucceedsAfterClose struct {
	net.PacketConn
	closed atomic.Bool // set by the first Close
}

func (c *writeSucceedsAfterClose) WriteTo(b []byte, addr net.Addr) (int, error) {
	if c.closed.Load() {
		return len(b), nil
	}
	n, err := c.PacketConn.WriteTo(b, addr)
	if err != nil && c.closed.Load() {
		// Close ran during the write: hide its error too, so that the
		// conn is broken the same way whatever the interleaving.
		return len(b), nil
	}
	return n, err
}

func (c *writeSucceedsAfterClose) Close() error {
	c.closed.Store(true)
	return c.PacketConn.Close()
}

// reportsOwnAddress returns its own LocalAddr as the sender of every
// datagram it reads, mixing up the two ends.
type reportsOwnAddress struct{ net.PacketConn }

func (c reportsOwnAddress) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(b)
	if err == nil {
		addr = c.LocalAddr()
	}
	return n, addr, err
}

// brokenPipe makes a udp4 loopback pipe whose conns are wrapped by wrap;
// its stop closes the sockets underneath.
func brokenPipe(wrap func(net.PacketConn) net.PacketConn) MakePacketPipe {
	return func() (c1, c2 net.PacketConn, stop func(), err error) {
		u1, u2, stopNet, err := ListenPipe("udp4", net.ListenPacket)()
		if err != nil {
			return nil, nil, nil, err
		}
		return wrap(u1), wrap(u2), stopNet, nil
	}
}

var brokenPipes = map[string]MakePacketPipe{
	"ignores-deadlines": brokenPipe(func(pc net.PacketConn) net.PacketConn { return ignoresDeadlines{pc} }),
	"wrong-error-after-close": brokenPipe(func(pc net.PacketConn) net.PacketConn {
		return &wrongErrorAfterClose{PacketConn: pc}
	}),
	"close-leaves-read-blocked": brokenPipe(func(pc net.PacketConn) net.PacketConn {
		return &closeLeavesReadBlocked{PacketConn: pc}
	}),
	"write-succeeds-after-close": brokenPipe(func(pc net.PacketConn) net.PacketConn {
		return &writeSucceedsAfterClose{PacketConn: pc}
	}),
	"reports-own-address": brokenPipe(func(pc net.PacketConn) net.PacketConn { return reportsOwnAddress{pc} }),
}

// TestBrokenConnChild runs the suite on the broken conn named by
// UDPTEST_BROKEN_CHILD; it runs only as the child of the tests below.
// Whatever the conn, once every pipe is stopped no call the suite started
// may still be running: the last subtest, Leftovers, checks that.
func TestBrokenConnChild(t *testing.T) {
	kind := os.Getenv(brokenChildEnv)
	if kind == "" {
		t.Skip("runs only as a child process of TestPacketConnReports*")
	}
	if kind == "hangs" {
		// A subtest that blocks outside the suite's bounded calls: only
		// the watchdog can end it.
		watchdogTimeout = 200 * time.Millisecond
		t.Run("Hang", func(t *testing.T) {
			withPipe(t, ListenPipe("udp4", net.ListenPacket), func(t *testing.T, c1, c2 net.PacketConn) {
				_, _, err := c1.ReadFrom(make([]byte, 1))
				t.Logf("the hung ReadFrom returned %v", err)
			})
		})
	} else {
		mp, ok := brokenPipes[kind]
		require.True(t, ok, "unknown broken conn %q", kind)
		// The hung calls of a broken conn are bounded; a short bound
		// keeps the child fast, as loopback I/O answers in
		// microseconds. A longer grace than the default makes sure that
		// a call has reached the broken conn before the suite closes
		// it, even on a busy machine.
		callTimeout = 500 * time.Millisecond
		blockedGrace = 100 * time.Millisecond
		TestPacketConn(t, mp)
	}
	t.Run("Leftovers", func(t *testing.T) { VerifyNone(t) })
}

var failedSubtest = regexp.MustCompile(`--- FAIL: TestBrokenConnChild/(\w+)`)

// runBrokenChild runs the suite on a broken conn in a child process and
// returns the names of the subtests that failed, and the output.
func runBrokenChild(t *testing.T, kind string) ([]string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestBrokenConnChild$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), brokenChildEnv+"="+kind)
	out, err := cmd.CombinedOutput()
	require.NoError(t, ctx.Err(), "the child run did not end within a minute:\n%s", out)
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "the child run on a broken conn (%s) should fail:\n%s", kind, out)
	var failed []string
	for _, m := range failedSubtest.FindAllStringSubmatch(string(out), -1) {
		failed = append(failed, m[1])
	}
	sort.Strings(failed)
	return failed, string(out)
}

func TestPacketConnReportsIgnoredDeadlines(t *testing.T) {
	t.Parallel()
	failed, out := runBrokenChild(t, "ignores-deadlines")
	// CallsAfterClose too: its deadline setters succeed after Close.
	assert.Equal(t, []string{
		"CallsAfterClose",
		"ClearedDeadline",
		"DeadlineUnblocksBlockedRead",
		"PastReadDeadline",
		"PastWriteDeadline",
		"ReadDeadlineExpires",
	}, failed, "output:\n%s", out)
	assert.Contains(t, out, "did not return within")
	assert.Contains(t, out, "WriteTo with a past write deadline succeeded; want a timeout")
}

func TestPacketConnReportsWrongErrorAfterClose(t *testing.T) {
	t.Parallel()
	failed, out := runBrokenChild(t, "wrong-error-after-close")
	assert.Equal(t, []string{
		"CallsAfterClose",
		"CloseConcurrently",
		"CloseTwice",
		"CloseUnblocksRead",
		"CloseUnblocksWrite",
	}, failed, "output:\n%s", out)
	assert.Contains(t, out, "which does not wrap net.ErrClosed")
}

func TestPacketConnReportsCloseThatLeavesReadBlocked(t *testing.T) {
	t.Parallel()
	failed, out := runBrokenChild(t, "close-leaves-read-blocked")
	assert.Equal(t, []string{"CloseUnblocksRead"}, failed, "output:\n%s", out)
	assert.Contains(t, out, "ReadFrom blocked when Close was called (Close must unblock it) did not return within")
}

func TestPacketConnWatchdogTearsDownAHungSubtest(t *testing.T) {
	t.Parallel()
	failed, out := runBrokenChild(t, "hangs")
	assert.Equal(t, []string{"Hang"}, failed, "output:\n%s", out)
	assert.Contains(t, out, "watchdog: TestBrokenConnChild/Hang still running after 200ms")
	assert.Contains(t, out, "the hung ReadFrom returned", "stop unblocks the hung call")
}

func TestPacketConnReportsAWriteThatSucceedsAfterClose(t *testing.T) {
	t.Parallel()
	failed, out := runBrokenChild(t, "write-succeeds-after-close")
	assert.Equal(t, []string{"CallsAfterClose", "CloseUnblocksWrite"}, failed, "output:\n%s", out)
	assert.Contains(t, out, "WriteTo that started after Close had returned succeeded")
}

func TestPacketConnReportsAWrongSenderAddress(t *testing.T) {
	t.Parallel()
	failed, out := runBrokenChild(t, "reports-own-address")
	assert.Equal(t, []string{
		"BasicIO",
		"ClearedDeadline",
		"ConcurrentMethods",
		"FutureDeadline",
		"SenderAddress",
		"ZeroLengthDatagram",
	}, failed, "output:\n%s", out)
	assert.Contains(t, out, "ReadFrom returned the sender address")
}
