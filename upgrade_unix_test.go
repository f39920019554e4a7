//go:build unix

package safeudp_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/safeudp/safeudp"
)

// The upgrade tests re-execute the test binary as the next generation:
// TestUpgradeHelperProcess, run in the child with SAFEUDP_HELPER set,
// plays the role it names, on real sockets on loopback.

const helperEnv = "SAFEUDP_HELPER"

// TestUpgradeHelperProcess is the child's side; it is not a test.
func TestUpgradeHelperProcess(t *testing.T) {
	role := os.Getenv(helperEnv)
	if role == "" {
		t.Skip("the child side of the upgrade tests")
	}
	os.Exit(helperMain(role))
}

// helperMain runs the child's role (see the roles below): "die" exits before it is ready;
// "never" takes its sockets and never says it is ready; "serve" takes the
// socket of SAFEUDP_HELPER_ADDR over, says it is ready, counts what it
// reads until its stdin closes and a read waits 200ms for nothing, and
// prints "received N"; "systemd" serves too, on a socket that the
// parent keeps, as systemd does.
func helperMain(role string) int {
	switch role {
	case "die":
		return 3
	case "never", "serve", "systemd":
	default:
		return 4
	}
	c, err := safeudp.ListenPacket("udp4", os.Getenv("SAFEUDP_HELPER_ADDR"))
	if err != nil {
		fmt.Println("listen:", err)
		return 2
	}
	if role == "never" {
		_, _ = io.Copy(io.Discard, os.Stdin) // until killed
		return 5
	}
	var received atomic.Int64
	stdinClosed := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); close(stdinClosed) }()
	if err := safeudp.Ready(); err != nil {
		fmt.Println("ready:", err)
		return 2
	}
	buf := make([]byte, 64)
	for {
		select {
		case <-stdinClosed:
			_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		default:
			_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		}
		if _, _, err := c.ReadFrom(buf); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				select {
				case <-stdinClosed:
					fmt.Println("received", received.Load())
					// systemd keeps holding the socket it activated us with.
					if err := c.Close(); err != nil && !(role == "systemd" && errors.Is(err, safeudp.ErrHeldElsewhere)) {
						fmt.Println("close:", err)
						return 2
					}
					return 0
				default:
					continue
				}
			}
			fmt.Println("read:", err)
			return 2
		}
		received.Add(1)
	}
}

// helperCmd returns the command of a child playing role on addr.
func helperCmd(t *testing.T, role, addr string) (*exec.Cmd, *bytes.Buffer, io.WriteCloser) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestUpgradeHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+role, "SAFEUDP_HELPER_ADDR="+addr)
	out := new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = out, out
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = stdin.Close()
		if cmd.Process != nil && cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, out, stdin
}

// counter reads c until it is closed, counting datagrams.
func counter(c net.PacketConn) (n *atomic.Int64, done <-chan struct{}) {
	n = new(atomic.Int64)
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		buf := make([]byte, 64)
		for {
			if _, _, err := c.ReadFrom(buf); err != nil {
				return
			}
			n.Add(1)
		}
	}()
	return n, ch
}

// sender sends to addr at about 2 datagrams a millisecond until stop is
// closed.
func sender(t *testing.T, addr net.Addr) (sent *atomic.Int64, stop func()) {
	snd := rawUDP(t)
	sent = new(atomic.Int64)
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
			}
			for range 2 {
				if _, err := snd.WriteTo([]byte("datagram"), addr); err == nil {
					sent.Add(1)
				}
			}
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { close(quit); <-done }) }
	t.Cleanup(stop)
	return sent, stop
}

// awaitAtLeast waits, bounded, until n reaches want.
func awaitAtLeast(t *testing.T, n *atomic.Int64, want int64) {
	t.Helper()
	require.Eventually(t, func() bool { return n.Load() >= want }, 10*time.Second, time.Millisecond)
}

func TestUpgradeHandsTheSocketOnWithoutLoss(t *testing.T) {
	c, err := safeudp.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	got, readerDone := counter(c)
	sent, stopSending := sender(t, c.LocalAddr())
	awaitAtLeast(t, got, 50) // the parent serves

	cmd, out, stdin := helperCmd(t, "serve", c.LocalAddr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, safeudp.Upgrade(ctx, cmd, c), "child output: %s", out)

	require.NoError(t, c.Close(), "a socket handed off on purpose closes with no error")
	safeudp.Await(t, readerDone, "the parent's reader")
	atClose := sent.Load()
	awaitAtLeast(t, sent, atClose+200) // the child serves alone for a while
	stopSending()
	require.NoError(t, stdin.Close())
	require.NoError(t, waitBounded(t, cmd), "child output: %s", out)

	var child int64
	_, err = fmt.Sscanf(lastLine(out.String()), "received %d", &child)
	require.NoError(t, err, "child output: %s", out)
	t.Logf("sent %d, parent read %d, child read %d", sent.Load(), got.Load(), child)
	assert.Positive(t, child)
	assert.Equal(t, sent.Load(), got.Load()+child, "every datagram read by one generation")
}

func TestUpgradeChildThatDiesBeforeReadyLeavesTheParentServing(t *testing.T) {
	c, err := safeudp.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	cmd, out, _ := helperCmd(t, "die", c.LocalAddr().String())
	err = safeudp.Upgrade(context.Background(), cmd, c)
	require.Error(t, err, "child output: %s", out)
	assert.Contains(t, err.Error(), "exited before it was ready")
	assert.Contains(t, err.Error(), "exit status 3")
	assertServes(t, c)
	require.NoError(t, c.Close(), "the dead child holds nothing")
}

func TestUpgradeChildNeverReadyIsBoundedAndKilled(t *testing.T) {
	c, err := safeudp.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	cmd, out, _ := helperCmd(t, "never", c.LocalAddr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	begun := time.Now()
	err = safeudp.Upgrade(ctx, cmd, c)
	require.ErrorIs(t, err, context.DeadlineExceeded, "child output: %s", out)
	assert.Contains(t, err.Error(), "not ready in time, killed")
	assert.Less(t, time.Since(begun), 8*time.Second, "bounded by ctx")
	assert.NotNil(t, cmd.ProcessState, "the child was waited for")
	assertServes(t, c)
	require.NoError(t, c.Close(), "the killed child holds nothing")
}

func TestUpgradeCloseStillReportsAnotherHolder(t *testing.T) {
	c, err := safeudp.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	f, err := c.(*safeudp.UDPConn).File()
	require.NoError(t, err)
	_, stopSleep := startChildHolding(t, f, "30")
	require.NoError(t, f.Close())
	cmd, out, stdin := helperCmd(t, "serve", c.LocalAddr().String())
	require.NoError(t, safeudp.Upgrade(context.Background(), cmd, c), "child output: %s", out)

	err = c.Close()
	require.ErrorIs(t, err, safeudp.ErrHeldElsewhere, "the sleep child is not the one it was handed to")
	assert.Contains(t, err.Error(), `"sleep"`)
	assert.NotContains(t, err.Error(), "pid "+strconv.Itoa(cmd.Process.Pid)+" ", "the upgraded child is not reported")
	stopSleep()
	require.NoError(t, stdin.Close())
	require.NoError(t, waitBounded(t, cmd), "child output: %s", out)
}

func TestUpgradeUnclaimedSocketsAreClosedAtReady(t *testing.T) {
	taken, err := safeudp.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	spare, err := safeudp.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	cmd, out, stdin := helperCmd(t, "serve", taken.LocalAddr().String())
	require.NoError(t, safeudp.Upgrade(context.Background(), cmd, taken, spare), "child output: %s", out)
	require.NoError(t, taken.Close())
	require.NoError(t, spare.Close())
	pc, err := net.ListenPacket("udp4", spare.LocalAddr().String())
	require.NoError(t, err, "the child closed the socket it did not take")
	require.NoError(t, pc.Close())
	_, err = net.ListenPacket("udp4", taken.LocalAddr().String())
	require.Error(t, err, "the child serves on the one it took")
	require.NoError(t, stdin.Close())
	require.NoError(t, waitBounded(t, cmd), "child output: %s", out)
}

func TestUpgradeRefusesBadInput(t *testing.T) {
	c, err := safeudp.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer c.Close()
	cmd := exec.Command("true")
	cmd.ExtraFiles = []*os.File{os.Stdin}
	assert.ErrorContains(t, safeudp.Upgrade(context.Background(), cmd, c), "ExtraFiles must be empty")
	rc, err := safeudp.ListenRebinding("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer rc.Close()
	assert.ErrorContains(t, safeudp.Upgrade(context.Background(), exec.Command("true"), rc), "cannot be handed on")
	assert.ErrorContains(t, safeudp.Upgrade(context.Background(), exec.Command("true")), "at least one conn")
	closed, err := safeudp.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	require.NoError(t, closed.Close())
	assert.ErrorIs(t, safeudp.Upgrade(context.Background(), exec.Command("true"), closed), net.ErrClosed)
}

// assertServes checks that c still reads what is sent to it.
func assertServes(t *testing.T, c net.PacketConn) {
	t.Helper()
	snd := rawUDP(t)
	_, err := snd.WriteTo([]byte("still there?"), c.LocalAddr())
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, _, err = c.ReadFrom(make([]byte, 64))
	require.NoError(t, err, "the parent still serves")
	require.NoError(t, c.SetReadDeadline(time.Time{}))
}

// waitBounded waits for cmd, killing it after awaitBound.
func waitBounded(t *testing.T, cmd *exec.Cmd) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return errors.New("the child did not exit in 20s")
	}
}

func lastLine(s string) string {
	var last string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			last = l
		}
	}
	return last
}

// A socket handed over as systemd's socket activation does (LISTEN_PID
// set to the child's own pid, which only a shell's exec can give here) is
// taken over by ListenPacket on its address.
func TestListenTakesASocketFromSystemdActivation(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0") // systemd's socket
	require.NoError(t, err)
	defer pc.Close()
	f, err := pc.(*net.UDPConn).File()
	require.NoError(t, err)
	defer f.Close()
	cmd, out, stdin := helperCmd(t, "systemd", pc.LocalAddr().String())
	cmd.Args = append([]string{sh, "-c", `LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=dns.socket exec "$0" "$@"`}, cmd.Args...)
	cmd.Path = sh
	cmd.ExtraFiles = []*os.File{f}
	require.NoError(t, cmd.Start())
	snd := rawUDP(t)
	for range 10 {
		_, err := snd.WriteTo([]byte("query"), pc.LocalAddr())
		require.NoError(t, err)
	}
	require.NoError(t, stdin.Close())
	require.NoError(t, waitBounded(t, cmd), "child output: %s", out)
	assert.Equal(t, "received 10", lastLine(out.String()), "the child read from the socket it was handed, not one of its own")
}
