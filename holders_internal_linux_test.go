package safeudp

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestConflicts: which bound address blocks a bind of which other.
func TestConflicts(t *testing.T) {
	ap := netip.MustParseAddrPort
	assert.True(t, conflicts(ap("127.0.0.1:1"), ap("0.0.0.0:1")))
	assert.True(t, conflicts(ap("127.0.0.1:1"), ap("[::]:1")))
	assert.True(t, conflicts(ap("0.0.0.0:1"), ap("127.0.0.1:1")))
	assert.True(t, conflicts(ap("[::]:1"), ap("127.0.0.1:1")))
	assert.False(t, conflicts(ap("127.0.0.1:1"), ap("127.0.0.2:1")))
	assert.False(t, conflicts(ap("127.0.0.1:1"), ap("127.0.0.1:2")))
	assert.False(t, conflicts(ap("[::1]:1"), ap("0.0.0.0:1")))
	assert.True(t, conflicts(ap("127.0.0.1:8053"), ap("[::ffff:127.0.0.1]:8053")), "mapped and plain IPv4 are the same address")
}
