//go:build linux || darwin

package safeudp

import (
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/safeudp/safeudp/internal/kinfo"
	"github.com/safeudp/safeudp/internal/pcblist"
)

func TestMatchSocket(t *testing.T) {
	self := os.Getpid()
	ap := netip.MustParseAddrPort
	a := pcblist.Socket{So: 1, Gen: 10, Local: ap("127.0.0.1:3001"), Remote: ap("0.0.0.0:0"), LastPID: self}
	b := pcblist.Socket{So: 2, Gen: 11, Local: ap("127.0.0.1:3001"), Remote: ap("0.0.0.0:0"), LastPID: 77}
	c := pcblist.Socket{So: 3, Gen: 12, Local: ap("[::]:3002"), LastPID: self}
	u := pcblist.Socket{So: 4, Gen: 13, Path: "/tmp/x.sock", LastPID: self}
	tb := pcblist.Table{Socks: []pcblist.Socket{a, b, c, u}}
	if id := matchSocket(tb, ap("127.0.0.1:3001"), netip.AddrPort{}, "", self); !id.ok || id.so != 1 {
		t.Errorf("two on the port, one used last by us: %+v", id)
	}
	if id := matchSocket(tb, ap("[::]:3002"), netip.AddrPort{}, "", self); !id.ok || id.so != 3 {
		t.Errorf("wildcard: %+v", id)
	}
	if id := matchSocket(tb, netip.AddrPort{}, netip.AddrPort{}, "/tmp/x.sock", self); !id.ok || id.so != 4 {
		t.Errorf("unix: %+v", id)
	}
	if id := matchSocket(tb, ap("127.0.0.1:9"), netip.AddrPort{}, "", self); id.ok || id.why == nil {
		t.Errorf("absent: %+v", id)
	}
	a2 := a
	a2.So = 5
	if id := matchSocket(pcblist.Table{Socks: []pcblist.Socket{a, a2}}, ap("127.0.0.1:3001"), netip.AddrPort{}, "", self); id.ok || !errors.Is(id.why, errAmbiguous) {
		t.Errorf("ambiguous: %+v", id)
	}
}

func TestDarwinHolders(t *testing.T) {
	self := os.Getpid()
	procs := []kinfo.Proc{
		{PID: 500, PPID: self, Comm: "forking"},
		{PID: 502, PPID: 1, Flag: kinfo.PExec, Comm: "other"},
	}
	// macOS: our socket with children between fork and exec: they hold it.
	dh := darwinHolders([]pcblist.Socket{{So: 1, Local: netip.MustParseAddrPort("127.0.0.1:3001"), LastPID: self}}, procs, self, "127.0.0.1:3001")
	if len(dh) != 1 || dh[0].Kind != HolderForking || dh[0].PID != 500 || !dh[0].Transient() {
		t.Errorf("darwinHolders = %v", dh)
	}
	dh = darwinHolders([]pcblist.Socket{{So: 1, Local: netip.MustParseAddrPort("127.0.0.1:3001"), LastPID: 502}}, procs, self, "127.0.0.1:3001")
	if len(dh) != 1 || dh[0].Kind != HolderUnseen || !strings.Contains(dh[0].String(), `last used by pid 502 "other"`) {
		t.Errorf("darwinHolders = %v", dh)
	}
}
