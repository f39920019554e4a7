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
