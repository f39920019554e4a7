package safeudp

import (
	"net/netip"
	"os"

	"golang.org/x/sys/unix"

	"github.com/safeudp/safeudp/internal/kinfo"
	"github.com/safeudp/safeudp/internal/pcblist"
)

// FreeBSD: the sysctls behind release_table.go. kern.proc.proc for the
// children, net.inet.udp.pcblist for the UDP sockets, joined with
// kern.file (xf_pid, xf_fd, xf_data = xso_so) as sockstat(1) does, which
// names every holder by pid and descriptor; net.local.dgram.pcblist for
// the unix datagram sockets, joined with kern.file the same way.

const (
	udpTableName  = "net.inet.udp.pcblist"
	unixTableName = "net.local.dgram.pcblist"
)

// noChildren reports whether this process has no child process at all:
// wait4(WAIT_ANY, WNOHANG|WNOWAIT) looks and never reaps (kern_wait6 in
// sys/kern/kern_exit.c honours WNOWAIT for wait4 too); ECHILD means none.
// Children created with rfork and another exit signal, or with pdfork,
// are not counted by wait4.
func noChildren() bool {
	_, err := unix.Wait4(-1, nil, unix.WNOHANG|unix.WNOWAIT, nil)
	return err == unix.ECHILD
}

// processes reads kern.proc.proc (one record a process, threads left out).
func processes() ([]kinfo.Proc, error) {
	b, err := readSysctl("kern.proc.proc")
	if err != nil {
		return nil, err
	}
	procs, err := kinfo.ParseFreeBSD(b)
	if err != nil {
		return nil, unverifiable(err)
	}
	return procs, nil
}

// files reads kern.file: every descriptor of every process visible here.
func files() ([]pcblist.File, error) {
	b, err := readSysctl("kern.file")
	if err != nil {
		return nil, err
	}
	fs, err := pcblist.ParseFreeBSDFiles(b)
	if err != nil {
		return nil, unverifiable(err)
	}
	return fs, nil
}

func udpTable() (pcblist.Table, error) { return readTable(udpTableName, pcblist.ParseFreeBSDUDP) }

func unixTable() (pcblist.Table, error) { return readTable(unixTableName, pcblist.ParseFreeBSDUnix) }

// sysKernel is bsdKernel on FreeBSD.
type sysKernel struct{ network, addr string }

func (sysKernel) forkChildren() ([]kinfo.Proc, error) { return forkChildren() }

func (k sysKernel) listed(id tableID) (bool, error) {
	table := udpTable
	if k.network == "unixgram" {
		table = unixTable
	}
	t, err := table()
	return err == nil && t.Has(id.so, id.gen), err
}

func (k sysKernel) holders(id tableID) []Holder {
	fs, err := files()
	if err != nil {
		return nil
	}
	procs, _ := processes()
	return tableHolders(pcblist.Holding(fs, id.so), 0, procs, k.addr, k.addr)
}

// identifyInTable finds the conn's socket: its descriptor in kern.file
// gives the socket's address (xf_data), its table its generation.
func identifyInTable(fd int, local, remote netip.AddrPort, path string) tableID {
	fs, err := files()
	if err != nil {
		return tableID{why: err}
	}
	table := udpTable
	if path != "" {
		table = unixTable
	}
	t, err := table()
	if err != nil {
		return tableID{why: err}
	}
	return joinSocket(fs, t, os.Getpid(), fd)
}

// udpHolders lists the UDP sockets that conflict with asked and every
// descriptor that holds each.
func udpHolders(asked netip.AddrPort, address string) ([]Holder, error) {
	t, err := udpTable()
	if err != nil {
		return nil, err
	}
	socks := conflictingSockets(t, asked)
	return fileHolders(socks, address)
}

// unixHolders lists the unix datagram sockets bound to path, by the path
// the kernel keeps (the spelling they were bound with), and every
// descriptor that holds each.
func unixHolders(path string) ([]Holder, error) {
	t, err := unixTable()
	if err != nil {
		return nil, err
	}
	socks := socketsAtPath(t, path)
	return fileHolders(socks, path)
}

// fileHolders names the descriptors of socks from kern.file.
func fileHolders(socks []pcblist.Socket, asked string) ([]Holder, error) {
	if len(socks) == 0 {
		return nil, nil
	}
	fs, err := files()
	if err != nil {
		return nil, err
	}
	procs, _ := processes()
	return socketHolders(socks, fs, procs, asked), nil
}
