package safeudp

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestParseProcNetUDP(t *testing.T) {
	// A real /proc/net/udp line, as in NOTES.md, plus noise.
	data := "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n" +
		" 8583: 0100007F:1F75 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 52678 2 00000000593bd553 0\n" +
		"garbage line\n" +
		" 12: ZZ00007F:1F75 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0 0\n"
	got := parseProcNetUDP([]byte(data))
	require.Len(t, got, 1)
	if binary.NativeEndian.Uint16([]byte{1, 0}) == 1 { // little-endian host, as the sample
		assert.Equal(t, netip.MustParseAddrPort("127.0.0.1:8053"), got[0].local)
	}
	assert.Equal(t, uint64(52678), got[0].ino)
}

func TestParseProcNetUDP6Mapped(t *testing.T) {
	// ::ffff:127.0.0.1 port 8053, printed as four host-order words.
	var raw [16]byte
	copy(raw[:], netip.MustParseAddr("::ffff:127.0.0.1").AsSlice())
	var b strings.Builder
	for w := 0; w < 4; w++ {
		b.WriteString(strings.ToUpper(hexWord(binary.NativeEndian.Uint32(raw[w*4:]))))
	}
	line := "  1: " + b.String() + ":1F75 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000 0 0 777 2 0 0\n"
	got := parseProcNetUDP([]byte(line))
	require.Len(t, got, 1)
	assert.Equal(t, netip.MustParseAddrPort("[::ffff:127.0.0.1]:8053"), got[0].local)
	assert.True(t, conflicts(netip.MustParseAddrPort("127.0.0.1:8053"), got[0].local), "mapped and plain IPv4 are the same address")
}

func hexWord(v uint32) string {
	const digits = "0123456789abcdef"
	var b [8]byte
	for i := 7; i >= 0; i-- {
		b[i] = digits[v&15]
		v >>= 4
	}
	return string(b[:])
}

func TestParseProcNetUnix(t *testing.T) {
	data := "Num       RefCount Protocol Flags    Type St Inode Path\n" +
		"0000000000000000: 00000002 00000000 00010000 0001 01 1234 /run/a b.sock\n" +
		"0000000000000000: 00000002 00000000 00000000 0002 01 5678 @abstract\n" +
		"0000000000000000: 00000002 00000000 00000000 0002 01 91011\n" +
		"0000000000000000: 0002\n"
	got := parseProcNetUnix([]byte(data))
	require.Len(t, got, 3)
	assert.Equal(t, unixEntry{ino: 1234, path: "/run/a b.sock"}, got[0])
	assert.Equal(t, unixEntry{ino: 5678, dgram: true, path: "@abstract"}, got[1])
	assert.Equal(t, unixEntry{ino: 91011, dgram: true}, got[2])
}

func TestConflicts(t *testing.T) {
	ap := netip.MustParseAddrPort
	assert.True(t, conflicts(ap("127.0.0.1:1"), ap("0.0.0.0:1")))
	assert.True(t, conflicts(ap("127.0.0.1:1"), ap("[::]:1")))
	assert.True(t, conflicts(ap("0.0.0.0:1"), ap("127.0.0.1:1")))
	assert.True(t, conflicts(ap("[::]:1"), ap("127.0.0.1:1")))
	assert.False(t, conflicts(ap("127.0.0.1:1"), ap("127.0.0.2:1")))
	assert.False(t, conflicts(ap("127.0.0.1:1"), ap("127.0.0.1:2")))
	assert.False(t, conflicts(ap("[::1]:1"), ap("0.0.0.0:1")))
}

// TestSockDiagAgreesWithProcNet checks the fast lookup against the
// /proc tables, for each family, before and after close.
func TestSockDiagAgreesWithProcNet(t *testing.T) {
	dir, err := os.MkdirTemp("", "su")
	require.NoError(t, err)
	defer os.RemoveAll(dir)
	for _, tc := range []struct{ network, addr string }{
		{"udp4", "127.0.0.1:0"},
		{"udp6", "[::1]:0"},
		{"udp", ":0"},
		{"unixgram", dir + "/s"},
		{"connected", "127.0.0.1:9"},
	} {
		t.Run(tc.network, func(t *testing.T) {
			var pc net.PacketConn
			var err error
			if tc.network == "connected" {
				pc, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(tc.addr))) // connected, as Wrap may get
			} else {
				pc, err = net.ListenPacket(tc.network, tc.addr)
			}
			if err != nil && tc.network == "udp6" {
				t.Skip("no IPv6 loopback:", err)
			}
			require.NoError(t, err)
			rc, err := pc.(syscall.Conn).SyscallConn()
			require.NoError(t, err)
			var id sockID
			require.NoError(t, rc.Control(func(fd uintptr) {
				id = identifyFD(int(fd), false, tc.network == "connected")
			}))
			require.NotZero(t, id.ino, "identify records the inode itself")
			require.NotZero(t, id.diag.family)
			require.True(t, diagWorks(id.diag.family), "sock_diag works on this kernel for family %d", id.diag.family)

			held, ino, err := id.diag.present(id.ino)
			require.NoError(t, err)
			assert.True(t, held, "sock_diag finds the open socket")
			assert.Equal(t, id.ino, ino, "and reports its inode")
			held, err = id.inProcNet()
			require.NoError(t, err)
			assert.True(t, held, "/proc/net lists the open socket")

			require.NoError(t, pc.Close())
			held, _, err = id.diag.present(id.ino)
			require.NoError(t, err)
			assert.False(t, held, "sock_diag: gone after close")
			held, err = id.inProcNet()
			require.NoError(t, err)
			assert.False(t, held, "/proc/net: gone after close")
		})
	}
}

func TestParseDiagReply(t *testing.T) {
	ne := binary.NativeEndian
	msg := func(typ uint16, seq uint32, body []byte) []byte {
		b := make([]byte, 16+len(body))
		ne.PutUint32(b, uint32(len(b)))
		ne.PutUint16(b[4:], typ)
		ne.PutUint32(b[8:], seq)
		copy(b[16:], body)
		return b
	}
	errBody := func(errno syscall.Errno) []byte {
		b := make([]byte, 20)
		ne.PutUint32(b, uint32(-int32(errno)))
		return b
	}
	body := make([]byte, 72)
	ne.PutUint32(body[68:], 4242)
	found, ino, err := parseDiagReply(msg(unix.SOCK_DIAG_BY_FAMILY, 7, body), 7, unix.AF_INET)
	assert.Equal(t, uint64(4242), ino)
	assert.True(t, found)
	assert.NoError(t, err)
	found, _, err = parseDiagReply(msg(unix.NLMSG_ERROR, 7, errBody(unix.ENOENT)), 7, unix.AF_INET)
	assert.False(t, found)
	assert.NoError(t, err)
	_, _, err = parseDiagReply(msg(unix.NLMSG_ERROR, 7, errBody(unix.ESTALE)), 7, unix.AF_INET)
	assert.Equal(t, errDiagUnsupported, err, "a cookie mismatch cannot prove ours is gone")
	_, _, err = parseDiagReply(msg(unix.NLMSG_ERROR, 6, errBody(unix.ENOENT)), 7, unix.AF_INET)
	assert.Equal(t, errStaleReply, err)
	_, _, err = parseDiagReply([]byte{1, 2, 3}, 7, unix.AF_INET)
	assert.Error(t, err)
}
