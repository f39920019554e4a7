package udptest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
)

// ListenPipe returns a MakePacketPipe whose two conns are made by listen
// on loopback: for network "udp" or "udp4" on 127.0.0.1:0, "udp6" on
// [::1]:0, "unixgram" as the socket files "c1" and "c2" of a fresh
// temporary directory. Pass [net.ListenPacket] to test the standard library's
// conns, safeudp.ListenPacket for safeudp's, or a function of your own that
// wraps either.
//
// The pipe's stop closes both conns (ignoring errors: the subtest may have
// closed them) and removes the temporary directory with the socket files in
// it, which the pipe created. ListenPipe panics for any other network.
func ListenPipe(network string, listen func(network, address string) (net.PacketConn, error)) MakePacketPipe {
	switch network {
	case "udp", "udp4", "udp6", "unixgram":
	default:
		panic(fmt.Sprintf(`udptest: ListenPipe of unsupported network %q: use "udp", "udp4", "udp6" or "unixgram"`, network))
	}
	return func() (c1, c2 net.PacketConn, stop func(), err error) {
		var dir string
		addr := func(name string) string {
			switch network {
			case "udp6":
				return "[::1]:0"
			case "unixgram":
				return filepath.Join(dir, name)
			}
			return "127.0.0.1:0"
		}
		if network == "unixgram" {
			if dir, err = os.MkdirTemp("", "udptest"); err != nil {
				return nil, nil, nil, err
			}
		}
		removeDir := func() {
			if dir == "" {
				return
			}
			for _, name := range []string{"c1", "c2"} {
				if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
					return // leave what we cannot explain
				}
			}
			_ = os.Remove(dir)
		}
		if c1, err = listen(network, addr("c1")); err != nil {
			removeDir()
			return nil, nil, nil, err
		}
		if c2, err = listen(network, addr("c2")); err != nil {
			c1.Close()
			removeDir()
			return nil, nil, nil, err
		}
		stop = func() {
			c1.Close()
			c2.Close()
			removeDir()
		}
		return c1, c2, stop, nil
	}
}
