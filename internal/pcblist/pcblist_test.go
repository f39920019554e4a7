package pcblist

import (
	"errors"
	"testing"
)

func TestParseDarwinUDP(t *testing.T) {
	tb, err := ParseDarwinUDP(darwinTable(5, 5, false, ours, v6))
	if err != nil {
		t.Fatal(err)
	}
	if len(tb.Socks) != 2 {
		t.Fatalf("got %+v", tb.Socks)
	}
	if got := tb.Socks[0]; got != ours {
		t.Errorf("v4 socket: got %+v, want %+v", got, ours)
	}
	if got := tb.Socks[1]; got.Local != v6.Local || got.Remote != v6.Remote || got.So != v6.So {
		t.Errorf("v6 socket: got %+v, want %+v", got, v6)
	}
	if !tb.Has(ours.So, ours.Gen) || tb.Has(ours.So, ours.Gen+1) {
		t.Error("Has does not match by handle and generation")
	}
}

func TestParseDarwinEmptyAndChanged(t *testing.T) {
	tb, err := ParseDarwinUDP(darwinTable(5, 5, false))
	if err != nil || len(tb.Socks) != 0 {
		t.Fatalf("empty table: %+v %v", tb, err)
	}
	if _, err := ParseDarwinUDP(darwinTable(5, 6, false, ours)); !errors.Is(err, ErrChanged) {
		t.Fatalf("generation changed: err %v, want ErrChanged", err)
	}
}

func TestParseDarwinUnix(t *testing.T) {
	tb, err := ParseDarwinUnix(darwinTable(9, 9, true, unx))
	if err != nil {
		t.Fatal(err)
	}
	if len(tb.Socks) != 1 || tb.Socks[0].Path != unx.Path || tb.Socks[0].So != unx.So || tb.Socks[0].LastPID != 7 {
		t.Fatalf("got %+v", tb.Socks)
	}
}

// A table this package does not recognise is an error, never a shorter
// list: each corruption here would otherwise hide the socket.
func TestParseDarwinRefusesWhatItDoesNotKnow(t *testing.T) {
	good := darwinTable(5, 5, false, ours)
	cases := map[string][]byte{
		"truncated":          good[:len(good)-8],
		"no trailer":         good[:len(good)-24],
		"header size":        append([]byte{32, 0, 0, 0}, good[4:]...),
		"short pcb":          append(darwinGen(1, 5), append(darwinRec(xsoInpcb, 40, nil), darwinGen(1, 5)...)...),
		"pcb without socket": append(darwinGen(1, 5), append(darwinRec(xsoInpcb, sizeXinpcbN, nil), darwinGen(1, 5)...)...),
		"socket first":       append(darwinGen(1, 5), append(darwinRec(xsoSocket, sizeXsocketN, nil), darwinGen(1, 5)...)...),
		"record past end":    append(darwinGen(1, 5), darwinRec(xsoInpcb, 4096, nil)[:200]...),
	}
	for name, b := range cases {
		if _, err := ParseDarwinUDP(b); !errors.Is(err, ErrLayout) {
			t.Errorf("%s: err %v, want ErrLayout", name, err)
		}
	}
}

func TestParseFreeBSDUDP(t *testing.T) {
	tb, err := ParseFreeBSDUDP(fbTable(3, 3, ours, v6))
	if err != nil {
		t.Fatal(err)
	}
	if len(tb.Socks) != 2 || tb.Socks[0].Local != ours.Local || tb.Socks[0].So != ours.So || tb.Socks[0].Gen != ours.Gen ||
		tb.Socks[1].Local != v6.Local || tb.Socks[1].Remote != v6.Remote {
		t.Fatalf("got %+v", tb.Socks)
	}
	if _, err := ParseFreeBSDUDP(fbTable(3, 4, ours)); !errors.Is(err, ErrChanged) {
		t.Fatalf("err %v, want ErrChanged", err)
	}
	bad := fbTable(3, 3, ours)
	put64(bad[64:], 408) // an xinpcb that grew
	if _, err := ParseFreeBSDUDP(bad); !errors.Is(err, ErrLayout) {
		t.Fatalf("err %v, want ErrLayout", err)
	}
}

func TestParseFreeBSDUnix(t *testing.T) {
	tb, err := ParseFreeBSDUnix(fbUnixTable(4, 4, unx))
	if err != nil {
		t.Fatal(err)
	}
	if len(tb.Socks) != 1 || tb.Socks[0].Path != unx.Path || !tb.Has(unx.So, unx.Gen) {
		t.Fatalf("got %+v", tb.Socks)
	}
	if _, err := ParseFreeBSDUnix(fbUnixTable(4, 5, unx)); !errors.Is(err, ErrChanged) {
		t.Fatalf("err %v, want ErrChanged", err)
	}
	bad := fbUnixTable(4, 4, unx)
	put64(bad[32+664:], 248) // an xsocket that grew
	if _, err := ParseFreeBSDUnix(bad); !errors.Is(err, ErrLayout) {
		t.Fatalf("err %v, want ErrLayout", err)
	}
	if tb, err := ParseFreeBSDUnix(fbUnpGen(0, 1)); err != nil || len(tb.Socks) != 0 {
		t.Fatalf("empty: %+v %v", tb, err)
	}
}

func TestParseFreeBSDFiles(t *testing.T) {
	b := append(fbXfile(File{PID: 10, FD: 3, Type: DTypeSocket, Data: ours.So}), fbXfile(File{PID: 11, FD: 4, Type: 1, Data: ours.So})...)
	b = append(b, fbXfile(File{PID: 12, FD: 5, Type: DTypeSocket, Data: ours.So})...)
	files, err := ParseFreeBSDFiles(b)
	if err != nil {
		t.Fatal(err)
	}
	h := Holding(files, ours.So)
	if len(h) != 2 || h[0].PID != 10 || h[0].FD != 3 || h[1].PID != 12 {
		t.Fatalf("Holding = %+v (a vnode with the same data is not the socket)", h)
	}
	if _, err := ParseFreeBSDFiles(b[:100]); !errors.Is(err, ErrLayout) {
		t.Fatalf("err %v, want ErrLayout", err)
	}
}

// FuzzDarwin: the parser never panics, and whatever follows a socket's
// record in the table, it never returns success without that socket.
func FuzzDarwin(f *testing.F) {
	f.Add(darwinItem(v6, false), false)
	f.Add(darwinRec(99, 16, nil), true)
	f.Add([]byte{24, 0, 0, 0, 1, 0, 0, 0}, false)
	f.Fuzz(func(t *testing.T, rest []byte, unix bool) {
		parse := ParseDarwinUDP
		if unix {
			parse = ParseDarwinUnix
		}
		_, _ = parse(rest) // arbitrary bytes: no panic
		s := ours
		if unix {
			s = unx
		}
		b := darwinGen(1, 5)
		b = append(b, darwinItem(s, unix)...)
		b = append(b, rest...)
		b = append(b, make([]byte, (8-len(rest)%8)%8)...)
		b = append(b, darwinGen(1, 5)...)
		tb, err := parse(b)
		if err == nil && !tb.Has(s.So, s.Gen) {
			t.Fatalf("parsed without the socket: %+v", tb.Socks)
		}
	})
}

// FuzzFreeBSD: the same for net.inet.udp.pcblist, whatever surrounds the
// socket's record, and for kern.file.
func FuzzFreeBSD(f *testing.F) {
	f.Add(fbInpcb(v6), uint8(0))
	f.Add(fbXfile(File{PID: 1, FD: 2, Type: DTypeSocket, Data: 9}), uint8(1))
	f.Add(fbXunpcb(unx), uint8(2))
	f.Fuzz(func(t *testing.T, junk []byte, where uint8) {
		_, _ = ParseFreeBSDUDP(junk)
		_, _ = ParseFreeBSDFiles(junk)
		b := fbGen(1, 3)
		if where%2 == 0 {
			b = append(b, fbInpcb(ours)...)
			b = append(b, junk...)
		} else {
			b = append(b, junk...)
			b = append(b, fbInpcb(ours)...)
		}
		b = append(b, fbGen(1, 3)...)
		if tb, err := ParseFreeBSDUDP(b); err == nil && !tb.Has(ours.So, ours.Gen) {
			t.Fatalf("parsed without the socket: %+v", tb.Socks)
		}
		_, _ = ParseFreeBSDUnix(junk)
		u := fbUnpGen(1, 3)
		if where%2 == 0 {
			u = append(append(u, fbXunpcb(unx)...), junk...)
		} else {
			u = append(append(u, junk...), fbXunpcb(unx)...)
		}
		u = append(u, fbUnpGen(1, 3)...)
		if tb, err := ParseFreeBSDUnix(u); err == nil && !tb.Has(unx.So, unx.Gen) {
			t.Fatalf("unix table parsed without the socket: %+v", tb.Socks)
		}
		xf := append(append([]byte{}, junk...), fbXfile(File{PID: 1, FD: 3, Type: DTypeSocket, Data: ours.So})...)
		if files, err := ParseFreeBSDFiles(xf); err == nil && len(Holding(files, ours.So)) == 0 {
			t.Fatal("kern.file parsed without the descriptor")
		}
	})
}
