package safeudp

import (
	"fmt"
	"net/netip"
	"os"
	"slices"

	"github.com/safeudp/safeudp/internal/procfd"
	"github.com/safeudp/safeudp/internal/procnet"
)

// holders implements Holders on Linux: it finds the sockets that conflict
// with address in /proc/net, then their descriptors in /proc/<pid>/fd.
func holders(network, address string) ([]Holder, error) {
	var socks []procnet.UDPEntry // for unixgram, Local is unused and the path is in paths
	var paths map[uint64]string
	if network == "unixgram" {
		var early []Holder
		var err error
		if socks, paths, early, err = unixgramSockets(address); err != nil || socks == nil {
			return early, err
		}
	} else {
		asked, err := resolveUDP(network, address)
		if err != nil {
			return nil, err
		}
		entries, err := procnet.UDP(procRoot)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			// The kernel prints its table a bucket at a time; a socket
			// that moves while it is read can be listed twice.
			if conflicts(asked, e.Local) && !slices.ContainsFunc(socks, func(o procnet.UDPEntry) bool { return o.Inode == e.Inode }) {
				socks = append(socks, e)
			}
		}
	}
	return describe(socks, paths, address), nil
}

// describe finds the descriptors that hold socks and describes each as a
// Holder. paths gives the bound path of unix sockets.
func describe(socks []procnet.UDPEntry, paths map[uint64]string, asked string) []Holder {
	if len(socks) == 0 {
		return nil
	}
	inodes := make(map[uint64]bool, len(socks))
	for _, s := range socks {
		inodes[s.Inode] = true
	}
	scan := procfd.Sockets(procRoot, inodes)
	var out []Holder
	for _, s := range socks {
		addr := paths[s.Inode]
		if addr == "" && s.Local.IsValid() {
			addr = s.Local.String()
		}
		if s.Local.IsValid() {
			if ap, err := netip.ParseAddrPort(asked); err == nil && ap == s.Local {
				addr = asked
			}
		}
		out = append(out, holdersOf(s.Inode, addr, asked, scan)...)
	}
	return out
}

// holdersOf describes the descriptors scan found for the socket ino.
func holdersOf(ino uint64, addr, asked string, scan procfd.Scan) []Holder {
	refs := scan.Refs[ino]
	if len(refs) == 0 {
		h := Holder{Kind: HolderUnseen, FD: -1, Inode: ino, Addr: addr, asked: asked}
		if len(scan.Unreadable) > 0 {
			h.Err = fmt.Errorf("the descriptors of %d processes cannot be read (pids %s): %w",
				len(scan.Unreadable), pidList(scan.Unreadable), scan.FirstErr)
		}
		return []Holder{h}
	}
	self := os.Getpid()
	var out []Holder
	for _, r := range refs {
		h := Holder{Kind: HolderProcess, PID: r.PID, FD: r.FD, Command: procfd.Comm(procRoot, r.PID), Inode: ino, Addr: addr, asked: asked}
		switch {
		case r.PID == self:
			h.self = true
			classifyOwn(&h)
		case procfd.Parent(procRoot, r.PID) == self:
			// A child keeps across exec only what is not close-on-exec:
			// anything else it holds between fork and exec, and drops
			// at exec.
			if procfd.CloseOnExec(procRoot, r.PID, r.FD) {
				h.Kind = HolderForking
			} else {
				h.Kind = HolderChild
			}
		}
		// What was read of another process above (its command, its
		// parent, the descriptor's flags) is its own only if it still
		// holds the socket now: a child that exec'd or exited in
		// between reads as a stranger, or as a child that keeps the
		// socket, and would be taken for a long-lived holder. One that
		// let go is no holder.
		if !h.self && !procfd.Holds(procRoot, r.PID, r.FD, ino) {
			continue
		}
		out = append(out, h)
	}
	return out
}

// pidList prints at most 10 pids.
func pidList(pids []int) string {
	s := fmt.Sprint(pids[:min(len(pids), 10)])
	if len(pids) > 10 {
		s = s[:len(s)-1] + " ...]"
	}
	return s
}

// classifyOwn recognizes a descriptor of this process: a live safeudp conn
// or a File() copy of one.
func classifyOwn(h *Holder) {
	for _, c := range liveConns() {
		// An open conn's descriptor number is its own; a closing
		// conn's may already be reused.
		if c.inflight.closing() {
			continue
		}
		if id := c.identity(); id.Inode != 0 && id.FD == h.FD && id.Inode == h.Inode {
			h.Kind, h.OpenedAt = HolderConn, c.openedAt()
		}
	}
	if h.Kind == HolderConn {
		return
	}
	copies.mu.Lock()
	list := slices.Clone(copies.list)
	copies.mu.Unlock()
	for _, fc := range list {
		if fc.fd == h.FD && fc.ino == h.Inode {
			if open, dropped := fc.state(); open || dropped {
				h.Kind, h.OpenedAt, h.CopiedAt, h.Dropped = HolderFileCopy, pcString(fc.opened), pcString(fc.made), dropped
				return
			}
		}
	}
}

// holders describes what holds the target's socket, for Close's report.
func (t *releaseTarget) holders() []Holder {
	scan := procfd.Sockets(procRoot, map[uint64]bool{t.sock.Inode: true})
	hs := holdersOf(t.sock.Inode, t.addr, t.addr, scan)
	// A copy /proc did not show (it cannot be read, or the copy was
	// closed meanwhile) is still reported if it is open.
	for _, h := range t.openCopies() {
		if !slices.ContainsFunc(hs, func(o Holder) bool { return o.self && o.FD == h.FD }) {
			hs = append(hs, h)
		}
	}
	if len(hs) > 1 {
		hs = slices.DeleteFunc(hs, func(h Holder) bool { return h.Kind == HolderUnseen })
	}
	return hs
}
