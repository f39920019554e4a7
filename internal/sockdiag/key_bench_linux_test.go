package sockdiag

import (
	"net"
	"syscall"
	"testing"
)

// BenchmarkIdentify measures what safeudp spends to record a UDP
// socket's identity (Identify), and the two parts the release fixes
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
		{"Identify", func() {
			if id := Identify(fd, true, false); id.Inode == 0 {
				b.Fatal("not identified")
			}
		}},
		{"fstat", func() {
			if Inode(fd) == 0 {
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
