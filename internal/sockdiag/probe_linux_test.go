package sockdiag

import (
	"os"
	"os/exec"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestSockDiagProbeRetriesAfterATransientFailure: a first lookup of the
// process that meets EMFILE must not send every later lookup to /proc/net.
// The probe runs once per process, so the check runs in a fresh child.
func TestSockDiagProbeRetriesAfterATransientFailure(t *testing.T) {
	if os.Getenv("SAFEUDP_PROBE_CHILD") == "1" {
		var lim syscall.Rlimit
		require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim))
		low := lim
		low.Cur = 0 // no new descriptor can be opened: the probe's sockets fail with EMFILE
		require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low))
		failed := Works(unix.AF_INET)
		require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim))
		require.False(t, failed, "the probe cannot succeed without descriptors")
		require.True(t, Works(unix.AF_INET), "once descriptors are available again, sock_diag is used")
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSockDiagProbeRetriesAfterATransientFailure$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SAFEUDP_PROBE_CHILD=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "child:\n%s", out)
}
