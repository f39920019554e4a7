//go:build darwin || freebsd

package safeudp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"

	"github.com/safeudp/safeudp/internal/kinfo"
	"github.com/safeudp/safeudp/internal/pcblist"
)

// The sysctl plumbing shared by macOS and FreeBSD; the decisions are in
// release_table.go.

// sysctlTries bounds the reads of a table that grows between sizing and
// reading (ENOMEM) or changes while the kernel writes it (ErrChanged).
const sysctlTries = 8

// readSysctl reads a sysctl that returns a table.
func readSysctl(name string) ([]byte, error) {
	var err error
	for range sysctlTries {
		var b []byte
		if b, err = unix.SysctlRaw(name); err == nil {
			return b, nil
		}
		if err != unix.ENOMEM {
			break
		}
	}
	return nil, unverifiable(fmt.Errorf("sysctl %s: %w", name, err))
}

// readTable reads and parses a socket table, again while it changed as
// it was written.
func readTable(name string, parse func([]byte) (pcblist.Table, error)) (pcblist.Table, error) {
	var err error
	for range sysctlTries {
		var b []byte
		if b, err = readSysctl(name); err != nil {
			return pcblist.Table{}, err
		}
		var t pcblist.Table
		if t, err = parse(b); err == nil {
			return t, nil
		}
		if !errors.Is(err, pcblist.ErrChanged) {
			return pcblist.Table{}, unverifiable(fmt.Errorf("sysctl %s: %w", name, err))
		}
	}
	return pcblist.Table{}, fmt.Errorf("sysctl %s: %w", name, err)
}

// forkChildren lists this process's children between fork and exec.
func forkChildren() ([]kinfo.Proc, error) {
	procs, err := processes()
	if err != nil {
		return nil, err
	}
	return kinfo.ForkChildren(procs, os.Getpid()), nil
}

// verifyReleased verifies the release from the kernel's tables (see
// release_table.go).
func verifyReleased(ctx context.Context, t releaseTarget) (attempts int, err error) {
	return verifyFromTable(ctx, t, sysKernel{network: t.network, addr: t.addr})
}

// identify reads the socket's descriptor and its name in the kernel's
// tables, before the underlying Close (see prepareRelease).
func (c *core) identify(pc net.PacketConn) {
	rc := rawConnOf(pc)
	if rc == nil {
		return
	}
	fd := -1
	if rc.Control(func(s uintptr) { fd = int(s) }) != nil || fd < 0 {
		return
	}
	c.sock.FD = fd
	var local, remote netip.AddrPort
	var path string
	switch a := pc.LocalAddr().(type) {
	case *net.UDPAddr:
		local = a.AddrPort()
		if peer, _ := socketPeer(pc); peer != nil {
			if ua, ok := peer.(*net.UDPAddr); ok {
				remote = ua.AddrPort()
			}
		}
	case *net.UnixAddr:
		if a.Name == "" || a.Name[0] == '@' {
			return // nothing bound: no address to release
		}
		path = a.Name
	default:
		return
	}
	c.tid = identifyInTable(fd, local, remote, path)
}

// socketInode is not needed on these systems.
func socketInode(fd int) uint64 { return 0 }

// holders implements Holders from the kernel's socket tables.
func holders(network, address string) ([]Holder, error) {
	if network == "unixgram" {
		return unixHolders(address)
	}
	asked, err := resolveUDP(network, address)
	if err != nil {
		return nil, err
	}
	return udpHolders(asked, address)
}
