//go:build unix

package safeudp_test

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/safeudp/safeudp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// rawRecv makes one non-blocking read on fd.
func rawRecv(fd uintptr, b []byte) (int, error) {
	n, _, err := unix.Recvfrom(int(fd), b, unix.MSG_DONTWAIT)
	return n, err
}

// rawSend makes one non-blocking send on fd to an IPv4 address.
func rawSend(fd uintptr, b []byte, to *net.UDPAddr) error {
	return unix.Sendto(int(fd), b, unix.MSG_DONTWAIT, &unix.SockaddrInet4{Port: to.Port, Addr: [4]byte(to.IP.To4())})
}

// rawReadOne reads one datagram through rc: the callback makes one
// non-blocking read and asks to wait when it would block.
func rawReadOne(rc syscall.RawConn, b []byte) (int, error) {
	var n int
	var rerr error
	err := rc.Read(func(fd uintptr) bool {
		n, rerr = rawRecv(fd, b)
		return !errors.Is(rerr, syscall.EAGAIN)
	})
	if err != nil {
		return 0, err
	}
	return n, rerr
}

func TestRebindingConnRawReadMovesToTheNewSocket(t *testing.T) {
	c, err := safeudp.ListenRebinding("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer c.Close()
	rc, err := c.SyscallConn()
	require.NoError(t, err)
	got := make(chan string, 1)
	go func() {
		b := make([]byte, 16)
		n, err := rawReadOne(rc, b)
		if err != nil {
			got <- err.Error()
			return
		}
		got <- string(b[:n])
	}()
	for range 5 {
		require.NoError(t, c.Rebind(context.Background()))
	}
	snd, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer snd.Close()
	_, err = snd.WriteTo([]byte("after swaps"), c.LocalAddr())
	require.NoError(t, err)
	assert.Equal(t, "after swaps", safeudp.Await(t, got, "the raw read"))
}

func TestRebindingConnRawWriteMovesToTheNewSocket(t *testing.T) {
	c, err := safeudp.ListenRebinding("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer c.Close()
	peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer peer.Close()
	require.NoError(t, peer.SetReadDeadline(time.Now().Add(10*time.Second)))
	rc, err := c.SyscallConn()
	require.NoError(t, err)
	b := make([]byte, 16)
	for i := range 3 {
		require.NoError(t, c.Rebind(context.Background()))
		var werr error
		require.NoError(t, rc.Write(func(fd uintptr) bool {
			werr = rawSend(fd, []byte{byte(i)}, peer.LocalAddr().(*net.UDPAddr))
			return !errors.Is(werr, syscall.EAGAIN)
		}))
		require.NoError(t, werr)
		n, from, err := peer.ReadFromUDP(b)
		require.NoError(t, err)
		assert.Equal(t, []byte{byte(i)}, b[:n])
		assert.Equal(t, c.LocalAddr().String(), from.String())
	}
}
