package safeudp

import (
	"os"
	"slices"
	"sync"
	"weak"
)

// fileCopy records a copy that File made of a conn's socket, so that Close
// and Holders can say that the copy holds the socket and where it was made.
//
// The record holds both the *os.File and the conn weakly: a copy the
// caller drops is still closed by its finalizer, and a conn dropped
// without Close is still collected (and its descriptor closed by net's
// finalizer), as with net. Whether a copy is open is asked through the
// File's SyscallConn, never through Fd, which would put the shared file
// description in blocking mode (golang/go#29277).
type fileCopy struct {
	f      weak.Pointer[os.File]
	fd     int                // descriptor number of the copy, while it is open
	ino    uint64             // socket inode (Linux only; 0 elsewhere)
	owner  weak.Pointer[core] // the conn it was copied from
	opened uintptr            // the owner's opened PC, for reports after the owner is gone
	made   uintptr            // PC of the caller of File
}

// copies holds the File() copies that may still be open.
var copies struct {
	mu   sync.Mutex  // guards list
	list []*fileCopy // pruned of closed copies and collected owners on every add and look
}

// recordCopy remembers f, a copy of c's socket made by the caller at made.
func (c *core) recordCopy(f *os.File, made uintptr) {
	fd, ino := -1, uint64(0)
	if rc, err := f.SyscallConn(); err == nil {
		_ = rc.Control(func(s uintptr) { fd, ino = int(s), socketInode(int(s)) })
	}
	copies.mu.Lock()
	defer copies.mu.Unlock()
	copies.list = slices.DeleteFunc(copies.list, (*fileCopy).gone)
	copies.list = append(copies.list, &fileCopy{f: weak.Make(f), fd: fd, ino: ino, owner: c.key, opened: c.opened, made: made})
}

// state reports whether the copy is still open, and whether it was dropped
// without Close (its descriptor may then be open until the finalizer runs).
func (fc *fileCopy) state() (open, dropped bool) {
	f := fc.f.Value()
	if f == nil {
		return false, true
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return false, false
	}
	// Control fails once the File is closed.
	return rc.Control(func(uintptr) {}) == nil, false
}

// gone reports whether the record can be forgotten: the copy was closed,
// or it was dropped and its conn was collected too. A dropped copy of a
// live conn is kept, since its descriptor may still be open.
func (fc *fileCopy) gone() bool {
	open, dropped := fc.state()
	return !open && (!dropped || fc.owner.Value() == nil)
}

// copiesOf returns the records of c's copies that may hold the socket:
// open ones, and dropped ones when withDropped is set. It forgets the
// records that are gone, of any conn.
func copiesOf(c *core, withDropped bool) []*fileCopy {
	copies.mu.Lock()
	defer copies.mu.Unlock()
	copies.list = slices.DeleteFunc(copies.list, (*fileCopy).gone)
	owner := c.key
	var out []*fileCopy
	for _, fc := range copies.list {
		if fc.owner != owner {
			continue
		}
		if open, dropped := fc.state(); open || (dropped && withDropped) {
			out = append(out, fc)
		}
	}
	return out
}

// forgetCopies drops c's records once its socket is known to be released.
func forgetCopies(c *core) {
	owner := c.key
	copies.mu.Lock()
	defer copies.mu.Unlock()
	copies.list = slices.DeleteFunc(copies.list, func(fc *fileCopy) bool { return fc.owner == owner })
}

// copyHolder describes an open copy as a holder, without asking the OS.
func copyHolder(fc *fileCopy) Holder {
	_, dropped := fc.state()
	return Holder{
		Kind: HolderFileCopy, PID: os.Getpid(), FD: fc.fd, Inode: fc.ino,
		OpenedAt: pcString(fc.opened), CopiedAt: pcString(fc.made), Dropped: dropped, self: true,
	}
}
