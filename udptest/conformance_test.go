package udptest

import (
	"net"
	"testing"
)

// The suite passes on the standard library's conns; the project's root
// package runs it on every network and every safeudp conn type.
func TestPacketConnPassesOnNetUDP4(t *testing.T) {
	TestPacketConn(t, ListenPipe("udp4", net.ListenPacket))
}

func TestPacketConnPassesOnNetUnixgram(t *testing.T) {
	TestPacketConn(t, ListenPipe("unixgram", net.ListenPacket))
}
