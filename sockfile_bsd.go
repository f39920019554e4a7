//go:build unix && !linux

package safeudp

import (
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// Without O_PATH the directory is opened for reading; a directory that
// cannot be read falls back to the path (see pinSocketFile).
const dirOpenFlags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC

// pinSocketFile records the identity (device and inode) of the socket file
// base in f.dir, or of the path when the directory could not be opened.
// These systems can neither open a socket file nor ask the kernel which
// file a socket is bound to, so the file is taken from the path right after
// the bind: a file swapped in between the two is taken for ours, and the
// inode is not pinned, so a file that reuses the number after ours is
// gone can be taken for ours at removal.
func pinSocketFile(f *sockFile, _ net.PacketConn) bool {
	if f.dir == nil {
		fi, err := os.Lstat(f.name)
		if err != nil || fi.Mode()&os.ModeSocket == 0 {
			return false
		}
		f.fi = fi
		return true
	}
	dev, ino, isSocket, err := statAt(f.dir, f.base)
	if err != nil || !isSocket {
		return false
	}
	f.dev, f.ino = dev, ino
	return true
}

// dirPath is not known on these systems.
func dirPath(*os.File) string { return "" }
