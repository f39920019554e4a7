package safeudp_test

import (
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/safeudp/safeudp"
	"github.com/safeudp/safeudp/udptest"
)

// dialCycles dials peer from laddr, closes, and dials again, n times or
// until budget is spent, and counts the cycles whose dial or Close failed.
// A failed dial is retried (bounded) so that the next cycle starts from a
// closed conn.
func dialCycles(t *testing.T, n int, budget time.Duration, dial func() (net.Conn, error)) (cycles, failures int, firstErr error) {
	end := time.Now().Add(budget)
	for cycles = 0; cycles < n && time.Now().Before(end); cycles++ {
		var c net.Conn
		var err error
		for try := 0; ; try++ {
			if c, err = dial(); err == nil {
				break
			}
			if try == 0 {
				failures++
				firstErr = cmpErr(firstErr, err)
			}
			if try > 1000 {
				t.Fatalf("the local port never came back: %v", err)
			}
			time.Sleep(100 * time.Microsecond) // bounded retry, not synchronization
		}
		if _, err := c.Write([]byte("ping")); err != nil && !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("write: %v", err)
		}
		if err := c.Close(); err != nil {
			failures++
			firstErr = cmpErr(firstErr, err)
		}
	}
	return cycles, failures, firstErr
}

func TestDialUDPFromAFixedPortUnderExecNoise(t *testing.T) {
	if testing.Short() {
		t.Skip("exec noise takes a few seconds")
	}
	peer := newPeer(t)
	raddr := peer.LocalAddr().(*net.UDPAddr)
	laddr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: udptest.ReservePort(t)}
	stopNoise := execNoise(t)
	var once sync.Once
	var execs int64
	stop := func() { once.Do(func() { execs = stopNoise() }) }
	defer stop() // also when a cycle fails the test
	plainCycles, plainFailures, plainErr := dialCycles(t, 2000, 10*time.Second, func() (net.Conn, error) {
		return net.DialUDP("udp4", laddr, raddr)
	})
	safeCycles, safeFailures, safeErr := dialCycles(t, 2000, 10*time.Second, func() (net.Conn, error) {
		return safeudp.DialUDP("udp4", laddr, raddr)
	})
	// The retry: each safeudp.DialUDP right after a plain Close of the
	// port, which a child may still hold.
	afterPlainCycles, afterPlainFailures, afterPlainErr := dialCycles(t, 2000, 10*time.Second, func() (net.Conn, error) {
		for try := 0; ; try++ {
			p, err := net.DialUDP("udp4", laddr, raddr)
			if err == nil {
				_ = p.Close()
				break
			}
			if try > 1000 {
				t.Fatalf("plain net.DialUDP never bound: %v", err)
			}
			time.Sleep(100 * time.Microsecond) // bounded retry, not synchronization
		}
		return safeudp.DialUDP("udp4", laddr, raddr)
	})
	stop()
	t.Logf("after a plain Close: %d failures in %d cycles (first: %v)", afterPlainFailures, afterPlainCycles, afterPlainErr)
	t.Logf("plain net.DialUDP: %d failures in %d cycles (first: %v)", plainFailures, plainCycles, plainErr)
	t.Logf("safeudp.DialUDP:   %d failures in %d cycles (first: %v); %d execs", safeFailures, safeCycles, safeErr, execs)
	require.Greater(t, safeCycles, 100, "too few cycles ran to mean anything")
	assert.Positive(t, plainFailures, "the noise must make plain net.DialUDP fail, or the test shows nothing")
	assert.Zero(t, safeFailures, "safeudp must wait out children between fork and exec; first error: %v", safeErr)
	assert.Zero(t, afterPlainFailures, "DialUDP must retry a port that only a child between fork and exec holds; first error: %v", afterPlainErr)
}

func TestDialUDPFromAPortInUseNamesTheHolder(t *testing.T) {
	held := newPeer(t)
	peer := newPeer(t)
	c, err := safeudp.DialUDP("udp4", held.LocalAddr().(*net.UDPAddr), peer.LocalAddr().(*net.UDPAddr))
	assert.Nil(t, c)
	require.ErrorIs(t, err, syscall.EADDRINUSE)
	var oe *net.OpError
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, "dial", oe.Op)
	assert.Equal(t, held.LocalAddr().String(), oe.Source.String())
	var inUse *safeudp.AddrInUseError
	require.ErrorAs(t, err, &inUse)
	require.Len(t, inUse.Holders, 1, "holders: %v", inUse.Holders)
	assert.Equal(t, os.Getpid(), inUse.Holders[0].PID)
	assert.Contains(t, err.Error(), "held by this process")
}
