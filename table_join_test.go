//go:build linux || freebsd

package safeudp

import (
	"net/netip"
	"os"
	"testing"

	"github.com/safeudp/safeudp/internal/kinfo"
	"github.com/safeudp/safeudp/internal/pcblist"
)

func TestJoinSocketAndHolders(t *testing.T) {
	self := os.Getpid()
	tb := pcblist.Table{Socks: []pcblist.Socket{{So: 0xa, Gen: 3, Local: netip.MustParseAddrPort("127.0.0.1:3001")}}}
	files := []pcblist.File{
		{PID: self, FD: 7, Type: pcblist.DTypeSocket, Data: 0xa},
		{PID: 500, FD: 3, Type: pcblist.DTypeSocket, Data: 0xa},
		{PID: 501, FD: 4, Type: pcblist.DTypeSocket, Data: 0xa},
		{PID: 502, FD: 5, Type: pcblist.DTypeSocket, Data: 0xa},
	}
	if id := joinSocket(files, tb, self, 7); !id.ok || id.so != 0xa || id.gen != 3 {
		t.Fatalf("joinSocket = %+v", id)
	}
	if id := joinSocket(files, tb, self, 8); id.ok {
		t.Fatalf("another fd: %+v", id)
	}
	procs := []kinfo.Proc{
		{PID: 500, PPID: self, Comm: "forking"},
		{PID: 501, PPID: self, Flag: kinfo.PExec, Comm: "child"},
		{PID: 502, PPID: 1, Flag: kinfo.PExec, Comm: "other"},
	}
	hs := socketHolders(tb.Socks, files, procs, "127.0.0.1:3001")
	kinds := []HolderKind{HolderProcess, HolderForking, HolderChild, HolderProcess}
	if len(hs) != 4 {
		t.Fatalf("holders %v", hs)
	}
	for i, h := range hs {
		if h.Kind != kinds[i] {
			t.Errorf("holder %d: %v, want %v", i, h, kinds[i])
		}
	}
	if !hs[0].self || hs[3].String() != `pid 502 "other" fd 5` {
		t.Errorf("holders %v", hs)
	}
}

// A unix socket is found and named the same way, by its path.
func TestJoinUnixSocket(t *testing.T) {
	self := os.Getpid()
	tb := pcblist.Table{Socks: []pcblist.Socket{{So: 0xb, Gen: 9, Path: "/tmp/a.sock"}}}
	files := []pcblist.File{{PID: self, FD: 5, Type: pcblist.DTypeSocket, Data: 0xb}, {PID: 600, FD: 3, Type: pcblist.DTypeSocket, Data: 0xb}}
	if id := joinSocket(files, tb, self, 5); !id.ok || id.gen != 9 {
		t.Fatalf("joinSocket = %+v", id)
	}
	hs := socketHolders(tb.Socks, files, []kinfo.Proc{{PID: 600, PPID: 1, Comm: "peer"}}, "/tmp/a.sock")
	if len(hs) != 2 || hs[1].String() != `pid 600 "peer" fd 3` || hs[1].Addr != "/tmp/a.sock" {
		t.Fatalf("holders %v", hs)
	}
}
