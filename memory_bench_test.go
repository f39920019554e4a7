package safeudp_test

import (
	"net"
	"runtime"
	"testing"

	"github.com/safeudp/safeudp"
)

// BenchmarkConnMemory measures what an open conn costs in memory, plain
// *net.UDPConn against *safeudp.UDPConn. One op is a ListenPacket on an
// ephemeral 127.0.0.1 port and its Close: B/op and allocs/op are what a
// conn allocates in its life. heap-B/conn is the heap a conn holds while
// open: the growth of the live heap (after a GC) with 256 conns open,
// divided by 256, measured once with the timer stopped.
func BenchmarkConnMemory(b *testing.B) {
	for _, bc := range []struct {
		impl   string
		listen func() (net.PacketConn, error)
	}{
		{"plain", func() (net.PacketConn, error) { return net.ListenPacket("udp", "127.0.0.1:0") }},
		{"safeudp", func() (net.PacketConn, error) { return safeudp.ListenPacket("udp", "127.0.0.1:0") }},
	} {
		b.Run("impl="+bc.impl, func(b *testing.B) {
			perConn := heapPerConn(b, 256, bc.listen)
			b.ReportAllocs()
			for b.Loop() {
				pc, err := bc.listen()
				if err != nil {
					b.Fatal(err)
				}
				if err := pc.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(perConn, "heap-B/conn")
		})
	}
}

// heapPerConn opens n conns with listen and returns the growth of the
// live heap per conn, then closes them.
func heapPerConn(b *testing.B, n int, listen func() (net.PacketConn, error)) float64 {
	b.Helper()
	var before, after runtime.MemStats
	conns := make([]net.PacketConn, 0, n)
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range n {
		pc, err := listen()
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, pc)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	for _, pc := range conns {
		if err := pc.Close(); err != nil {
			b.Fatal(err)
		}
	}
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
}
