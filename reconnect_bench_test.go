package safeudp_test

import (
	"context"
	"net"
	"testing"

	"github.com/safeudp/safeudp"
)

// BenchmarkRebind measures one rebind of an idle socket on 127.0.0.1: plain
// net (Close, then ListenPacket on the same address), the Rebind function,
// and RebindingConn.Rebind (on Linux: the overlap, the drain and the close).
func BenchmarkRebind(b *testing.B) {
	b.Run("net", func(b *testing.B) {
		b.ReportAllocs()
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		addr := pc.LocalAddr().String()
		for b.Loop() {
			if err := pc.Close(); err != nil {
				b.Fatal(err)
			}
			if pc, err = net.ListenPacket("udp4", addr); err != nil {
				b.Fatal(err)
			}
		}
		pc.Close()
	})
	b.Run("safeudp.Rebind", func(b *testing.B) {
		b.ReportAllocs()
		pc, err := safeudp.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if pc, err = safeudp.Rebind(context.Background(), pc); err != nil {
				b.Fatal(err)
			}
		}
		pc.Close()
	})
	b.Run("RebindingConn", func(b *testing.B) {
		b.ReportAllocs()
		c, err := safeudp.ListenRebinding("udp4", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if err := c.Rebind(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
		c.Close()
	})
}

// BenchmarkRebindingConnRoundTrip measures a WriteTo to the conn's own
// address and the ReadFrom that gets it, on plain net, on a *UDPConn and
// on a RebindingConn, to show what the retry wrapper costs per call.
func BenchmarkRebindingConnRoundTrip(b *testing.B) {
	roundTrip := func(b *testing.B, pc net.PacketConn) {
		b.ReportAllocs()
		msg, buf := make([]byte, 64), make([]byte, 64)
		to := pc.LocalAddr()
		for b.Loop() {
			if _, err := pc.WriteTo(msg, to); err != nil {
				b.Fatal(err)
			}
			if _, _, err := pc.ReadFrom(buf); err != nil {
				b.Fatal(err)
			}
		}
		pc.Close()
	}
	b.Run("net", func(b *testing.B) {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		roundTrip(b, pc)
	})
	b.Run("UDPConn", func(b *testing.B) {
		pc, err := safeudp.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		roundTrip(b, pc)
	})
	b.Run("RebindingConn", func(b *testing.B) {
		c, err := safeudp.ListenRebinding("udp4", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		roundTrip(b, c)
	})
}
