package safeudp

import (
	"net/netip"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/safeudp/safeudp/internal/kinfo"
	"github.com/safeudp/safeudp/internal/pcblist"
)

// macOS: the sysctls behind release_table.go. kern.proc.all for the
// children (no filter by parent exists), net.inet.udp.pcblist_n and
// net.local.dgram.pcblist_n for the sockets. These tables show no
// descriptors: which processes hold a socket needs proc_pidinfo from
// libproc, which Go cannot call without cgo or //go:cgo_import_dynamic
// (unsupported in user code, golang/go#61220), so a holder is named by
// the socket's so_last_pid, the last process that used it.

const (
	udpTableName  = "net.inet.udp.pcblist_n"
	unixTableName = "net.local.dgram.pcblist_n"
)

// noChildren reports whether this process has no child process at all:
// waitid(P_ALL, WEXITED|WNOHANG|WNOWAIT), which looks and never reaps.
// x/sys/unix has no Waitid on darwin; the call goes through libSystem's
// syscall(). Any answer but ECHILD (ENOSYS, say) counts as children: the
// slow path, which is always right.
func noChildren() bool {
	var info [128]byte // siginfo_t: 104 bytes
	const pAll = 0     // P_ALL, sys/wait.h
	//lint:ignore SA1019 libSystem's waitid wrapper is not bound by x/sys/unix, and binding it needs //go:cgo_import_dynamic
	_, _, errno := unix.Syscall6(unix.SYS_WAITID, pAll, 0, uintptr(unsafe.Pointer(&info[0])),
		unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, 0, 0)
	return errno == unix.ECHILD
}

// processes reads kern.proc.all.
func processes() ([]kinfo.Proc, error) {
	b, err := readSysctl("kern.proc.all")
	if err != nil {
		return nil, err
	}
	procs, err := kinfo.ParseDarwin(b)
	if err != nil {
		return nil, unverifiable(err)
	}
	return procs, nil
}

// sysKernel is bsdKernel on macOS.
type sysKernel struct{ network, addr string }

func (sysKernel) forkChildren() ([]kinfo.Proc, error) { return forkChildren() }

func (k sysKernel) table() (pcblist.Table, error) {
	if k.network == "unixgram" {
		return readTable(unixTableName, pcblist.ParseDarwinUnix)
	}
	return readTable(udpTableName, pcblist.ParseDarwinUDP)
}

func (k sysKernel) listed(id tableID) (bool, error) {
	t, err := k.table()
	return err == nil && t.Has(id.so, id.gen), err
}

func (k sysKernel) holders(id tableID) []Holder {
	t, err := k.table()
	if err != nil {
		return nil
	}
	for _, s := range t.Socks {
		if s.So == id.so && s.Gen == id.gen {
			procs, _ := processes()
			return tableHolders(nil, s.LastPID, procs, k.addr, k.addr)
		}
	}
	return nil
}

// identifyInTable finds the conn's socket in its table, before the
// underlying Close, by its address (see matchSocket).
func identifyInTable(fd int, local, remote netip.AddrPort, path string) tableID {
	k := sysKernel{network: "udp"}
	if path != "" {
		k.network = "unixgram"
	}
	t, err := k.table()
	if err != nil {
		return tableID{why: err}
	}
	return matchSocket(t, local, remote, path, os.Getpid())
}

// udpHolders lists the UDP sockets that conflict with asked, each named
// by the last process that used it (see addrHolders).
func udpHolders(asked netip.AddrPort, address string) ([]Holder, error) {
	t, err := readTable(udpTableName, pcblist.ParseDarwinUDP)
	if err != nil {
		return nil, err
	}
	socks := conflictingSockets(t, asked)
	return addrHolders(socks, address)
}

// unixHolders lists the unix datagram sockets bound to path, by the path
// the kernel keeps (the spelling they were bound with): another spelling
// of the same file is not found.
func unixHolders(path string) ([]Holder, error) {
	t, err := readTable(unixTableName, pcblist.ParseDarwinUnix)
	if err != nil {
		return nil, err
	}
	socks := socketsAtPath(t, path)
	return addrHolders(socks, path)
}

// addrHolders describes the sockets of an address that a bind found in
// use, as the table shows them (see darwinHolders).
func addrHolders(socks []pcblist.Socket, asked string) ([]Holder, error) {
	if len(socks) == 0 {
		return nil, nil
	}
	procs, _ := processes()
	return darwinHolders(socks, procs, os.Getpid(), asked), nil
}
