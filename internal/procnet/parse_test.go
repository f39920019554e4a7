package procnet

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The parsers of the kernel's tables must never panic, whatever they are
// given, and whatever they return must be consistent.

func FuzzParseUDP(f *testing.F) {
	f.Add([]byte(" 8583: 0100007F:1F75 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 52678 2 00000000593bd553 0\n"))
	f.Add([]byte("  1: 0000000000000000FFFF00000100007F:1F75 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000 0 0 777 2 0 0\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, e := range ParseUDP(data) {
			if !e.Local.IsValid() {
				t.Fatalf("invalid address in %+v", e)
			}
		}
	})
}

func FuzzParseUnix(f *testing.F) {
	f.Add([]byte("Num       RefCount Protocol Flags    Type St Inode Path\n0000000000000000: 00000002 00000000 00010000 0002 01 1234 /run/a b.sock\n"))
	f.Add([]byte("0000000000000000: 00000002 00000000 00000000 0002 01 5678 @abs\x00tract\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got := ParseUnix(data)
		// At most one entry per line, and every path is the end of a
		// line of the input.
		if lines := bytes.Count(data, []byte("\n")) + 1; len(got) > lines {
			t.Fatalf("%d entries from %d lines", len(got), lines)
		}
		for _, e := range got {
			if e.Path != "" && !bytes.Contains(data, []byte(" "+e.Path)) {
				t.Fatalf("path %q is not in the input", e.Path)
			}
		}
	})
}

func TestParseUDPHugeTable(t *testing.T) {
	var b strings.Builder
	const n = 200_000
	for i := range n {
		fmt.Fprintf(&b, "%5d: 0100007F:%04X 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 %d 2 0000000000000000 0\n", i, i%65536, i+1)
	}
	got := ParseUDP([]byte(b.String()))
	if len(got) != n {
		t.Fatalf("parsed %d of %d lines", len(got), n)
	}
}

func TestParseUDP(t *testing.T) {
	// A real /proc/net/udp line, as in NOTES.md, plus noise.
	data := "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n" +
		" 8583: 0100007F:1F75 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 52678 2 00000000593bd553 0\n" +
		"garbage line\n" +
		" 12: ZZ00007F:1F75 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0 0\n"
	got := ParseUDP([]byte(data))
	require.Len(t, got, 1)
	if binary.NativeEndian.Uint16([]byte{1, 0}) == 1 { // little-endian host, as the sample
		assert.Equal(t, netip.MustParseAddrPort("127.0.0.1:8053"), got[0].Local)
	}
	assert.Equal(t, uint64(52678), got[0].Inode)
}

func TestParseUDP6Mapped(t *testing.T) {
	// ::ffff:127.0.0.1 port 8053, printed as four host-order words.
	var raw [16]byte
	copy(raw[:], netip.MustParseAddr("::ffff:127.0.0.1").AsSlice())
	var b strings.Builder
	for w := 0; w < 4; w++ {
		b.WriteString(strings.ToUpper(hexWord(binary.NativeEndian.Uint32(raw[w*4:]))))
	}
	line := "  1: " + b.String() + ":1F75 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000 0 0 777 2 0 0\n"
	got := ParseUDP([]byte(line))
	require.Len(t, got, 1)
	assert.Equal(t, netip.MustParseAddrPort("[::ffff:127.0.0.1]:8053"), got[0].Local)
}

func hexWord(v uint32) string {
	const digits = "0123456789abcdef"
	var b [8]byte
	for i := 7; i >= 0; i-- {
		b[i] = digits[v&15]
		v >>= 4
	}
	return string(b[:])
}

func TestParseUnix(t *testing.T) {
	data := "Num       RefCount Protocol Flags    Type St Inode Path\n" +
		"0000000000000000: 00000002 00000000 00010000 0001 01 1234 /run/a b.sock\n" +
		"0000000000000000: 00000002 00000000 00000000 0002 01 5678 @abstract\n" +
		"0000000000000000: 00000002 00000000 00000000 0002 01 91011\n" +
		"0000000000000000: 0002\n"
	got := ParseUnix([]byte(data))
	require.Len(t, got, 3)
	assert.Equal(t, UnixEntry{Inode: 1234, Path: "/run/a b.sock"}, got[0])
	assert.Equal(t, UnixEntry{Inode: 5678, Dgram: true, Path: "@abstract"}, got[1])
	assert.Equal(t, UnixEntry{Inode: 91011, Dgram: true}, got[2])
}
