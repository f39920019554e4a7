package safeudp_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/safeudp/safeudp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestListenNamesChildHoldingPort(t *testing.T) {
	pc, err := safeudp.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := pc.LocalAddr().String()
	f, err := pc.(*safeudp.UDPConn).File()
	require.NoError(t, err)
	cmd, _ := startChildHolding(t, f, "60")
	require.NoError(t, f.Close())

	err = pc.Close()
	require.ErrorIs(t, err, safeudp.ErrHeldElsewhere, "the exec'd child is a long-lived holder")
	var re *safeudp.ReleaseError
	require.ErrorAs(t, err, &re)
	require.Len(t, re.Holders, 1, "holders: %v", re.Holders)
	assert.Equal(t, safeudp.HolderChild, re.Holders[0].Kind)
	assert.Equal(t, cmd.Process.Pid, re.Holders[0].PID)

	_, err = safeudp.ListenPacket("udp", addr)
	require.Error(t, err)
	assert.ErrorIs(t, err, syscall.EADDRINUSE)
	var oe *net.OpError
	require.ErrorAs(t, err, &oe)
	var ue *safeudp.AddrInUseError
	require.ErrorAs(t, err, &ue)
	require.Len(t, ue.Holders, 1, "holders: %v", ue.Holders)
	h := ue.Holders[0]
	assert.Equal(t, safeudp.HolderChild, h.Kind)
	assert.Equal(t, cmd.Process.Pid, h.PID)
	assert.Equal(t, "sleep", h.Command)
	assert.Equal(t, 3, h.FD)
	assert.Equal(t, addr, h.Addr)
	assert.Contains(t, err.Error(), "listen udp "+addr+": bind: address already in use (held by pid "+
		strconv.Itoa(cmd.Process.Pid)+` "sleep" fd 3, a child of this process)`)

	// Once the child is gone, the address is free and Holders says so.
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	hs, err := safeudp.Holders("udp", addr)
	require.NoError(t, err)
	assert.Empty(t, hs)
	again, err := safeudp.ListenPacket("udp", addr)
	require.NoError(t, err)
	require.NoError(t, again.Close())
}

func TestHoldersNamesThisProcessConnAndFileCopy(t *testing.T) {
	pc, err := safeudp.ListenPacket("udp", "127.0.0.1:0")
	opened := lineAbove()
	require.NoError(t, err)
	f, err := pc.(*safeudp.UDPConn).File()
	copied := lineAbove()
	require.NoError(t, err)
	defer f.Close()

	hs, err := safeudp.Holders("udp", pc.LocalAddr().String())
	require.NoError(t, err)
	require.Len(t, hs, 2, "holders: %v", hs)
	kinds := map[safeudp.HolderKind]safeudp.Holder{}
	for _, h := range hs {
		kinds[h.Kind] = h
		assert.Equal(t, os.Getpid(), h.PID)
		assert.NotZero(t, h.Inode)
	}
	require.Contains(t, kinds, safeudp.HolderConn)
	require.Contains(t, kinds, safeudp.HolderFileCopy)
	assert.Equal(t, opened, kinds[safeudp.HolderConn].OpenedAt)
	assert.Equal(t, opened, kinds[safeudp.HolderFileCopy].OpenedAt)
	assert.Equal(t, copied, kinds[safeudp.HolderFileCopy].CopiedAt)
	assert.Equal(t, kinds[safeudp.HolderConn].Inode, kinds[safeudp.HolderFileCopy].Inode)

	require.ErrorIs(t, pc.Close(), safeudp.ErrHeldElsewhere)
}

func TestHoldersReportsWildcardHolder(t *testing.T) {
	wild, err := net.ListenPacket("udp4", "0.0.0.0:0")
	require.NoError(t, err)
	defer wild.Close()
	port := wild.LocalAddr().(*net.UDPAddr).Port
	specific := "127.0.0.1:" + strconv.Itoa(port)

	hs, err := safeudp.Holders("udp", specific)
	require.NoError(t, err)
	require.Len(t, hs, 1, "holders: %v", hs)
	assert.Equal(t, "0.0.0.0:"+strconv.Itoa(port), hs[0].Addr)
	assert.Equal(t, os.Getpid(), hs[0].PID)
	assert.Equal(t, safeudp.HolderProcess, hs[0].Kind, "a plain net conn is not a safeudp conn")

	_, err = safeudp.ListenPacket("udp4", specific)
	require.ErrorIs(t, err, syscall.EADDRINUSE)
	assert.Contains(t, err.Error(), "bound to 0.0.0.0:"+strconv.Itoa(port))
}

func TestHoldersOfFreePortIsEmpty(t *testing.T) {
	// Another process may take a port between our close and our look, so
	// try a few fresh ports: one of them must come back empty.
	var last []safeudp.Holder
	for range 5 {
		pc, err := safeudp.ListenPacket("udp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := pc.LocalAddr().String()
		require.NoError(t, pc.Close())
		hs, err := safeudp.Holders("udp", addr)
		require.NoError(t, err)
		if len(hs) == 0 {
			return
		}
		last = hs
	}
	t.Fatalf("every freed port still had holders, last: %v", last)
}

func TestHoldersRefusesPortZero(t *testing.T) {
	_, err := safeudp.Holders("udp", "127.0.0.1:0")
	require.Error(t, err)
	_, err = safeudp.Holders("tcp", "127.0.0.1:80")
	require.Error(t, err)
}

func tempSocketPath(t *testing.T) string {
	t.Helper()
	return filepath.Join(shortTempDir(t), "s.sock")
}

func TestHoldersUnixgramPath(t *testing.T) {
	path := tempSocketPath(t)
	pc, err := safeudp.ListenPacket("unixgram", path)
	opened := lineAbove()
	require.NoError(t, err)

	hs, err := safeudp.Holders("unixgram", path)
	require.NoError(t, err)
	require.Len(t, hs, 1, "holders: %v", hs)
	assert.Equal(t, safeudp.HolderConn, hs[0].Kind)
	assert.Equal(t, os.Getpid(), hs[0].PID)
	assert.Equal(t, path, hs[0].Addr)
	assert.Equal(t, opened, hs[0].OpenedAt)

	require.NoError(t, pc.Close(), "Close verifies the unix socket's release by inode")
	hs, err = safeudp.Holders("unixgram", path)
	require.NoError(t, err)
	assert.Empty(t, hs, "Close removed the file it created")
}

func TestHoldersReportsStaleUnixgramFile(t *testing.T) {
	path := tempSocketPath(t)
	plain, err := net.ListenPacket("unixgram", path)
	require.NoError(t, err)
	require.NoError(t, plain.Close()) // net leaves the file behind

	hs, err := safeudp.Holders("unixgram", path)
	require.NoError(t, err)
	require.Len(t, hs, 1, "holders: %v", hs)
	assert.Equal(t, safeudp.HolderStaleFile, hs[0].Kind)

	_, err = safeudp.ListenPacket("unixgram", path)
	require.ErrorIs(t, err, syscall.EADDRINUSE)
	assert.Contains(t, err.Error(), "a stale socket file "+path)
}

func TestCloseReportsUnixgramChildHolder(t *testing.T) {
	path := tempSocketPath(t)
	pc, err := safeudp.ListenPacket("unixgram", path)
	require.NoError(t, err)
	f, err := pc.(*safeudp.UnixConn).File()
	require.NoError(t, err)
	cmd, _ := startChildHolding(t, f, "60")
	require.NoError(t, f.Close())

	err = pc.Close()
	require.ErrorIs(t, err, safeudp.ErrHeldElsewhere)
	var re *safeudp.ReleaseError
	require.ErrorAs(t, err, &re)
	require.Len(t, re.Holders, 1, "holders: %v", re.Holders)
	assert.Equal(t, cmd.Process.Pid, re.Holders[0].PID)
	assert.Equal(t, "sleep", re.Holders[0].Command)
	assert.FileExists(t, path, "the child still serves on the path: its socket file stays")
}

// rebindCycles closes and rebinds a conn on one address n times (or until
// budget is spent) and counts the cycles whose Close or bind failed.
func rebindCycles(t *testing.T, n int, budget time.Duration, listen func(addr string) (net.PacketConn, error)) (cycles, failures int, firstErr error) {
	pc, err := listen("127.0.0.1:0")
	require.NoError(t, err)
	addr := pc.LocalAddr().String()
	end := time.Now().Add(budget)
	for cycles = 0; cycles < n && time.Now().Before(end); cycles++ {
		if err := pc.Close(); err != nil {
			failures++
			firstErr = cmpErr(firstErr, err)
		}
		var next net.PacketConn
		for try := 0; ; try++ { // a failed bind counts once, then we wait for the port
			next, err = listen(addr)
			if err == nil {
				break
			}
			if try == 0 {
				failures++
				firstErr = cmpErr(firstErr, err)
			}
			if try > 1000 {
				t.Fatalf("port %s never came back: %v", addr, err)
			}
			time.Sleep(100 * time.Microsecond) // bounded retry, not synchronization
		}
		pc = next
	}
	require.NoError(t, pc.Close())
	return cycles, failures, firstErr
}

func cmpErr(first, err error) error {
	if first == nil {
		return err
	}
	return first
}

func TestRebindUnderExecNoise(t *testing.T) {
	if testing.Short() {
		t.Skip("exec noise takes a few seconds")
	}
	// SAFEUDP_REBIND_CYCLES=20000 measures the figure the README quotes.
	n, budget := 2000, 10*time.Second
	if v, err := strconv.Atoi(os.Getenv("SAFEUDP_REBIND_CYCLES")); err == nil && v > 0 {
		n, budget = v, 5*time.Minute
	}
	stop := execNoise(t)
	plainCycles, plainFailures, plainErr := rebindCycles(t, n, budget, func(addr string) (net.PacketConn, error) {
		return net.ListenPacket("udp", addr)
	})
	safeCycles, safeFailures, safeErr := rebindCycles(t, n, budget, func(addr string) (net.PacketConn, error) {
		return safeudp.ListenPacket("udp", addr)
	})
	execs := stop()
	t.Logf("plain net: %d failures in %d cycles (first: %v)", plainFailures, plainCycles, plainErr)
	t.Logf("safeudp:   %d failures in %d cycles (first: %v); %d execs", safeFailures, safeCycles, safeErr, execs)
	require.Greater(t, safeCycles, 100, "too few cycles ran to mean anything")
	assert.Zero(t, safeFailures, "safeudp must wait out children between fork and exec; first error: %v", safeErr)
}

func TestShutdownReportsLongLivedHolderAtOnce(t *testing.T) {
	// A long-lived holder is reported at once even when ctx allows more.
	pc, err := safeudp.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	f, err := pc.(*safeudp.UDPConn).File()
	require.NoError(t, err)
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	begun := time.Now()
	err = pc.(safeudp.Conn).Shutdown(ctx)
	require.True(t, errors.Is(err, safeudp.ErrHeldElsewhere), "err: %v", err)
	assert.Less(t, time.Since(begun), 30*time.Second, "reported at once, not at the context's end")
}

// rawFD runs f with the conn's descriptor.
func rawFD(t *testing.T, pc net.PacketConn, f func(fd int)) {
	t.Helper()
	rc, err := pc.(syscall.Conn).SyscallConn()
	require.NoError(t, err)
	require.NoError(t, rc.Control(func(fd uintptr) { f(int(fd)) }))
}

func TestCloseReportsUntrackedDupOfThisProcess(t *testing.T) {
	pc, err := safeudp.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	dup := -1
	rawFD(t, pc, func(fd int) { dup, err = syscall.Dup(fd) })
	require.NoError(t, err)
	defer syscall.Close(dup)

	err = pc.Close()
	require.ErrorIs(t, err, safeudp.ErrHeldElsewhere)
	var re *safeudp.ReleaseError
	require.ErrorAs(t, err, &re)
	require.Len(t, re.Holders, 1, "holders: %v", re.Holders)
	assert.Equal(t, safeudp.HolderProcess, re.Holders[0].Kind)
	assert.Equal(t, os.Getpid(), re.Holders[0].PID)
	assert.Equal(t, dup, re.Holders[0].FD)
	assert.Contains(t, err.Error(), "by this process fd "+strconv.Itoa(dup))
}

// sendInFlight puts a copy of pc's descriptor in flight in a unix socket
// message (SCM_RIGHTS), where no descriptor of any process shows it; the
// returned func receives and closes it.
func sendInFlight(t *testing.T, pc net.PacketConn) (receive func()) {
	t.Helper()
	pair, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = syscall.Close(pair[0])
		_ = syscall.Close(pair[1])
	})
	rawFD(t, pc, func(fd int) { err = syscall.Sendmsg(pair[0], []byte{0}, syscall.UnixRights(fd), nil, 0) })
	require.NoError(t, err)
	return func() {
		buf, oob := make([]byte, 1), make([]byte, syscall.CmsgSpace(4))
		_, oobn, _, _, err := syscall.Recvmsg(pair[1], buf, oob, 0)
		require.NoError(t, err)
		msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
		require.NoError(t, err)
		require.Len(t, msgs, 1)
		fds, err := syscall.ParseUnixRights(&msgs[0])
		require.NoError(t, err)
		for _, fd := range fds {
			require.NoError(t, syscall.Close(fd))
		}
	}
}

// TestCloseReportsPersistentUnseenHolderAsLongLived puts the socket in
// flight in a unix socket message, where no descriptor shows it (as for a
// process in another pid namespace): Close cannot name the holder, and
// since it does not let go within two looks at /proc it is long-lived:
// reported without waiting for ReleaseTimeout, wrapping ErrHeldElsewhere.
// Shutdown with a ctx that only a cancel ends returns too.
func TestCloseReportsPersistentUnseenHolderAsLongLived(t *testing.T) {
	for _, tc := range []struct {
		name  string
		close func(pc net.PacketConn) error
	}{
		{"Close", func(pc net.PacketConn) error { return pc.Close() }},
		{"Shutdown", func(pc net.PacketConn) error {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			return pc.(safeudp.Conn).Shutdown(ctx)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lc := safeudp.ListenConfig{ReleaseTimeout: time.Hour}
			pc, err := lc.ListenPacket(context.Background(), "udp", "127.0.0.1:0")
			require.NoError(t, err)
			receive := sendInFlight(t, pc)

			done := make(chan error, 1)
			go func() { done <- tc.close(pc) }()
			select {
			case err = <-done:
			case <-time.After(bound):
				receive() // let the close finish before failing
				safeudp.Await(t, done, "the close")
				t.Fatalf("%s still waiting for an unseen holder after %v", tc.name, bound)
			}
			require.ErrorIs(t, err, safeudp.ErrNotReleased)
			require.ErrorIs(t, err, safeudp.ErrHeldElsewhere, "an unseen holder that persists is long-lived")
			var re *safeudp.ReleaseError
			require.ErrorAs(t, err, &re)
			require.Len(t, re.Holders, 1, "holders: %v", re.Holders)
			h := re.Holders[0]
			assert.Equal(t, safeudp.HolderUnseen, h.Kind)
			assert.False(t, h.Transient())
			assert.Error(t, h.Err, "says why no holder can be named")
			assert.Greater(t, re.Attempts, 1, "looked more than once before deciding")
			assert.Greater(t, re.Waited, time.Duration(0))

			// Receive the descriptor and close it: the port comes back.
			receive()
			again, err := safeudp.ListenPacket("udp", pc.LocalAddr().String())
			require.NoError(t, err)
			require.NoError(t, again.Close())
		})
	}
}

// TestListenReportsPersistentUnseenHolder: a bind blocked by a socket that
// no descriptor shows is not retried for the full 250 ms as if the holder
// were transient: the error names it as long-lived.
func TestListenReportsPersistentUnseenHolder(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := pc.LocalAddr().String()
	receive := sendInFlight(t, pc)
	require.NoError(t, pc.Close())
	defer receive()

	_, err = safeudp.ListenPacket("udp", addr)
	require.ErrorIs(t, err, syscall.EADDRINUSE)
	var ue *safeudp.AddrInUseError
	require.ErrorAs(t, err, &ue)
	require.Len(t, ue.Holders, 1, "holders: %v", ue.Holders)
	assert.Equal(t, safeudp.HolderUnseen, ue.Holders[0].Kind)
	assert.False(t, ue.Holders[0].Transient(), "the holder outlived two looks: %v", ue.Holders[0])
}
