package udptest

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/safeudp/safeudp/internal/procfd"
	"github.com/safeudp/safeudp/internal/procnet"
)

// fdSnapshot maps each open descriptor to what it refers to, as
// /proc/self/fd shows it ("socket:[1234]", a path, "pipe:[5678]").
type fdSnapshot map[int]string

// takeFDSnapshot lists the open descriptors of this process, or returns
// nil if /proc cannot be read.
func takeFDSnapshot() fdSnapshot {
	links, err := procfd.Links("/proc", "self")
	if err != nil {
		return nil
	}
	return links
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
const netlinkSockDiag = 4

// sockDiagFD reports whether what ("socket:[inode]") is a sock_diag netlink
// socket, as /proc/net/netlink lists them.
func sockDiagFD(what string) bool {
	ino, ok := socketInode(what)
	if !ok {
		return false
	}
	proto, ok := procnet.NetlinkProtocol("/proc", ino)
	return ok && proto == netlinkSockDiag
}

// socketInode returns the inode of a "socket:[inode]" link.
func socketInode(what string) (uint64, bool) {
	s, ok := strings.CutPrefix(what, "socket:[")
	if !ok {
		return 0, false
	}
	ino, err := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 64)
	return ino, err == nil
}

// describeFD adds, for a UDP or unix socket, its table and local address
// as /proc/net shows them.
func describeFD(what string) string {
	ino, ok := socketInode(what)
	if !ok {
		return what
	}
	if addr := socketAddr(ino); addr != "" {
		return fmt.Sprintf("%s, %s", what, addr)
	}
	return what
}

// socketAddr looks the socket up in /proc/net/{udp,udp6,unix} and returns
// its table and local address, or "" if it is not there.
func socketAddr(ino uint64) string {
	if entries, err := procnet.UDP("/proc"); err == nil {
		for _, e := range entries {
			if e.Inode == ino {
				table := "udp"
				if e.Local.Addr().Is6() {
					table = "udp6"
				}
				return table + " " + e.Local.String()
			}
		}
	}
	entries, err := procnet.Unix("/proc")
	if err != nil {
		return ""
	}
	for _, e := range entries {
		if e.Inode == ino {
			if e.Path != "" {
				return "unix " + e.Path
			}
			return "unix (unnamed)"
		}
	}
	return ""
}
