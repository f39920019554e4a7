package safeudp_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"

	"github.com/safeudp/safeudp"
)

// BenchmarkCloseRebind measures one close-then-ListenPacket cycle on the
// same 127.0.0.1 port: plain net against safeudp, whose Close verifies the
// release (on Linux, a sock_diag lookup) and whose ListenPacket records the
// socket's identity.
func BenchmarkCloseRebind(b *testing.B) {
	for _, bc := range []struct {
		name   string
		listen func(addr string) (net.PacketConn, error)
	}{
		{"plain", func(addr string) (net.PacketConn, error) { return net.ListenPacket("udp", addr) }},
		{"safeudp", func(addr string) (net.PacketConn, error) { return safeudp.ListenPacket("udp", addr) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			pc, err := bc.listen("127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			addr := pc.LocalAddr().String()
			for b.Loop() {
				if err := pc.Close(); err != nil {
					b.Fatal(err)
				}
				if pc, err = bc.listen(addr); err != nil {
					b.Fatal(err)
				}
			}
			if err := pc.Close(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkTracing measures a listen-and-close cycle with tracing off and
// on (a Logger at Info level whose handler discards).
func BenchmarkTracing(b *testing.B) {
	for _, bc := range []struct {
		name string
		lc   safeudp.ListenConfig
	}{
		{"off", safeudp.ListenConfig{}},
		{"on", safeudp.ListenConfig{Logger: slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			for b.Loop() {
				pc, err := bc.lc.ListenPacket(ctx, "udp", "127.0.0.1:0")
				if err != nil {
					b.Fatal(err)
				}
				if err := pc.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
