//go:build linux || darwin || freebsd

package safeudp

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/safeudp/safeudp/internal/pcblist"
)

func TestTableSocketsInTheWayOfABind(t *testing.T) {
	ap := netip.MustParseAddrPort
	tab := pcblist.Table{Socks: []pcblist.Socket{
		{So: 1, Local: ap("127.0.0.1:53")},
		{So: 2, Local: ap("0.0.0.0:53")},
		{So: 3, Local: ap("127.0.0.1:54")},
		{So: 4, Path: "/tmp/a.sock"},
		{So: 5, Path: "/tmp/b.sock"},
	}}
	var got []uint64
	for _, s := range conflictingSockets(tab, ap("127.0.0.1:53")) {
		got = append(got, s.So)
	}
	assert.Equal(t, []uint64{1, 2}, got, "the same address and the wildcard on the port")
	at := socketsAtPath(tab, "/tmp/b.sock")
	if assert.Len(t, at, 1) {
		assert.Equal(t, uint64(5), at[0].So)
	}
	assert.Empty(t, socketsAtPath(tab, "/tmp/c.sock"))
}
