package udptest

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// fdSnapshot maps each open descriptor to what it refers to, as
// /proc/self/fd shows it ("socket:[1234]", a path, "pipe:[5678]").
type fdSnapshot map[int]string

// takeFDSnapshot lists the open descriptors of this process, or returns
// nil if /proc cannot be read.
func takeFDSnapshot() fdSnapshot {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil
	}
	snap := make(fdSnapshot, len(entries))
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		what, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue // closed since the listing, like the listing's own descriptor
		}
		snap[fd] = what
	}
	return snap
}

// runtimeFD reports whether a descriptor is one that stays open for the
// life of the process by design: the Go runtime's netpoller (epoll and its
// wakeup eventfd), and the sock_diag netlink socket that safeudp opens on
// first use to verify releases.
func runtimeFD(what string) bool {
	return what == "anon_inode:[eventpoll]" || what == "anon_inode:[eventfd]" || sockDiagFD(what)
}

// netlinkSockDiag is NETLINK_SOCK_DIAG, the protocol ("Eth") column of
// /proc/net/netlink for sock_diag sockets.
const netlinkSockDiag = "4"

// sockDiagFD reports whether what ("socket:[inode]") is a sock_diag netlink
// socket, as /proc/net/netlink lists them.
func sockDiagFD(what string) bool {
	inode, ok := strings.CutPrefix(what, "socket:[")
	if !ok {
		return false
	}
	inode = strings.TrimSuffix(inode, "]")
	b, err := os.ReadFile("/proc/net/netlink")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 9 && f[9] == inode {
			return f[1] == netlinkSockDiag
		}
	}
	return false
}

// describeFD adds, for a UDP or unix socket, its local address as
// /proc/net shows it.
func describeFD(what string) string {
	inode, ok := strings.CutPrefix(what, "socket:[")
	if !ok {
		return what
	}
	inode = strings.TrimSuffix(inode, "]")
	if addr := socketAddr(inode); addr != "" {
		return fmt.Sprintf("%s, %s", what, addr)
	}
	return what
}

// socketAddr looks the socket inode up in /proc/net/{udp,udp6,unix} and
// returns its table and local address, or "" if it is not there.
func socketAddr(inode string) string {
	for _, table := range []string{"udp", "udp6"} {
		b, err := os.ReadFile("/proc/net/" + table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) > 9 && f[9] == inode {
				return table + " " + procNetAddr(f[1])
			}
		}
	}
	b, err := os.ReadFile("/proc/net/unix")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 6 && f[6] == inode {
			if len(f) > 7 {
				return "unix " + f[7]
			}
			return "unix (unnamed)"
		}
	}
	return ""
}

// procNetAddr decodes a /proc/net/udp{,6} local address: the address as
// network-order 32-bit words printed in host-order hex, then the port.
func procNetAddr(s string) string {
	hexAddr, hexPort, ok := strings.Cut(s, ":")
	if !ok {
		return s
	}
	port, err := strconv.ParseUint(hexPort, 16, 16)
	if err != nil {
		return s
	}
	var ip []byte
	for i := 0; i+8 <= len(hexAddr); i += 8 {
		w, err := strconv.ParseUint(hexAddr[i:i+8], 16, 32)
		if err != nil {
			return s
		}
		// The kernel printed the network-order bytes as a native-endian
		// integer; write them back the same way.
		ip = binary.NativeEndian.AppendUint32(ip, uint32(w))
	}
	return net.JoinHostPort(net.IP(ip).String(), strconv.FormatUint(port, 10))
}
