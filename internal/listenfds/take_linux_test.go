package listenfds

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestTakeSetsCloseOnExec(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	var fd int
	rc, err := r.SyscallConn()
	require.NoError(t, err)
	require.NoError(t, rc.Control(func(s uintptr) { fd = int(s) }))
	// As an inherited descriptor arrives: without close-on-exec.
	_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0)
	require.NoError(t, err)

	require.NoError(t, Take(fd))
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	require.NoError(t, err)
	assert.Equal(t, unix.FD_CLOEXEC, flags&unix.FD_CLOEXEC)
}
