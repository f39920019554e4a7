package safeudp_test

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/safeudp/safeudp"
)

// udpIO is the part of *net.UDPConn that the ping-pong benchmark uses; a
// *safeudp.UDPConn has the same methods, so both sides of a comparison run
// the very same loop through the same interface.
type udpIO interface {
	ReadFrom(b []byte) (int, net.Addr, error)
	WriteTo(b []byte, addr net.Addr) (int, error)
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
	ReadMsgUDPAddrPort(b, oob []byte) (n, oobn, flags int, addr netip.AddrPort, err error)
	WriteMsgUDPAddrPort(b, oob []byte, addr netip.AddrPort) (n, oobn int, err error)
	LocalAddr() net.Addr
	Close() error
}

var (
	_ udpIO = (*net.UDPConn)(nil)
	_ udpIO = (*safeudp.UDPConn)(nil)
)

// listenBench opens a UDP conn on a fresh 127.0.0.1 port, plain or safeudp.
func listenBench(b *testing.B, impl string) udpIO {
	b.Helper()
	var pc net.PacketConn
	var err error
	switch impl {
	case "plain":
		pc, err = net.ListenPacket("udp4", "127.0.0.1:0")
	case "safeudp":
		pc, err = safeudp.ListenPacket("udp4", "127.0.0.1:0")
	default:
		b.Fatalf("unknown impl %q", impl)
	}
	if err != nil {
		b.Fatal(err)
	}
	return pc.(udpIO)
}

// BenchmarkPingPong measures one round trip over loopback per op: conn A
// writes a datagram to conn B, B reads it and writes it back, A reads it
// (two writes and two reads, all in one goroutine per pair). pairs=8 runs
// eight such pairs in parallel goroutines and reports wall time per round
// trip. api chooses the methods: ReadFrom/WriteTo, the *UDPAddrPort ones,
// or ReadMsgUDPAddrPort/WriteMsgUDPAddrPort. impl=plain is *net.UDPConn,
// impl=safeudp is *safeudp.UDPConn over the same kind of socket.
func BenchmarkPingPong(b *testing.B) {
	for _, size := range []int{64, 1400} {
		for _, pairs := range []int{1, 8} {
			for _, api := range []string{"ReadFrom", "AddrPort", "Msg"} {
				for _, impl := range []string{"plain", "safeudp"} {
					name := fmt.Sprintf("size=%d/pairs=%d/api=%s/impl=%s", size, pairs, api, impl)
					b.Run(name, func(b *testing.B) { benchPingPong(b, size, pairs, api, impl) })
				}
			}
		}
	}
}

func benchPingPong(b *testing.B, size, pairs int, api, impl string) {
	type pair struct{ a, b udpIO }
	ps := make([]pair, pairs)
	for i := range ps {
		ps[i] = pair{listenBench(b, impl), listenBench(b, impl)}
	}
	defer func() {
		for _, p := range ps {
			_ = p.a.Close()
			_ = p.b.Close()
		}
	}()

	b.ReportAllocs()
	b.SetBytes(int64(2 * size))
	var next atomic.Int64 // round trips claimed so far, shared by the pairs
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	b.ResetTimer()
	for _, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := pingPong(p.a, p.b, size, api, &next, int64(b.N)); err != nil {
				failed.Store(&err)
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
}

// pingPong runs round trips between a and c until n have been claimed.
func pingPong(a, c udpIO, size int, api string, next *atomic.Int64, n int64) error {
	buf := make([]byte, size)
	rbuf := make([]byte, size)
	aAddr, cAddr := a.LocalAddr(), c.LocalAddr()
	aAP, cAP := aAddr.(*net.UDPAddr).AddrPort(), cAddr.(*net.UDPAddr).AddrPort()
	for next.Add(1) <= n {
		var err error
		switch api {
		case "ReadFrom":
			if _, err = a.WriteTo(buf, cAddr); err == nil {
				if _, _, err = c.ReadFrom(rbuf); err == nil {
					if _, err = c.WriteTo(rbuf, aAddr); err == nil {
						_, _, err = a.ReadFrom(buf)
					}
				}
			}
		case "AddrPort":
			if _, err = a.WriteToUDPAddrPort(buf, cAP); err == nil {
				if _, _, err = c.ReadFromUDPAddrPort(rbuf); err == nil {
					if _, err = c.WriteToUDPAddrPort(rbuf, aAP); err == nil {
						_, _, err = a.ReadFromUDPAddrPort(buf)
					}
				}
			}
		case "Msg":
			if _, _, err = a.WriteMsgUDPAddrPort(buf, nil, cAP); err == nil {
				if _, _, _, _, err = c.ReadMsgUDPAddrPort(rbuf, nil); err == nil {
					if _, _, err = c.WriteMsgUDPAddrPort(rbuf, nil, aAP); err == nil {
						_, _, _, _, err = a.ReadMsgUDPAddrPort(buf, nil)
					}
				}
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkCallOverhead isolates what a tracked call adds, without the
// kernel's noise: each op is one ReadFromUDPAddrPort on a conn whose read
// deadline has passed, which net answers with a timeout before any system
// call. The difference between impl=safeudp and impl=plain is the cost of
// the tracking itself, to set against a round trip of BenchmarkPingPong
// (four calls).
func BenchmarkCallOverhead(b *testing.B) {
	for _, impl := range []string{"plain", "safeudp"} {
		b.Run("api=ReadFromUDPAddrPort/impl="+impl, func(b *testing.B) {
			c := listenBench(b, impl)
			defer c.Close()
			if err := c.(interface{ SetReadDeadline(time.Time) error }).SetReadDeadline(time.Unix(1, 0)); err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 64)
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := c.ReadFromUDPAddrPort(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
					b.Fatalf("ReadFromUDPAddrPort past its deadline: %v", err)
				}
			}
		})
	}
}
