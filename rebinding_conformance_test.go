package safeudp_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/safeudp/safeudp"
	"github.com/safeudp/safeudp/udptest"
)

func TestPacketConnConformanceOfRebindingConn(t *testing.T) {
	for _, network := range []string{"udp4", "udp6"} {
		t.Run(network, func(t *testing.T) {
			udptest.TestPacketConn(t, udptest.ListenPipe(network, func(network, address string) (net.PacketConn, error) {
				return safeudp.ListenRebinding(network, address)
			}))
		})
	}
}

// The close-then-bind RebindingConn (the path other systems take) keeps
// the contract too.
func TestPacketConnConformanceOfRebindingConnWithoutOverlap(t *testing.T) {
	udptest.TestPacketConn(t, udptest.ListenPipe("udp4", func(network, address string) (net.PacketConn, error) {
		return safeudp.ListenRebindingGap(&safeudp.ListenConfig{}, network, address)
	}))
}

// The suite again, with both conns of each pipe rebinding all the time:
// every property of net.PacketConn must hold across swaps.
func TestPacketConnConformanceOfRebindingConnUnderRebinds(t *testing.T) {
	for _, network := range []string{"udp4", "udp6"} {
		t.Run(network, func(t *testing.T) {
			udptest.TestPacketConn(t, func() (c1, c2 net.PacketConn, stop func(), err error) {
				addr := "127.0.0.1:0"
				if network == "udp6" {
					addr = "[::1]:0"
				}
				a, err := safeudp.ListenRebinding(network, addr)
				if err != nil {
					return nil, nil, nil, err
				}
				b, err := safeudp.ListenRebinding(network, addr)
				if err != nil {
					a.Close()
					return nil, nil, nil, err
				}
				var wg sync.WaitGroup
				errs := make(chan error, 2)
				for _, c := range []*safeudp.RebindingConn{a, b} {
					wg.Go(func() {
						// Rebind until the conn is closed (bounded: the
						// watchdog closes it after a minute at most).
						for {
							if err := c.Rebind(context.Background()); err != nil {
								if !errors.Is(err, net.ErrClosed) {
									errs <- err
								}
								return
							}
							time.Sleep(200 * time.Microsecond) // load, not synchronization
						}
					})
				}
				stop = func() {
					a.Close()
					b.Close()
					wg.Wait()
					close(errs)
					for err := range errs {
						t.Errorf("Rebind: %v", err)
					}
				}
				return a, b, stop, nil
			})
		})
	}
}
