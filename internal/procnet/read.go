package procnet

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"syscall"
)

// UDP reads root/net/udp and root/net/udp6; a kernel without IPv6 has no
// udp6, which is not an error.
func UDP(root string) ([]UDPEntry, error) {
	var out []UDPEntry
	for _, table := range []string{"udp", "udp6"} {
		data, err := os.ReadFile(root + "/net/" + table)
		if err != nil {
			if table == "udp6" && errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, err
		}
		out = append(out, ParseUDP(data)...)
	}
	return out, nil
}

// Unix reads root/net/unix.
func Unix(root string) ([]UnixEntry, error) {
	data, err := os.ReadFile(root + "/net/unix")
	if err != nil {
		return nil, err
	}
	return ParseUnix(data), nil
}

// Listed reports whether the socket with inode ino is in the table of its
// family (AF_INET: udp, AF_INET6: udp6, AF_UNIX: unix). A socket is listed
// by the family it was created with, so an AF_INET6 socket bound to an
// IPv4-mapped address is in udp6. It never reports false without having
// read the table: when the table cannot be read, it returns the error.
func Listed(root string, family uint8, ino uint64) (bool, error) {
	var table string
	switch family {
	case syscall.AF_UNIX:
		table = "unix"
	case syscall.AF_INET:
		table = "udp"
	case syscall.AF_INET6:
		table = "udp6"
	default:
		return false, fmt.Errorf("no /proc/net table for address family %d", family)
	}
	data, err := os.ReadFile(root + "/net/" + table)
	if err != nil {
		return false, err
	}
	if family == syscall.AF_UNIX {
		for _, e := range ParseUnix(data) {
			if e.Inode == ino {
				return true, nil
			}
		}
		return false, nil
	}
	for _, e := range ParseUDP(data) {
		if e.Inode == ino {
			return true, nil
		}
	}
	return false, nil
}

// NetlinkProtocol returns the protocol (NETLINK_SOCK_DIAG is 4) of the
// netlink socket with inode ino, from root/net/netlink, or false if it is
// not listed there.
func NetlinkProtocol(root string, ino uint64) (int, bool) {
	data, err := os.ReadFile(root + "/net/netlink")
	if err != nil {
		return 0, false
	}
	// sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
	want := strconv.FormatUint(ino, 10)
	for line := range bytes.Lines(data) {
		f := bytes.Fields(line)
		if len(f) > 9 && string(f[9]) == want {
			proto, err := strconv.Atoi(string(f[1]))
			return proto, err == nil
		}
	}
	return 0, false
}
