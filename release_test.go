package safeudp_test

import (
	"fmt"
	"net"
	"runtime"
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
