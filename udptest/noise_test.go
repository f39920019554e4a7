package udptest

import (
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExecNoiseMakesPlainNetFailUntilTheCleanup(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no fork window on windows: the noise runs but plain net does not fail")
	}
	addr := ReserveAddr(t, "udp4")
	ft := new(fakeTB)
	ExecNoise(ft, 2)
	require.Empty(t, ft.errs())
	failures, cycles := 0, 0
	end := time.Now().Add(10 * time.Second)
	for ; failures == 0 && cycles < 20000 && time.Now().Before(end); cycles++ {
		pc, err := net.ListenPacket("udp4", addr)
		if err != nil {
			failures++
			require.Eventually(t, func() bool { // the child lets go within milliseconds
				pc, err = net.ListenPacket("udp4", addr)
				return err == nil
			}, 5*time.Second, time.Millisecond)
		}
		require.NoError(t, pc.Close())
	}
	ft.cleanup() // stops the goroutines; VerifyTestMain checks none is left
	t.Logf("the first failure of plain net came at cycle %d", cycles)
	assert.Positive(t, failures, "plain net close-then-bind never failed under ExecNoise in %d cycles", cycles)
}

func TestExecNoisePanicsWithoutGoroutines(t *testing.T) {
	assert.PanicsWithValue(t, "udptest: ExecNoise with 0 goroutines", func() { ExecNoise(new(fakeTB), 0) })
}

func TestReserveAddrGivesALoopbackAddressWithAReservedPort(t *testing.T) {
	for network, host := range map[string]string{"udp": "127.0.0.1", "udp4": "127.0.0.1", "udp6": "::1"} {
		ft := new(fakeTB)
		addr := ReserveAddr(ft, network)
		h, port, err := net.SplitHostPort(addr)
		require.NoError(t, err, addr)
		assert.Equal(t, host, h, network)
		assert.NotEqual(t, "0", port)
		if network == "udp6" {
			assert.Equal(t, "[", addr[:1], "an IPv6 address is bracketed")
		}
		pc, err := net.ListenPacket(network, addr)
		require.NoError(t, err, "%s %s binds at once", network, addr)
		require.NoError(t, pc.Close())
		ft.cleanup()
		assert.Empty(t, ft.errs())
	}
	assert.PanicsWithValue(t, `udptest: ReserveAddr of unsupported network "tcp": use "udp", "udp4" or "udp6"`,
		func() { ReserveAddr(new(fakeTB), "tcp") })
}
