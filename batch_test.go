package safeudp_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/nettest"

	"github.com/safeudp/safeudp"
)

// batchWait bounds every wait in the batch tests.
const batchWait = 5 * time.Second

// skipWithoutBatchIO skips a test that moves datagrams in batches where
// golang.org/x/net does not implement batch I/O.
func skipWithoutBatchIO(t testing.TB) {
	if runtime.GOOS == "windows" {
		t.Skip("golang.org/x/net implements no batch I/O on Windows")
	}
}

// listenUDPOn opens a safeudp UDP conn on a fresh loopback port and closes it
// when the test ends.
func listenUDPOn(t *testing.T, network, address string) *safeudp.UDPConn {
	t.Helper()
	pc, err := safeudp.ListenPacket(network, address)
	require.NoError(t, err)
	c, ok := pc.(*safeudp.UDPConn)
	require.True(t, ok, "ListenPacket(%q) returned %T", network, pc)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// newMessages returns n messages, each with one buffer of size bytes.
func newMessages(n, size int) []ipv4.Message {
	ms := make([]ipv4.Message, n)
	for i := range ms {
		ms[i].Buffers = [][]byte{make([]byte, size)}
	}
	return ms
}

// writeAll writes every message of ms, looping where the system writes
// fewer per call (one per call off Linux).
func writeAll(t *testing.T, c *safeudp.UDPConn, ms []ipv4.Message) {
	t.Helper()
	for sent, calls := 0, 0; sent < len(ms); calls++ {
		require.Less(t, calls, 10*len(ms), "WriteBatch makes no progress")
		n, err := c.WriteBatch(ms[sent:], 0)
		require.NoError(t, err)
		sent += n
	}
}

// readAll reads len(ms) datagrams into ms, looping as writeAll does, with
// a read deadline so that a lost datagram fails the test instead of
// hanging it.
func readAll(t *testing.T, c *safeudp.UDPConn, ms []ipv4.Message) {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(batchWait)))
	defer func() { _ = c.SetReadDeadline(time.Time{}) }()
	for got, calls := 0, 0; got < len(ms); calls++ {
		require.Less(t, calls, 10*len(ms), "ReadBatch makes no progress")
		n, err := c.ReadBatch(ms[got:], 0)
		require.NoError(t, err)
		require.Positive(t, n, "ReadBatch returned no datagram and no error")
		got += n
	}
}

func TestBatchRoundTrip(t *testing.T) {
	skipWithoutBatchIO(t)
	for _, tc := range []struct{ network, address string }{
		{"udp4", "127.0.0.1:0"},
		{"udp6", "[::1]:0"},
	} {
		t.Run(tc.network, func(t *testing.T) {
			if tc.network == "udp6" && !nettest.SupportsIPv6() {
				t.Skip("no IPv6 loopback")
			}
			sender := listenUDPOn(t, tc.network, tc.address)
			receiver := listenUDPOn(t, tc.network, tc.address)

			const count = 16
			out := make([]ipv4.Message, count)
			for i := range out {
				out[i].Buffers = [][]byte{[]byte(fmt.Sprintf("datagram %02d", i))}
				out[i].Addr = receiver.LocalAddr()
			}
			writeAll(t, sender, out)
			for i := range out {
				assert.Equal(t, len(out[i].Buffers[0]), out[i].N, "bytes written of message %d", i)
			}

			in := newMessages(count, 64)
			readAll(t, receiver, in)
			from := sender.LocalAddr().(*net.UDPAddr)
			for i, m := range in {
				assert.Equal(t, fmt.Sprintf("datagram %02d", i), string(m.Buffers[0][:m.N]), "payload of message %d", i)
				addr, ok := m.Addr.(*net.UDPAddr)
				require.True(t, ok, "message %d: Addr is %T, want *net.UDPAddr", i, m.Addr)
				assert.True(t, from.IP.Equal(addr.IP), "message %d from %v, want %v", i, addr, from)
				assert.Equal(t, from.Port, addr.Port, "message %d from %v, want %v", i, addr, from)
			}
			assert.Zero(t, receiver.InFlight())
			assert.Zero(t, sender.InFlight())
		})
	}
}

func TestBatchOnConnectedConn(t *testing.T) {
	skipWithoutBatchIO(t)
	receiver := listenUDPOn(t, "udp4", "127.0.0.1:0")
	uc, err := net.DialUDP("udp4", nil, receiver.LocalAddr().(*net.UDPAddr))
	require.NoError(t, err)
	sender, ok := safeudp.Wrap(uc).(*safeudp.UDPConn)
	require.True(t, ok)
	t.Cleanup(func() { _ = sender.Close() })

	out := []ipv4.Message{{Buffers: [][]byte{[]byte("connected")}}} // nil Addr: the peer
	writeAll(t, sender, out)
	in := newMessages(1, 64)
	readAll(t, receiver, in)
	assert.Equal(t, "connected", string(in[0].Buffers[0][:in[0].N]))
}

func TestBatchEmpty(t *testing.T) {
	c := listenUDPOn(t, "udp4", "127.0.0.1:0")

	n, err := c.ReadBatch(nil, 0)
	assert.NoError(t, err)
	assert.Zero(t, n)
	n, err = c.WriteBatch([]ipv4.Message{}, 0)
	assert.NoError(t, err)
	assert.Zero(t, n)

	require.NoError(t, c.Close())
	_, err = c.ReadBatch(nil, 0)
	assert.ErrorIs(t, err, net.ErrClosed, "an empty batch is still a tracked call")
	_, err = c.WriteBatch(nil, 0)
	assert.ErrorIs(t, err, net.ErrClosed)
}

func TestBatchAfterCloseFailsWithErrClosed(t *testing.T) {
	c := listenUDPOn(t, "udp4", "127.0.0.1:0")
	require.NoError(t, c.Close())

	n, err := c.ReadBatch(newMessages(4, 64), 0)
	assert.Zero(t, n)
	assert.ErrorIs(t, err, net.ErrClosed)
	var oe *net.OpError
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, "read", oe.Op)

	out := newMessages(4, 64)
	for i := range out {
		out[i].Addr = c.LocalAddr()
	}
	n, err = c.WriteBatch(out, 0)
	assert.Zero(t, n)
	assert.ErrorIs(t, err, net.ErrClosed)
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, "write", oe.Op)
}

func TestReadBatchDeadlineIsATimeoutNotErrClosed(t *testing.T) {
	skipWithoutBatchIO(t)
	c := listenUDPOn(t, "udp4", "127.0.0.1:0")
	require.NoError(t, c.SetReadDeadline(time.Now().Add(-time.Second)))

	n, err := c.ReadBatch(newMessages(4, 64), 0)
	assert.Zero(t, n)
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
	assert.NotErrorIs(t, err, net.ErrClosed)
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	assert.True(t, ne.Timeout())
}

func TestCloseWaitsForBlockedReadBatch(t *testing.T) {
	skipWithoutBatchIO(t)
	c := listenUDPOn(t, "udp4", "127.0.0.1:0")

	result := make(chan error, 1)
	go func() {
		_, err := c.ReadBatch(newMessages(8, 64), 0) // nothing is ever sent
		result <- err
	}()
	waitFor(t, func() bool { return c.InFlight() == 1 }, "ReadBatch to be in flight")

	require.NoError(t, c.Close())
	// Close has returned: the tracked ReadBatch must have returned too.
	assert.Zero(t, c.InFlight(), "Close returned while ReadBatch was still running")
	select {
	case err := <-result:
		assert.ErrorIs(t, err, net.ErrClosed)
		var oe *net.OpError
		assert.ErrorAs(t, err, &oe)
	case <-time.After(batchWait):
		t.Fatal("ReadBatch did not return after Close")
	}
}

func TestBatchCallsRacingClose(t *testing.T) {
	skipWithoutBatchIO(t)
	c := listenUDPOn(t, "udp4", "127.0.0.1:0")
	peer := c.LocalAddr()

	const workers = 4
	var wg sync.WaitGroup
	errs := make(chan error, 2*workers)
	for range workers {
		wg.Add(2)
		go func() { // reader: reads until the conn is closed
			defer wg.Done()
			ms := newMessages(8, 64)
			for i := 0; i < 1_000_000; i++ {
				if _, err := c.ReadBatch(ms, 0); err != nil {
					errs <- err
					return
				}
			}
			errs <- errors.New("reader never saw the close")
		}()
		go func() { // writer: feeds the readers until the conn is closed
			defer wg.Done()
			ms := newMessages(8, 64)
			for i := range ms {
				ms[i].Addr = peer
			}
			for i := 0; i < 1_000_000; i++ {
				if _, err := c.WriteBatch(ms, 0); err != nil {
					errs <- err
					return
				}
			}
			errs <- errors.New("writer never saw the close")
		}()
	}
	waitFor(t, func() bool { return c.InFlight() > 0 }, "batch calls to be in flight")
	require.NoError(t, c.Close())
	assert.Zero(t, c.InFlight())

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(batchWait):
		t.Fatal("batch callers did not stop after Close")
	}
	close(errs)
	for err := range errs {
		assert.ErrorIs(t, err, net.ErrClosed)
	}
}

// waitFor polls cond until it holds, failing the test after batchWait.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(batchWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", batchWait, what)
		}
		time.Sleep(time.Millisecond) // poll interval of a bounded wait, not synchronization
	}
}
