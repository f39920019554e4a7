package safeudp_test

import (
	"fmt"
	"net"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/safeudp/safeudp"
)

// batchChunk is how many datagrams a batch benchmark queues or sends
// between two pauses of the timer: a multiple of every batch size, and few
// enough to fit a default Linux receive buffer (212992 bytes hold 256
// datagrams of 64 bytes on loopback, each charged about 830 bytes), so
// that none is dropped even where the larger buffer asked for below is
// capped by net.core.rmem_max.
const batchChunk = 128

// batchBench is what a batch benchmark drives: a plain conn or a safeudp one.
type batchBench struct {
	uc    *net.UDPConn     // the socket (for plain, the conn itself)
	safe  *safeudp.UDPConn // non-nil for impl=safeudp
	plain *ipv4.PacketConn // x/net over uc, for impl=plain batches
}

func newBatchBench(b *testing.B, impl string) *batchBench {
	b.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	uc := pc.(*net.UDPConn)
	// Room for a whole chunk in the kernel: no datagram is ever dropped.
	if err := uc.SetReadBuffer(4 << 20); err != nil {
		b.Fatal(err)
	}
	bio := &batchBench{uc: uc}
	if impl == "safeudp" {
		bio.safe = safeudp.Wrap(uc).(*safeudp.UDPConn)
	} else {
		bio.plain = ipv4.NewPacketConn(uc)
	}
	return bio
}

func (bio *batchBench) Close() error {
	if bio.safe != nil {
		return bio.safe.Close()
	}
	return bio.uc.Close()
}

func (bio *batchBench) ReadBatch(ms []ipv4.Message) (int, error) {
	if bio.safe != nil {
		return bio.safe.ReadBatch(ms, 0)
	}
	return bio.plain.ReadBatch(ms, 0)
}

func (bio *batchBench) WriteBatch(ms []ipv4.Message) (int, error) {
	if bio.safe != nil {
		return bio.safe.WriteBatch(ms, 0)
	}
	return bio.plain.WriteBatch(ms, 0)
}

func (bio *batchBench) ReadFrom(p []byte) (int, net.Addr, error) {
	if bio.safe != nil {
		return bio.safe.ReadFrom(p)
	}
	return bio.uc.ReadFrom(p)
}

func (bio *batchBench) WriteTo(p []byte, addr net.Addr) (int, error) {
	if bio.safe != nil {
		return bio.safe.WriteTo(p, addr)
	}
	return bio.uc.WriteTo(p, addr)
}

func (bio *batchBench) ReadFromUDPAddrPort(p []byte) error {
	var err error
	if bio.safe != nil {
		_, _, err = bio.safe.ReadFromUDPAddrPort(p)
	} else {
		_, _, err = bio.uc.ReadFromUDPAddrPort(p)
	}
	return err
}

func (bio *batchBench) WriteToUDPAddrPort(p []byte, addr *net.UDPAddr) error {
	var err error
	if bio.safe != nil {
		_, err = bio.safe.WriteToUDPAddrPort(p, addr.AddrPort())
	} else {
		_, err = bio.uc.WriteToUDPAddrPort(p, addr.AddrPort())
	}
	return err
}

// batchAPIs are the ways of moving datagrams that the batch benchmarks
// compare: a loop of one call per datagram (ReadFrom/WriteTo, and the
// allocation-free *UDPAddrPort methods), and batches of 8, 32 and 128.
var batchAPIs = []struct {
	name  string
	batch int // datagrams per call; 0 for a loop of single calls
}{
	{"api=ReadFrom", 0}, // ReadFrom and WriteTo
	{"api=AddrPort", 0}, // ReadFromUDPAddrPort and WriteToUDPAddrPort
	{"api=Batch/batch=8", 8},
	{"api=Batch/batch=32", 32},
	{"api=Batch/batch=128", 128},
}

// BenchmarkBatchRead measures receiving 64-byte datagrams over loopback,
// one op per datagram, reported as pkts/s too. Before each chunk of 128
// datagrams the timer stops while a helper conn queues the chunk on the
// receiver (with sendmmsg); then the receiver reads the whole chunk with
// the api under test, timed. impl=plain is a *net.UDPConn (its batches
// through golang.org/x/net/ipv4.PacketConn), impl=safeudp a
// *safeudp.UDPConn over the same kind of socket.
func BenchmarkBatchRead(b *testing.B) {
	skipWithoutBatchIO(b)
	for _, api := range batchAPIs {
		for _, impl := range []string{"plain", "safeudp"} {
			b.Run(fmt.Sprintf("size=64/%s/impl=%s", api.name, impl), func(b *testing.B) {
				benchBatchRead(b, 64, api.batch, api.name == "api=AddrPort", impl)
			})
		}
	}
}

func benchBatchRead(b *testing.B, size, batch int, addrPort bool, impl string) {
	rx := newBatchBench(b, impl)
	defer rx.Close()
	tx := newBatchBench(b, "plain")
	defer tx.Close()
	out := make([]ipv4.Message, batchChunk)
	for i := range out {
		out[i].Buffers = [][]byte{make([]byte, size)}
		out[i].Addr = rx.uc.LocalAddr()
	}
	in := make([]ipv4.Message, max(batch, 1))
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, size)}
	}
	buf := make([]byte, size)
	if err := rx.uc.SetReadDeadline(time.Now().Add(time.Minute)); err != nil { // a lost datagram fails, never hangs
		b.Fatal(err)
	}

	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		chunk := min(batchChunk, b.N-done)
		b.StopTimer()
		sendAll(b, tx, out[:chunk])
		b.StartTimer()
		for got := 0; got < chunk; {
			var n int
			var err error
			switch {
			case batch > 0:
				n, err = rx.ReadBatch(in[:min(batch, chunk-got)])
			case addrPort:
				n, err = 1, rx.ReadFromUDPAddrPort(buf)
			default:
				n = 1
				_, _, err = rx.ReadFrom(buf)
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

// BenchmarkBatchWrite measures sending 64-byte datagrams over loopback,
// one op per datagram, reported as pkts/s too: the conn under test sends a
// chunk of 128 datagrams, timed, to a receiver that the benchmark then
// drains with the timer stopped, so that no datagram is dropped. impl as
// in BenchmarkBatchRead.
func BenchmarkBatchWrite(b *testing.B) {
	skipWithoutBatchIO(b)
	for _, api := range batchAPIs {
		for _, impl := range []string{"plain", "safeudp"} {
			b.Run(fmt.Sprintf("size=64/%s/impl=%s", api.name, impl), func(b *testing.B) {
				benchBatchWrite(b, 64, api.batch, api.name == "api=AddrPort", impl)
			})
		}
	}
}

func benchBatchWrite(b *testing.B, size, batch int, addrPort bool, impl string) {
	tx := newBatchBench(b, impl)
	defer tx.Close()
	rx := newBatchBench(b, "plain")
	defer rx.Close()
	to := rx.uc.LocalAddr().(*net.UDPAddr)
	out := make([]ipv4.Message, max(batch, 1))
	for i := range out {
		out[i].Buffers = [][]byte{make([]byte, size)}
		out[i].Addr = to
	}
	buf := make([]byte, size)
	in := make([]ipv4.Message, 128)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, size)}
	}

	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		chunk := min(batchChunk, b.N-done)
		for sent := 0; sent < chunk; {
			var n int
			var err error
			switch {
			case batch > 0:
				n, err = tx.WriteBatch(out[:min(batch, chunk-sent)])
			case addrPort:
				n, err = 1, tx.WriteToUDPAddrPort(buf, to)
			default:
				n = 1
				_, err = tx.WriteTo(buf, to)
			}
			if err != nil {
				b.Fatal(err)
			}
			sent += n
		}
		b.StopTimer()
		receiveAll(b, rx, in, chunk)
		b.StartTimer()
		done += chunk
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
}

// sendAll writes all of ms with sendmmsg, looping on short writes.
func sendAll(b *testing.B, tx *batchBench, ms []ipv4.Message) {
	for sent := 0; sent < len(ms); {
		n, err := tx.WriteBatch(ms[sent:])
		if err != nil {
			b.Fatal(err)
		}
		sent += n
	}
}

// receiveAll reads exactly n datagrams, failing if one does not arrive
// within 10 seconds (it was dropped).
func receiveAll(b *testing.B, rx *batchBench, in []ipv4.Message, n int) {
	if err := rx.uc.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		b.Fatal(err)
	}
	for got := 0; got < n; {
		m, err := rx.ReadBatch(in[:min(len(in), n-got)])
		if err != nil {
			b.Fatalf("received %d of %d datagrams: %v", got, n, err)
		}
		got += m
	}
}

// BenchmarkBatchSetup measures what the first ReadBatch or WriteBatch on a
// *safeudp.UDPConn pays once per conn: creating the
// golang.org/x/net/ipv4.PacketConn over its socket.
func BenchmarkBatchSetup(b *testing.B) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer pc.Close()
	b.ReportAllocs()
	for b.Loop() {
		_ = ipv4.NewPacketConn(pc)
	}
}
