package safeudp_test

import (
	"context"
	"os"
	"runtime"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/safeudp/safeudp"
)

// TestCloseReportsADupMadeByControl: a ListenConfig.Control is handed the
// raw socket before bind and may keep a dup of it; Close must then ask the
// kernel, and report the dup, rather than take the fast path.
func TestCloseReportsADupMadeByControl(t *testing.T) {
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
		safeudp.Await(t, done, "the File call")
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
