//go:build unix

package safeudp

import (
	"os"

	"golang.org/x/sys/unix"
)

// openSocketDir opens the directory a socket file was bound in, to be held
// until the file is removed (dirOpenFlags is per system).
func openSocketDir(dir string) (*os.File, error) {
	fd, err := unix.Open(dir, dirOpenFlags, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return os.NewFile(uintptr(fd), dir), nil
}

// statAt is fstatat(dir, base, AT_SYMLINK_NOFOLLOW).
func statAt(dir *os.File, base string) (dev, ino uint64, isSocket bool, err error) {
	var st unix.Stat_t
	serr := control(dir, func(fd int) error { return unix.Fstatat(fd, base, &st, unix.AT_SYMLINK_NOFOLLOW) })
	if serr != nil {
		return 0, 0, false, serr
	}
	return uint64(st.Dev), uint64(st.Ino), st.Mode&unix.S_IFMT == unix.S_IFSOCK, nil
}

// removeAt removes the file if dir/base is still the file recorded at
// listen (same device and inode), with unlinkat on the directory held
// since then: the working directory and the symlinks of the path play no
// part. What is left is the window between the fstatat and the unlinkat,
// in which a rename onto the path is not seen; no system call closes it
// (Linux has no unlink-if-inode).
func (f *sockFile) removeAt() error {
	dev, ino, isSocket, err := statAt(f.dir, f.base)
	if err != nil || !isSocket || dev != f.dev || ino != f.ino {
		return nil // gone or replaced: not ours to remove
	}
	return control(f.dir, func(fd int) error { return unix.Unlinkat(fd, f.base, 0) })
}

// control runs fn on the descriptor of an *os.File that the file keeps
// open meanwhile (a concurrent Close waits), so fn never meets a
// descriptor number reused by another file.
func control(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}
