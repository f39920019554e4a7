package safeudp

import (
	"context"
	"net"
	"syscall"
)

// ListenReuseport binds addr on network with SO_REUSEPORT set, as a
// second instance of a SO_REUSEPORT server would.
func ListenReuseport(network, addr string) (net.PacketConn, error) {
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		return setReuseport(c, true)
	}}
	return lc.ListenPacket(context.Background(), network, addr)
}
