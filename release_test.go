package safeudp_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/safeudp/safeudp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lineAbove returns file:line of the line above its caller, as safeudp
// prints it.
func lineAbove() string {
	_, file, line, _ := runtime.Caller(1)
	dir, name := file, file
	for i := len(file) - 1; i >= 0; i-- {
		if file[i] == '/' {
			name = file[i+1:]
			dir = file[:i]
			break
		}
	}
	for i := len(dir) - 1; i >= 0; i-- {
		if dir[i] == '/' {
			dir = dir[i+1:]
			break
		}
	}
	return fmt.Sprintf("%s/%s:%d", dir, name, line-1)
}

func TestCloseReportsOpenFileCopy(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("File is not supported for sockets on windows")
	}
	pc, err := safeudp.ListenPacket("udp", "127.0.0.1:0")
	opened := lineAbove()
	require.NoError(t, err)
	f, err := pc.(*safeudp.UDPConn).File()
	copied := lineAbove()
	require.NoError(t, err)

	err = pc.Close()
	require.Error(t, err, "Close must not pretend success while a File() copy holds the socket")
	assert.ErrorIs(t, err, safeudp.ErrNotReleased)
	assert.ErrorIs(t, err, safeudp.ErrHeldElsewhere)
	var re *safeudp.ReleaseError
	require.ErrorAs(t, err, &re)
	require.Len(t, re.Holders, 1, "holders: %v", re.Holders)
	h := re.Holders[0]
	assert.Equal(t, safeudp.HolderFileCopy, h.Kind)
	assert.Equal(t, opened, h.OpenedAt)
	assert.Equal(t, copied, h.CopiedAt)
	assert.Contains(t, err.Error(), "a File() copy made at "+copied+" of the socket opened at "+opened)
	assert.Zero(t, re.Waited, "a long-lived holder is reported at once, not waited for")

	require.NoError(t, f.Close())
	again, err := net.ListenPacket("udp", pc.LocalAddr().String())
	require.NoError(t, err, "the address is free once the copy is closed")
	require.NoError(t, again.Close())
}

func TestCloseAfterFileCopyClosedSucceeds(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("File is not supported for sockets on windows")
	}
	pc, err := safeudp.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	f, err := pc.(*safeudp.UDPConn).File()
	require.NoError(t, err)
	require.NoError(t, f.Close())
	require.NoError(t, pc.Close())
}

// TestFileCopyTrackingKeepsConnNonBlocking checks that recording a File()
// copy never calls Fd on it (which would put the shared socket in
// blocking mode, golang/go#29277): a ReadFrom blocked on the conn must
// still be unblocked by Close.
func TestFileCopyTrackingKeepsConnNonBlocking(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("File is not supported for sockets on windows")
	}
	pc, err := safeudp.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	f, err := pc.(*safeudp.UDPConn).File()
	require.NoError(t, err)
	defer f.Close()

	readErr := make(chan error, 1)
	go func() {
		_, _, err := pc.ReadFrom(make([]byte, 1))
		readErr <- err
	}()
	require.Eventually(t, func() bool { return pc.(safeudp.Conn).InFlight() == 1 }, 5*time.Second, time.Millisecond)

	closed := make(chan error, 1)
	go func() { closed <- pc.Close() }()
	select {
	case err := <-closed:
		assert.ErrorIs(t, err, safeudp.ErrHeldElsewhere)
	case <-time.After(10 * time.Second):
		t.Fatal("Close hung: the conn was put in blocking mode")
	}
	select {
	case err := <-readErr:
		assert.ErrorIs(t, err, net.ErrClosed)
	case <-time.After(10 * time.Second):
		t.Fatal("ReadFrom never returned")
	}
}

// TestCloseReportsADupMadeBeforeWrap: a conn dup'd before Wrap took it
// over is still held after Close, and Close says so (the fast path that
// skips the lookup is only for sockets ListenPacket opened).
func TestCloseReportsADupMadeBeforeWrap(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the release is verified on Linux only")
	}
	uc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	f, err := uc.File() // a copy the wrapper never sees
	require.NoError(t, err)
	defer f.Close()
	pc := safeudp.Wrap(uc)
	err = pc.Close()
	require.ErrorIs(t, err, safeudp.ErrNotReleased)
	require.ErrorIs(t, err, safeudp.ErrHeldElsewhere)
}

// TestCloseReportsADupMadeByControl: a ListenConfig.Control is handed the
// raw socket before bind and may keep a dup of it; Close must then ask the
// kernel, and report the dup, rather than take the fast path.
func TestCloseReportsADupMadeByControl(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the release is verified on Linux only")
	}
	var dup int = -1
	lc := safeudp.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		var derr error
		if err := c.Control(func(fd uintptr) { dup, derr = syscall.Dup(int(fd)) }); err != nil {
			return err
		}
		return derr
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp4", "127.0.0.1:0")
	require.NoError(t, err)
	require.GreaterOrEqual(t, dup, 0)
	defer syscall.Close(dup)
	err = pc.Close()
	require.ErrorIs(t, err, safeudp.ErrNotReleased, "Control kept a dup: the socket is still held")
	require.ErrorIs(t, err, safeudp.ErrHeldElsewhere)
}

// TestFileRacingCloseIsNeverAFalseRelease: File calls racing Close either
// fail with net.ErrClosed or give a copy that Close then reports; Close
// never returns nil while a copy it let through is open.
func TestFileRacingCloseIsNeverAFalseRelease(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the release is verified on Linux only")
	}
	for round := range 200 {
		pc, err := safeudp.ListenPacket("udp4", "127.0.0.1:0")
		require.NoError(t, err)
		c := pc.(*safeudp.UDPConn)
		copies := make(chan *os.File, 1000)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for range 1000 { // bounded; ends at the first refusal
				f, err := c.File()
				if err != nil {
					return
				}
				copies <- f
			}
		}()
		runtime.Gosched()
		closeErr := c.Close()
		<-done
		close(copies)
		n := 0
		for f := range copies {
			n++
			_ = f.Close()
		}
		if n > 0 {
			require.ErrorIs(t, closeErr, safeudp.ErrHeldElsewhere, "round %d: %d copies open at Close, yet Close said released", round, n)
		} else {
			require.NoError(t, closeErr, "round %d", round)
		}
	}
}
