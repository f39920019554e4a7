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

// BenchmarkUDPOnPort measures a dump of the UDP sockets on one port
// (both families, as a RebindingConn's join check makes it) with the
// kernel's filter and without it (every socket sent, picked out here),
// with few sockets and with 1,000 on other ports.
func BenchmarkUDPOnPort(b *testing.B) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer pc.Close()
	port := uint16(pc.LocalAddr().(*net.UDPAddr).Port)
	run := func(b *testing.B, filter bool) {
		b.ReportAllocs()
		var socks []UDPSocket
		for b.Loop() {
			var err error
			socks = socks[:0]
			for _, family := range []uint8{syscall.AF_INET, syscall.AF_INET6} {
				if socks, err = udpOnPort(socks, family, port, filter); err != nil {
					b.Fatal(err)
				}
			}
			if len(socks) != 1 {
				b.Fatalf("%d sockets on the port", len(socks))
			}
		}
	}
	b.Run("few/filter", func(b *testing.B) { run(b, true) })
	b.Run("few/nofilter", func(b *testing.B) { run(b, false) })
	var others []net.PacketConn
	defer func() {
		for _, o := range others {
			o.Close()
		}
	}()
	for range 1000 {
		o, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		others = append(others, o)
	}
	b.Run("1000/filter", func(b *testing.B) { run(b, true) })
	b.Run("1000/nofilter", func(b *testing.B) { run(b, false) })
}
