package sockdiag

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// dumpMsg builds one netlink message of a dump reply.
func dumpMsg(typ, flags uint16, seq uint32, body []byte) []byte {
	ne := binary.NativeEndian
	b := make([]byte, nlmsgHdrLen+len(body), nlmsgHdrLen+len(body)+3)
	ne.PutUint32(b, uint32(len(b)))
	ne.PutUint16(b[4:], typ)
	ne.PutUint16(b[6:], flags)
	ne.PutUint32(b[8:], seq)
	copy(b[nlmsgHdrLen:], body)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// diagRecord builds a struct inet_diag_msg for s, with an
// INET_DIAG_SKV6ONLY attribute for AF_INET6.
func diagRecord(s UDPSocket) []byte {
	ne := binary.NativeEndian
	m := make([]byte, inetDiagMsgLen)
	m[0], m[1] = s.Family, 7 // TCP_CLOSE: an unconnected UDP socket
	binary.BigEndian.PutUint16(m[4:], s.Local.Port())
	a := s.Local.Addr().As16()
	if s.Family == unix.AF_INET {
		a4 := s.Local.Addr().As4()
		copy(m[8:], a4[:])
	} else {
		copy(m[8:], a[:])
	}
	ne.PutUint32(m[40:], s.Ifindex)
	ne.PutUint32(m[44:], uint32(s.Cookie))
	ne.PutUint32(m[48:], uint32(s.Cookie>>32))
	ne.PutUint32(m[64:], s.UID)
	ne.PutUint32(m[68:], uint32(s.Inode))
	if s.Family == unix.AF_INET6 {
		attr := []byte{5, 0, inetDiagSkv6only, 0, 0, 0, 0, 0}
		if s.V6Only {
			attr[4] = 1
		}
		m = append(m, attr...)
	}
	return m
}

func TestParseDump(t *testing.T) {
	v4 := UDPSocket{Family: unix.AF_INET, Local: netip.MustParseAddrPort("127.0.0.1:4242"), Cookie: 1<<40 | 7, Inode: 1234, UID: 1000}
	v6 := UDPSocket{Family: unix.AF_INET6, Local: netip.MustParseAddrPort("[::]:4242"), Cookie: 8, Inode: 5678, Ifindex: 1, V6Only: true}
	other := UDPSocket{Family: unix.AF_INET, Local: netip.MustParseAddrPort("127.0.0.1:53"), Cookie: 9, Inode: 9}
	part := append(append(dumpMsg(unix.SOCK_DIAG_BY_FAMILY, unix.NLM_F_MULTI, 3, diagRecord(v4)),
		dumpMsg(unix.SOCK_DIAG_BY_FAMILY, unix.NLM_F_MULTI, 3, diagRecord(other))...),
		dumpMsg(unix.SOCK_DIAG_BY_FAMILY, unix.NLM_F_MULTI, 3, diagRecord(v6))...)
	got, done, err := parseDump(part, 3, 4242, nil)
	require.NoError(t, err)
	assert.False(t, done, "no NLMSG_DONE yet")
	assert.Equal(t, []UDPSocket{v4, v6}, got, "the sockets on the port, each field read back; another port left out")

	end := dumpMsg(unix.NLMSG_DONE, unix.NLM_F_MULTI, 3, []byte{0, 0, 0, 0})
	got, done, err = parseDump(end, 3, 4242, got)
	require.NoError(t, err)
	assert.True(t, done)
	assert.Len(t, got, 2)

	for name, tc := range map[string]struct {
		b       []byte
		errIs   error
		errText string
	}{
		"a reply to another request":   {b: dumpMsg(unix.SOCK_DIAG_BY_FAMILY, 0, 2, diagRecord(v4)), errIs: errStaleReply},
		"no diag module":               {b: dumpMsg(unix.NLMSG_ERROR, 0, 3, []byte{0xfe, 0xff, 0xff, 0xff}), errIs: ErrUnsupported},
		"a dump that failed":           {b: dumpMsg(unix.NLMSG_DONE, 0, 3, []byte{0xf4, 0xff, 0xff, 0xff}), errIs: unix.ENOMEM},
		"an interrupted dump":          {b: dumpMsg(unix.SOCK_DIAG_BY_FAMILY, nlmFDumpIntr, 3, diagRecord(v4)), errText: "interrupted"},
		"a short record":               {b: dumpMsg(unix.SOCK_DIAG_BY_FAMILY, 0, 3, diagRecord(v4)[:60]), errText: "malformed"},
		"a record of another family":   {b: dumpMsg(unix.SOCK_DIAG_BY_FAMILY, 0, 3, make([]byte, inetDiagMsgLen)), errText: "malformed"},
		"a length past the end":        {b: []byte{200, 0, 0, 0, 20, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0}, errText: "malformed"},
		"nothing":                      {b: nil, errText: "empty"},
		"a type it does not know":      {b: dumpMsg(99, 0, 3, nil), errText: "unexpected"},
		"an attribute past the record": {b: dumpMsg(unix.SOCK_DIAG_BY_FAMILY, 0, 3, append(diagRecord(v4), 40, 0, 1, 0)), errText: "malformed"},
	} {
		t.Run(name, func(t *testing.T) {
			got, done, err := parseDump(tc.b, 3, 4242, nil)
			require.Error(t, err)
			assert.False(t, done)
			assert.Empty(t, got)
			if tc.errIs != nil {
				assert.ErrorIs(t, err, tc.errIs)
			} else {
				assert.Contains(t, err.Error(), tc.errText)
			}
		})
	}
}

func TestBuildDumpRequest(t *testing.T) {
	var b [dumpReqLen]byte
	req := buildDumpRequest(&b, 5, unix.AF_INET6, 0x1234, true)
	ne := binary.NativeEndian
	require.Len(t, req, dumpReqLen)
	assert.Equal(t, uint32(dumpReqLen), ne.Uint32(req[0:]))
	assert.Equal(t, uint16(unix.SOCK_DIAG_BY_FAMILY), ne.Uint16(req[4:]))
	assert.Equal(t, uint16(unix.NLM_F_REQUEST|unix.NLM_F_DUMP), ne.Uint16(req[6:]))
	assert.Equal(t, uint32(5), ne.Uint32(req[8:]))
	r := req[nlmsgHdrLen:]
	assert.Equal(t, []byte{unix.AF_INET6, unix.IPPROTO_UDP, 0, 0, 0xff, 0xff, 0xff, 0xff}, r[:8])
	assert.Equal(t, make([]byte, 48), r[8:56], "any address, any port: the filter picks the port")
	a := r[inetDiagReqLen:]
	assert.Equal(t, uint16(20), ne.Uint16(a[0:]))
	assert.Equal(t, uint16(inetDiagReqBytecode), ne.Uint16(a[2:]))
	port := make([]byte, 2)
	ne.PutUint16(port, 0x1234)
	assert.Equal(t, []byte{inetDiagBcSGe, 8, 20, 0, 0, 0, port[0], port[1], inetDiagBcSLe, 8, 12, 0, 0, 0, port[0], port[1]}, a[4:])

	req = buildDumpRequest(&b, 6, unix.AF_INET, 0x1234, false)
	require.Len(t, req, nlmsgHdrLen+inetDiagReqLen, "no filter")
	assert.Equal(t, uint32(nlmsgHdrLen+inetDiagReqLen), ne.Uint32(req[0:]))
}

func FuzzParseDump(f *testing.F) {
	v4 := UDPSocket{Family: unix.AF_INET, Local: netip.MustParseAddrPort("127.0.0.1:4242"), Cookie: 7, Inode: 1234}
	f.Add(dumpMsg(unix.SOCK_DIAG_BY_FAMILY, unix.NLM_F_MULTI, 3, diagRecord(v4)), uint32(3), uint16(4242))
	f.Add(dumpMsg(unix.NLMSG_DONE, unix.NLM_F_MULTI, 3, []byte{0, 0, 0, 0}), uint32(3), uint16(1))
	f.Add(dumpMsg(unix.NLMSG_ERROR, 0, 3, []byte{0xfe, 0xff, 0xff, 0xff}), uint32(3), uint16(1))
	f.Fuzz(func(t *testing.T, data []byte, seq uint32, port uint16) {
		// Anything: no panic; what comes back is on the port asked for,
		// of a family it knows, and an error brings nothing back.
		got, done, err := parseDump(data, seq, port, nil)
		if err != nil && (done || len(got) != 0) {
			t.Fatalf("error %v with done %v and %d sockets", err, done, len(got))
		}
		for _, s := range got {
			if s.Local.Port() != port || (s.Family != unix.AF_INET && s.Family != unix.AF_INET6) {
				t.Fatalf("socket %+v for port %d", s, port)
			}
		}
		// The record of any socket reads back as itself.
		if len(data) >= 8 {
			ne := binary.NativeEndian
			s := UDPSocket{Family: unix.AF_INET6, Local: netip.AddrPortFrom(netip.AddrFrom16([16]byte(append(data[:8:8], data[:8]...))), port),
				Cookie: ne.Uint64(data), Inode: uint64(ne.Uint32(data)), UID: ne.Uint32(data[4:]), Ifindex: uint32(data[0]), V6Only: data[1]&1 == 1}
			if data[2]&1 == 1 {
				s.Family, s.V6Only = unix.AF_INET, false
				s.Local = netip.AddrPortFrom(netip.AddrFrom4([4]byte(data[:4])), port)
			}
			got, _, err := parseDump(dumpMsg(unix.SOCK_DIAG_BY_FAMILY, 0, seq, diagRecord(s)), seq, port, nil)
			if err != nil || len(got) != 1 || got[0] != s {
				t.Fatalf("record of %+v read back as %+v, %v", s, got, err)
			}
		}
	})
}

// socketOf returns the Cookie and inode of pc's socket.
func socketOf(t *testing.T, pc net.PacketConn) (cookie, inode uint64) {
	rc, err := pc.(syscall.Conn).SyscallConn()
	require.NoError(t, err)
	var ok bool
	require.NoError(t, rc.Control(func(fd uintptr) {
		cookie, ok = Cookie(int(fd))
		inode = Inode(int(fd))
	}))
	require.True(t, ok, "SO_COOKIE")
	return cookie, inode
}

// listen binds network address, with IPV6_V6ONLY set when v6only.
func listen(t *testing.T, network, address string, v6only bool) net.PacketConn {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if v6only {
			_ = c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1) })
		}
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), network, address)
	require.NoError(t, err)
	t.Cleanup(func() { pc.Close() })
	return pc
}

func TestUDPOnPortListsEverySocketOnThePort(t *testing.T) {
	first := listen(t, "udp4", "127.0.0.1:0", false)
	port := first.LocalAddr().(*net.UDPAddr).Port
	at := func(host string) string { return net.JoinHostPort(host, strconv.Itoa(port)) }
	second := listen(t, "udp4", at("127.0.0.2"), false)
	v6only := listen(t, "udp6", at("::"), true)          // with IPV6_V6ONLY, the IPv6 wildcard leaves IPv4 to the others
	elsewhere := listen(t, "udp4", "127.0.0.1:0", false) // another port: not listed

	want := map[uint64]UDPSocket{}
	for _, s := range []struct {
		pc     net.PacketConn
		family uint8
		v6only bool
	}{{first, unix.AF_INET, false}, {second, unix.AF_INET, false}, {v6only, unix.AF_INET6, true}} {
		cookie, ino := socketOf(t, s.pc)
		want[cookie] = UDPSocket{Family: s.family, Local: s.pc.LocalAddr().(*net.UDPAddr).AddrPort(), Cookie: cookie, Inode: ino,
			UID: uint32(os.Geteuid()), V6Only: s.v6only}
	}
	elsewhereCookie, _ := socketOf(t, elsewhere)
	for _, filter := range []bool{true, false} {
		var got []UDPSocket
		for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
			var err error
			got, err = udpOnPort(got, family, uint16(port), filter)
			require.NoError(t, err)
		}
		seen := map[uint64]UDPSocket{}
		for _, s := range got {
			require.NotEqual(t, elsewhereCookie, s.Cookie, "a socket on another port")
			if w, ok := want[s.Cookie]; ok {
				if w.Local.Addr().Is4() {
					s.Local = netip.AddrPortFrom(s.Local.Addr().Unmap(), s.Local.Port())
				}
				seen[s.Cookie] = s
			}
		}
		assert.Equal(t, want, seen, "filter %v", filter)
	}
}

func TestUDPOnPortRefusesOtherFamilies(t *testing.T) {
	got, err := UDPOnPort(nil, unix.AF_UNIX, 1)
	require.Error(t, err)
	assert.Empty(t, got)
}
