//go:build linux

package safeudp_test

import (
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	"github.com/safeudp/safeudp"
)

// fastPathConn is what BenchmarkRebindingFastPath reads through: a
// *safeudp.UDPConn or a *safeudp.RebindingConn.
type fastPathConn interface {
	net.PacketConn
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	SyscallConn() (syscall.RawConn, error)
	SetReadBuffer(bytes int) error
}

// BenchmarkRebindingFastPath measures the fast paths a RebindingConn adds
// against the same paths on a UDPConn, in one run: one op is one 64-byte
// datagram received over loopback (chunks of 128 queued with the timer
// stopped, as in BenchmarkBatchRead). api=ReadBatch reads batches of 32;
// api=RawRead reads one datagram per RawConn.Read, the callback making
// one non-blocking recvfrom (as x/net's ipv4.PacketConn does with
// recvmmsg). impl=udpconn is *safeudp.UDPConn, the baseline;
// impl=rebinding is *safeudp.RebindingConn, without swaps.
func BenchmarkRebindingFastPath(b *testing.B) {
	for _, api := range []string{"ReadBatch", "RawRead"} {
		for _, impl := range []string{"udpconn", "rebinding"} {
			b.Run("size=64/api="+api+"/impl="+impl, func(b *testing.B) {
				benchFastPath(b, api, impl)
			})
		}
	}
}

func benchFastPath(b *testing.B, api, impl string) {
	var rx fastPathConn
	if impl == "rebinding" {
		c, err := safeudp.ListenRebinding("udp4", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		rx = c
	} else {
		pc, err := safeudp.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		rx = pc.(*safeudp.UDPConn)
	}
	defer rx.Close()
	if err := rx.SetReadBuffer(4 << 20); err != nil {
		b.Fatal(err)
	}
	if err := rx.SetReadDeadline(time.Now().Add(time.Minute)); err != nil { // a lost datagram fails, never hangs
		b.Fatal(err)
	}
	tx := newBatchBench(b, "plain")
	defer tx.Close()
	out := make([]ipv4.Message, batchChunk)
	for i := range out {
		out[i].Buffers = [][]byte{make([]byte, 64)}
		out[i].Addr = rx.LocalAddr()
	}
	in := make([]ipv4.Message, 32)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, 64)}
	}
	rc, err := rx.SyscallConn()
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 64)
	var rerr error
	recv := func(fd uintptr) bool {
		_, _, rerr = unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT)
		return rerr != unix.EAGAIN
	}

	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		chunk := min(batchChunk, b.N-done)
		b.StopTimer()
		sendAll(b, tx, out[:chunk])
		b.StartTimer()
		for got := 0; got < chunk; {
			n := 1
			var err error
			if api == "ReadBatch" {
				n, err = rx.ReadBatch(in[:min(len(in), chunk-got)], 0)
			} else if err = rc.Read(recv); err == nil {
				err = rerr
			}
			if err != nil {
				b.Fatal(err)
			}
			got += n
		}
		done += chunk
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
}
