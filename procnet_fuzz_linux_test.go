package safeudp

import (
	"fmt"
	"strings"
	"testing"
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
		for _, e := range parseProcNetUnix(data) {
			if strings.Contains(e.path, "\n") {
				t.Fatalf("path with a newline: %q", e.path)
			}
		}
	})
}

func FuzzParseDiagReply(f *testing.F) {
	f.Add([]byte{36, 0, 0, 0, 2, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 254, 255, 255, 255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, uint32(7))
	f.Add([]byte{16, 0, 0, 0, 20, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0}, uint32(7))
	f.Fuzz(func(t *testing.T, data []byte, seq uint32) {
		family := uint8(2) // AF_INET, or AF_UNIX for odd sequence numbers
		if seq%2 == 1 {
			family = 1
		}
		found, _, err := parseDiagReply(data, seq, family)
		if found && err != nil {
			t.Fatalf("found and error %v", err)
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
