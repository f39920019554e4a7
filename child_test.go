package safeudp_test

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// startChildHolding starts `sleep seconds` with f as its descriptor 3: a
// child process that holds a copy of the socket. On Linux it waits
// (bounded) until the child has exec'd, so that the copy is held by a
// running program, not by a fork in progress. stop kills and reaps the
// child; it may be called more than once, and runs when the test ends.
// The test is skipped where a child cannot be handed a descriptor.
func startChildHolding(t *testing.T, f *os.File, seconds string) (cmd *exec.Cmd, stop func()) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("no ExtraFiles on windows")
	}
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep command")
	}
	cmd = exec.Command(sleep, seconds)
	cmd.ExtraFiles = []*os.File{f}
	require.NoError(t, cmd.Start())
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait() // returns once the child's descriptors are closed
		})
	}
	t.Cleanup(stop)
	if runtime.GOOS == "linux" {
		require.Eventually(t, func() bool {
			b, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/comm")
			return err == nil && string(b) == "sleep\n"
		}, 5*time.Second, time.Millisecond, "the child did not exec")
	}
	return cmd, stop
}
