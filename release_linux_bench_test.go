//go:build linux

package safeudp

import (
	"context"
	"net"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/safeudp/safeudp/internal/sockdiag"
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
			var t releaseTarget
			_ = rc.Control(func(fd uintptr) { t.sock = sockdiag.Identify(int(fd), bc.network == "udp", false) })
			if bc.procNet {
				t.sock.Key = sockdiag.Key{}
			}
			if err := pc.Close(); err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			for b.Loop() {
				if n, err := verifyReleased(ctx, t); n != 1 || err != nil {
					b.Fatal(n, err)
				}
			}
		})
	}
}

// BenchmarkNoChildren measures the fast path's one system call, in a
// process with no child: waitid made raw (impl=raw, what noChildren does)
// and through x/sys/unix.Waitid, which tells the scheduler first
// (impl=unix).
func BenchmarkNoChildren(b *testing.B) {
	b.Run("impl=raw", func(b *testing.B) {
		for b.Loop() {
			if !noChildren() {
				b.Fatal("this benchmark needs a process with no child")
			}
		}
	})
	b.Run("impl=unix", func(b *testing.B) {
		var info unix.Siginfo
		for b.Loop() {
			if err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT|unix.WALL, nil); err != unix.ECHILD {
				b.Fatalf("waitid: %v, want ECHILD (this benchmark needs a process with no child)", err)
			}
		}
	})
}
