package safeudp_test

import (
	"context"
	"errors"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/safeudp/safeudp"
)

// TestNoCallStartsAfterCloseReturned hammers a wrapped conn with writes
// from several goroutines while it closes, many times over, and checks
// that no call reached the underlying conn once Close had returned.
func TestNoCallStartsAfterCloseReturned(t *testing.T) {
	const rounds, writers = 300, 4
	for round := range rounds {
		inner := &entryCountingConn{PacketConn: rawUDP(t)}
		c := safeudp.Wrap(inner)
		to := inner.LocalAddr()
		var wg sync.WaitGroup
		for range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 10_000; i++ { // bounded; ends at the first refusal
					if _, err := c.WriteTo([]byte{1}, to); errors.Is(err, net.ErrClosed) {
						return
					}
				}
			}()
		}
		runtime.Gosched()
		require.NoError(t, c.Close())
		inner.closeReturned.Store(true)
		wg.Wait()
		require.Zero(t, inner.lateEntries.Load(), "round %d: a call entered the conn after Close returned", round)
	}
}

// entryCountingConn counts calls that enter it after closeReturned is set.
type entryCountingConn struct {
	net.PacketConn
	closeReturned atomic.Bool
	lateEntries   atomic.Int64
}

func (e *entryCountingConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if e.closeReturned.Load() {
		e.lateEntries.Add(1)
	}
	return e.PacketConn.WriteTo(b, addr)
}

// TestDeadlineCannotBeRearmedDuringClose holds a SetReadDeadline inside the
// wrapped conn while Close pushes the deadline into the past, then lets it
// write its future deadline: the last deadline the conn sees must still be
// in the past, or a reader of a conn whose Close does not unblock would
// hang (miekg/dns#756).
func TestDeadlineCannotBeRearmedDuringClose(t *testing.T) {
	inner := &deadlineRecordingConn{PacketConn: rawUDP(t), gate: make(chan struct{}), entered: make(chan struct{})}
	c := safeudp.Wrap(inner)
	setErr := make(chan error, 1)
	go func() { setErr <- c.SetReadDeadline(time.Now().Add(time.Hour)) }()
	select {
	case <-inner.entered:
	case <-time.After(bound):
		t.Fatal("SetReadDeadline did not reach the conn")
	}
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	require.Eventually(t, inner.pushedPast.Load, bound, time.Millisecond, "Close pushed the deadline into the past")
	close(inner.gate) // the held SetReadDeadline now writes its future deadline
	require.NoError(t, <-setErr)
	require.NoError(t, safeudp.Await(t, closed, "Close"))
	last := inner.last()
	assert.True(t, last.Before(time.Now()), "the last read deadline written is %v, in the future: re-armed during Close", last)
}

// deadlineRecordingConn records every deadline written; the first future
// SetReadDeadline waits for gate before it writes.
type deadlineRecordingConn struct {
	net.PacketConn
	gate       chan struct{}
	entered    chan struct{}
	pushedPast atomic.Bool
	mu         sync.Mutex // guards deadline and held
	deadline   time.Time
	held       bool
}

func (d *deadlineRecordingConn) record(t time.Time) {
	d.mu.Lock()
	d.deadline = t
	d.mu.Unlock()
	if t.Before(time.Now()) {
		d.pushedPast.Store(true)
	}
}

func (d *deadlineRecordingConn) last() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.deadline
}

func (d *deadlineRecordingConn) SetDeadline(t time.Time) error {
	d.record(t)
	return nil
}

func (d *deadlineRecordingConn) SetReadDeadline(t time.Time) error {
	d.mu.Lock()
	hold := !d.held && t.After(time.Now())
	d.held = d.held || hold
	d.mu.Unlock()
	if hold {
		close(d.entered)
		<-d.gate
	}
	d.record(t)
	return nil
}

func TestCloseReportsTheUnderlyingCloseError(t *testing.T) {
	boom := errors.New("boom")
	uc := rawUDP(t)
	c := safeudp.Wrap(&failingCloseConn{PacketConn: uc, err: boom})
	err := c.Close()
	require.ErrorIs(t, err, boom)
	var oe *net.OpError
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, "close", oe.Op)
	requireErrClosed(t, c.Close(), "the second Close")
}

type failingCloseConn struct {
	net.PacketConn
	err error
}

func (f *failingCloseConn) Close() error {
	_ = f.PacketConn.Close()
	return f.err
}

// TestShutdownIsBoundedWhileTheUnderlyingCloseBlocks: a wrapped conn whose
// Close blocks cannot hold Shutdown past its ctx; a later Close finishes.
func TestShutdownIsBoundedWhileTheUnderlyingCloseBlocks(t *testing.T) {
	inner := &blockingCloseConn{PacketConn: rawUDP(t), gate: make(chan struct{})}
	c := safeudp.Wrap(inner).(safeudp.Conn)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := c.Shutdown(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "the underlying Close has not returned")
	close(inner.gate)
	require.NoError(t, c.Close(), "the later Close reports the outcome")
}

type blockingCloseConn struct {
	net.PacketConn
	gate chan struct{}
}

func (b *blockingCloseConn) Close() error {
	<-b.gate
	return b.PacketConn.Close()
}

func TestShutdownOfAReleasedConnIsErrClosedEvenWithADoneContext(t *testing.T) {
	c := listenUDP(t)
	require.NoError(t, c.Close())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	requireErrClosed(t, c.Shutdown(ctx))
}

// TestShutdownSeesACompletedDrainWithAnEndedContext: once the calls have
// returned, a Shutdown whose ctx ends at that moment still finishes.
func TestShutdownSeesACompletedDrainWithAnEndedContext(t *testing.T) {
	inner := &gatedConn{PacketConn: rawUDP(t), gate: make(chan struct{})}
	c := safeudp.Wrap(inner).(safeudp.Conn)
	go func() { _, _, _ = c.ReadFrom(make([]byte, 8)) }()
	waitInFlight(t, c, 1)
	short, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	require.ErrorIs(t, c.Shutdown(short), context.DeadlineExceeded)
	close(inner.gate)
	require.Eventually(t, func() bool { return c.InFlight() == 0 }, bound, time.Millisecond)
	// short is done, but the drain is complete: Shutdown finishes the job.
	require.NoError(t, c.Shutdown(short))
}

// TestAnInterruptedCallKeepsTheWrappedConnsError: a wrapped conn's own
// error type stays reachable, and the op says what was interrupted.
func TestAnInterruptedCallKeepsTheWrappedConnsError(t *testing.T) {
	inner := &ownErrorConn{PacketConn: rawUDP(t), entered: make(chan struct{}), gate: make(chan struct{})}
	c := safeudp.Wrap(inner).(safeudp.Conn)
	writeErr := make(chan error, 1)
	go func() {
		_, err := c.WriteTo([]byte{1}, inner.LocalAddr())
		writeErr <- err
	}()
	<-inner.entered
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	require.Eventually(t, func() bool {
		_, err := c.WriteTo([]byte{1}, inner.LocalAddr())
		return errors.Is(err, net.ErrClosed)
	}, bound, time.Millisecond)
	close(inner.gate)
	err := <-writeErr
	requireErrClosed(t, err)
	var own *ownError
	require.ErrorAs(t, err, &own, "the wrapped conn's error is still there")
	var oe *net.OpError
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, "write", oe.Op)
	require.NoError(t, safeudp.Await(t, closed, "Close"))
}

type ownError struct{}

func (*ownError) Error() string { return "own error" }

// ownErrorConn holds its first WriteTo until gate is closed, then fails
// it with its own error type; later writes go through.
type ownErrorConn struct {
	net.PacketConn
	entered, gate chan struct{}
	held          atomic.Bool
}

func (o *ownErrorConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if o.held.Swap(true) {
		return o.PacketConn.WriteTo(b, addr)
	}
	close(o.entered)
	<-o.gate
	return 0, &ownError{}
}

// TestADroppedConnIsCollected: the registry of open conns does not keep a
// conn alive, so a conn dropped without Close is freed as a net conn is.
func TestADroppedConnIsCollected(t *testing.T) {
	pc, err := safeudp.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	addr := pc.LocalAddr().String()
	pc = nil //nolint:ineffassign // dropped on purpose
	_ = pc
	listed := func() bool {
		for _, oc := range safeudp.OpenConns() {
			if oc.Addr == addr {
				return true
			}
		}
		return false
	}
	for i := 0; i < 20 && listed(); i++ {
		runtime.GC()
	}
	assert.False(t, listed(), "a dropped conn is still referenced by the registry")
	// net's finalizer closes the descriptor; the port comes free.
	requireBindableOnceCollected(t, addr)
}

// requireBindableOnceCollected collects garbage until addr can be bound
// again with plain net (net's finalizer closes a dropped conn's
// descriptor), within the test bound.
func requireBindableOnceCollected(t *testing.T, addr string) {
	t.Helper()
	require.Eventually(t, func() bool {
		runtime.GC()
		again, err := net.ListenPacket("udp4", addr)
		if err != nil {
			return false
		}
		_ = again.Close()
		return true
	}, bound, 10*time.Millisecond, "the dropped conn was never collected")
}
