package safeudp_test

import (
	"fmt"
	"net"
	"testing"

	"github.com/safeudp/safeudp"
	"github.com/safeudp/safeudp/udptest"
)

// The standard library's conns are the baseline: the suite must pass on
// them, or it gives false alarms.
func TestPacketConnConformanceOfNetBaseline(t *testing.T) {
	for _, network := range []string{"udp4", "udp6", "unixgram"} {
		t.Run(network, func(t *testing.T) {
			udptest.TestPacketConn(t, udptest.ListenPipe(network, net.ListenPacket))
		})
	}
}

// listenAs returns a listen function for udptest.ListenPipe that opens a
// safeudp conn and fails, so that the pipe fails, unless it has the
// concrete type T.
func listenAs[T net.PacketConn](listen func(network, address string) (net.PacketConn, error)) func(network, address string) (net.PacketConn, error) {
	return func(network, address string) (net.PacketConn, error) {
		pc, err := listen(network, address)
		if err != nil {
			return nil, err
		}
		if _, ok := pc.(T); !ok {
			pc.Close()
			var want T
			return nil, fmt.Errorf("%s conn is a %T, want a %T", network, pc, want)
		}
		return pc, nil
	}
}

func TestPacketConnConformanceOfUDPConn(t *testing.T) {
	for _, network := range []string{"udp4", "udp6"} {
		t.Run(network, func(t *testing.T) {
			udptest.TestPacketConn(t, udptest.ListenPipe(network, listenAs[*safeudp.UDPConn](safeudp.ListenPacket)))
		})
	}
}

func TestPacketConnConformanceOfUnixConn(t *testing.T) {
	udptest.TestPacketConn(t, udptest.ListenPipe("unixgram", listenAs[*safeudp.UnixConn](safeudp.ListenPacket)))
}

// Wrap of a *net.UDPConn gives a *UDPConn, like ListenPacket, but through
// the path that takes over a conn made elsewhere.
func TestPacketConnConformanceOfWrappedNetConn(t *testing.T) {
	wrapped := func(network, address string) (net.PacketConn, error) {
		pc, err := net.ListenPacket(network, address)
		if err != nil {
			return nil, err
		}
		return safeudp.Wrap(pc), nil
	}
	udptest.TestPacketConn(t, udptest.ListenPipe("udp4", listenAs[*safeudp.UDPConn](wrapped)))
}

// unknownConn hides the concrete type of a net conn, as a conn from
// another library would: Wrap cannot tell it is a *net.UDPConn and gives a
// *PacketConn.
type unknownConn struct {
	net.PacketConn
}

func TestPacketConnConformanceOfPacketConn(t *testing.T) {
	for _, network := range []string{"udp4", "unixgram"} {
		t.Run(network, func(t *testing.T) {
			wrapped := func(network, address string) (net.PacketConn, error) {
				pc, err := net.ListenPacket(network, address)
				if err != nil {
					return nil, err
				}
				return safeudp.Wrap(unknownConn{pc}), nil
			}
			udptest.TestPacketConn(t, udptest.ListenPipe(network, listenAs[*safeudp.PacketConn](wrapped)))
		})
	}
}
