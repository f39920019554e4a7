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
