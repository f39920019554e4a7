package safeudp

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/safeudp/safeudp/internal/procfd"
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

// TestAHolderWhoseProcessWentAwayIsTransient: the scan saw a descriptor
// of a process that exec'd or exited before it was classified (its
// /proc/<pid> is gone): that descriptor holds nothing any more, so the
// holder must not count as long-lived, or a bind retry gives up on a port
// that a child between fork and exec held a moment ago.
func TestAHolderWhoseProcessWentAwayIsTransient(t *testing.T) {
	old := procRoot
	procRoot = t.TempDir() // no process at all: every pid is gone
	t.Cleanup(func() { procRoot = old })
	hs := holdersOf(42, "127.0.0.1:1", "127.0.0.1:1", procfd.Scan{Refs: map[uint64][]procfd.Ref{42: {{PID: 4242, FD: 7}}}})
	assert.Len(t, hs, 1)
	assert.Equal(t, HolderUnseen, hs[0].Kind)
	assert.True(t, hs[0].Transient(), "%v", hs[0])
}
