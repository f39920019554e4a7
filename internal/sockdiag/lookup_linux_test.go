package sockdiag

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/safeudp/safeudp/internal/procnet"
)

func FuzzParseReply(f *testing.F) {
	f.Add([]byte{36, 0, 0, 0, 2, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 254, 255, 255, 255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, uint32(7), uint32(7), int32(2), uint32(1234))
	f.Add([]byte{16, 0, 0, 0, 20, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0}, uint32(7), uint32(6), int32(116), uint32(0))
	f.Fuzz(func(t *testing.T, data []byte, seq, replySeq uint32, errno int32, ino uint32) {
		family := uint8(unix.AF_INET) // or AF_UNIX for odd sequence numbers
		if seq%2 == 1 {
			family = unix.AF_UNIX
		}
		// Anything: no panic, and never found together with an error.
		if found, _, err := parseReply(data, seq, family); found && err != nil {
			t.Fatalf("found and error %v", err)
		}

		// A well-formed error reply.
		ne := binary.NativeEndian
		msg := func(typ uint16, body []byte) []byte {
			b := make([]byte, nlmsgHdrLen+len(body))
			ne.PutUint32(b, uint32(len(b)))
			ne.PutUint16(b[4:], typ)
			ne.PutUint32(b[8:], replySeq)
			copy(b[nlmsgHdrLen:], body)
			return b
		}
		errBody := make([]byte, 20)
		ne.PutUint32(errBody, uint32(-errno))
		found, _, err := parseReply(msg(unix.NLMSG_ERROR, errBody), seq, family)
		switch {
		case replySeq != seq:
			if err != errStaleReply {
				t.Fatalf("reply to request %d taken for request %d: %v, %v", replySeq, seq, found, err)
			}
		case found:
			t.Fatalf("an error reply (errno %d) says found", errno)
		case syscall.Errno(errno) == unix.ENOENT:
			if err != nil {
				t.Fatalf("ENOENT gives error %v, want (false, nil): the socket is gone", err)
			}
		case err == nil:
			t.Fatalf("errno %d taken for \"gone\": only ENOENT says so", errno)
		}

		// A well-formed socket reply carries the inode.
		body := make([]byte, 72)
		off := 68
		if family == unix.AF_UNIX {
			off = 4
		}
		ne.PutUint32(body[off:], ino)
		found, got, err := parseReply(msg(unix.SOCK_DIAG_BY_FAMILY, body), seq, family)
		if replySeq == seq && (!found || got != uint64(ino) || err != nil) {
			t.Fatalf("socket reply: found %v, inode %d (want %d), err %v", found, got, ino, err)
		}
	})
}

// TestLookupAgreesWithProcNet checks the fast lookup against the
// /proc tables, for each family, before and after close.
func TestLookupAgreesWithProcNet(t *testing.T) {
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
			var id Socket
			require.NoError(t, rc.Control(func(fd uintptr) {
				id = Identify(int(fd), false, tc.network == "connected")
			}))
			require.NotZero(t, id.Inode, "identify records the inode itself")
			require.NotZero(t, id.Key.Family)
			require.True(t, Works(id.Key.Family), "sock_diag works on this kernel for family %d", id.Key.Family)

			held, ino, err := id.Key.Lookup(id.Inode)
			require.NoError(t, err)
			assert.True(t, held, "sock_diag finds the open socket")
			assert.Equal(t, id.Inode, ino, "and reports its inode")
			held, err = procnet.Listed("/proc", id.Family, id.Inode)
			require.NoError(t, err)
			assert.True(t, held, "/proc/net lists the open socket")

			require.NoError(t, pc.Close())
			held, _, err = id.Key.Lookup(id.Inode)
			require.NoError(t, err)
			assert.False(t, held, "sock_diag: gone after close")
			held, err = procnet.Listed("/proc", id.Family, id.Inode)
			require.NoError(t, err)
			assert.False(t, held, "/proc/net: gone after close")
		})
	}
}

func TestParseReply(t *testing.T) {
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
	found, ino, err := parseReply(msg(unix.SOCK_DIAG_BY_FAMILY, 7, body), 7, unix.AF_INET)
	assert.Equal(t, uint64(4242), ino)
	assert.True(t, found)
	assert.NoError(t, err)
	found, _, err = parseReply(msg(unix.NLMSG_ERROR, 7, errBody(unix.ENOENT)), 7, unix.AF_INET)
	assert.False(t, found)
	assert.NoError(t, err)
	_, _, err = parseReply(msg(unix.NLMSG_ERROR, 7, errBody(unix.ESTALE)), 7, unix.AF_INET)
	assert.Equal(t, ErrUnsupported, err, "a cookie mismatch cannot prove ours is gone")
	_, _, err = parseReply(msg(unix.NLMSG_ERROR, 6, errBody(unix.ENOENT)), 7, unix.AF_INET)
	assert.Equal(t, errStaleReply, err)
	_, _, err = parseReply([]byte{1, 2, 3}, 7, unix.AF_INET)
	assert.Error(t, err)
}
