//go:build linux

package safeudp

import (
	"context"
	"net"
	"syscall"
	"testing"
)

// BenchmarkVerifyReleased measures what Close adds on Linux when nothing
// else holds the socket: the fork barrier and one sock_diag lookup that
// finds the socket gone, for UDP and unixgram; and, for UDP, the fallback
// to /proc/net/udp used when sock_diag cannot answer.
func BenchmarkVerifyReleased(b *testing.B) {
	for _, bc := range []struct {
		name, network, addr string
		procNet             bool
	}{
		{"udp", "udp", "127.0.0.1:0", false},
		{"unixgram", "unixgram", "", false},
		{"udp-procnet", "udp", "127.0.0.1:0", true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			addr := bc.addr
			if addr == "" {
				addr = b.TempDir() + "/s"
			}
			pc, err := net.ListenPacket(bc.network, addr)
			if err != nil {
				b.Fatal(err)
			}
			rc, err := pc.(syscall.Conn).SyscallConn()
			if err != nil {
				b.Fatal(err)
			}
			c := &core{}
			_ = rc.Control(func(fd uintptr) { c.sock = identifyFD(int(fd), bc.network == "udp", false) })
			if bc.procNet {
				c.sock.diag = diagKey{}
			}
			if err := pc.Close(); err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			for b.Loop() {
				if n, err := verifyReleased(ctx, c); n != 1 || err != nil {
					b.Fatal(n, err)
				}
			}
		})
	}
}

// BenchmarkIdentify measures what ListenPacket spends to record a UDP
// socket's identity (identifyFD), and the two parts the release fixes
// added to it: fstat for the inode, and SO_BINDTOIFINDEX for the bound
// interface.
func BenchmarkIdentify(b *testing.B) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer pc.Close()
	rc, err := pc.(syscall.Conn).SyscallConn()
	if err != nil {
		b.Fatal(err)
	}
	var fd int
	_ = rc.Control(func(s uintptr) { fd = int(s) })
	for _, bc := range []struct {
		name string
		f    func()
	}{
		{"identifyFD", func() {
			if id := identifyFD(fd, true, false); !id.identified() {
				b.Fatal("not identified")
			}
		}},
		{"fstat", func() {
			if fdInode(fd) == 0 {
				b.Fatal("no inode")
			}
		}},
		{"bindtoifindex", func() {
			if _, ok := boundIfindex(fd); !ok {
				b.Fatal("no ifindex")
			}
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bc.f()
			}
		})
	}
}
