package safeudp

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// socketDrops returns the kernel's count of datagrams that uc's socket
// refused because its receive buffer was full (SO_MEMINFO).
func socketDrops(t *testing.T, uc *UDPConn) int64 {
	rc, err := uc.SyscallConn()
	require.NoError(t, err)
	var mi [unix.SK_MEMINFO_VARS]uint32
	var errno unix.Errno
	require.NoError(t, rc.Control(func(fd uintptr) {
		l := uint32(len(mi) * 4)
		_, _, errno = unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.SOL_SOCKET, unix.SO_MEMINFO,
			uintptr(unsafe.Pointer(&mi[0])), uintptr(unsafe.Pointer(&l)), 0)
	}))
	require.Zero(t, errno, "getsockopt SO_MEMINFO")
	return int64(mi[unix.SK_MEMINFO_DROPS])
}

// TestRebindingConnLosesOnlyWhatOverflows sends faster than a loaded
// machine may read, across 100 rebinds, and accounts for every datagram:
// each one was either read or refused by the kernel because a receive
// buffer was full (each socket's own drop counter, read after its drain
// and before its close). None is lost to a swap, whatever the load.
func TestRebindingConnLosesOnlyWhatOverflows(t *testing.T) {
	c, err := ListenRebinding("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	var overflowOld atomic.Int64
	c.retireHook = func(old *UDPConn) { overflowOld.Add(socketDrops(t, old)) }
	snd, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer snd.Close()

	var sent, got atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 64)
		for {
			if _, _, err := c.ReadFrom(buf); err != nil {
				return
			}
			got.Add(1)
		}
	})
	stop, sendDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sendDone)
		tick := time.NewTicker(time.Millisecond) // paces the load: 100 a millisecond
		defer tick.Stop()
		b := make([]byte, 8)
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for range 100 {
				if _, err := snd.WriteTo(b, c.LocalAddr()); err != nil {
					t.Error(err)
					return
				}
				sent.Add(1)
			}
		}
	}()
	for i := range 100 {
		next := sent.Load() + 200
		require.Eventually(t, func() bool { return sent.Load() >= next }, 10*time.Second, 100*time.Microsecond)
		require.NoError(t, c.Rebind(context.Background()), "rebind %d", i)
	}
	close(stop)
	Await(t, sendDone, "the sender")
	cur := c.cur.Load().uc
	accounted := func() int64 { return got.Load() + overflowOld.Load() + socketDrops(t, cur) }
	assert.Eventually(t, func() bool { return accounted() >= sent.Load() }, 10*time.Second, time.Millisecond)
	overflow := overflowOld.Load() + socketDrops(t, cur)
	require.NoError(t, c.Close())
	wg.Wait()
	t.Logf("100 rebinds: sent %d, received %d, refused by full receive buffers %d", sent.Load(), got.Load(), overflow)
	require.Equal(t, sent.Load(), got.Load()+overflow, "datagrams lost to a swap")
}

// refusedRebinding returns a RebindingConn whose Rebind can never bind:
// the conn leaves SO_REUSEPORT off its old socket (as if the user's Control
// had set it and owned it), so each bind of the new one fails with
// EADDRINUSE, as against another user's socket. binds counts the listens.
func refusedRebinding(t *testing.T, log *slog.Logger) (c *RebindingConn, binds *atomic.Int32) {
	binds = new(atomic.Int32)
	lc := &ListenConfig{Logger: log, Control: func(string, string, syscall.RawConn) error {
		binds.Add(1)
		return nil
	}}
	c, err := lc.ListenRebinding(context.Background(), "udp4", "127.0.0.1:0")
	require.NoError(t, err)
	c.keepReuseport = true
	return c, binds
}

func TestRebindBindRefusedRetriesCheaplyAndKeepsOldSocket(t *testing.T) {
	h := &LogRecorder{}
	c, binds := refusedRebinding(t, slog.New(h))
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := c.Rebind(ctx)
	require.ErrorIs(t, err, syscall.EADDRINUSE)
	var oe *net.OpError
	require.ErrorAs(t, err, &oe, "ListenPacket's error comes back")
	var inUse *AddrInUseError
	require.ErrorAs(t, err, &inUse, "the final error names the holders")
	require.NotEmpty(t, inUse.Holders)
	require.Greater(t, binds.Load(), int32(3), "EADDRINUSE is retried until ctx ends")
	// Each retry is a plain bind: the holders are looked up (and logged)
	// once, for the final error.
	require.Equal(t, 1, h.Count("safeudp: address in use"))
	requireServes(t, c)
}

func TestRebindRetryingBindEndsAtClose(t *testing.T) {
	c, binds := refusedRebinding(t, nil)
	rebindErr := make(chan error, 1)
	go func() { rebindErr <- c.Rebind(context.Background()) }()
	require.Eventually(t, func() bool { return binds.Load() > 3 }, 5*time.Second, time.Millisecond)
	require.NoError(t, c.Close())
	select {
	case err := <-rebindErr:
		require.ErrorIs(t, err, net.ErrClosed)
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the Rebind retrying its bind")
	}
}

func TestRebindJoinWindowEndsRightAfterTheBind(t *testing.T) {
	// The old socket keeps SO_REUSEPORT until it is connected, right after
	// the bind (see rebindOverlap): from then on, on either family, no
	// socket can join.
	for _, fam := range []struct{ network, addr string }{
		{"udp4", "127.0.0.1:0"},
		{"udp6", "[::1]:0"},
	} {
		t.Run(fam.network, func(t *testing.T) {
			c, err := ListenRebinding(fam.network, fam.addr)
			require.NoError(t, err)
			defer c.Close()
			addr := c.LocalAddr().String()
			joined := make(chan error, 1)
			c.boundHook = func(nu *UDPConn) error {
				// Both sockets are bound; the old one is still the one
				// in service, connected to itself.
				assert.False(t, reuseportSet(nu), "SO_REUSEPORT left on the new socket")
				assert.False(t, reuseportSet(c.cur.Load().uc), "SO_REUSEPORT left on the old socket")
				pc, err := ListenReuseport(fam.network, addr)
				if err == nil {
					pc.Close()
				}
				joined <- err
				return nil
			}
			old := c.cur.Load().uc
			require.NoError(t, c.Rebind(context.Background()))
			require.ErrorIs(t, <-joined, syscall.EADDRINUSE, "a SO_REUSEPORT socket joined during the rebind")
			assert.False(t, reuseportSet(c.cur.Load().uc), "SO_REUSEPORT left on the new socket")
			assert.NotSame(t, old, c.cur.Load().uc)
			requireServes(t, c)
		})
	}
}

func TestDrainQueuedCarriesOnPastAPendingError(t *testing.T) {
	// A pending socket error (an ICMP error) is reported once, by the next
	// read, ahead of the datagrams queued: the drain must read past it.
	pc, err := ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	uc := pc.(*UDPConn)
	defer uc.Close()
	rc := rawConnOf(uc)
	require.NoError(t, rc.Control(func(fd uintptr) {
		require.NoError(t, unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_RECVERR, 1))
	}))
	snd, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer snd.Close()
	const queued = 3
	for i := range queued {
		_, err := snd.WriteTo([]byte{byte(i)}, uc.LocalAddr())
		require.NoError(t, err)
	}
	// A datagram to a closed port: the ICMP port unreachable sets the
	// socket's error.
	gone, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	require.NoError(t, gone.Close())
	_, err = uc.WriteTo([]byte("x"), gone.LocalAddr())
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		var revents int16
		_ = rc.Control(func(fd uintptr) {
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			if _, err := unix.Poll(fds, 0); err == nil {
				revents = fds[0].Revents
			}
		})
		return revents&unix.POLLERR != 0
	}, 5*time.Second, time.Millisecond, "no ICMP error arrived")

	var got []byte
	drainQueued(uc, func(b, _ []byte, _ int, _ netip.AddrPort) { got = append(got, b...) })
	require.Equal(t, []byte{0, 1, 2}, got)
}

func TestFailedRebindDeliversWhatTheNewSocketGot(t *testing.T) {
	// The set-up of the new socket fails after the old one was connected
	// to itself (and so stopped receiving): the swap cannot be undone, so
	// the new socket goes into service and Rebind reports the failure;
	// what reached either socket meanwhile is delivered.
	c, err := ListenRebinding("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer c.Close()
	snd, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer snd.Close()
	const sent = 5
	errSetUp := errors.New("test: set-up failed")
	c.boundHook = func(nu *UDPConn) error {
		for i := range sent {
			if _, err := snd.WriteTo([]byte{byte(i)}, c.LocalAddr()); err != nil {
				return err
			}
		}
		return errSetUp
	}
	require.ErrorIs(t, c.Rebind(context.Background()), errSetUp)
	c.boundHook = nil
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	got := map[byte]bool{}
	buf := make([]byte, 16)
	for range sent {
		n, _, err := c.ReadFrom(buf)
		require.NoError(t, err, "received %d of %d", len(got), sent)
		require.Equal(t, 1, n)
		got[buf[0]] = true
	}
	require.Len(t, got, sent)
	require.NoError(t, c.SetReadDeadline(time.Time{}))
	requireServes(t, c)
}

func TestShutdownExpiredDuringRebindUnblocksCalls(t *testing.T) {
	// Shutdown's ctx ends while a Rebind holds sem: the calls blocked on
	// the socket in service return at once, as with the core's Shutdown.
	c, err := ListenRebinding("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	inHook, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	c.retireHook = func(*UDPConn) {
		once.Do(func() {
			close(inHook)
			<-release
		})
	}
	var releaseOnce sync.Once
	unhook := func() { releaseOnce.Do(func() { close(release) }) }
	defer unhook()
	rebindErr := make(chan error, 1)
	go func() { rebindErr <- c.Rebind(context.Background()) }()
	select {
	case <-inHook:
	case <-time.After(5 * time.Second):
		t.Fatal("the Rebind never reached its hook")
	}
	readErr := make(chan error, 1)
	go func() {
		_, _, err := c.ReadFrom(make([]byte, 16))
		readErr <- err
	}()
	require.Eventually(t, func() bool { return c.InFlight() == 2 }, 5*time.Second, time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, c.Shutdown(ctx), context.DeadlineExceeded)
	select {
	case err := <-readErr:
		require.ErrorIs(t, err, net.ErrClosed)
	case <-time.After(5 * time.Second):
		t.Error("the read on the socket in service stayed blocked after Shutdown expired")
	}
	unhook()
	require.NoError(t, Await(t, rebindErr, "the Rebind"))
	require.NoError(t, c.Close())
}

func TestShutdownKeepsTheSocketsOutcomeForTheNextCloser(t *testing.T) {
	// ctx ends after the socket's Shutdown has returned its outcome (here,
	// a release error): that outcome is what Shutdown, or else the next
	// closer, reports, not a timeout followed by net.ErrClosed.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var armed atomic.Bool
	h := &LogRecorder{On: func(msg string) {
		if msg == "safeudp: released" && armed.Load() {
			cancel()
		}
	}}
	lc := &ListenConfig{Logger: slog.New(h)}
	c, err := lc.ListenRebinding(context.Background(), "udp4", "127.0.0.1:0")
	require.NoError(t, err)
	require.NoError(t, c.Rebind(context.Background()))
	// Another descriptor of the socket in service: its Close reports it.
	rc, err := c.cur.Load().uc.SyscallConn()
	require.NoError(t, err)
	dup := -1
	require.NoError(t, rc.Control(func(fd uintptr) {
		dup, err = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}))
	require.NoError(t, err)
	defer unix.Close(dup)
	armed.Store(true)
	err = c.Shutdown(ctx)
	require.Error(t, ctx.Err(), "ctx ended after the socket's release")
	require.ErrorIs(t, err, ErrHeldElsewhere, "the outcome, not ctx's error")
	require.ErrorIs(t, c.Close(), net.ErrClosed)
}

// A socket RebindingConn retires is connected to itself (stopReceiving),
// and its Close must look it up with that peer: a key without it makes
// the kernel's lookup miss the socket, and a Close call it released while
// a child still holds it.
func TestRetiredSocketIsLookedUpWithItsPeer(t *testing.T) {
	pc, err := ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	uc := pc.(*UDPConn)
	defer uc.Close()
	require.NoError(t, stopReceiving(uc, uc.LocalAddr()))

	id := uc.identity()
	require.NotZero(t, id.Key.Family, "sock_diag identifies the socket")
	assert.Equal(t, uint16(uc.LocalAddr().(*net.UDPAddr).Port), id.Key.RemotePort, "the key has the peer the socket was connected to")
	found, _, err := id.Key.Lookup(id.Inode)
	require.NoError(t, err)
	assert.True(t, found, "and the kernel finds the open socket by it")
}
