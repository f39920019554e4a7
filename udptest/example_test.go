package udptest_test

import (
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/safeudp/safeudp"
	"github.com/safeudp/safeudp/udptest"
)

// exampleT stands in for the *testing.T of a test so that the examples
// below run as documentation. In a test, pass t.
type exampleT struct{ cleanups []func() }

func (e *exampleT) Helper()          {}
func (e *exampleT) Cleanup(f func()) { e.cleanups = append(e.cleanups, f) }
func (e *exampleT) Errorf(format string, args ...any) {
	fmt.Printf("test failed: "+format+"\n", args...)
}
func (e *exampleT) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

// finish runs the cleanups, as the testing package does when a test ends.
func (e *exampleT) finish() {
	for i := len(e.cleanups) - 1; i >= 0; i-- {
		e.cleanups[i]()
	}
}

// Two conns on loopback that can reach each other, closed when the test
// ends.
func ExamplePair() {
	t := new(exampleT) // in a test: t *testing.T
	defer t.finish()

	a, b := udptest.Pair(t, "udp4")
	if _, err := a.WriteTo([]byte("ping"), b.LocalAddr()); err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	// Bound every read in a test: a lost datagram fails the test rather
	// than hanging it.
	if err := b.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatalf("SetReadDeadline: %v", err)
	}
	buf := make([]byte, 64)
	n, from, err := b.ReadFrom(buf)
	if err != nil {
		t.Fatalf("ReadFrom: %v", err)
	}
	fmt.Println(string(buf[:n]), "from a:", from.String() == a.LocalAddr().String())
	// Output: ping from a: true
}

// A server under test that restarts on the same, known port: the port is
// reserved for this test alone, machine-wide, and each restart must find it
// free again.
func ExampleReservePort() {
	t := new(exampleT) // in a test: t *testing.T
	defer t.finish()

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(udptest.ReservePort(t)))
	for restart := 0; restart < 3; restart++ {
		pc, err := safeudp.ListenPacket("udp4", addr)
		if err != nil {
			t.Fatalf("restart %d: %v", restart, err)
		}
		// ... serve, then stop ...
		if err := pc.Close(); err != nil {
			t.Fatalf("restart %d: Close: %v", restart, err)
		}
	}
	fmt.Println("bound the reserved port 3 times")
	// Output: bound the reserved port 3 times
}

// Run the conformance suite on a conn type of your own: here safeudp's,
// made by safeudp.ListenPacket on loopback UDP. (The suite needs a
// *testing.T, so this example is compiled but not run.)
func ExampleTestPacketConn() {
	// In a _test.go file:
	testConformance := func(t *testing.T) {
		udptest.TestPacketConn(t, udptest.ListenPipe("udp4", safeudp.ListenPacket))
	}
	_ = testConformance
}

// Check, when a test ends, that it left no safeudp conn open, no
// descriptor and no goroutine behind. The cleanup is registered first so
// that it runs last, after the cleanups of Listen and Pair. VerifyNone sees
// the whole process, so the test must not run in parallel with others;
// IgnoreCurrent leaves out what was there before the test (here, the pipe
// and goroutine with which the testing package captures this example's
// output).
func ExampleVerifyNone() {
	t := new(exampleT) // in a test: t *testing.T

	before := udptest.IgnoreCurrent()
	t.Cleanup(func() { udptest.VerifyNone(t, before) })
	a, b := udptest.Pair(t, "udp4")
	if _, err := a.WriteTo([]byte("ping"), b.LocalAddr()); err != nil {
		t.Fatalf("WriteTo: %v", err)
	}

	t.finish() // the end of the test: closes a and b, then checks
	fmt.Println("nothing left behind")
	// Output: nothing left behind
}

// Check the whole test binary: in the package's TestMain. (VerifyTestMain
// ends the process, so this example is compiled but not run.)
func ExampleVerifyTestMain() {
	testMain := func(m *testing.M) {
		udptest.VerifyTestMain(m)
	}
	_ = testMain
}

// A conn on loopback for a test, closed when the test ends; the test fails
// if that Close reports an error (on Linux, a holder it names).
func ExampleListen() {
	t := new(exampleT) // in a test: t *testing.T
	defer t.finish()

	pc := udptest.Listen(t, "udp4")
	fmt.Println(pc.LocalAddr().(*net.UDPAddr).IP)
	// Output: 127.0.0.1
}

// ReserveAddr is ReservePort as an address, ready for ListenPacket or
// DialUDP: no net.JoinHostPort by hand.
func ExampleReserveAddr() {
	t := new(exampleT) // in a test: t *testing.T
	defer t.finish()

	addr := udptest.ReserveAddr(t, "udp4") // "[::1]:N" for "udp6"
	pc, err := safeudp.ListenPacket("udp4", addr)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer pc.Close()
	host, _, _ := net.SplitHostPort(addr)
	fmt.Println(pc.LocalAddr().String() == addr, host)
	// Output: true 127.0.0.1
}

// ExecNoise reproduces the fork race in a test of your own: while child
// processes are being started, plain net's close-then-bind on a fixed
// port fails now and then; safeudp's never does.
func ExampleExecNoise() {
	t := new(exampleT) // in a test: t *testing.T
	defer t.finish()

	udptest.ExecNoise(t, 2) // before ReserveAddr: it stops after the port's check
	addr := udptest.ReserveAddr(t, "udp4")
	for restart := range 200 {
		pc, err := safeudp.ListenPacket("udp4", addr)
		if err != nil {
			t.Fatalf("restart %d: %v", restart, err)
		}
		if err := pc.Close(); err != nil {
			t.Fatalf("restart %d: Close: %v", restart, err)
		}
	}
	fmt.Println("200 restarts under exec noise")
	// Output: 200 restarts under exec noise
}

// countingConn is a wrapper of one's own: it counts the datagrams read.
type countingConn struct {
	net.PacketConn
	reads int
}

func (c *countingConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(b)
	if err == nil {
		c.reads++
	}
	return n, addr, err
}

// ListenPipe makes the pipes of the conformance suite with a listen
// function of your own, here one that wraps safeudp's conns in a
// countingConn: in a _test.go file, pass it to TestPacketConn (which
// needs a *testing.T). Here one pipe is made and used by hand.
func ExampleListenPipe() {
	listen := func(network, address string) (net.PacketConn, error) {
		pc, err := safeudp.ListenPacket(network, address)
		if err != nil {
			return nil, err
		}
		return &countingConn{PacketConn: pc}, nil
	}
	// In a test: udptest.TestPacketConn(t, udptest.ListenPipe("udp4", listen))
	c1, c2, stop, err := udptest.ListenPipe("udp4", listen)()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()
	if _, err := c1.WriteTo([]byte("ping"), c2.LocalAddr()); err != nil {
		fmt.Println(err)
		return
	}
	_ = c2.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := c2.ReadFrom(make([]byte, 64)); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("reads counted:", c2.(*countingConn).reads)
	// Output: reads counted: 1
}
