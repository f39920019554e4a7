package safeudp_test

import (
	"context"
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/safeudp/safeudp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// reuseAddr sets SO_REUSEADDR on the test's own sockets, so that two of
// them share a port.
func reuseAddr(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1) })
	return errors.Join(err, serr)
}

// TestCloseWithReuseAddrSiblingSeesADup: with a second socket on the same
// address (SO_REUSEADDR), the kernel's exact lookup may answer for the
// sibling (ESTALE); Close must then look the socket up by its inode, and
// report the dup that still holds it rather than return nil. Once nothing
// holds it, Close returns nil with the sibling still bound.
func TestCloseWithReuseAddrSiblingSeesADup(t *testing.T) {
	lc := safeudp.ListenConfig{Control: reuseAddr}
	a, err := lc.ListenPacket(context.Background(), "udp4", "127.0.0.1:0")
	require.NoError(t, err)
	addr := a.LocalAddr().String()
	nlc := net.ListenConfig{Control: reuseAddr}
	sibling, err := nlc.ListenPacket(context.Background(), "udp4", addr)
	require.NoError(t, err)
	defer sibling.Close()

	dup := -1
	rawFD(t, a, func(fd int) { dup, err = syscall.Dup(fd) })
	require.NoError(t, err)
	defer syscall.Close(dup)

	err = a.Close()
	require.ErrorIs(t, err, safeudp.ErrHeldElsewhere, "the dup still holds the socket")
	var re *safeudp.ReleaseError
	require.ErrorAs(t, err, &re)
	require.Len(t, re.Holders, 1, "holders: %v", re.Holders)
	assert.Equal(t, dup, re.Holders[0].FD)

	// Nothing but the sibling: Close verifies the release and says so.
	b, err := lc.ListenPacket(context.Background(), "udp4", addr)
	require.NoError(t, err)
	require.NoError(t, b.Close())
}

// TestCloseSeesASocketBoundToADevice: the kernel's UDP lookup skips a
// socket bound to an interface unless the request names it, so Close must
// send the bound interface, or a dup of a device-bound socket would pass
// for released. SO_BINDTODEVICE needs CAP_NET_RAW.
func TestCloseSeesASocketBoundToADevice(t *testing.T) {
	lc := safeudp.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, "lo") })
		return errors.Join(err, serr)
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp4", "127.0.0.1:0")
	if errors.Is(err, syscall.EPERM) {
		t.Skip("SO_BINDTODEVICE needs CAP_NET_RAW:", err)
	}
	require.NoError(t, err)
	dup := -1
	rawFD(t, pc, func(fd int) { dup, err = syscall.Dup(fd) })
	require.NoError(t, err)
	defer syscall.Close(dup)

	err = pc.Close()
	require.ErrorIs(t, err, safeudp.ErrHeldElsewhere, "the dup still holds the device-bound socket")

	// Without a dup, the same kind of socket is found gone.
	pc, err = lc.ListenPacket(context.Background(), "udp4", "127.0.0.1:0")
	require.NoError(t, err)
	require.NoError(t, pc.Close())
}

// TestShutdownEndingBeforeTheFirstScanNamesTheHolder: a ctx that ends
// before Close looks the holders up in /proc still gets an error that
// names them and wraps ErrHeldElsewhere.
func TestShutdownEndingBeforeTheFirstScanNamesTheHolder(t *testing.T) {
	pc, err := safeudp.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	dup := -1
	rawFD(t, pc, func(fd int) { dup, err = syscall.Dup(fd) })
	require.NoError(t, err)
	defer syscall.Close(dup)

	// The drain is immediate, so the release step starts well inside the
	// ctx; the first scan would come 2 ms after the socket is found held.
	var last error
	for range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		last = pc.(safeudp.Conn).Shutdown(ctx)
		cancel()
		var re *safeudp.ReleaseError
		if errors.As(last, &re) || errors.Is(last, net.ErrClosed) {
			break
		}
		// The ctx ended before the release step (a slow machine): the
		// conn stays closing, and the next Shutdown goes on.
	}
	var re *safeudp.ReleaseError
	require.ErrorAs(t, last, &re)
	assert.ErrorIs(t, last, safeudp.ErrHeldElsewhere)
	require.Len(t, re.Holders, 1, "holders: %v", re.Holders)
	assert.Equal(t, dup, re.Holders[0].FD)
	assert.Equal(t, os.Getpid(), re.Holders[0].PID)
}

// TestADroppedConnWithAClosedFileCopyIsCollected: the record of a File()
// copy does not keep its conn alive.
func TestADroppedConnWithAClosedFileCopyIsCollected(t *testing.T) {
	pc, err := safeudp.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	addr := pc.LocalAddr().String()
	f, err := pc.(*safeudp.UDPConn).File()
	require.NoError(t, err)
	require.NoError(t, f.Close())
	pc = nil //nolint:ineffassign // dropped on purpose
	_ = pc
	// net's finalizer closes the descriptor once the conn is collected.
	requireBindableOnceCollected(t, addr)
}

// TestHoldersDuringCloseIsRaceFree: Holders reads every live conn's
// identity while Close verifies the release; the identity is written once,
// at open (run with -race).
func TestHoldersDuringCloseIsRaceFree(t *testing.T) {
	pc, err := safeudp.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := pc.LocalAddr().String()
	dup := -1
	rawFD(t, pc, func(fd int) { dup, err = syscall.Dup(fd) })
	require.NoError(t, err)
	defer syscall.Close(dup)

	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 1000 {
			select {
			case <-stop:
				return
			default:
			}
			_, _ = safeudp.Holders("udp", addr)
		}
	}()
	err = pc.Close()
	close(stop)
	safeudp.Await(t, done, "the goroutine")
	require.ErrorIs(t, err, safeudp.ErrHeldElsewhere)
}
