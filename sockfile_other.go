//go:build !unix

package safeudp

import (
	"errors"
	"net"
	"os"
)

// openSocketDir is not supported here: the file is handled by its path.
func openSocketDir(string) (*os.File, error) {
	return nil, errors.ErrUnsupported
}

// pinSocketFile records the file's Lstat, taken from the path right after
// the bind.
func pinSocketFile(f *sockFile, _ net.PacketConn) bool {
	fi, err := os.Lstat(f.name)
	if err != nil || fi.Mode()&os.ModeSocket == 0 {
		return false
	}
	f.fi = fi
	return true
}

// removeAt is never called here: there is no directory descriptor.
func (f *sockFile) removeAt() error { return nil }

// dirPath is not known here.
func dirPath(*os.File) string { return "" }
