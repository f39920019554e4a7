package safeudp

import (
	"context"
	"io/fs"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/safeudp/safeudp/internal/sockdiag"
)

// joiner is a second program of the same user that binds the conn's
// address with SO_REUSEPORT in a tight loop. When a bind succeeds, it
// publishes the socket's inode and holds the socket until told to let go.
type joiner struct {
	addr    string
	inode   atomic.Uint64 // inode of the socket it holds, 0 while it holds none
	release chan struct{} // a send tells it to close the socket it holds
	tries   atomic.Int64  // bind attempts made
	joins   atomic.Int64  // binds that succeeded
	done    chan struct{} // closed when the loop has ended and its socket is closed
}

// startJoiner runs a joiner on addr until ctx ends.
func startJoiner(ctx context.Context, addr string) *joiner {
	j := &joiner{addr: addr, release: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(j.done)
		for ctx.Err() == nil {
			j.tries.Add(1)
			pc, err := ListenReuseport("udp4", addr)
			if err != nil {
				continue
			}
			j.joins.Add(1)
			rc, err := pc.(syscall.Conn).SyscallConn()
			if err == nil {
				_ = rc.Control(func(fd uintptr) { j.inode.Store(socketInode(int(fd))) })
			}
			select {
			case <-j.release:
			case <-ctx.Done():
			}
			_ = pc.Close()
			j.inode.Store(0) // after the close: letGo returns once the socket is gone
		}
	}()
	return j
}

// letGo tells j to close the socket it holds and waits until it has.
func (j *joiner) letGo(t *testing.T) {
	t.Helper()
	select {
	case j.release <- struct{}{}:
	case <-time.After(5 * time.Second):
		t.Fatal("the joiner did not take the release")
	}
	require.Eventually(t, func() bool { return j.inode.Load() == 0 }, 5*time.Second, 100*time.Microsecond)
}

// TestRebindFailsWhenAForeignSocketJoinsThePort: another program of the
// same user that sets SO_REUSEPORT on the conn's address in a loop joins
// the port during the bind of some Rebinds. Each such Rebind must fail
// with an error that wraps ErrHeldElsewhere and names the socket, and
// leave the old socket in service; no Rebind may return nil while the
// foreign socket is on the port.
func TestRebindFailsWhenAForeignSocketJoinsThePort(t *testing.T) {
	c, err := ListenRebinding("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer c.Close()
	// The joiner runs until the loop has ended, so that a socket it got
	// in with stays on the port until the loop has looked at it.
	joinerCtx, stopJoiner := context.WithCancel(context.Background())
	defer stopJoiner()
	j := startJoiner(joinerCtx, c.LocalAddr().String())
	defer func() {
		stopJoiner()
		<-j.done
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var rebinds, nilWhileJoined, refused int
	for ; rebinds < 5000 && ctx.Err() == nil; rebinds++ {
		before := c.cur.Load()
		err := c.Rebind(context.Background())
		ino := j.inode.Load()
		if err != nil && ino == 0 {
			// The joiner bound, but had not yet published its inode.
			require.ErrorIs(t, err, ErrHeldElsewhere, "rebind %d", rebinds)
			require.Eventually(t, func() bool { ino = j.inode.Load(); return ino != 0 }, 5*time.Second, 100*time.Microsecond,
				"rebind %d failed with no foreign socket on the port: %v", rebinds, err)
		}
		if ino == 0 {
			continue // nothing joined
		}
		if err == nil {
			nilWhileJoined++
		} else {
			refused++
			require.ErrorIs(t, err, ErrHeldElsewhere)
			require.Contains(t, err.Error(), strconv.FormatUint(ino, 10), "the error names the foreign socket")
			require.Same(t, before, c.cur.Load(), "the old socket stays in service")
			require.Zero(t, c.InFlight())
		}
		j.letGo(t)
		if err != nil {
			// With the foreign socket gone, the group is the old socket
			// alone: it gets every datagram.
			requireServes(t, c)
		}
	}
	stopJoiner()
	<-j.done
	t.Logf("%d rebinds, %d joins in %d bind attempts of the joiner: %d refused, %d returned nil with the foreign socket on the port",
		rebinds, j.joins.Load(), j.tries.Load(), refused, nilWhileJoined)
	require.NotZero(t, j.joins.Load(), "no join happened: the test proves nothing on this machine")
	assert.Zero(t, nilWhileJoined, "Rebinds that returned nil while a foreign socket had joined the port")
	requireServes(t, c)
	require.NoError(t, c.Close())
}

// TestRebindSucceedsNextToASocketThatCannotJoin: a socket on the same
// port but another address (127.0.0.2) is not in the conn's group and
// does not fail a Rebind.
func TestRebindSucceedsNextToASocketThatCannotJoin(t *testing.T) {
	c, err := ListenRebinding("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer c.Close()
	port := c.LocalAddr().(*net.UDPAddr).Port
	other, err := net.ListenPacket("udp4", net.JoinHostPort("127.0.0.2", strconv.Itoa(port)))
	require.NoError(t, err)
	defer other.Close()
	for range 3 {
		require.NoError(t, c.Rebind(context.Background()))
	}
	requireServes(t, c)
}

// joinDuringBind returns a ListenConfig whose Control, in the bind
// attempts of a Rebind (while the old socket has SO_REUSEPORT set), binds
// a foreign SO_REUSEPORT socket to foreignAddr() once each time arm is
// set: a join at a known moment. The socket is sent on joined.
func joinDuringBind(t *testing.T, network string, foreignAddr func() string, arm *atomic.Bool, joined chan<- net.PacketConn) *ListenConfig {
	return &ListenConfig{Control: func(string, string, syscall.RawConn) error {
		if !arm.CompareAndSwap(true, false) {
			return nil
		}
		lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error { return setReuseport(c, true) }}
		pc, err := lc.ListenPacket(context.Background(), network, foreignAddr())
		require.NoError(t, err, "the foreign socket joins while SO_REUSEPORT is set")
		joined <- pc
		return nil
	}}
}

// TestRebindNamesTheSocketThatJoined: a socket that joined the port during
// the bind fails the Rebind, with an error that wraps ErrHeldElsewhere and
// names it (inode, address, holder), whichever table the port was read
// from; the old socket stays in service; once the socket has gone, the
// next Rebind succeeds. A dual-stack conn is also checked for IPv4
// sockets, which would take its IPv4 datagrams.
func TestRebindNamesTheSocketThatJoined(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		network, addr        string
		foreignNet, foreignH string
		procNet              bool // sock_diag fails: /proc/net is read
	}{
		{"udp4", "udp4", "127.0.0.1:0", "udp4", "127.0.0.1", false},
		{"udp4 from /proc/net", "udp4", "127.0.0.1:0", "udp4", "127.0.0.1", true},
		{"the IPv4 wildcard next to a specific address", "udp4", "127.0.0.1:0", "udp4", "0.0.0.0", false},
		{"dual-stack and IPv4", "udp", ":0", "udp4", "127.0.0.1", false},
		{"dual-stack and IPv4 from /proc/net", "udp", ":0", "udp4", "127.0.0.1", true},
		{"udp6", "udp6", "[::1]:0", "udp6", "::1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.procNet {
				old := dumpPort
				dumpPort = func(dst []sockdiag.UDPSocket, _ uint8, _ uint16) ([]sockdiag.UDPSocket, error) {
					return dst, sockdiag.ErrUnsupported
				}
				defer func() { dumpPort = old }()
			}
			var arm atomic.Bool
			joined := make(chan net.PacketConn, 1)
			var c *RebindingConn
			port := func() string { return strconv.Itoa(c.LocalAddr().(*net.UDPAddr).Port) }
			lc := joinDuringBind(t, tc.foreignNet, func() string { return net.JoinHostPort(tc.foreignH, port()) }, &arm, joined)
			var err error
			c, err = lc.ListenRebinding(context.Background(), tc.network, tc.addr)
			if err != nil && strings.Contains(tc.addr, "::1") {
				t.Skip("no IPv6 loopback:", err)
			}
			require.NoError(t, err)
			defer c.Close()
			before := c.cur.Load()

			arm.Store(true)
			err = c.Rebind(context.Background())
			foreign := <-joined
			defer foreign.Close()
			require.Error(t, err)
			t.Log(err)
			require.ErrorIs(t, err, ErrHeldElsewhere)
			var ino uint64
			rc, rerr := foreign.(syscall.Conn).SyscallConn()
			require.NoError(t, rerr)
			require.NoError(t, rc.Control(func(fd uintptr) { ino = socketInode(int(fd)) }))
			assert.Contains(t, err.Error(), "socket inode "+strconv.FormatUint(ino, 10)+" bound to "+foreign.LocalAddr().String())
			assert.Contains(t, err.Error(), "held by this process fd", "the holder is named")
			assert.Contains(t, err.Error(), "the old socket stays in service")
			require.Same(t, before, c.cur.Load(), "the old socket stays in service")
			assert.False(t, reuseportSet(before.uc), "SO_REUSEPORT left on the old socket")

			require.NoError(t, foreign.Close())
			requireServesAt(t, c, tc.foreignNet, net.JoinHostPort(loopback[tc.foreignNet], port()))
			require.NoError(t, c.Rebind(context.Background()), "with the foreign socket gone, a Rebind succeeds")
			require.NotSame(t, before, c.cur.Load())
		})
	}
}

// TestRebindFailsWhenThePortCannotBeChecked: when neither sock_diag nor
// /proc/net answers, a Rebind does not claim that nothing joined: it
// fails, saying so, and the old socket stays in service.
func TestRebindFailsWhenThePortCannotBeChecked(t *testing.T) {
	c, err := ListenRebinding("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer c.Close()
	before := c.cur.Load()
	oldDump, oldRoot := dumpPort, procRoot
	dumpPort = func(dst []sockdiag.UDPSocket, _ uint8, _ uint16) ([]sockdiag.UDPSocket, error) {
		return dst, syscall.EMFILE
	}
	procRoot = t.TempDir() // no tables there
	err = c.Rebind(context.Background())
	dumpPort, procRoot = oldDump, oldRoot
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cannot check that no other socket joined the port")
	assert.ErrorIs(t, err, fs.ErrNotExist, "says why")
	assert.NotErrorIs(t, err, ErrHeldElsewhere, "nothing was seen on the port")
	require.Same(t, before, c.cur.Load(), "the old socket stays in service")
	requireServes(t, c)
	require.NoError(t, c.Rebind(context.Background()))
}

// TestRebindLeavesAChosenShareAlone: when the user's Control sets
// SO_REUSEPORT, sharing the port is the user's choice: a sibling on the
// port does not fail a Rebind.
func TestRebindLeavesAChosenShareAlone(t *testing.T) {
	lc := &ListenConfig{Control: func(_, _ string, c syscall.RawConn) error { return setReuseport(c, true) }}
	c, err := lc.ListenRebinding(context.Background(), "udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer c.Close()
	sibling, err := ListenReuseport("udp4", c.LocalAddr().String())
	require.NoError(t, err)
	defer sibling.Close()
	require.NoError(t, c.Rebind(context.Background()))
}
