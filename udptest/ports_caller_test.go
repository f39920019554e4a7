package udptest

import (
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// reservePortCallerEnv makes this test binary, run again as a child, run
// the failing side of TestReservePortReportsAtTheCallersLine.
const reservePortCallerEnv = "UDPTEST_RESERVE_PORT_CALLER"

// The lines the failures must be reported at.
const (
	fatalLine   = 31 // the ReservePort call that finds no port
	cleanupLine = 35 // the ReservePort call whose port is still bound at cleanup
)

func TestReservePortFailingChild(t *testing.T) {
	switch os.Getenv(reservePortCallerEnv) {
	case "":
		t.Skip("run by TestReservePortReportsAtTheCallersLine")
	case "fatal":
		portCandidates = func() []portRange { return nil }
		ReservePort(t)
	case "cleanup":
		var pc net.PacketConn
		t.Cleanup(func() { _ = pc.Close() }) // runs after the reservation's check
		port := ReservePort(t, MaxWait(20*time.Millisecond))
		var err error
		pc, err = net.ListenPacket("udp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		require.NoError(t, err)
	}
}

// TestReservePortReportsAtTheCallersLine: ReservePort's failures, its
// cleanup's included, point at the test's line, not at udptest's.
func TestReservePortReportsAtTheCallersLine(t *testing.T) {
	for mode, line := range map[string]int{"fatal": fatalLine, "cleanup": cleanupLine} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestReservePortFailingChild$", "-test.v")
		cmd.Env = append(os.Environ(), reservePortCallerEnv+"="+mode)
		out, err := cmd.CombinedOutput()
		require.Error(t, err, "%s: the child's test fails\n%s", mode, out)
		assert.Contains(t, string(out), "ports_caller_test.go:"+strconv.Itoa(line)+":", "%s: reported at the caller's line\n%s", mode, out)
		assert.NotContains(t, string(out), "ports.go:", "%s: not at udptest's own line\n%s", mode, out)
	}
}
