//go:build unix

package safeudp_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/safeudp/safeudp"
)

// A unixgram socket: Close removes the socket file that the bind created,
// so the path can be bound again at once.
func ExampleListenUnixgram() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	addr := &net.UnixAddr{Name: filepath.Join(dir, "s"), Net: "unixgram"}
	for range 2 {
		u, err := safeudp.ListenUnixgram("unixgram", addr)
		if err != nil {
			fmt.Println(err)
			return
		}
		if err := u.Close(); err != nil {
			fmt.Println(err)
		}
		_, err = os.Stat(addr.Name)
		fmt.Println("file removed:", os.IsNotExist(err))
	}
	// Output:
	// file removed: true
	// file removed: true
}

// ReadBatch reads many datagrams per system call (recvmmsg on Linux; one
// per call on other Unix systems), with the signature quic-go looks for.
func ExampleUDPConn_ReadBatch() {
	c, err := safeudp.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	for _, p := range []string{"a", "b", "c"} {
		if _, err := c.WriteToUDP([]byte(p), c.LocalAddr().(*net.UDPAddr)); err != nil {
			fmt.Println(err)
			return
		}
	}
	ms := make([]ipv4.Message, 8)
	for i := range ms {
		ms[i].Buffers = [][]byte{make([]byte, 64)}
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var got []string
	for len(got) < 3 {
		n, err := c.ReadBatch(ms, 0)
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, m := range ms[:n] {
			got = append(got, string(m.Buffers[0][:m.N]))
		}
	}
	fmt.Println(got)
	// Output: [a b c]
}
