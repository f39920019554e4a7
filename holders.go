package safeudp

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// ErrNotReleased is wrapped by the error of a Close or Shutdown whose
// socket the kernel still holds when Close returns (the address cannot be
// bound again yet), or whose release could not be verified. The error is a
// [*ReleaseError] that names the holders.
var ErrNotReleased = errors.New("safeudp: socket not released")

// ErrHeldElsewhere is wrapped, together with [ErrNotReleased], by the error
// of a Close or Shutdown whose socket is still held by a long-lived holder:
// an open File() copy, another descriptor of this process, or another
// process (a child that has exec'd with the socket in ExtraFiles, or a
// process the socket was passed to). Close reports such holders at once
// instead of waiting for them. Programs that hand their socket to another
// process on purpose (graceful restart, socket activation) can test for it
// with errors.Is and carry on.
var ErrHeldElsewhere = errors.New("safeudp: socket held elsewhere")

// HolderKind says what a Holder is, as far as this process can tell.
type HolderKind uint8

const (
	// HolderProcess is a descriptor in a process, this one or another,
	// that safeudp knows nothing more about.
	HolderProcess HolderKind = iota
	// HolderConn is an open safeudp conn of this process.
	HolderConn
	// HolderFileCopy is a copy made by File on a safeudp conn of this
	// process, still open (or dropped and not yet closed by its
	// finalizer).
	HolderFileCopy
	// HolderChild is a child of this process that holds the socket in a
	// descriptor it keeps across exec (for example through
	// exec.Cmd.ExtraFiles).
	HolderChild
	// HolderForking is a child of this process that holds the socket only
	// in a close-on-exec descriptor: it is between fork and exec, and lets
	// go at exec. It is the one transient holder, which Close and
	// ListenPacket wait out.
	HolderForking
	// HolderUnseen is a socket that the kernel still has but that no
	// readable descriptor shows: it is being closed (the last descriptor
	// went away a moment ago), or in flight in a unix socket message, or
	// held by a process in another pid namespace (a container that shares
	// the network namespace), or by a process whose descriptors cannot be
	// read (then Err says which processes). Close and ListenPacket wait
	// for it only briefly: once a second look at /proc, about 20 ms
	// later, still shows no descriptor, Err says so and the holder is
	// long-lived.
	HolderUnseen
	// HolderStaleFile is a unixgram socket file that no socket of this
	// network namespace is bound to, as a dump of the kernel's unix
	// sockets proved (by file identity, whatever spelling of the path each
	// socket was bound with): bind fails on it until it is removed. When
	// that dump cannot be made, the file is reported as a HolderUnseen
	// whose Err says so, never as stale. A socket of another network
	// namespace (a container sharing the directory) is not seen.
	HolderStaleFile
)

// String returns the constant's name without its prefix, e.g. "FileCopy".
func (k HolderKind) String() string {
	names := [...]string{"Process", "Conn", "FileCopy", "Child", "Forking", "Unseen", "StaleFile"}
	if int(k) < len(names) {
		return names[k]
	}
	return fmt.Sprintf("HolderKind(%d)", k)
}

// Holder is something that holds a socket, as reported by [Holders] and in
// the errors of Close and [ListenPacket].
type Holder struct {
	// Kind says what the holder is (a process, a File() copy, a child
	// between fork and exec, ...); see HolderKind and Holder.Transient.
	Kind    HolderKind
	PID     int    // process holding the socket; 0 if not known
	FD      int    // descriptor number in that process; -1 if not known
	Command string // the process's command name (/proc/<pid>/comm), if known
	Inode   uint64 // the socket's inode; 0 if not known
	Addr    string // the address the socket is bound to (a wildcard bind blocks a specific address on its port)

	// OpenedAt is, for a socket opened through safeudp in this process,
	// where its conn was opened: file:line of the caller of ListenPacket
	// (or another constructor) or Wrap. Empty otherwise.
	OpenedAt string

	// CopiedAt is, for a HolderFileCopy, where the copy was made:
	// file:line of the caller of File. Its OpenedAt still says where the
	// conn it was copied from was opened. Empty for any other holder.
	CopiedAt string

	// Dropped is set on a File() copy that was dropped without Close: it
	// holds the socket until its finalizer runs.
	Dropped bool

	// Err is set when the holder could not be fully identified, for
	// example because some processes' descriptors cannot be read.
	Err error

	asked string // the address asked about; Addr is printed when it differs
	self  bool   // PID is this process
}

// Transient reports whether the holder is expected to let go by itself
// within milliseconds: a child between fork and exec, or a HolderUnseen
// without Err (at first look, a socket being closed). Every other holder
// is long-lived.
func (h Holder) Transient() bool {
	return h.Kind == HolderForking || (h.Kind == HolderUnseen && h.Err == nil)
}

// String describes the holder in the words used by error messages, for
// example `pid 4242 "sleep" fd 7` or `this process fd 9, a File() copy of
// the socket opened at main.go:42`.
func (h Holder) String() string {
	var b strings.Builder
	switch {
	case h.Kind == HolderStaleFile:
		fmt.Fprintf(&b, "a stale socket file %s with no socket of this network namespace bound to it", h.Addr)
		return b.String()
	case h.Kind == HolderUnseen:
		b.WriteString("no visible descriptor")
		if h.Inode != 0 {
			fmt.Fprintf(&b, " (socket inode %d)", h.Inode)
		}
		switch { // macOS: the table names the last process that used the socket, not a holder
		case h.self:
			b.WriteString(" (last used by this process)")
		case h.PID != 0:
			fmt.Fprintf(&b, " (last used by pid %d %q)", h.PID, h.Command)
		}
	case h.self:
		fmt.Fprintf(&b, "this process fd %d", h.FD)
	default:
		fmt.Fprintf(&b, "pid %d %q", h.PID, h.Command)
		if h.FD >= 0 {
			fmt.Fprintf(&b, " fd %d", h.FD)
		}
	}
	if h.Addr != "" && h.Addr != h.asked {
		fmt.Fprintf(&b, " bound to %s", h.Addr)
	}
	switch h.Kind {
	case HolderConn:
		fmt.Fprintf(&b, ", a safeudp conn opened at %s", h.OpenedAt)
	case HolderFileCopy:
		if h.Dropped {
			b.WriteString(", a dropped File() copy (closed only when its finalizer runs)")
		} else {
			b.WriteString(", a File() copy")
		}
		if h.CopiedAt != "" {
			fmt.Fprintf(&b, " made at %s", h.CopiedAt)
		}
		fmt.Fprintf(&b, " of the socket opened at %s", h.OpenedAt)
	case HolderChild:
		b.WriteString(", a child of this process")
	case HolderForking:
		b.WriteString(", a child of this process between fork and exec")
	}
	if h.Err != nil {
		fmt.Fprintf(&b, " (%v)", h.Err)
	}
	return b.String()
}

// Holders lists what holds a UDP port or a unixgram path on this machine
// (in this process's network namespace): every socket whose bind would
// make a bind of address fail, with each descriptor that holds it. For UDP,
// a socket bound to the wildcard address on the same port is reported with
// its own Addr; for unixgram, sockets are matched to the path by file
// identity (device and inode, so any spelling of the path finds them), and
// a socket file with no socket is reported as HolderStaleFile. An address nothing holds gives an empty list and no
// error.
//
// network is "udp", "udp4", "udp6" or "unixgram"; address is host:port
// (port not 0) or a socket path. Processes whose descriptors cannot be read
// (other users' processes, without CAP_SYS_PTRACE) are not skipped
// silently: a socket no readable descriptor holds is reported as
// HolderUnseen, with an Err that names them.
//
// Holders is supported on Linux, where it reads /proc, on macOS, where it
// reads the kernel's socket tables (net.inet.udp.pcblist_n,
// net.local.dgram.pcblist_n), which show no descriptors: each socket is
// reported as a HolderUnseen whose PID is the last process that used it,
// not necessarily a holder; and on FreeBSD, from net.inet.udp.pcblist and
// net.local.dgram.pcblist joined with kern.file, which names every
// descriptor. On those two systems a unixgram socket is matched by the
// path as it was bound, not by file identity. Elsewhere it returns an
// error that says so. It is a snapshot: holders may come and go while it
// runs.
func Holders(network, address string) ([]Holder, error) {
	switch network {
	case "udp", "udp4", "udp6", "unixgram":
	default:
		return nil, &UnsupportedNetworkError{Network: network}
	}
	hs, err := holders(network, address)
	exposeReported(hs)
	return hs, err
}

// exposeReported marks exposed each conn of this process whose descriptor
// number hs reports: a caller can dup that number (or hand it to a child)
// without File or SyscallConn, so its Close must ask the kernel (see
// prepareRelease). A Close already past prepareRelease is not reached.
func exposeReported(hs []Holder) {
	self := os.Getpid()
	var inodes map[uint64]bool
	for _, h := range hs {
		if h.PID == self && h.FD >= 0 && h.Inode != 0 {
			if inodes == nil {
				inodes = map[uint64]bool{}
			}
			inodes[h.Inode] = true
		}
	}
	if inodes == nil {
		return
	}
	for _, c := range liveConns() {
		if inodes[c.identity().Inode] {
			c.exposed.Store(true)
		}
	}
}

// errUnseenPersists is the Err of a HolderUnseen that two scans of /proc,
// about 20 ms apart, found with no descriptor: not a socket being closed,
// so a long-lived holder that no descriptor of this pid namespace shows.
var errUnseenPersists = errors.New("no process shows a descriptor for it: held by a process in another pid namespace " +
	"(a container sharing this network namespace), or in flight in a unix socket message")

// markPersistentUnseen marks the HolderUnseen entries without an Err as
// persistent, which makes them long-lived (see Holder.Transient).
func markPersistentUnseen(hs []Holder) {
	for i := range hs {
		if hs[i].Kind == HolderUnseen && hs[i].Err == nil {
			hs[i].Err = errUnseenPersists
		}
	}
}

// joinHolders formats holders as "by A; by B".
func joinHolders(hs []Holder) string {
	var b strings.Builder
	for i, h := range hs {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString("by ")
		b.WriteString(h.String())
	}
	return b.String()
}

// ReleaseError is the error of a Close or Shutdown whose socket the kernel
// still holds, or whose release could not be verified (Err says why). It
// wraps [ErrNotReleased], and [ErrHeldElsewhere] too when a holder is
// long-lived (see [Holder.Transient]).
type ReleaseError struct {
	Network  string        // the conn's network: "udp", "udp4", "udp6" or "unixgram"
	Addr     string        // the conn's local address (host:port, or the socket's path)
	Holders  []Holder      // what held the socket at the last look; may be empty
	Waited   time.Duration // how long Close waited once it found the socket held; 0 when reported at the first look
	Attempts int           // how many times the kernel's tables were checked

	// Err is set when the kernel's tables could not be asked (sock_diag
	// and /proc/net both failed, say with EMFILE): the socket may or may
	// not be released, and Close does not claim it is. Unwrap returns it.
	Err error
}

// longLived reports whether a holder that will not let go by itself holds
// the socket.
func (e *ReleaseError) longLived() bool {
	for _, h := range e.Holders {
		if !h.Transient() {
			return true
		}
	}
	return false
}

// Error says which socket is still held, by whom, and for how long Close
// waited.
func (e *ReleaseError) Error() string {
	var b strings.Builder
	if e.Err != nil {
		fmt.Fprintf(&b, "safeudp: %s %s: release not verified after close: %v", e.Network, e.Addr, e.Err)
	} else {
		fmt.Fprintf(&b, "safeudp: %s %s still held after close", e.Network, e.Addr)
	}
	if e.Waited > 0 {
		fmt.Fprintf(&b, " (waited %v, %d checks)", e.Waited.Round(time.Millisecond), e.Attempts)
	}
	if len(e.Holders) > 0 {
		b.WriteString(": held ")
		b.WriteString(joinHolders(e.Holders))
	}
	return b.String()
}

// Is makes errors.Is(err, [ErrNotReleased]) hold, and errors.Is(err,
// [ErrHeldElsewhere]) when a holder is long-lived.
func (e *ReleaseError) Is(target error) bool {
	return target == ErrNotReleased || (target == ErrHeldElsewhere && e.longLived())
}

// Unwrap returns Err, why the release could not be verified, or nil.
func (e *ReleaseError) Unwrap() error { return e.Err }

// AddrInUseError replaces the Err of the [*net.OpError] that [ListenPacket]
// returns when the address is in use, to name the holders. It unwraps to
// the original error, so errors.Is(err, [syscall.EADDRINUSE]) still holds.
type AddrInUseError struct {
	Err     error    // the original error: an *os.SyscallError wrapping EADDRINUSE
	Holders []Holder // what held the address at the last look; may be empty
}

// Error is the bind error followed by the holders, as in
// "bind: address already in use (held by pid 4242 \"sleep\" fd 3, ...)".
func (e *AddrInUseError) Error() string {
	if len(e.Holders) == 0 {
		return e.Err.Error()
	}
	return e.Err.Error() + " (held " + joinHolders(e.Holders) + ")"
}

// Unwrap returns the original error.
func (e *AddrInUseError) Unwrap() error { return e.Err }
