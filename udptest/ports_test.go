package udptest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReservePortsGivesDistinctFreePortsOutsideTheEphemeralRange(t *testing.T) {
	ports := ReservePorts(t, 5)
	require.Len(t, ports, 5)
	seen := make(map[int]bool)
	eph, haveEph := ephemeralRange()
	for _, port := range ports {
		assert.False(t, seen[port], "port %d handed out twice", port)
		seen[port] = true
		assert.GreaterOrEqual(t, port, 1024)
		if haveEph {
			assert.False(t, port >= eph.lo && port <= eph.hi, "port %d is in the ephemeral range %v", port, eph)
		}
		// Free to bind, close and bind again.
		for range 2 {
			pc, err := net.ListenPacket("udp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
			require.NoError(t, err)
			require.NoError(t, pc.Close())
		}
	}
}

func TestReservedPortIsLockedUntilCleanup(t *testing.T) {
	ft := new(fakeTB)
	port := ReservePort(ft)
	_, ok, err := lockPort(port)
	require.NoError(t, err)
	assert.False(t, ok, "a reserved port cannot be locked again in this process")
	if runtime.GOOS != "windows" {
		// A second open file description: what another process would hold.
		f, ok, err := lockPortFile(port)
		require.NoError(t, err)
		assert.False(t, ok, "a reserved port's lock file cannot be locked again")
		assert.Nil(t, f)
	}
	ft.cleanup()
	assert.Empty(t, ft.errs())
	lk, ok, err := lockPort(port)
	require.NoError(t, err)
	require.True(t, ok, "the cleanup returns the port to the pool")
	lk.unlock()
}

func TestReservePortCleanupFailsWhileThePortIsStillBound(t *testing.T) {
	ft := new(fakeTB)
	port := ReservePort(ft, MaxWait(50*time.Millisecond))
	pc, err := net.ListenPacket("udp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	require.NoError(t, err)
	ft.cleanup()
	errs := ft.errs()
	require.Len(t, errs, 1)
	assert.Contains(t, errs[0], fmt.Sprintf("reserved port %d is still bound 50ms", port), "the wait follows MaxWait")
	require.NoError(t, pc.Close())
	lk, ok, err := lockPort(port)
	require.NoError(t, err)
	assert.True(t, ok, "the port is unlocked even when the test failed")
	lk.unlock()
}

func TestReservePortCleanupPassesOnceThePortIsClosed(t *testing.T) {
	ft := new(fakeTB)
	port := ReservePort(ft)
	pc, err := net.ListenPacket("udp6", net.JoinHostPort("::1", strconv.Itoa(port)))
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		ft.cleanup() // waits for the port, whether Close ran before or after
	}()
	require.NoError(t, pc.Close())
	select {
	case <-done:
	case <-time.After(2 * defaultMaxWait):
		t.Fatal("the cleanup did not return")
	}
	assert.Empty(t, ft.errs())
}

func TestReservePortsFailsTheTestWhenNoPortIsFree(t *testing.T) {
	defer func(f func() []portRange) { portCandidates = f }(portCandidates)
	held, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer held.Close()
	port := held.LocalAddr().(*net.UDPAddr).Port
	portCandidates = func() []portRange { return []portRange{{port, port}} }
	ft := new(fakeTB)
	ft.run(func() { ReservePorts(ft, 1) })
	require.True(t, ft.fatal)
	assert.Contains(t, ft.errs()[0], "found only 0 free ports")
}

// Env of the child processes of the cross-process test: the narrow range
// to reserve from and how many ports to take.
const (
	portsChildRange = "UDPTEST_PORTS_CHILD_RANGE"
	portsChildCount = "UDPTEST_PORTS_CHILD_COUNT"
)

// A narrow range and many ports per process: without the machine-wide lock,
// the processes would collide almost surely.
const (
	crossProcessRange = 48
	crossProcessCount = 12
)

// TestReservePortsChild reserves ports from the range its parent gave,
// prints them, and holds them until its standard input closes.
func TestReservePortsChild(t *testing.T) {
	r := os.Getenv(portsChildRange)
	if r == "" {
		t.Skip("runs only as a child process of TestReservePortsNeverCollideAcrossProcesses")
	}
	var lo, hi, n int
	_, err := fmt.Sscanf(r+" "+os.Getenv(portsChildCount), "%d-%d %d", &lo, &hi, &n)
	require.NoError(t, err)
	portCandidates = func() []portRange { return []portRange{{lo, hi}} }
	ports := ReservePorts(t, n)
	fmt.Printf("\nPORTS %s\n", strings.Trim(fmt.Sprint(ports), "[]"))
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("the parent never closed standard input")
	}
}

func TestReservePortsNeverCollideAcrossProcesses(t *testing.T) {
	defer func(f func() []portRange) { portCandidates = f }(portCandidates)
	lo := 10000 + rand.IntN(20000)
	span := portRange{lo, lo + crossProcessRange - 1}
	portCandidates = func() []portRange { return []portRange{span} }

	// The context kills the children if the test ends early; cleanups
	// run last-in first-out, so cancel runs after every child's stop.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	type child struct {
		ports chan []int   // the ports the child printed; closed without them if it did not
		stop  func() error // ends the child and returns what cmd.Wait returned
	}
	var children []child
	for range 2 {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestReservePortsChild$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), portsChildRange+"="+span.String(), portsChildCount+"="+strconv.Itoa(crossProcessCount))
		stdin, err := cmd.StdinPipe()
		require.NoError(t, err)
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		ports := make(chan []int, 1)
		eof := make(chan struct{}) // closed once stdout has been read to the end
		go func() {
			defer close(eof)
			defer close(ports)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if list, ok := strings.CutPrefix(sc.Text(), "PORTS "); ok && len(ports) == 0 {
					var got []int
					for _, f := range strings.Fields(list) {
						p, _ := strconv.Atoi(f)
						got = append(got, p)
					}
					ports <- got
				}
			}
			_, _ = io.Copy(io.Discard, stdout) // after a line too long to scan
		}()
		// os/exec: Wait closes the pipe, so every read of it must be
		// done before Wait. The child exits once its standard input
		// closes (or the context kills it), which ends its output.
		stop := sync.OnceValue(func() error {
			_ = stdin.Close()
			<-eof
			return cmd.Wait()
		})
		t.Cleanup(func() { _ = stop() })
		children = append(children, child{ports: ports, stop: stop})
	}
	// This process reserves at the same time as its children.
	owner := make(map[int]string)
	for _, p := range ReservePorts(t, crossProcessCount) {
		owner[p] = "parent"
	}
	for i, c := range children {
		select {
		case ports, ok := <-c.ports:
			require.True(t, ok, "child %d exited without printing its ports", i)
			require.Len(t, ports, crossProcessCount)
			for _, p := range ports {
				assert.Empty(t, owner[p], "port %d given to child %d and to %s", p, i, owner[p])
				assert.True(t, p >= span.lo && p <= span.hi, "port %d outside %v", p, span)
				owner[p] = fmt.Sprintf("child %d", i)
			}
		case <-ctx.Done():
			t.Fatalf("child %d did not print its ports within a minute", i)
		}
	}
	assert.Len(t, owner, 3*crossProcessCount)
	for i, c := range children {
		assert.NoError(t, c.stop(), "child %d", i)
	}
}

func TestPortLockDirIsTheUsersOwn(t *testing.T) {
	dir, err := portLockDir()
	require.NoError(t, err)
	owner, err := lockDirOwner()
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(os.TempDir(), "safeudp-ports-"+owner), dir)
	if runtime.GOOS != "windows" {
		assert.Equal(t, "safeudp-ports-"+strconv.Itoa(os.Getuid()), filepath.Base(dir))
		fi, err := os.Lstat(dir)
		require.NoError(t, err)
		assert.Zero(t, fi.Mode().Perm()&0o077, "mode %v: the directory is the user's alone", fi.Mode())
	}
}

func TestReservePortRefusesALockDirOthersMayWrite(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the lock directory lies in the user's own temporary directory")
	}
	tmp, err := os.MkdirTemp("", "su")
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, os.RemoveAll(tmp)) })
	t.Setenv("TMPDIR", tmp)
	dir := filepath.Join(tmp, "safeudp-ports-"+strconv.Itoa(os.Getuid()))
	require.NoError(t, os.Mkdir(dir, 0o700))
	require.NoError(t, os.Chmod(dir, 0o777)) // as a directory made by someone with umask 0 would be

	ft := new(fakeTB)
	ft.run(func() { ReservePort(ft) })
	require.True(t, ft.fatal)
	assert.Contains(t, ft.errs()[0], dir+": may be written by other users")

	if os.Getuid() == 0 {
		// Root can make the directory another user's, as that user
		// could have made it first.
		require.NoError(t, os.Chmod(dir, 0o700))
		require.NoError(t, os.Chown(dir, 65534, 65534))
		ft = new(fakeTB)
		ft.run(func() { ReservePort(ft) })
		require.True(t, ft.fatal)
		assert.Contains(t, ft.errs()[0], dir+": is owned by uid 65534")
	}
	ft.cleanup()
}
