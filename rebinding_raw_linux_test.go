package safeudp_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/safeudp/safeudp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// TestRebindingConnRawControlIsAppliedToEverySocket: options set through
// the RawConn (as quic-go sets IP_RECVTOS and x/net sets IP_TOS) are read
// back on the socket in service after each swap, the last one set winning,
// and IP_RECVTOS is on before the new socket takes traffic: a datagram
// read after a swap carries its TOS.
func TestRebindingConnRawControlIsAppliedToEverySocket(t *testing.T) {
	c, err := safeudp.ListenRebinding("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer c.Close()
	rc, err := c.SyscallConn()
	require.NoError(t, err)
	set := func(level, opt, v int) {
		var serr error
		require.NoError(t, rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), level, opt, v) }))
		require.NoError(t, serr)
	}
	set(unix.IPPROTO_IP, unix.IP_TOS, 0x10)
	set(unix.IPPROTO_IP, unix.IP_TOS, 0x28) // in order: this one wins
	set(unix.SOL_SOCKET, unix.SO_RCVBUF, 96<<10)
	set(unix.IPPROTO_IP, unix.IP_RECVTOS, 1)
	// Read back through x/net, on whichever socket is in service.
	p := ipv4.NewPacketConn(c)
	peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer peer.Close()
	require.NoError(t, ipv4.NewConn(peer).SetTOS(0x48))
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	for i := range 5 {
		require.NoError(t, c.Rebind(context.Background()))
		tos, err := p.TOS()
		require.NoError(t, err)
		assert.Equal(t, 0x28, tos, "IP_TOS after swap %d", i)
		var rcvbuf int
		require.NoError(t, rc.Control(func(fd uintptr) { rcvbuf, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF) }))
		assert.Equal(t, 2*96<<10, rcvbuf, "SO_RCVBUF after swap %d (the kernel doubles it)", i)
		_, err = peer.WriteToUDP([]byte{byte(i)}, c.LocalAddr().(*net.UDPAddr))
		require.NoError(t, err)
		oob := make([]byte, 64)
		_, oobn, _, _, err := c.ReadMsgUDP(make([]byte, 8), oob)
		require.NoError(t, err)
		cms, err := unix.ParseSocketControlMessage(oob[:oobn])
		require.NoError(t, err)
		require.Len(t, cms, 1, "the TOS control message, swap %d", i)
		assert.Equal(t, int32(unix.IP_TOS), cms[0].Header.Type)
		assert.Equal(t, byte(0x48), cms[0].Data[0])
	}
}
