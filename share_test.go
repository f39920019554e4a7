package safeudp_test

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/safeudp/safeudp"
)

// listenShared opens a Shared conn on address.
func listenShared(t *testing.T, network, address string) net.PacketConn {
	t.Helper()
	lc := safeudp.ListenConfig{Shared: true}
	c, err := lc.ListenPacket(context.Background(), network, address)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// blockedRead starts a ReadFrom on c and returns what it gets.
func blockedRead(c net.PacketConn) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, _, err := c.ReadFrom(make([]byte, 64))
		done <- err
	}()
	return done
}

func awaitInFlight(t *testing.T, c net.PacketConn, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return c.(safeudp.Conn).InFlight() == n }, 5*time.Second, time.Millisecond)
}

func TestSharedOpensASecondHandleWithoutABind(t *testing.T) {
	a := listenShared(t, "udp4", "127.0.0.1:0")
	addr := a.LocalAddr().String()
	b := listenShared(t, "udp4", addr)
	assert.NotSame(t, a, b)
	assert.Equal(t, addr, b.LocalAddr().String())

	// Both sides must opt in: never shared silently.
	_, err := safeudp.ListenPacket("udp4", addr)
	assert.ErrorIs(t, err, syscall.EADDRINUSE, "a listen without Shared binds, and the address is in use")
	plain, err := safeudp.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer plain.Close()
	lc := safeudp.ListenConfig{Shared: true}
	_, err = lc.ListenPacket(context.Background(), "udp4", plain.LocalAddr().String())
	assert.ErrorIs(t, err, syscall.EADDRINUSE, "a conn opened without Shared is not shared")
}

func TestSharedHoldersListEachHandleWhereItWasOpened(t *testing.T) {
	lc := safeudp.ListenConfig{Shared: true}
	a, err := lc.ListenPacket(context.Background(), "udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer a.Close()
	b, err := lc.ListenPacket(context.Background(), "udp4", a.LocalAddr().String())
	require.NoError(t, err)
	defer b.Close()
	hs, err := safeudp.Holders("udp4", b.LocalAddr().String())
	if errors.Is(err, errors.ErrUnsupported) || err != nil && !isLinux() {
		t.Skip("Holders not supported here")
	}
	require.NoError(t, err)
	require.Len(t, hs, 2, "%v", hs)
	assert.Equal(t, hs[0].Inode, hs[1].Inode, "one socket")
	assert.NotEqual(t, hs[0].FD, hs[1].FD, "a descriptor each")
	var opened []string
	for _, h := range hs {
		assert.Equal(t, safeudp.HolderConn, h.Kind)
		opened = append(opened, filepath.Base(h.OpenedAt))
	}
	assert.ElementsMatch(t, []string{"share_test.go:67", "share_test.go:70"}, opened, "where each handle was opened")
}

func TestSharedCloseDrainsOnlyItsOwnCalls(t *testing.T) {
	old := listenShared(t, "udp4", "127.0.0.1:0")
	oldRead := blockedRead(old)
	awaitInFlight(t, old, 1)
	next := listenShared(t, "udp4", old.LocalAddr().String())
	nextRead := blockedRead(next)
	awaitInFlight(t, next, 1)

	require.NoError(t, old.Close(), "a handle that is not the last closes with no error")
	assert.ErrorIs(t, safeudp.Await(t, oldRead, "the old handle's read"), net.ErrClosed)
	assert.Equal(t, 1, next.(safeudp.Conn).InFlight(), "the new handle's read is still running")

	snd := rawUDP(t)
	_, err := snd.WriteTo([]byte("hi"), next.LocalAddr())
	require.NoError(t, err)
	require.NoError(t, safeudp.Await(t, nextRead, "the new handle's read"), "the socket still serves")
}

func TestSharedSocketReleasedOnlyAtTheLastClose(t *testing.T) {
	t.Run("fast path", func(t *testing.T) { testSharedReleasedAtLast(t, safeudp.ListenConfig{Shared: true}) })
	// A Control exposes the socket: every release is asked of the kernel.
	noop := func(string, string, syscall.RawConn) error { return nil }
	t.Run("verified", func(t *testing.T) { testSharedReleasedAtLast(t, safeudp.ListenConfig{Shared: true, Control: noop}) })
}

func testSharedReleasedAtLast(t *testing.T, lc safeudp.ListenConfig) {
	a, err := lc.ListenPacket(context.Background(), "udp4", "127.0.0.1:0")
	require.NoError(t, err)
	addr := a.LocalAddr().String()
	b, err := lc.ListenPacket(context.Background(), "udp4", addr)
	require.NoError(t, err)
	require.NoError(t, a.Close(), "a handle that is not the last leaves the socket to the others")
	_, err = net.ListenPacket("udp4", addr)
	require.ErrorIs(t, err, syscall.EADDRINUSE, "b still holds the socket")
	require.NoError(t, b.Close(), "the last Close verifies the release")
	pc, err := net.ListenPacket("udp4", addr)
	require.NoError(t, err, "released at the last Close")
	require.NoError(t, pc.Close())
}

// A File() copy made through a handle that closed first still holds the
// socket: the last handle's Close must see it, not take its fast path.
func TestSharedLastCloseSeesACopyOfAnEarlierHandle(t *testing.T) {
	if !isLinux() {
		t.Skip("the release is verified on Linux")
	}
	a := listenShared(t, "udp4", "127.0.0.1:0")
	b := listenShared(t, "udp4", a.LocalAddr().String())
	f, err := a.(*safeudp.UDPConn).File()
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, a.Close())
	err = b.Close()
	require.ErrorIs(t, err, safeudp.ErrHeldElsewhere)
	assert.Contains(t, err.Error(), "File() copy")
}

func TestSharedEachDatagramReadByOneHandle(t *testing.T) {
	const n, window = 2000, 100
	a := listenShared(t, "udp4", "127.0.0.1:0")
	b := listenShared(t, "udp4", a.LocalAddr().String())
	var mu sync.Mutex
	seen := map[uint64]int{}
	perHandle := [2]int{}
	var wg sync.WaitGroup
	for i, c := range []net.PacketConn{a, b} {
		wg.Go(func() {
			buf := make([]byte, 64)
			for {
				_, _, err := c.ReadFrom(buf)
				if err != nil {
					return
				}
				mu.Lock()
				seen[binary.BigEndian.Uint64(buf)]++
				perHandle[i]++
				mu.Unlock()
			}
		})
	}
	snd := rawUDP(t)
	msg := make([]byte, 8)
	total := func() int { mu.Lock(); defer mu.Unlock(); return perHandle[0] + perHandle[1] }
	for i := range uint64(n) {
		binary.BigEndian.PutUint64(msg, i)
		_, err := snd.WriteTo(msg, a.LocalAddr())
		require.NoError(t, err)
		if (i+1)%window == 0 { // never more in the queue than it holds
			require.Eventually(t, func() bool { return total() == int(i+1) }, 5*time.Second, time.Millisecond)
		}
	}
	require.NoError(t, a.Close())
	require.NoError(t, b.Close())
	wg.Wait()
	require.Len(t, seen, n)
	for id, k := range seen {
		require.Equal(t, 1, k, "datagram %d read %d times", id, k)
	}
	t.Logf("read by a: %d, by b: %d", perHandle[0], perHandle[1])
}

func TestSharedUnixgramFileRemovedAtTheLastClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	a := listenShared(t, "unixgram", path)
	b := listenShared(t, "unixgram", path)
	require.NoError(t, a.Close())
	_, err := os.Lstat(path)
	require.NoError(t, err, "b still serves on the file")
	require.NoError(t, b.Close())
	_, err = os.Lstat(path)
	require.ErrorIs(t, err, os.ErrNotExist, "the last Close removes the file")
}

func isLinux() bool { return runtime.GOOS == "linux" }
