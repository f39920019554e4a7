package safeudp

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// A Shared group's last handle verifies the release of the one socket the
// handles share, whatever its siblings did to it: here a sibling, exposed
// through SyscallConn, connected it. A key read as if the never-exposed
// last handle knew the socket unconnected lacks the peer; the lookup then
// misses the socket, and Close returns nil while a File copy still holds
// the address (it did with a lookup key shortened by the handle's own
// exposure, a change tried and reverted on 2026-12-02).
func TestReview13SharedSiblingConnectedLastHandleMissesHeldSocket(t *testing.T) {
	lastSharedHandleReportsCopy(t, func(fd int) error {
		return unix.Connect(fd, &unix.SockaddrInet4{Port: 9, Addr: [4]byte{127, 0, 0, 1}})
	}, false)
}

// The same with a device: the sibling binds the shared socket to lo
// (SO_BINDTODEVICE), which the key must carry.
func TestReview13SharedSiblingBoundToDeviceLastHandleMissesHeldSocket(t *testing.T) {
	lastSharedHandleReportsCopy(t, func(fd int) error { return unix.BindToDevice(fd, "lo") }, true)
}

// lastSharedHandleReportsCopy opens two handles of one Shared socket; the
// first, exposed through SyscallConn, changes the socket with change and
// keeps a File copy of it; then both are closed, and the last Close must
// report the copy, which still holds the address. An error from change
// fails the test, or skips it with skipRefused (an option the system may
// refuse).
func lastSharedHandleReportsCopy(t *testing.T, change func(fd int) error, skipRefused bool) {
	t.Helper()
	lc := ListenConfig{Shared: true}
	a, err := lc.ListenPacket(context.Background(), "udp4", "127.0.0.1:0")
	require.NoError(t, err)
	addr := a.LocalAddr().String()
	b, err := lc.ListenPacket(context.Background(), "udp4", addr)
	require.NoError(t, err)
	require.NotNil(t, coreOf(b).group, "b joined a's group")

	// a's descriptor leaves safeudp (a is exposed): the user changes the
	// socket and keeps a File copy of it.
	rc, err := a.(*UDPConn).SyscallConn()
	require.NoError(t, err)
	var cerr error
	require.NoError(t, rc.Control(func(fd uintptr) { cerr = change(int(fd)) }))
	if cerr != nil && skipRefused {
		t.Skip("the system refused the change:", cerr)
	}
	require.NoError(t, cerr)
	f, err := a.(*UDPConn).File()
	require.NoError(t, err)
	defer f.Close()

	require.NoError(t, a.Close(), "not the last handle: nothing to verify")
	err = b.Close()
	// The File copy still holds the socket, and so the address.
	_, berr := net.ListenPacket("udp4", addr)
	require.ErrorIs(t, berr, syscall.EADDRINUSE, "the copy holds the address")
	assert.ErrorIs(t, err, ErrHeldElsewhere, "Close of the last handle must not say released while the copy holds the address")
}

// listen's inherited path marks the conn exposed only after own, and own
// (core.init) reads the identity at once when a Logger is set: the key of
// an inherited socket bound to a device must carry the device all the
// same. Here own is fed a socket bound to lo, as takeInherited would hand
// over one that systemd's BindToDevice= or the parent bound.
func TestReview13InheritedDeviceBoundSocketWithLoggerIsFound(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	rc, err := pc.(*net.UDPConn).SyscallConn()
	require.NoError(t, err)
	var serr error
	require.NoError(t, rc.Control(func(fd uintptr) { serr = unix.BindToDevice(int(fd), "lo") }))
	if serr != nil {
		pc.Close()
		t.Skip("SO_BINDTODEVICE refused:", serr)
	}
	lc := ListenConfig{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	c := lc.own(pc, "udp4", 0)
	coreOf(c).exposed.Store(true) // as listen does for an inherited socket
	defer c.Close()
	id := coreOf(c).identity()
	require.NotZero(t, id.Key.Family)
	found, _, err := id.Key.Lookup(id.Inode)
	require.NoError(t, err)
	assert.True(t, found, "the kernel must find the open socket by its key (key %+v)", id.Key)
}

// inRecvfrom reports whether a thread of this process is blocked in
// recvfrom(2) on fd (amd64: syscall 45; /proc/self/task/*/syscall).
func inRecvfrom(t *testing.T, fd int) bool {
	tasks, err := os.ReadDir("/proc/self/task")
	require.NoError(t, err)
	want := "45 0x" + strconv.FormatInt(int64(fd), 16) + " "
	for _, task := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + task.Name() + "/syscall")
		if err == nil && strings.HasPrefix(string(b), want) {
			return true
		}
	}
	return false
}

// The handles of a Shared group are dups of one open file description, so
// a sibling exposed through SyscallConn that clears O_NONBLOCK puts this
// handle's descriptor in blocking mode too: a read blocked on it stays in
// the kernel, net's Close waits for it, and Close hangs. The slow-close log
// must say so (closeMayBlock looks at the group's exposure; with the
// handle's own alone the timer was not armed and the hang was silent).
func TestReview13SharedHandleBlockedBySiblingLogsSlowClose(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("recvfrom's syscall number is amd64's")
	}
	old := slowCloseAfter
	slowCloseAfter = 50 * time.Millisecond
	defer func() { slowCloseAfter = old }()
	logs := make(chan string, 64)
	rec := &LogRecorder{On: func(msg string) {
		select {
		case logs <- msg:
		default: // full: the test has what it needs
		}
	}}
	lc := ListenConfig{Shared: true, Logger: slog.New(rec)}
	a, err := lc.ListenPacket(context.Background(), "udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer a.Close()
	addr := a.LocalAddr().String()
	b, err := lc.ListenPacket(context.Background(), "udp4", addr)
	require.NoError(t, err)
	require.False(t, coreOf(b).exposed.Load())

	rc, err := a.(*UDPConn).SyscallConn()
	require.NoError(t, err)
	require.NoError(t, rc.Control(func(fd uintptr) { require.NoError(t, unix.SetNonblock(int(fd), false)) }))

	bfd := -1
	_ = rawConnOf(b).Control(func(fd uintptr) { bfd = int(fd) })
	readDone := make(chan error, 1)
	go func() {
		_, _, err := b.ReadFrom(make([]byte, 64))
		readDone <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for !inRecvfrom(t, bfd) {
		require.True(t, time.Now().Before(deadline), "the read never blocked in recvfrom")
		runtime.Gosched()
	}
	closeDone := make(chan error, 1)
	go func() { closeDone <- b.Close() }()

	// Whatever happens, let the read (and so Close) finish at the end.
	defer func() {
		w, err := net.Dial("udp4", addr)
		require.NoError(t, err)
		defer w.Close()
		for i := 0; ; i++ {
			_, _ = w.Write([]byte("x"))
			select {
			case <-closeDone:
				<-readDone
				return
			case <-time.After(10 * time.Millisecond):
			}
			require.Less(t, i, 500, "Close never returned")
		}
	}()

	timeout := time.After(3 * time.Second)
	for {
		select {
		case msg := <-logs:
			if strings.Contains(msg, "Close still waiting") {
				return // reported, as before this change
			}
		case err := <-closeDone:
			closeDone <- err
			t.Fatalf("Close returned (%v) though the read was blocked in the kernel", err)
		case <-timeout:
			t.Fatal("Close is stuck on a read blocked in the kernel, and no slow-close log said so")
		}
	}
}
