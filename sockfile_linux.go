package safeudp

import (
	"net"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/safeudp/safeudp/internal/sockdiag"
)

// O_PATH needs no permission on the directory and does not open it for
// reading.
const dirOpenFlags = unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC

// pinSocketFile proves that base in f.dir is the file the socket of pc is
// bound to, and keeps it open. The file is opened with
// O_PATH|O_NOFOLLOW (which opens a socket inode, and never follows a
// symlink put there), then its fstat is compared with the kernel's answer
// for our socket (sock_diag UNIX_DIAG_VFS, an exact lookup by inode and
// cookie). Our socket is open, and it pins the inode it is bound to, so no
// other file can have that number meanwhile: a match means the opened file
// is that inode, whatever happened to the path between the bind and now
// (up to the kernel's 32-bit inode number; see sockdiag.BoundFile.Matches).
// The O_PATH descriptor then pins the inode in its turn until removal,
// after our socket is gone, so a file created later can never take the
// number and be taken for ours. It returns false, recording nothing, if
// the proof cannot be made (no directory, a file that is not the socket's,
// sock_diag unable to answer).
func pinSocketFile(f *sockFile, pc net.PacketConn) bool {
	if f.dir == nil {
		return false
	}
	var file *os.File
	err := control(f.dir, func(dirfd int) error {
		fd, err := unix.Openat(dirfd, f.base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == nil {
			file = os.NewFile(uintptr(fd), f.name)
		}
		return err
	})
	if err != nil {
		return false
	}
	var st unix.Stat_t
	if err := control(file, func(fd int) error { return unix.Fstat(fd, &st) }); err != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		_ = file.Close()
		return false
	}
	rc := rawConnOf(pc)
	var (
		bf    sockdiag.BoundFile
		bound bool
		berr  error
	)
	if rc == nil || rc.Control(func(fd uintptr) { bf, bound, berr = sockdiag.BoundFileOf(int(fd)) }) != nil ||
		berr != nil || !bound || !bf.Matches(st.Dev, st.Ino) {
		_ = file.Close()
		return false
	}
	f.file, f.dev, f.ino = file, st.Dev, st.Ino
	return true
}

// dirPath returns the current path of the directory dir, as the kernel
// knows it (/proc/self/fd), or "" if it has none (removed).
func dirPath(dir *os.File) string {
	var p string
	_ = control(dir, func(fd int) error {
		var err error
		p, err = os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
		return err
	})
	if !strings.HasPrefix(p, "/") || strings.HasSuffix(p, " (deleted)") {
		return ""
	}
	return p
}
