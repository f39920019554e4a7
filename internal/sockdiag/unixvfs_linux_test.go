package sockdiag

import (
	"encoding/binary"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// listenUnixgram binds a unixgram socket in dir and returns it with the
// stat of its file.
func listenUnixgram(t *testing.T, dir string) (*net.UnixConn, unix.Stat_t) {
	t.Helper()
	path := filepath.Join(dir, "s")
	uc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = uc.Close() })
	var st unix.Stat_t
	require.NoError(t, unix.Lstat(path, &st))
	return uc, st
}

// boundFileOf is BoundFileOf on uc's descriptor.
func boundFileOf(t *testing.T, uc *net.UnixConn) (BoundFile, bool, error) {
	t.Helper()
	rc, err := uc.SyscallConn()
	require.NoError(t, err)
	var (
		f     BoundFile
		bound bool
		ferr  error
	)
	require.NoError(t, rc.Control(func(fd uintptr) { f, bound, ferr = BoundFileOf(int(fd)) }))
	return f, bound, ferr
}

// TestBoundFileMatchesFstat checks the device conversion on a disk file
// system (major not 0: the kernel's dev_t and st_dev differ) and on tmpfs
// (major 0: they agree).
func TestBoundFileMatchesFstat(t *testing.T) {
	dirs := map[string]string{"disk": t.TempDir()}
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		d, err := os.MkdirTemp("/dev/shm", "su")
		require.NoError(t, err)
		t.Cleanup(func() { _ = os.RemoveAll(d) })
		dirs["tmpfs"] = d
	}
	for name, dir := range dirs {
		t.Run(name, func(t *testing.T) {
			uc, st := listenUnixgram(t, dir)
			f, bound, err := boundFileOf(t, uc)
			require.NoError(t, err)
			require.True(t, bound)
			t.Logf("st_dev %#x (major %d minor %d), st_ino %d; sock_diag dev %#x ino %d",
				st.Dev, unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino, f.Dev, f.Ino)
			assert.Equal(t, st.Dev, f.Dev, "the device, converted to st_dev")
			assert.Equal(t, uint32(st.Ino), f.Ino)
			assert.True(t, f.Matches(st.Dev, st.Ino))
			assert.Equal(t, Inode(fdOf(t, uc)), f.Socket)
		})
	}
}

func fdOf(t *testing.T, uc *net.UnixConn) int {
	rc, err := uc.SyscallConn()
	require.NoError(t, err)
	fd := -1
	require.NoError(t, rc.Control(func(f uintptr) { fd = int(f) }))
	return fd
}

func TestBoundFileOfAnAbstractSocketIsNotBound(t *testing.T) {
	uc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: "@safeudp-sockdiag-test-" + strconv.Itoa(os.Getpid()), Net: "unixgram"})
	require.NoError(t, err)
	defer uc.Close()
	_, bound, err := boundFileOf(t, uc)
	require.NoError(t, err)
	assert.False(t, bound, "an abstract name has no file")
}

func TestBoundFileOfSurvivesTheUnlinkOfThePath(t *testing.T) {
	uc, st := listenUnixgram(t, t.TempDir())
	require.NoError(t, os.Remove(uc.LocalAddr().String()))
	f, bound, err := boundFileOf(t, uc)
	require.NoError(t, err)
	require.True(t, bound, "the socket keeps its file while it is open")
	assert.True(t, f.Matches(st.Dev, st.Ino))
}

func TestUnixBoundFilesListsAnOpenSocketAndNotAClosedOne(t *testing.T) {
	uc, st := listenUnixgram(t, t.TempDir())
	ino := Inode(fdOf(t, uc))
	files, err := UnixBoundFiles()
	require.NoError(t, err)
	found := false
	for _, f := range files {
		if f.Socket == ino {
			found = true
			assert.True(t, f.Matches(st.Dev, st.Ino))
		}
	}
	assert.True(t, found, "the dump lists our socket (%d sockets bound to files)", len(files))
	require.NoError(t, uc.Close())
	files, err = UnixBoundFiles()
	require.NoError(t, err)
	for _, f := range files {
		assert.NotEqual(t, ino, f.Socket, "a closed socket is not listed")
	}
}

// unixMsg builds one SOCK_DIAG_BY_FAMILY message for socket ino, with a
// UNIX_DIAG_NAME attribute and, if vfs, a UNIX_DIAG_VFS one.
func unixMsg(seq, ino uint32, vfs bool, vino, vdev uint32) []byte {
	ne := binary.NativeEndian
	body := make([]byte, unixDiagMsg)
	body[0], body[1] = unix.AF_UNIX, unix.SOCK_DGRAM
	ne.PutUint32(body[4:], ino)
	name := []byte{0, 0, 0, 0, '/', 'x', 0} // length 7, padded to 8
	ne.PutUint16(name[0:], 7)
	ne.PutUint16(name[2:], 0) // UNIX_DIAG_NAME
	body = append(body, name...)
	body = append(body, 0)
	if vfs {
		a := make([]byte, 12)
		ne.PutUint16(a[0:], 12)
		ne.PutUint16(a[2:], unixDiagVFS)
		ne.PutUint32(a[4:], vino)
		ne.PutUint32(a[8:], vdev)
		body = append(body, a...)
	}
	return nlmsg(unix.SOCK_DIAG_BY_FAMILY, seq, body)
}

func nlmsg(typ uint16, seq uint32, body []byte) []byte {
	ne := binary.NativeEndian
	b := make([]byte, nlmsgHdrLen+len(body))
	ne.PutUint32(b, uint32(len(b)))
	ne.PutUint16(b[4:], typ)
	ne.PutUint32(b[8:], seq)
	copy(b[nlmsgHdrLen:], body)
	return b
}

func TestParseUnixReply(t *testing.T) {
	ne := binary.NativeEndian
	// Two sockets, one bound to a file on device 254:3 (kernel dev_t
	// 254<<20|3), one unnamed; then NLMSG_DONE.
	b := append(unixMsg(9, 111, true, 4242, 254<<20|3), unixMsg(9, 222, false, 0, 0)...)
	files, done, err := parseUnixReply(b, 9)
	require.NoError(t, err)
	assert.False(t, done)
	require.Equal(t, []BoundFile{{Socket: 111, Dev: unix.Mkdev(254, 3), Ino: 4242}}, files)
	assert.Equal(t, uint64(254<<8|3), files[0].Dev, "new_encode_dev for a small minor")

	files, done, err = parseUnixReply(nlmsg(unix.NLMSG_DONE, 9, make([]byte, 4)), 9)
	require.NoError(t, err)
	assert.True(t, done)
	assert.Empty(t, files)

	errBody := make([]byte, 20)
	enoent := -int32(unix.ENOENT)
	ne.PutUint32(errBody, uint32(enoent))
	_, _, err = parseUnixReply(nlmsg(unix.NLMSG_ERROR, 9, errBody), 9)
	require.ErrorIs(t, err, syscall.ENOENT)

	_, _, err = parseUnixReply(unixMsg(8, 111, true, 1, 1), 9)
	assert.Equal(t, errStaleReply, err)
	_, _, err = parseUnixReply(unixMsg(9, 111, true, 1, 1)[:nlmsgHdrLen+unixDiagMsg+10], 9)
	assert.Error(t, err, "a message cut short")

	short := unixMsg(9, 111, true, 1, 1)
	ne.PutUint16(short[nlmsgHdrLen+unixDiagMsg+8:], 8) // a VFS attribute of 4 bytes
	ne.PutUint32(short, uint32(nlmsgHdrLen+unixDiagMsg+8+8))
	_, _, err = parseUnixReply(short[:nlmsgHdrLen+unixDiagMsg+16], 9)
	assert.ErrorContains(t, err, "short UNIX_DIAG_VFS")
}

func TestUnixRequest(t *testing.T) {
	ne := binary.NativeEndian
	b := unixRequest(5, false, 0x1234, 0xaabbccdd_11223344)
	require.Len(t, b, 40)
	assert.Equal(t, uint32(40), ne.Uint32(b[0:]))
	assert.Equal(t, uint16(unix.SOCK_DIAG_BY_FAMILY), ne.Uint16(b[4:]))
	assert.Equal(t, uint16(unix.NLM_F_REQUEST), ne.Uint16(b[6:]))
	assert.Equal(t, uint32(5), ne.Uint32(b[8:]))
	r := b[16:]
	assert.Equal(t, byte(unix.AF_UNIX), r[0])
	assert.Equal(t, ^uint32(0), ne.Uint32(r[4:]), "every state")
	assert.Equal(t, uint32(0x1234), ne.Uint32(r[8:]))
	assert.Equal(t, uint32(udiagShowVFS), ne.Uint32(r[12:]))
	assert.Equal(t, uint32(0x11223344), ne.Uint32(r[16:]))
	assert.Equal(t, uint32(0xaabbccdd), ne.Uint32(r[20:]))
	d := unixRequest(5, true, 0, 0)
	assert.Equal(t, uint16(unix.NLM_F_REQUEST|unix.NLM_F_DUMP), ne.Uint16(d[6:]))
}

func FuzzParseUnixReply(f *testing.F) {
	f.Add(unixMsg(1, 111, true, 4242, 254<<20|3), uint32(1))
	f.Add(append(unixMsg(1, 1, false, 0, 0), nlmsg(unix.NLMSG_DONE, 1, make([]byte, 4))...), uint32(1))
	f.Add([]byte{20, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 254, 255, 255, 255}, uint32(1))
	f.Fuzz(func(t *testing.T, data []byte, seq uint32) {
		files, done, err := parseUnixReply(data, seq)
		if err != nil && (files != nil || done) {
			t.Fatalf("an error (%v) with results %v, done %v", err, files, done)
		}
	})
}
