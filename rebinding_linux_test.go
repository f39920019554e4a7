package safeudp

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
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
	<-sendDone
	cur := c.cur.Load().uc
	accounted := func() int64 { return got.Load() + overflowOld.Load() + socketDrops(t, cur) }
	assert.Eventually(t, func() bool { return accounted() >= sent.Load() }, 10*time.Second, time.Millisecond)
	overflow := overflowOld.Load() + socketDrops(t, cur)
	require.NoError(t, c.Close())
	wg.Wait()
	t.Logf("100 rebinds: sent %d, received %d, refused by full receive buffers %d", sent.Load(), got.Load(), overflow)
	require.Equal(t, sent.Load(), got.Load()+overflow, "datagrams lost to a swap")
}
