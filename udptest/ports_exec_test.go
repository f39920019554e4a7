package udptest

import (
	"context"
	"net"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/safeudp/safeudp"
	"github.com/stretchr/testify/require"
)

// startExecNoise runs workers goroutines that each run /bin/true in a
// loop, so that a child between fork and exec is nearly always about,
// until stop is called or noiseMax has passed. stop waits for them and
// returns how many children ran. The test is skipped where there is no
// /bin/true (Windows has no fork window to test).
func startExecNoise(t *testing.T, workers int) (stop func() int) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("no fork on windows")
	}
	if _, err := exec.LookPath("/bin/true"); err != nil {
		t.Skip("no /bin/true")
	}
	const noiseMax = 2 * time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), noiseMax)
	var wg sync.WaitGroup
	var mu sync.Mutex // guards runs
	runs := 0
	for range workers {
		wg.Go(func() {
			n := 0
			for ctx.Err() == nil {
				_ = exec.Command("/bin/true").Run()
				n++
			}
			mu.Lock()
			runs += n
			mu.Unlock()
		})
	}
	var once sync.Once
	stop = func() int {
		once.Do(func() { cancel(); wg.Wait() })
		mu.Lock()
		defer mu.Unlock()
		return runs
	}
	t.Cleanup(func() { stop() })
	return stop
}

func TestReservedPortsCanBeBoundAtOnceUnderExecNoise(t *testing.T) {
	const reservations = 1000
	stop := startExecNoise(t, 2)
	failures := 0
	var first error
	for range reservations {
		ft := new(fakeTB)
		var port int
		ft.run(func() { port = ReservePort(ft) })
		require.Empty(t, ft.errs(), "ReservePort failed")
		for _, addr := range []string{"127.0.0.1", "::1"} {
			pc, err := net.ListenPacket("udp", net.JoinHostPort(addr, strconv.Itoa(port)))
			if err != nil {
				if addr == "::1" && noIPv6(err) {
					continue
				}
				failures++
				if first == nil {
					first = err
				}
				// Who held it (Linux): a copy in a child of this process
				// is the defect; another program is noise.
				hs, herr := safeudp.Holders("udp", net.JoinHostPort(addr, strconv.Itoa(port)))
				t.Logf("port %d on %s: %v; holders %v (%v)", port, addr, err, hs, herr)
				continue
			}
			require.NoError(t, pc.Close())
		}
		ft.cleanup()
	}
	runs := stop()
	t.Logf("%d reservations, %d children exec'd meanwhile", reservations, runs)
	require.Zero(t, failures, "%d of %d reserved ports could not be bound at once (first: %v)", failures, reservations, first)
}
