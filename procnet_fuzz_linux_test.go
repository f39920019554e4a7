package safeudp

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// The parsers of the kernel's tables must never panic, whatever they are
// given, and whatever they return must be consistent.

func FuzzParseProcNetUDP(f *testing.F) {
	f.Add([]byte(" 8583: 0100007F:1F75 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 52678 2 00000000593bd553 0\n"))
	f.Add([]byte("  1: 0000000000000000FFFF00000100007F:1F75 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000 0 0 777 2 0 0\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, e := range parseProcNetUDP(data) {
			if !e.local.IsValid() {
				t.Fatalf("invalid address in %+v", e)
			}
			_ = conflicts(e.local, e.local)
		}
	})
}

func FuzzParseProcNetUnix(f *testing.F) {
	f.Add([]byte("Num       RefCount Protocol Flags    Type St Inode Path\n0000000000000000: 00000002 00000000 00010000 0002 01 1234 /run/a b.sock\n"))
	f.Add([]byte("0000000000000000: 00000002 00000000 00000000 0002 01 5678 @abs\x00tract\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got := parseProcNetUnix(data)
		// At most one entry per line, and every path is the end of a
		// line of the input.
		if lines := bytes.Count(data, []byte("\n")) + 1; len(got) > lines {
			t.Fatalf("%d entries from %d lines", len(got), lines)
		}
		for _, e := range got {
			if e.path != "" && !bytes.Contains(data, []byte(" "+e.path)) {
				t.Fatalf("path %q is not in the input", e.path)
			}
		}
	})
}

func FuzzParseDiagReply(f *testing.F) {
	f.Add([]byte{36, 0, 0, 0, 2, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 254, 255, 255, 255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, uint32(7), uint32(7), int32(2), uint32(1234))
	f.Add([]byte{16, 0, 0, 0, 20, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0}, uint32(7), uint32(6), int32(116), uint32(0))
	f.Fuzz(func(t *testing.T, data []byte, seq, replySeq uint32, errno int32, ino uint32) {
		family := uint8(unix.AF_INET) // or AF_UNIX for odd sequence numbers
		if seq%2 == 1 {
			family = unix.AF_UNIX
		}
		// Anything: no panic, and never found together with an error.
		if found, _, err := parseDiagReply(data, seq, family); found && err != nil {
			t.Fatalf("found and error %v", err)
		}

		// A well-formed error reply.
		ne := binary.NativeEndian
		msg := func(typ uint16, body []byte) []byte {
			b := make([]byte, nlmsgHdrLen+len(body))
			ne.PutUint32(b, uint32(len(b)))
			ne.PutUint16(b[4:], typ)
			ne.PutUint32(b[8:], replySeq)
			copy(b[nlmsgHdrLen:], body)
			return b
		}
		errBody := make([]byte, 20)
		ne.PutUint32(errBody, uint32(-errno))
		found, _, err := parseDiagReply(msg(unix.NLMSG_ERROR, errBody), seq, family)
		switch {
		case replySeq != seq:
			if err != errStaleReply {
				t.Fatalf("reply to request %d taken for request %d: %v, %v", replySeq, seq, found, err)
			}
		case found:
			t.Fatalf("an error reply (errno %d) says found", errno)
		case syscall.Errno(errno) == unix.ENOENT:
			if err != nil {
				t.Fatalf("ENOENT gives error %v, want (false, nil): the socket is gone", err)
			}
		case err == nil:
			t.Fatalf("errno %d taken for \"gone\": only ENOENT says so", errno)
		}

		// A well-formed socket reply carries the inode.
		body := make([]byte, 72)
		off := 68
		if family == unix.AF_UNIX {
			off = 4
		}
		ne.PutUint32(body[off:], ino)
		found, got, err := parseDiagReply(msg(unix.SOCK_DIAG_BY_FAMILY, body), seq, family)
		if replySeq == seq && (!found || got != uint64(ino) || err != nil) {
			t.Fatalf("socket reply: found %v, inode %d (want %d), err %v", found, got, ino, err)
		}
	})
}

func TestParseProcNetUDPHugeTable(t *testing.T) {
	var b strings.Builder
	const n = 200_000
	for i := range n {
		fmt.Fprintf(&b, "%5d: 0100007F:%04X 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 %d 2 0000000000000000 0\n", i, i%65536, i+1)
	}
	got := parseProcNetUDP([]byte(b.String()))
	if len(got) != n {
		t.Fatalf("parsed %d of %d lines", len(got), n)
	}
}
