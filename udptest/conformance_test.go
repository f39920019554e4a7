package udptest

import (
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
)

// The suite passes on the standard library's conns; the project's root
// package runs it on every network and every safeudp conn type.
func TestPacketConnPassesOnNetUDP4(t *testing.T) {
	TestPacketConn(t, ListenPipe("udp4", net.ListenPacket))
}

func TestPacketConnPassesOnNetUnixgram(t *testing.T) {
	TestPacketConn(t, ListenPipe("unixgram", net.ListenPacket))
}

func TestListenPipePanicsOnAnUnsupportedNetwork(t *testing.T) {
	assert.PanicsWithValue(t, `udptest: ListenPipe of unsupported network "tcp": use "udp", "udp4", "udp6" or "unixgram"`, func() {
		ListenPipe("tcp", net.ListenPacket)
	})
}

func TestSameAddrMatchesAnUnspecifiedSender(t *testing.T) {
	got := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}
	assert.True(t, sameAddr(got, &net.UDPAddr{IP: net.IPv4zero, Port: 9}))
	assert.True(t, sameAddr(got, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}))
	assert.False(t, sameAddr(got, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 10}))
	assert.False(t, sameAddr(got, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 9}))
	assert.False(t, sameAddr(nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}))
	assert.True(t, sameAddr(&net.UnixAddr{Name: "/a", Net: "unixgram"}, &net.UnixAddr{Name: "/a", Net: "unixgram"}))
}
