package sockdiag

import (
	"encoding/binary"
	"errors"
	"syscall"

	"golang.org/x/sys/unix"
)

// The framing of the kernel's replies, read once for the three kinds of
// request this package makes (an exact lookup, a UDP dump, a unix dump):
// a datagram holds netlink messages (struct nlmsghdr: len u32, type u16,
// flags u16, seq u32, pid u32, then the payload), each aligned to 4 bytes;
// a message's payload may end in attributes (struct nlattr: len u16,
// type u16, value), aligned the same way. Both walks check every length
// against what is left, so no input can make them read out of bounds.

// errStaleReply marks a reply to an earlier request.
var errStaleReply = errors.New("sock_diag: reply to an earlier request")

// errMalformed marks a reply whose lengths do not add up.
var errMalformed = errors.New("sock_diag: malformed reply")

// walkMessages calls f with the type, flags and payload of each message of
// the reply datagram b, in order, until f returns stop or an error, and
// reports whether any message was seen. NLMSG_NOOP messages are skipped. A
// message for another request than seq is errStaleReply, and lengths that
// do not add up are errMalformed: the caller then learns nothing from b.
func walkMessages(b []byte, seq uint32, f func(typ, flags uint16, payload []byte) (stop bool, err error)) (seen bool, err error) {
	ne := binary.NativeEndian
	for len(b) >= nlmsgHdrLen {
		n := int(ne.Uint32(b[0:]))
		if n < nlmsgHdrLen || n > len(b) {
			return seen, errMalformed
		}
		typ, flags, s := ne.Uint16(b[4:]), ne.Uint16(b[6:]), ne.Uint32(b[8:])
		if s != seq {
			return seen, errStaleReply
		}
		seen = true
		if typ != unix.NLMSG_NOOP {
			if stop, err := f(typ, flags, b[nlmsgHdrLen:n]); stop || err != nil {
				return seen, err
			}
		}
		n = (n + 3) &^ 3 // messages are aligned to 4 bytes
		if n >= len(b) {
			break
		}
		b = b[n:]
	}
	return seen, nil
}

// replyErrno reads the errno of an NLMSG_ERROR payload (0 for an
// acknowledgement).
func replyErrno(payload []byte) (syscall.Errno, error) {
	if len(payload) < 4 {
		return 0, errors.New("sock_diag: short error reply")
	}
	return syscall.Errno(-int32(binary.NativeEndian.Uint32(payload))), nil
}

// walkAttrs calls f with the type (without the NLA_F_NESTED and
// NLA_F_NET_BYTEORDER bits) and the value of each attribute in b, in
// order, until f returns an error. Lengths that do not add up are
// errMalformed.
func walkAttrs(b []byte, f func(typ uint16, value []byte) error) error {
	ne := binary.NativeEndian
	for len(b) >= 4 {
		l, typ := int(ne.Uint16(b[0:])), ne.Uint16(b[2:])&0x3fff
		if l < 4 || l > len(b) {
			return errMalformed
		}
		if err := f(typ, b[4:l]); err != nil {
			return err
		}
		l = (l + 3) &^ 3 // attributes are aligned to 4 bytes
		if l >= len(b) {
			break
		}
		b = b[l:]
	}
	return nil
}
