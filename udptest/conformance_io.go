package udptest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"
)

// maxDatagram is the buffer size for reads that must not truncate.
const maxDatagram = 64 << 10

// ioResult is what a ReadFrom or WriteTo returned.
type ioResult struct {
	n    int
	addr net.Addr
	err  error
}

// readFrom calls c.ReadFrom(b), bounded by callTimeout.
func readFrom(t *testing.T, c net.PacketConn, b []byte, what string) (ioResult, bool) {
	t.Helper()
	return within(t, what, func() ioResult {
		n, addr, err := c.ReadFrom(b)
		return ioResult{n, addr, err}
	})
}

// writeTo calls c.WriteTo(b, addr), bounded by callTimeout.
func writeTo(t *testing.T, c net.PacketConn, b []byte, addr net.Addr, what string) (ioResult, bool) {
	t.Helper()
	return within(t, what, func() ioResult {
		n, err := c.WriteTo(b, addr)
		return ioResult{n: n, err: err}
	})
}

// pattern returns a datagram of size bytes that differs from the
// datagrams of other seeds.
func pattern(seed byte, size int) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

// send writes b from one end of the pipe to the other and checks that the
// write took all of it.
func send(t *testing.T, from, to net.PacketConn, b []byte, what string) bool {
	t.Helper()
	r, ok := writeTo(t, from, b, to.LocalAddr(), what)
	if !ok {
		return false
	}
	if r.err != nil {
		t.Errorf("udptest: %s: WriteTo(%d bytes, %v) failed: %v", what, len(b), to.LocalAddr(), r.err)
		return false
	}
	if r.n != len(b) {
		t.Errorf("udptest: %s: WriteTo wrote %d bytes of a %d-byte datagram; a datagram is written whole or not at all", what, r.n, len(b))
		return false
	}
	return true
}

// receive reads one datagram on to and checks that it is want, from
// from's address.
func receive(t *testing.T, to, from net.PacketConn, want []byte, what string) bool {
	t.Helper()
	buf := make([]byte, maxDatagram)
	r, ok := readFrom(t, to, buf, what)
	if !ok {
		return false
	}
	if r.err != nil {
		t.Errorf("udptest: %s: ReadFrom failed: %v", what, r.err)
		return false
	}
	if !bytes.Equal(buf[:r.n], want) {
		t.Errorf("udptest: %s: ReadFrom returned %d bytes that differ from the %d-byte datagram sent; each ReadFrom must return exactly one datagram", what, r.n, len(want))
		return false
	}
	if !sameAddr(r.addr, from.LocalAddr()) {
		t.Errorf("udptest: %s: ReadFrom returned the sender address %v, want the sender's LocalAddr %v", what, r.addr, from.LocalAddr())
		return false
	}
	return true
}

// sameAddr reports whether got, an address that ReadFrom returned, is the
// address want that the sender's LocalAddr reports. A sender bound to the
// unspecified address matches any IP with its port.
func sameAddr(got, want net.Addr) bool {
	if got == nil || want == nil {
		return got == want
	}
	switch w := want.(type) {
	case *net.UDPAddr:
		g, ok := got.(*net.UDPAddr)
		return ok && g.Port == w.Port && (w.IP.IsUnspecified() || g.IP.Equal(w.IP))
	case *net.UnixAddr:
		g, ok := got.(*net.UnixAddr)
		return ok && g.Name == w.Name
	}
	return got.Network() == want.Network() && got.String() == want.String()
}

func testBasicIO(t *testing.T, c1, c2 net.PacketConn) {
	for i, dir := range []struct {
		from, to net.PacketConn
		name     string
	}{{c1, c2, "c1 to c2"}, {c2, c1, "c2 to c1"}} {
		msg := pattern(byte(i+1), 512)
		if !send(t, dir.from, dir.to, msg, dir.name) || !receive(t, dir.to, dir.from, msg, dir.name) {
			return
		}
	}
}

func testSenderAddress(t *testing.T, c1, c2 net.PacketConn) {
	ping, pong := pattern(1, 32), pattern(2, 48)
	if !send(t, c1, c2, ping, "ping") {
		return
	}
	buf := make([]byte, maxDatagram)
	r, ok := readFrom(t, c2, buf, "ReadFrom of the ping")
	if !ok {
		return
	}
	if r.err != nil || r.addr == nil {
		t.Fatalf("udptest: ReadFrom of the ping returned address %v, error %v; want the sender's address and no error", r.addr, r.err)
	}
	// Reply to the address ReadFrom returned, not to c1.LocalAddr().
	w, ok := writeTo(t, c2, pong, r.addr, "WriteTo of the pong")
	if !ok {
		return
	}
	if w.err != nil {
		t.Fatalf("udptest: replying to the address ReadFrom returned (%v) failed: %v; that address must be usable with WriteTo", r.addr, w.err)
	}
	receive(t, c1, c2, pong, "the reply to the sender address")
}

func testDatagramBoundaries(t *testing.T, c1, c2 net.PacketConn) {
	sizes := []int{1, 100, 1000, 3}
	sent := make(map[string]bool)
	for i, size := range sizes {
		msg := pattern(byte(10*i), size)
		if !send(t, c1, c2, msg, fmt.Sprintf("datagram %d", i)) {
			return
		}
		sent[string(msg)] = true
	}
	// Datagrams are matched as a set: a pipe may reorder them.
	buf := make([]byte, maxDatagram)
	for i := range sizes {
		r, ok := readFrom(t, c2, buf, fmt.Sprintf("ReadFrom of datagram %d", i))
		if !ok {
			return
		}
		if r.err != nil {
			t.Fatalf("udptest: ReadFrom of datagram %d failed: %v", i, r.err)
		}
		if !sent[string(buf[:r.n])] {
			t.Fatalf("udptest: ReadFrom %d returned %d bytes that are not one of the datagrams sent (sizes %v): datagrams were merged, split or corrupted", i, r.n, sizes)
		}
		delete(sent, string(buf[:r.n]))
	}
}

func testTruncation(t *testing.T, c1, c2 net.PacketConn) {
	big, next := pattern(1, 1000), pattern(2, 5)
	if !send(t, c1, c2, big, "the 1000-byte datagram") || !send(t, c1, c2, next, "the 5-byte datagram") {
		return
	}
	small := make([]byte, 10)
	r, ok := readFrom(t, c2, small, "ReadFrom of a 1000-byte datagram into 10 bytes")
	if !ok {
		return
	}
	// Some systems (Windows) report the truncation as an error along with
	// the bytes; net.PacketConn says to process n > 0 bytes first.
	if r.n != len(small) || !bytes.Equal(small, big[:len(small)]) {
		t.Fatalf("udptest: ReadFrom of a 1000-byte datagram into a 10-byte buffer returned n=%d, err=%v; want the first 10 bytes of the datagram", r.n, r.err)
	}
	if r.err != nil && (errors.Is(r.err, net.ErrClosed) || isTimeout(r.err)) {
		t.Fatalf("udptest: ReadFrom of a truncated datagram failed: %v", r.err)
	}
	if r.err != nil {
		t.Logf("udptest: the truncated read reported %v", r.err)
	}
	// The rest of the big datagram is discarded: the next read returns
	// the next datagram. (On a pipe that reorders, it may come first.)
	buf := make([]byte, maxDatagram)
	r, ok = readFrom(t, c2, buf, "ReadFrom after the truncated datagram")
	if !ok {
		return
	}
	if r.err != nil {
		t.Fatalf("udptest: ReadFrom after a truncated datagram failed: %v", r.err)
	}
	if !bytes.Equal(buf[:r.n], next) {
		t.Fatalf("udptest: ReadFrom after a truncated datagram returned %d bytes, want the next 5-byte datagram: the rest of a truncated datagram must be discarded", r.n)
	}
}

func testZeroLengthDatagram(t *testing.T, c1, c2 net.PacketConn) {
	if !send(t, c1, c2, []byte{}, "the empty datagram") {
		return
	}
	next := pattern(3, 7)
	if !send(t, c1, c2, next, "the datagram after the empty one") {
		return
	}
	buf := make([]byte, maxDatagram)
	r, ok := readFrom(t, c2, buf, "ReadFrom of an empty datagram")
	if !ok {
		return
	}
	if r.err != nil || r.n != 0 || !sameAddr(r.addr, c1.LocalAddr()) {
		t.Fatalf("udptest: ReadFrom of an empty datagram returned n=%d, addr=%v, err=%v; want n=0 from %v and no error: an empty datagram is a datagram",
			r.n, r.addr, r.err, c1.LocalAddr())
	}
	receive(t, c2, c1, next, "the datagram after the empty one")
}

// concurrency of ConcurrentReadWrite: writers per direction, datagrams per
// writer, readers per conn.
const (
	concWriters  = 4
	concPerWrite = 16
	concReaders  = 2
)

func testConcurrentReadWrite(t *testing.T, c1, c2 net.PacketConn) {
	type direction struct {
		from, to net.PacketConn
		tag      byte
	}
	dirs := []direction{{c1, c2, 1}, {c2, c1, 2}}
	const want = concWriters * concPerWrite
	stopMsg := []byte("udptest-stop")

	var wg sync.WaitGroup
	type tally struct {
		mu   sync.Mutex      // guards seen and bad
		seen map[string]bool // datagrams received, by content
		bad  []string        // what was wrong with datagrams received
		all  chan struct{}   // closed when want datagrams have been seen
	}
	tallies := make([]*tally, len(dirs))
	for d, dir := range dirs {
		tl := &tally{seen: make(map[string]bool), all: make(chan struct{})}
		tallies[d] = tl
		for r := 0; r < concReaders; r++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, maxDatagram)
				for {
					n, _, err := dir.to.ReadFrom(buf)
					if err != nil || bytes.Equal(buf[:n], stopMsg) {
						if err != nil {
							tl.mu.Lock()
							tl.bad = append(tl.bad, "ReadFrom failed: "+err.Error())
							tl.mu.Unlock()
						}
						return
					}
					tl.mu.Lock()
					switch {
					case !validConcDatagram(buf[:n], dir.tag):
						tl.bad = append(tl.bad, fmt.Sprintf("a %d-byte datagram that is not one that was sent", n))
					case tl.seen[string(buf[:n])]:
						tl.bad = append(tl.bad, "a datagram received twice")
					default:
						tl.seen[string(buf[:n])] = true
						if len(tl.seen) == want {
							close(tl.all)
						}
					}
					tl.mu.Unlock()
				}
			}()
		}
	}
	writeErrs := make(chan error, 2*concWriters*concPerWrite)
	var writers sync.WaitGroup
	for _, dir := range dirs {
		for w := 0; w < concWriters; w++ {
			writers.Add(1)
			go func() {
				defer writers.Done()
				for i := 0; i < concPerWrite; i++ {
					if _, err := dir.from.WriteTo(concDatagram(dir.tag, w, i), dir.to.LocalAddr()); err != nil {
						writeErrs <- err
					}
				}
			}()
		}
	}
	_, ok := within(t, "the concurrent writers", func() bool { writers.Wait(); return true })
	if !ok {
		return
	}
	close(writeErrs)
	for err := range writeErrs {
		t.Errorf("udptest: concurrent WriteTo failed: %v", err)
	}
	// Wait for every datagram, then stop the readers with one stop
	// datagram each.
	for d, tl := range tallies {
		if !await(t, tl.all, fmt.Sprintf("direction %d did not receive all %d datagrams", d+1, want)) {
			tl.mu.Lock()
			t.Errorf("udptest: direction %d: received %d of %d datagrams", d+1, len(tl.seen), want)
			tl.mu.Unlock()
		}
		for r := 0; r < concReaders; r++ {
			if _, err := dirs[d].from.WriteTo(stopMsg, dirs[d].to.LocalAddr()); err != nil {
				t.Errorf("udptest: WriteTo of a stop datagram failed: %v", err)
			}
		}
	}
	if _, ok := within(t, "the concurrent readers", func() bool { wg.Wait(); return true }); !ok {
		return
	}
	for d, tl := range tallies {
		for _, b := range tl.bad {
			t.Errorf("udptest: direction %d: %s", d+1, b)
		}
	}
}

// concDatagram is datagram i of writer w in direction tag: a header and
// a body derived from it, of a size that varies with i.
func concDatagram(tag byte, w, i int) []byte {
	b := make([]byte, 16+(i%8)*16)
	b[0] = tag
	binary.BigEndian.PutUint32(b[1:], uint32(w))
	binary.BigEndian.PutUint32(b[5:], uint32(i))
	copy(b[9:], pattern(byte(w*31+i), len(b)-9))
	return b
}

func validConcDatagram(b []byte, tag byte) bool {
	if len(b) < 9 || b[0] != tag {
		return false
	}
	w, i := int(binary.BigEndian.Uint32(b[1:])), int(binary.BigEndian.Uint32(b[5:]))
	return w < concWriters && i < concPerWrite && bytes.Equal(b, concDatagram(tag, w, i))
}

func testConcurrentMethods(t *testing.T, c1, c2 net.PacketConn) {
	// Goroutines set deadlines far in the future and read LocalAddr on
	// both conns while datagrams go back and forth; run with -race.
	future := time.Now().Add(time.Hour)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for _, c := range []net.PacketConn{c1, c2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var err error
				switch i % 4 {
				case 0:
					err = c.SetDeadline(future)
				case 1:
					err = c.SetReadDeadline(future)
				case 2:
					err = c.SetWriteDeadline(future)
				case 3:
					if c.LocalAddr() == nil {
						err = errors.New("LocalAddr returned nil")
					}
				}
				if err != nil {
					select {
					case errs <- err:
					default:
					}
					return
				}
			}
		}()
	}
	for i := 0; i < 8; i++ {
		msg := pattern(byte(i), 64+i)
		if !send(t, c1, c2, msg, "c1 to c2") || !receive(t, c2, c1, msg, "c1 to c2") ||
			!send(t, c2, c1, msg, "c2 to c1") || !receive(t, c1, c2, msg, "c2 to c1") {
			break
		}
	}
	close(stop)
	if _, ok := within(t, "the goroutines setting deadlines", func() bool { wg.Wait(); return true }); !ok {
		return
	}
	close(errs)
	for err := range errs {
		t.Errorf("udptest: setting a deadline while I/O runs failed: %v", err)
	}
}
