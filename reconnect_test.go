package safeudp_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/safeudp/safeudp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// roundTrip sends one datagram to pc from a fresh plain socket and requires
// pc to read it within a bound. It leaves pc's read deadline cleared.
func roundTrip(t *testing.T, pc net.PacketConn) {
	t.Helper()
	network := "udp"
	if _, ok := pc.LocalAddr().(*net.UnixAddr); ok {
		network = "unixgram"
	}
	var snd net.PacketConn
	var err error
	if network == "udp" {
		snd, err = net.ListenPacket("udp", loopbackFor(pc.LocalAddr()))
	} else {
		snd, err = net.ListenPacket("unixgram", filepath.Join(shortTempDir(t), "snd"))
	}
	require.NoError(t, err)
	defer snd.Close()
	want := []byte("ping " + t.Name())
	_, err = snd.WriteTo(want, pc.LocalAddr())
	require.NoError(t, err)
	require.NoError(t, pc.SetReadDeadline(time.Now().Add(5*time.Second)))
	defer func() { require.NoError(t, pc.SetReadDeadline(time.Time{})) }()
	buf := make([]byte, 1500)
	n, from, err := pc.ReadFrom(buf)
	require.NoError(t, err)
	assert.Equal(t, want, buf[:n])
	assert.Equal(t, snd.LocalAddr().String(), from.String())
}

// loopbackFor returns a loopback address with port 0 of addr's family.
func loopbackFor(addr net.Addr) string {
	if a, ok := addr.(*net.UDPAddr); ok && a.IP.To4() == nil {
		return "[::1]:0"
	}
	return "127.0.0.1:0"
}

// requireNoOpenConns fails if a conn of this package is still open at addr.
func requireNoOpenConns(t *testing.T, addr string) {
	t.Helper()
	for _, oc := range safeudp.OpenConns() {
		require.NotEqual(t, addr, oc.Addr, "conn opened at %s still open", oc.OpenedAt)
	}
}

// requireBindable binds addr with plain net and closes it again.
func requireBindable(t *testing.T, network, addr string) {
	t.Helper()
	pc, err := net.ListenPacket(network, addr)
	require.NoError(t, err, "the address must be free once Close returned")
	require.NoError(t, pc.Close())
}

func TestRebindKeepsPortOfPort0(t *testing.T) {
	for _, tc := range []struct{ network, addr string }{
		{"udp4", "127.0.0.1:0"},
		{"udp6", "[::1]:0"},
		{"udp", ":0"},
	} {
		t.Run(tc.network, func(t *testing.T) {
			pc, err := safeudp.ListenPacket(tc.network, tc.addr)
			require.NoError(t, err)
			before := pc.LocalAddr().String()
			npc, err := safeudp.Rebind(context.Background(), pc)
			require.NoError(t, err)
			defer npc.Close()
			assert.Equal(t, before, npc.LocalAddr().String())
			assert.IsType(t, &safeudp.UDPConn{}, npc)
			roundTrip(t, npc)
			// The old conn is closed for good.
			_, _, err = pc.ReadFrom(make([]byte, 1))
			require.ErrorIs(t, err, net.ErrClosed)
		})
	}
}

func TestRebindKeepsIPv6Mode(t *testing.T) {
	// "udp6" on the wildcard is IPv6-only; "udp" is dual-stack. A rebind
	// of each must keep its mode: the dual-stack one still hears IPv4.
	pc, err := safeudp.ListenPacket("udp", ":0")
	require.NoError(t, err)
	npc, err := safeudp.Rebind(context.Background(), pc)
	require.NoError(t, err)
	defer npc.Close()
	port := npc.LocalAddr().(*net.UDPAddr).Port
	snd, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer snd.Close()
	_, err = snd.WriteTo([]byte("v4"), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	require.NoError(t, err)
	require.NoError(t, npc.SetReadDeadline(time.Now().Add(5*time.Second)))
	n, _, err := npc.ReadFrom(make([]byte, 16))
	require.NoError(t, err)
	assert.Equal(t, 2, n)
}

func TestRebindOfPlainNetConn(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	addr := pc.LocalAddr().String()
	npc, err := safeudp.Rebind(context.Background(), pc)
	require.NoError(t, err)
	assert.Equal(t, addr, npc.LocalAddr().String())
	roundTrip(t, npc)
	require.NoError(t, npc.Close())
	requireNoOpenConns(t, addr)
	requireBindable(t, "udp4", addr)
}

func TestRebindWithDoneContextLeavesConnOpen(t *testing.T) {
	pc, err := safeudp.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	npc, err := safeudp.Rebind(ctx, pc)
	require.ErrorIs(t, err, context.Canceled)
	assert.Same(t, pc, npc, "the conn to use from now on is pc itself")
	roundTrip(t, pc)

	// A closed conn is never returned as usable, whatever ctx.
	require.NoError(t, pc.Close())
	npc, err = safeudp.Rebind(ctx, pc)
	require.ErrorIs(t, err, net.ErrClosed)
	assert.Nil(t, npc)
}

func TestRebindOfPlainConnWithDoneContextLeavesNoTrace(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	addr := pc.LocalAddr().String()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	npc, err := safeudp.Rebind(ctx, pc)
	require.ErrorIs(t, err, context.Canceled)
	assert.Same(t, pc, npc, "the plain conn comes back as it was, not taken over")
	requireNoOpenConns(t, addr)
	roundTrip(t, pc)
	require.NoError(t, pc.Close())
	requireNoOpenConns(t, addr)
	requireBindable(t, "udp4", addr)
}

func TestRebindKeepsIPv6OnlyMode(t *testing.T) {
	// "udp6" on the wildcard is IPv6-only: it leaves the IPv4 wildcard on
	// its port free, and so must the rebound socket. (A dual-stack one
	// would take 0.0.0.0:port too.)
	var pc net.PacketConn
	var port int
	for attempt := 0; pc == nil; attempt++ {
		require.Less(t, attempt, 5, "no port free on both IPv4 and IPv6")
		p6, err := safeudp.ListenPacket("udp6", "[::]:0")
		require.NoError(t, err)
		port = p6.LocalAddr().(*net.UDPAddr).Port
		if p4, err := net.ListenPacket("udp4", fmt.Sprintf("0.0.0.0:%d", port)); err == nil {
			require.NoError(t, p4.Close())
			pc = p6
		} else {
			require.NoError(t, p6.Close()) // someone holds the IPv4 port: try another
		}
	}
	npc, err := safeudp.Rebind(context.Background(), pc)
	require.NoError(t, err)
	defer npc.Close()
	p4, err := net.ListenPacket("udp4", fmt.Sprintf("0.0.0.0:%d", port))
	require.NoError(t, err, "the rebound socket must stay IPv6-only")
	require.NoError(t, p4.Close())
}

func TestRebindWaitsForBlockedRead(t *testing.T) {
	pc, err := safeudp.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	readErr := make(chan error, 1)
	go func() {
		_, _, err := pc.ReadFrom(make([]byte, 16))
		readErr <- err
	}()
	require.Eventually(t, func() bool { return pc.(safeudp.Conn).InFlight() == 1 }, 5*time.Second, time.Millisecond)
	npc, err := safeudp.Rebind(context.Background(), pc)
	require.NoError(t, err)
	defer npc.Close()
	// Rebind returned only after the read had returned.
	require.Zero(t, pc.(safeudp.Conn).InFlight(), "Rebind returned while a read was still running on the old conn")
	select {
	case err := <-readErr:
		require.ErrorIs(t, err, net.ErrClosed)
	case <-time.After(10 * time.Second):
		t.Fatal("the read on the old conn never returned")
	}
	roundTrip(t, npc)
}

func TestRebindUnixgram(t *testing.T) {
	path := filepath.Join(shortTempDir(t), "srv")
	pc, err := safeudp.ListenPacket("unixgram", path)
	require.NoError(t, err)
	npc, err := safeudp.Rebind(context.Background(), pc)
	require.NoError(t, err)
	assert.Equal(t, path, npc.LocalAddr().String())
	assert.IsType(t, &safeudp.UnixConn{}, npc)
	roundTrip(t, npc)
	require.NoError(t, npc.Close())
	_, err = os.Lstat(path)
	require.ErrorIs(t, err, os.ErrNotExist, "Close removes the file the rebind created")
}

func TestRebindRefusesUnixgramFileItDidNotCreate(t *testing.T) {
	path := filepath.Join(shortTempDir(t), "srv")
	pc, err := net.ListenPacket("unixgram", path)
	require.NoError(t, err)
	defer pc.Close()
	npc, err := safeudp.Rebind(context.Background(), pc)
	require.Error(t, err)
	assert.Same(t, pc, npc, "refused: pc is still the conn to use")
	assert.Contains(t, err.Error(), "not created by safeudp")
	roundTrip(t, pc) // untouched
	_, err = os.Lstat(path)
	require.NoError(t, err, "the file is never removed")
}

func TestRebindWhenChildProcessHoldsThePort(t *testing.T) {
	pc, err := safeudp.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	addr := pc.LocalAddr().String()
	f, err := pc.(*safeudp.UDPConn).File()
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.Close(); _ = pc.Close() }) // if skipped; both are closed below
	cmd, kill := startChildHolding(t, f, "60")
	require.NoError(t, f.Close())

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	npc, err := safeudp.Rebind(ctx, pc)
	require.ErrorIs(t, err, syscall.EADDRINUSE, "the child's copy holds the port past the bound")
	assert.Nil(t, npc)
	if runtime.GOOS == "linux" {
		// ListenPacket's error, unchanged, names the holder.
		var inUse *safeudp.AddrInUseError
		require.ErrorAs(t, err, &inUse)
		assert.Contains(t, err.Error(), fmt.Sprintf("pid %d %q", cmd.Process.Pid, "sleep"))
	}
	t.Logf("Rebind: %v", err)
	// pc had to be closed for the bind: it is closed and released.
	_, err = pc.WriteTo([]byte("x"), pc.LocalAddr())
	require.ErrorIs(t, err, net.ErrClosed)
	requireNoOpenConns(t, addr)

	kill() // Wait returns once the child's descriptors are closed
	requireBindable(t, "udp4", addr)
}

// rebindTraffic drives a RebindingConn: readers count the numbered
// datagrams a plain sender sends to it, with at most window unread, and a
// writer sends through it to a plain sink. It returns a stop function that
// waits for everything to be delivered and checks that nothing was lost,
// duplicated or failed.
type rebindTraffic struct {
	t       *testing.T
	c       *safeudp.RebindingConn
	total   int
	window  int64
	sent    atomic.Int64
	got     atomic.Int64
	seen    []atomic.Bool
	dups    atomic.Int64
	written atomic.Int64
	sunk    atomic.Int64
	errs    chan error
	wg      sync.WaitGroup
	sink    net.PacketConn
	stopW   chan struct{} // closed to stop the writer
	wDone   chan struct{} // closed when the writer has stopped
}

func startRebindTraffic(t *testing.T, c *safeudp.RebindingConn, total, readers int, window int64) *rebindTraffic {
	tr := &rebindTraffic{t: t, c: c, total: total, window: window, seen: make([]atomic.Bool, total),
		errs: make(chan error, 16), stopW: make(chan struct{}), wDone: make(chan struct{})}
	snd, err := net.ListenPacket("udp", loopbackFor(c.LocalAddr()))
	require.NoError(t, err)
	tr.sink, err = net.ListenPacket("udp", loopbackFor(c.LocalAddr()))
	require.NoError(t, err)
	report := func(err error) {
		select {
		case tr.errs <- err:
		default:
		}
	}
	for range readers {
		tr.wg.Go(func() {
			buf := make([]byte, 64)
			for tr.got.Load() < int64(total) {
				n, _, err := c.ReadFrom(buf)
				if err != nil {
					if !errors.Is(err, net.ErrClosed) {
						report(err)
					}
					return
				}
				if n != 8 {
					report(errors.New("short datagram"))
					return
				}
				seq := binary.BigEndian.Uint64(buf)
				if tr.seen[seq].Swap(true) {
					tr.dups.Add(1)
				}
				tr.got.Add(1)
			}
		})
	}
	tr.wg.Go(func() { // sender, flow-controlled so the receive buffer never overflows
		defer snd.Close()
		var b [8]byte
		deadline := time.Now().Add(30 * time.Second)
		for i := range total {
			for tr.sent.Load()-tr.got.Load() >= window {
				if time.Now().After(deadline) {
					report(errors.New("sender: readers stalled"))
					return
				}
				runtime.Gosched()
			}
			binary.BigEndian.PutUint64(b[:], uint64(i))
			if _, err := snd.WriteTo(b[:], c.LocalAddr()); err != nil {
				report(err)
				return
			}
			tr.sent.Add(1)
		}
	})
	tr.wg.Go(func() { // writer through the RebindingConn
		defer close(tr.wDone)
		b := []byte("out")
		for {
			select {
			case <-tr.stopW:
				return
			default:
			}
			if tr.written.Load()-tr.sunk.Load() >= window {
				runtime.Gosched() // flow control, as for the sender
				continue
			}
			if _, err := c.WriteTo(b, tr.sink.LocalAddr()); err != nil {
				report(err)
				return
			}
			tr.written.Add(1)
			runtime.Gosched()
		}
	})
	tr.wg.Go(func() { // sink
		buf := make([]byte, 16)
		for {
			if _, _, err := tr.sink.ReadFrom(buf); err != nil {
				return
			}
			tr.sunk.Add(1)
		}
	})
	return tr
}

// finish waits for every datagram to be read, stops the traffic and closes
// c, then checks the counts.
func (tr *rebindTraffic) finish() {
	t := tr.t
	ok := assert.Eventually(t, func() bool { return tr.got.Load() >= int64(tr.total) }, 30*time.Second, time.Millisecond,
		"sent %d, received %d", tr.sent.Load(), tr.got.Load())
	close(tr.stopW)
	<-tr.wDone // a write racing Close would rightly fail
	require.NoError(t, tr.c.Close())
	// Give the sink every write still in flight, then stop it.
	_ = assert.Eventually(t, func() bool { return tr.sunk.Load() >= tr.written.Load() }, 5*time.Second, time.Millisecond)
	tr.sink.Close()
	tr.wg.Wait()
	close(tr.errs)
	for err := range tr.errs {
		t.Errorf("a call failed during the rebinds: %v", err)
	}
	require.True(t, ok)
	assert.Equal(t, int64(tr.total), tr.got.Load())
	assert.Zero(t, tr.dups.Load(), "datagrams delivered twice")
	assert.Equal(t, tr.written.Load(), tr.sunk.Load(), "writes lost")
	assert.Positive(t, tr.written.Load())
}

func TestRebindingConnHundredsOfRebindsUnderTraffic(t *testing.T) {
	c, err := safeudp.ListenRebinding("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	addr := c.LocalAddr().String()
	tr := startRebindTraffic(t, c, 20000, 2, 64)
	const rebinds = 300
	for i := range rebinds {
		require.NoError(t, c.Rebind(context.Background()), "rebind %d", i)
		assert.Equal(t, addr, c.LocalAddr().String())
	}
	tr.finish()
	t.Logf("%d rebinds: sent %d, received %d; wrote %d, sink got %d", rebinds, tr.sent.Load(), tr.got.Load(), tr.written.Load(), tr.sunk.Load())
	requireNoOpenConns(t, addr)
	requireBindable(t, "udp4", addr)
}

func TestRebindingConnConcurrentRebinds(t *testing.T) {
	c, err := safeudp.ListenRebinding("udp6", "[::1]:0")
	require.NoError(t, err)
	tr := startRebindTraffic(t, c, 5000, 2, 32)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 25 {
				assert.NoError(t, c.Rebind(context.Background()))
			}
		})
	}
	wg.Wait()
	tr.finish()
}

func TestRebindingConnCloseRacesRebind(t *testing.T) {
	for i := range 100 {
		c, err := safeudp.ListenRebinding("udp4", "127.0.0.1:0")
		require.NoError(t, err)
		addr := c.LocalAddr().String()
		var wg sync.WaitGroup
		readErr := make(chan error, 1)
		wg.Go(func() {
			_, _, err := c.ReadFrom(make([]byte, 16))
			readErr <- err
		})
		rebindErr := make(chan error, 1)
		wg.Go(func() {
			for range 1000 {
				if err := c.Rebind(context.Background()); err != nil {
					rebindErr <- err
					return
				}
			}
			rebindErr <- nil
		})
		if i%2 == 1 {
			runtime.Gosched()
		}
		require.NoError(t, c.Close())
		// Close returned: nothing of c is open, and the address is free.
		requireNoOpenConns(t, addr)
		requireBindable(t, "udp4", addr)
		wg.Wait()
		require.ErrorIs(t, safeudp.Await(t, readErr, "the read"), net.ErrClosed)
		err = safeudp.Await(t, rebindErr, "the Rebind")
		require.ErrorIs(t, err, net.ErrClosed, "the rebind loop can only stop because of Close")
		require.ErrorIs(t, c.Rebind(context.Background()), net.ErrClosed)
	}
}

func TestRebindingConnRebindAfterClose(t *testing.T) {
	c, err := safeudp.ListenRebinding("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	require.NoError(t, c.Close())
	require.ErrorIs(t, c.Rebind(context.Background()), net.ErrClosed)
	done, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, c.Rebind(done), net.ErrClosed, "closed is checked before ctx")
	npc, err := safeudp.Rebind(done, c)
	require.ErrorIs(t, err, net.ErrClosed)
	require.Nil(t, npc, "a closed conn is not returned as usable")
	require.ErrorIs(t, c.Close(), net.ErrClosed, "a second Close reports net.ErrClosed")
	_, _, err = c.ReadFrom(make([]byte, 1))
	require.ErrorIs(t, err, net.ErrClosed)
	_, err = c.WriteTo([]byte("x"), c.LocalAddr())
	require.ErrorIs(t, err, net.ErrClosed)
}

func TestRebindingConnRebindWithDoneContext(t *testing.T) {
	c, err := safeudp.ListenRebinding("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, c.Rebind(ctx), context.Canceled)
	roundTrip(t, c)
}

func TestRebindingConnDeadlinesCarryOver(t *testing.T) {
	c, err := safeudp.ListenRebinding("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer c.Close()

	// A past deadline set before the rebind holds on the new socket.
	require.NoError(t, c.SetReadDeadline(time.Unix(1, 0)))
	require.NoError(t, c.Rebind(context.Background()))
	_, _, err = c.ReadFrom(make([]byte, 16))
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)

	// A read blocked across rebinds times out at its deadline, not at a
	// swap, and not before.
	deadline := time.Now().Add(300 * time.Millisecond)
	require.NoError(t, c.SetReadDeadline(deadline))
	readErr := make(chan error, 1)
	go func() {
		_, _, err := c.ReadFrom(make([]byte, 16))
		readErr <- err
	}()
	for range 10 {
		require.NoError(t, c.Rebind(context.Background()))
	}
	select {
	case err := <-readErr:
		require.ErrorIs(t, err, os.ErrDeadlineExceeded)
		assert.False(t, time.Now().Before(deadline), "the read returned before its deadline")
	case <-time.After(10 * time.Second):
		t.Fatal("the read did not time out")
	}

	// Clearing the deadline after rebinds clears it on the socket in service.
	require.NoError(t, c.SetReadDeadline(time.Time{}))
	roundTrip(t, c)
}

// failSecondListen is a ListenConfig whose Control fails every listen after
// the first one.
func failSecondListen() (*safeudp.ListenConfig, error) {
	errRefused := errors.New("test: listen refused")
	var calls atomic.Int32
	return &safeudp.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		if calls.Add(1) > 1 {
			return errRefused
		}
		return nil
	}}, errRefused
}

func TestRebindingConnFailedRebindKeepsOldSocket(t *testing.T) {
	if !safeudp.RebindOverlaps {
		t.Skip("no overlap on " + runtime.GOOS)
	}
	lc, errRefused := failSecondListen()
	c, err := lc.ListenRebinding(context.Background(), "udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer c.Close()
	addr := c.LocalAddr().String()
	readErr := make(chan error, 1)
	go func() {
		_, _, err := c.ReadFrom(make([]byte, 16))
		readErr <- err
	}()
	require.ErrorIs(t, c.Rebind(context.Background()), errRefused)
	// The blocked read is still on the old socket, which still serves.
	snd, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer snd.Close()
	_, err = snd.WriteTo([]byte("x"), c.LocalAddr())
	require.NoError(t, err)
	select {
	case err := <-readErr:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the old socket stopped serving")
	}
	roundTrip(t, c)
	n := 0
	for _, oc := range safeudp.OpenConns() {
		if oc.Addr == addr {
			n++
		}
	}
	assert.Equal(t, 1, n, "the failed rebind left exactly the old socket open")
}

// refusingListen is a ListenConfig whose Control fails every listen while
// refuse is set.
func refusingListen() (lc *safeudp.ListenConfig, refuse *atomic.Bool, errRefused error) {
	errRefused = errors.New("test: listen refused")
	refuse = new(atomic.Bool)
	return &safeudp.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		if refuse.Load() {
			return errRefused
		}
		return nil
	}}, refuse, errRefused
}

func TestRebindingConnFailedRebindWithoutOverlapKeepsCallsWaiting(t *testing.T) {
	// Without the overlap (as on systems other than Linux), the old socket
	// is closed before the bind, so a bind that fails leaves none. The
	// calls must not fail with net.ErrClosed, since nobody closed the conn
	// (tailscale#1468): they wait for the next Rebind, or their deadline.
	lc, refuse, errRefused := refusingListen()
	c, err := safeudp.ListenRebindingGap(lc, "udp4", "127.0.0.1:0")
	require.NoError(t, err)
	addr := c.LocalAddr().String()
	readErr := make(chan error, 1)
	go func() {
		_, _, err := c.ReadFrom(make([]byte, 16))
		readErr <- err
	}()
	require.Eventually(t, func() bool { return c.InFlight() == 1 }, 5*time.Second, time.Millisecond)
	refuse.Store(true)
	err = c.Rebind(context.Background())
	require.ErrorIs(t, err, errRefused)
	require.NotErrorIs(t, err, net.ErrClosed)
	requireNoOpenConns(t, addr)
	// A call with a deadline times out at it, as on a socket.
	require.NoError(t, c.SetWriteDeadline(time.Now().Add(20*time.Millisecond)))
	_, err = c.WriteTo([]byte("x"), c.LocalAddr())
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	require.NotErrorIs(t, err, net.ErrClosed)
	require.NoError(t, c.SetWriteDeadline(time.Time{}))
	select {
	case err := <-readErr:
		t.Fatalf("the blocked read returned %v while the conn had no socket", err)
	default:
	}
	err = c.Rebind(context.Background())
	require.ErrorIs(t, err, errRefused, "the next Rebind tries the bind again")
	require.NotErrorIs(t, err, net.ErrClosed)

	refuse.Store(false)
	require.NoError(t, c.Rebind(context.Background()))
	snd, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer snd.Close()
	_, err = snd.WriteTo([]byte("x"), c.LocalAddr())
	require.NoError(t, err)
	select {
	case err := <-readErr:
		require.NoError(t, err, "the read carried on with the new socket")
	case <-time.After(10 * time.Second):
		t.Fatal("the read waiting for a socket never got the datagram")
	}
	roundTrip(t, c)
	require.NoError(t, c.Close())
	requireNoOpenConns(t, addr)
	requireBindable(t, "udp4", addr)
}

func TestRebindingConnCloseEndsCallsWaitingForASocket(t *testing.T) {
	lc, refuse, errRefused := refusingListen()
	c, err := safeudp.ListenRebindingGap(lc, "udp4", "127.0.0.1:0")
	require.NoError(t, err)
	addr := c.LocalAddr().String()
	refuse.Store(true)
	require.ErrorIs(t, c.Rebind(context.Background()), errRefused)
	readErr := make(chan error, 1)
	go func() {
		_, _, err := c.ReadFrom(make([]byte, 16))
		readErr <- err
	}()
	require.Eventually(t, func() bool { return c.InFlight() == 1 }, 5*time.Second, time.Millisecond)
	require.NoError(t, c.Close())
	select {
	case err := <-readErr:
		require.ErrorIs(t, err, net.ErrClosed, "only Close ends the wait with net.ErrClosed")
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end the read waiting for a socket")
	}
	require.ErrorIs(t, c.Rebind(context.Background()), net.ErrClosed)
	requireNoOpenConns(t, addr)
	requireBindable(t, "udp4", addr)
}

func TestListenRebindingOnAnAddressHeldByAnotherFails(t *testing.T) {
	// Rebind's SO_REUSEPORT (Linux) is confined to its own bind: a second
	// RebindingConn on the same address, before and after rebinds, is
	// refused as by any socket, and never shares the traffic.
	a, err := safeudp.ListenRebinding("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer a.Close()
	addr := a.LocalAddr().String()
	for i := range 3 {
		b, err := safeudp.ListenRebinding("udp4", addr)
		if err == nil {
			b.Close()
		}
		require.ErrorIs(t, err, syscall.EADDRINUSE, "after %d rebinds", i)
		require.NoError(t, a.Rebind(context.Background()))
	}
	roundTrip(t, a)
}

func TestRebindingConnWithoutOverlapKeepsReaders(t *testing.T) {
	c, err := safeudp.ListenRebindingGap(&safeudp.ListenConfig{}, "udp4", "127.0.0.1:0")
	require.NoError(t, err)
	addr := c.LocalAddr().String()
	// Without the overlap a datagram queued on the old socket is lost at
	// the swap, so each one is sent after a rebind and read before the
	// next: what this checks is that the blocked reader carries on.
	got := make(chan error)
	go func() {
		buf := make([]byte, 16)
		for {
			_, _, err := c.ReadFrom(buf)
			got <- err
			if err != nil {
				return
			}
		}
	}()
	snd, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer snd.Close()
	for i := range 50 {
		require.NoError(t, c.Rebind(context.Background()), "rebind %d", i)
		_, err := snd.WriteTo([]byte("x"), c.LocalAddr())
		require.NoError(t, err)
		select {
		case err := <-got:
			require.NoError(t, err, "the reader saw swap %d", i)
		case <-time.After(10 * time.Second):
			t.Fatalf("the reader did not get datagram %d", i)
		}
	}
	require.NoError(t, c.Close())
	select {
	case err := <-got:
		require.ErrorIs(t, err, net.ErrClosed)
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end the read")
	}
	requireNoOpenConns(t, addr)
	requireBindable(t, "udp4", addr)
}

func TestListenRebindingRefusesOtherNetworks(t *testing.T) {
	_, err := safeudp.ListenRebinding("unixgram", filepath.Join(shortTempDir(t), "x"))
	var une net.UnknownNetworkError
	require.ErrorAs(t, err, &une)
	assert.Contains(t, err.Error(), `use "udp", "udp4" or "udp6"`)
}

func TestRebindingConnZeroLossAtSteadyRate(t *testing.T) {
	// A sender at a steady 2,000 datagrams per second, 100 rebinds: every
	// datagram sent is received once. The rate is modest so that the
	// receive buffer (about 400 KiB) holds what arrives while a loaded
	// machine keeps the reader off the CPU; examples/reconnect -swap measures higher
	// rates.
	const (
		perMilli = 2
		rebinds  = 100
	)
	c, err := safeudp.ListenRebinding("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	require.NoError(t, c.SetReadBuffer(1<<20))
	snd, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer snd.Close()

	var sent, got atomic.Int64
	var wg sync.WaitGroup
	readErr := make(chan error, 1)
	wg.Go(func() {
		buf := make([]byte, 64)
		for {
			if _, _, err := c.ReadFrom(buf); err != nil {
				readErr <- err
				return
			}
			got.Add(1)
		}
	})
	stop := make(chan struct{})
	sendErr := make(chan error, 1)
	wg.Go(func() {
		tick := time.NewTicker(time.Millisecond) // paces the load
		defer tick.Stop()
		b := make([]byte, 8)
		for {
			select {
			case <-stop:
				sendErr <- nil
				return
			case <-tick.C:
			}
			for range perMilli {
				if _, err := snd.WriteTo(b, c.LocalAddr()); err != nil {
					sendErr <- err
					return
				}
				sent.Add(1)
			}
		}
	})
	var slowest time.Duration
	for i := range rebinds {
		// Let some traffic through between rebinds (bounded wait).
		next := sent.Load() + 2*perMilli
		require.Eventually(t, func() bool { return sent.Load() >= next }, 10*time.Second, 100*time.Microsecond)
		begun := time.Now()
		require.NoError(t, c.Rebind(context.Background()), "rebind %d", i)
		slowest = max(slowest, time.Since(begun))
	}
	close(stop)
	require.NoError(t, <-sendErr)
	assert.Eventually(t, func() bool { return got.Load() >= sent.Load() }, 10*time.Second, time.Millisecond)
	require.NoError(t, c.Close())
	wg.Wait()
	require.ErrorIs(t, <-readErr, net.ErrClosed, "the reader saw no error before Close")
	t.Logf("%d rebinds (slowest %v): sent %d, received %d", rebinds, slowest, sent.Load(), got.Load())
	require.Equal(t, sent.Load(), got.Load(), "datagrams lost")
}

func TestRebindingConnDualStack(t *testing.T) {
	// "udp" on ":0" is one dual-stack socket; each new socket must be one
	// too, and the old one must stop hearing IPv4 as well as IPv6.
	c, err := safeudp.ListenRebinding("udp", ":0")
	require.NoError(t, err)
	defer c.Close()
	port := c.LocalAddr().(*net.UDPAddr).Port
	snd4, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer snd4.Close()
	snd6, err := net.ListenPacket("udp6", "[::1]:0")
	require.NoError(t, err)
	defer snd6.Close()
	buf := make([]byte, 16)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	for i := range 20 {
		// Queue one of each on the old socket, then swap: both arrive.
		_, err = snd4.WriteTo([]byte("v4"), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		require.NoError(t, err)
		_, err = snd6.WriteTo([]byte("v6"), &net.UDPAddr{IP: net.IPv6loopback, Port: port})
		require.NoError(t, err)
		require.NoError(t, c.Rebind(context.Background()), "rebind %d", i)
		got := map[string]bool{}
		for range 2 {
			n, _, err := c.ReadFrom(buf)
			require.NoError(t, err)
			got[string(buf[:n])] = true
		}
		assert.Equal(t, map[string]bool{"v4": true, "v6": true}, got)
	}
}

func TestRebindOfRebindingConnRebindsInPlace(t *testing.T) {
	c, err := safeudp.ListenRebinding("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer c.Close()
	pc, err := safeudp.Rebind(context.Background(), c)
	require.NoError(t, err)
	require.Same(t, c, pc)
	roundTrip(t, c)
}

func TestRebindingConnMethodsAcrossRebinds(t *testing.T) {
	// Every read and write variant works on the socket in service after a
	// swap, with the conn's own address on both ends.
	c, err := safeudp.ListenRebinding("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer c.Close()
	peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer peer.Close()
	pa := peer.LocalAddr().(*net.UDPAddr)
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	require.NoError(t, peer.SetDeadline(time.Now().Add(10*time.Second)))
	buf := make([]byte, 16)
	writes := map[string]func() error{
		"WriteTo":             func() error { _, err := c.WriteTo([]byte("a"), pa); return err },
		"WriteToUDP":          func() error { _, err := c.WriteToUDP([]byte("a"), pa); return err },
		"WriteToUDPAddrPort":  func() error { _, err := c.WriteToUDPAddrPort([]byte("a"), pa.AddrPort()); return err },
		"WriteMsgUDP":         func() error { _, _, err := c.WriteMsgUDP([]byte("a"), nil, pa); return err },
		"WriteMsgUDPAddrPort": func() error { _, _, err := c.WriteMsgUDPAddrPort([]byte("a"), nil, pa.AddrPort()); return err },
	}
	reads := map[string]func() (string, error){
		"ReadFrom":    func() (string, error) { _, a, err := c.ReadFrom(buf); return fmt.Sprint(a), err },
		"ReadFromUDP": func() (string, error) { _, a, err := c.ReadFromUDP(buf); return fmt.Sprint(a), err },
		"ReadFromUDPAddrPort": func() (string, error) {
			_, a, err := c.ReadFromUDPAddrPort(buf)
			return a.String(), err
		},
		"ReadMsgUDP": func() (string, error) { _, _, _, a, err := c.ReadMsgUDP(buf, nil); return fmt.Sprint(a), err },
		"ReadMsgUDPAddrPort": func() (string, error) {
			_, _, _, a, err := c.ReadMsgUDPAddrPort(buf, nil)
			return a.String(), err
		},
	}
	for name, write := range writes {
		require.NoError(t, c.Rebind(context.Background()))
		require.NoError(t, write(), name)
		_, from, err := peer.ReadFromUDP(buf)
		require.NoError(t, err, name)
		assert.Equal(t, c.LocalAddr().String(), from.String(), name)
	}
	for name, read := range reads {
		require.NoError(t, c.Rebind(context.Background()))
		_, err := peer.WriteToUDP([]byte("b"), c.LocalAddr().(*net.UDPAddr))
		require.NoError(t, err)
		from, err := read()
		require.NoError(t, err, name)
		assert.Equal(t, pa.String(), from, name)
	}
	require.NoError(t, c.SetReadBuffer(1<<16))
	require.NoError(t, c.SetWriteBuffer(1<<16))
	require.NoError(t, c.Rebind(context.Background()))
	assert.Zero(t, c.InFlight())
}

func TestRebindingConnDeadlineSetDuringRebindsHolds(t *testing.T) {
	// Setters racing Rebind: the last deadline set is the one the socket
	// in service has.
	c, err := safeudp.ListenRebinding("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer c.Close()
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 200 {
			assert.NoError(t, c.Rebind(context.Background()))
		}
	})
	wg.Go(func() {
		for i := range 2000 {
			assert.NoError(t, c.SetReadDeadline(time.Now().Add(time.Duration(i)*time.Hour)))
		}
		assert.NoError(t, c.SetReadDeadline(time.Unix(1, 0)))
	})
	wg.Wait()
	_, _, err = c.ReadFrom(make([]byte, 1))
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
}

func TestRebindKeepsListenConfigAndOpenedAt(t *testing.T) {
	h := &safeudp.LogRecorder{}
	var controls atomic.Int32
	lc := safeudp.ListenConfig{
		Logger:  slog.New(h),
		Control: func(string, string, syscall.RawConn) error { controls.Add(1); return nil },
	}
	pc, err := lc.ListenPacket(context.Background(), "udp4", "127.0.0.1:0")
	require.NoError(t, err)
	npc, err := safeudp.Rebind(context.Background(), pc)
	require.NoError(t, err)
	defer npc.Close()
	assert.Equal(t, int32(2), controls.Load(), "the rebind runs the conn's Control")
	listens := 0
	for _, m := range h.Messages() {
		if m == "safeudp: listen" {
			listens++
		}
	}
	assert.Equal(t, 2, listens, "the rebound conn logs to the conn's Logger")
	for _, oc := range safeudp.OpenConns() {
		if oc.Addr == npc.LocalAddr().String() {
			assert.Regexp(t, `reconnect_test\.go:\d+$`, oc.OpenedAt, "the rebound conn is reported where the first was opened")
		}
	}
}

func TestRebindOfWrappedUnknownConnGivesUDPConn(t *testing.T) {
	raw, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	pc := safeudp.Wrap(unknownConn{raw})
	require.IsType(t, &safeudp.PacketConn{}, pc)
	npc, err := safeudp.Rebind(context.Background(), pc)
	require.NoError(t, err)
	defer npc.Close()
	require.IsType(t, &safeudp.UDPConn{}, npc)
	assert.Equal(t, raw.LocalAddr().String(), npc.LocalAddr().String())
	roundTrip(t, npc)
}

func TestRebindWaitsOutATransientHolder(t *testing.T) {
	pc, err := safeudp.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	addr := pc.LocalAddr().String()
	f, err := pc.(*safeudp.UDPConn).File()
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.Close(); _ = pc.Close() }) // if skipped; both are closed below
	// The child holds a copy of the socket for 0.2 s, then exits.
	startChildHolding(t, f, "0.2")
	require.NoError(t, f.Close())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	begun := time.Now()
	npc, err := safeudp.Rebind(ctx, pc)
	require.NoError(t, err, "Rebind retries EADDRINUSE until the holder is gone")
	defer npc.Close()
	assert.Equal(t, addr, npc.LocalAddr().String())
	t.Logf("rebound after %v", time.Since(begun))
	roundTrip(t, npc)
}

func TestRebindingConnKeepsOrderForOneReader(t *testing.T) {
	// One sender, one reader: each swap hands the reader what the old
	// socket held before anything the new one got, so the sequence
	// numbers arrive in order, none missing.
	c, err := safeudp.ListenRebinding("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	snd, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer snd.Close()
	const total, window = 20000, 128
	var sent, got atomic.Int64
	var wg sync.WaitGroup
	outOfOrder := make(chan string, 1)
	wg.Go(func() {
		buf := make([]byte, 16)
		for want := uint64(0); want < total; want++ {
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				outOfOrder <- err.Error()
				return
			}
			if seq := binary.BigEndian.Uint64(buf[:n]); seq != want {
				outOfOrder <- fmt.Sprintf("got datagram %d, want %d", seq, want)
				return
			}
			got.Add(1)
		}
		outOfOrder <- ""
	})
	wg.Go(func() {
		var b [8]byte
		deadline := time.Now().Add(30 * time.Second)
		for i := range total {
			for sent.Load()-got.Load() >= window && time.Now().Before(deadline) {
				runtime.Gosched()
			}
			binary.BigEndian.PutUint64(b[:], uint64(i))
			if _, err := snd.WriteTo(b[:], c.LocalAddr()); err != nil {
				t.Error(err)
				return
			}
			sent.Add(1)
		}
	})
	rebinds := 0
	for ; got.Load() < total && rebinds < 2000; rebinds++ {
		require.NoError(t, c.Rebind(context.Background()))
	}
	var res string
	select {
	case res = <-outOfOrder:
	case <-time.After(30 * time.Second):
		res = "the reader stalled"
	}
	require.NoError(t, c.Close())
	wg.Wait()
	require.Empty(t, res, "after %d rebinds", rebinds)
	t.Logf("%d datagrams in order across %d rebinds", total, rebinds)
}
