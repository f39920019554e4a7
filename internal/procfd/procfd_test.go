package procfd

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestKernelThreadsAreNotUnreadable: pid 2 (kthreadd, in the initial pid
// namespace) is a kernel thread; this process is not.
func TestKernelThreadsAreNotUnreadable(t *testing.T) {
	assert.False(t, KernelThread("/proc", os.Getpid()))
	if b, err := os.ReadFile("/proc/2/comm"); err == nil && string(b) == "kthreadd\n" {
		assert.True(t, KernelThread("/proc", 2))
	}
	scan := Sockets("/proc", map[uint64]bool{})
	for _, pid := range scan.Unreadable {
		assert.False(t, KernelThread("/proc", pid), "kernel thread %d listed as unreadable", pid)
	}
}
