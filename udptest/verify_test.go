package udptest

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/safeudp/safeudp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// quick bounds the checks of a test that expects a report.
var quick = MaxWait(20 * time.Millisecond)

// containing returns the reports that contain s.
func containing(reports []string, s string) []string {
	var out []string
	for _, r := range reports {
		if strings.Contains(r, s) {
			out = append(out, r)
		}
	}
	return out
}

func TestVerifyNonePassesWhenNothingIsLeft(t *testing.T) {
	a, b := Pair(new(fakeTB), "udp4")
	require.NoError(t, a.Close())
	require.NoError(t, b.Close())
	ft := new(fakeTB)
	VerifyNone(ft)
	assert.Empty(t, ft.errs())
}

func TestVerifyNoneReportsAnOpenConnAndWhereItWasOpened(t *testing.T) {
	pc, err := safeudp.ListenPacket("udp4", "127.0.0.1:0") // this line is reported
	require.NoError(t, err)
	t.Cleanup(func() { _ = pc.Close() })
	_, file, line, _ := runtime.Caller(0)
	ft := new(fakeTB)
	VerifyNone(ft, quick)
	reports := containing(ft.errs(), "safeudp conn udp4 "+pc.LocalAddr().String())
	require.Len(t, reports, 1, "reports: %v", ft.errs())
	assert.Contains(t, reports[0], "udptest/"+filepath.Base(file)+":"+strconv.Itoa(line-3))
	assert.Contains(t, reports[0], "close it before the test ends")

	require.NoError(t, pc.Close())
	ft = new(fakeTB)
	VerifyNone(ft)
	assert.Empty(t, ft.errs())
}

func TestVerifyNoneIgnoreCurrentReportsOnlyWhatCameAfter(t *testing.T) {
	before, err := safeudp.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer before.Close()
	ignore := IgnoreCurrent()
	ft := new(fakeTB)
	VerifyNone(ft, ignore)
	assert.Empty(t, ft.errs())

	after, err := safeudp.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer after.Close()
	ft = new(fakeTB)
	VerifyNone(ft, ignore, quick)
	assert.Len(t, containing(ft.errs(), "safeudp conn udp4 "+after.LocalAddr().String()), 1, "reports: %v", ft.errs())
	assert.Empty(t, containing(ft.errs(), before.LocalAddr().String()), "reports: %v", ft.errs())
}

func TestVerifyNoneReportsALeakedDescriptor(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("descriptors are checked on Linux only")
	}
	ignore := IgnoreCurrent()
	f, err := os.Open(os.DevNull)
	require.NoError(t, err)
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	ft := new(fakeTB)
	VerifyNone(ft, ignore, quick)
	assert.Len(t, containing(ft.errs(), "("+os.DevNull+")"), 1, "reports: %v", ft.errs())
	assert.Len(t, containing(ft.errs(), "udp "+pc.LocalAddr().String()), 1, "the socket's address is named; reports: %v", ft.errs())

	require.NoError(t, f.Close())
	require.NoError(t, pc.Close())
	ft = new(fakeTB)
	VerifyNone(ft, ignore)
	assert.Empty(t, ft.errs())
}

func TestVerifyNoneDoesNotCountReservedPortLocks(t *testing.T) {
	ReservePorts(t, 2)
	ft := new(fakeTB)
	VerifyNone(ft)
	assert.Empty(t, ft.errs())
}

func TestVerifyNoneReportsALeakedGoroutine(t *testing.T) {
	stop := make(chan struct{})
	go func() { <-stop }()
	ft := new(fakeTB)
	VerifyNone(ft, quick)
	assert.Len(t, containing(ft.errs(), "goroutines leaked"), 1, "reports: %v", ft.errs())
	close(stop)
}

// lateClose is how long after the start of
// TestVerifyNoneWaitsUpToMaxWaitForAConnClosedLate its conn is closed.
const lateClose = 100 * time.Millisecond

// The open-conn check has no retries of its own (goleak.Find does, for
// goroutines): VerifyNone passes here only because it keeps looking for up
// to MaxWait.
func TestVerifyNoneWaitsUpToMaxWaitForAConnClosedLate(t *testing.T) {
	pc, err := safeudp.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	closed := make(chan struct{})
	time.AfterFunc(lateClose, func() {
		defer close(closed)
		assert.NoError(t, pc.Close())
	})
	t.Cleanup(func() {
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Error("the conn was not closed within 10s")
		}
	})
	ft := new(fakeTB)
	VerifyNone(ft, MaxWait(10*lateClose))
	assert.Empty(t, ft.errs())
	select {
	case <-closed: // VerifyNone waited for the goroutine that closed it
	default:
		t.Error("VerifyNone returned while the goroutine closing the conn was still running")
	}
}

// fakeM stands in for *testing.M.
type fakeM struct {
	code int
	run  func()
}

func (m fakeM) Run() int {
	if m.run != nil {
		m.run()
	}
	return m.code
}

func TestVerifyTestMainFailsASuccessfulRunThatLeftAConnOpen(t *testing.T) {
	var pc net.PacketConn
	var stderr bytes.Buffer
	code := verifyTestMain(fakeM{run: func() {
		var err error
		pc, err = safeudp.ListenPacket("udp4", "127.0.0.1:0")
		require.NoError(t, err)
	}}, &stderr, quick)
	defer pc.Close()
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr.String(), "udptest: errors on a successful test run")
	assert.Contains(t, stderr.String(), pc.LocalAddr().String())
}

func TestVerifyTestMainPassesACleanRunAndKeepsAFailingStatus(t *testing.T) {
	var stderr bytes.Buffer
	assert.Equal(t, 0, verifyTestMain(fakeM{}, &stderr))
	assert.Empty(t, stderr.String())
	assert.Equal(t, 3, verifyTestMain(fakeM{code: 3}, &stderr), "a failed run keeps its status and is not checked")
	assert.Empty(t, stderr.String())
}
