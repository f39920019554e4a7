package udptest

import (
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDescribeFDNamesTheSocketsAddress: a leaked socket is reported with
// its table and local address, read from /proc/net.
func TestDescribeFDNamesTheSocketsAddress(t *testing.T) {
	for _, tc := range []struct{ network, addr, want string }{
		{"udp4", "127.0.0.1:0", "udp 127.0.0.1:"},
		{"udp6", "[::1]:0", "udp6 [::1]:"},
		{"unixgram", "", "unix "},
	} {
		t.Run(tc.network, func(t *testing.T) {
			addr := tc.addr
			if addr == "" {
				dir, err := os.MkdirTemp("", "su")
				require.NoError(t, err)
				t.Cleanup(func() { _ = os.RemoveAll(dir) })
				addr = dir + "/s"
			}
			pc, err := net.ListenPacket(tc.network, addr)
			if err != nil && tc.network == "udp6" {
				t.Skip("no IPv6 loopback:", err)
			}
			require.NoError(t, err)
			defer pc.Close()
			want := tc.want
			if ua, ok := pc.LocalAddr().(*net.UDPAddr); ok {
				want += strconv.Itoa(ua.Port)
			} else {
				want += addr
			}
			rc, err := pc.(syscall.Conn).SyscallConn()
			require.NoError(t, err)
			var fd int
			require.NoError(t, rc.Control(func(s uintptr) { fd = int(s) }))
			snap := takeFDSnapshot()
			require.Contains(t, snap, fd)
			assert.Contains(t, describeFD(snap[fd]), want)
			assert.Equal(t, "pipe:[1]", describeFD("pipe:[1]"), "a non-socket is left as it is")
		})
	}
}
