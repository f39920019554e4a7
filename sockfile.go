package safeudp

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
)

// The unixgram socket file that ListenPacket's bind creates.
//
// net never removes the socket file of a unixgram conn, so ListenPacket
// records it and Close removes it once the socket is released. The rule is
// never to remove a file unless it is provably the file our socket is bound
// to, identified from the socket itself rather than from the path after the
// fact, and to remove the file the socket was bound to whatever the working
// directory or the path's symlinks say now.
//
// At listen, the directory the socket was bound in is opened and held
// (sockFile.dir), so a relative name, a later os.Chdir or a retargeted
// symlinked directory changes nothing: the file is looked at and removed
// with fstatat and unlinkat on that directory. On Linux the socket file
// itself is opened too (O_PATH opens a socket inode) and proved to be the
// one the socket is bound to, by comparing its fstat with the kernel's own
// answer for the socket (sock_diag UNIX_DIAG_VFS; see sockfile_linux.go).
// What each system guarantees is in the UnixConn doc.

// sockFile is the socket file that a conn's bind created, as recorded at
// listen. It is written before the conn is returned and read by the
// release (under core.releaseTurn) and by Rebind; its descriptors are
// closed by the release in every outcome, or by their finalizers if the
// conn is dropped.
type sockFile struct {
	name    string      // the path as bound, LocalAddr's Name
	abs     string      // name made absolute at listen, for Rebind; "" if that failed
	base    string      // the last element of name
	dir     *os.File    // the directory it was bound in, opened at listen; nil where it cannot be (then name is used)
	dirInfo os.FileInfo // dir's stat at listen, to recognize it by path again (Rebind)

	// With dir: the socket file's identity, and on Linux an O_PATH
	// descriptor of the file itself, which pins its inode (its number
	// cannot be handed to another file while it is open).
	file *os.File
	//lint:ignore U1000 used on unix systems only
	dev, ino uint64

	fi os.FileInfo // without dir: the file's Lstat at listen
}

// recordSocketFile remembers the unixgram socket file that ListenPacket's
// bind just created, so that release removes that file and no other. It
// records nothing if the file cannot be proved to be our socket's (see
// pinSocketFile): Close then leaves it, and Rebind refuses the conn.
func (c *core) recordSocketFile() {
	ua, ok := c.laddr.(*net.UnixAddr)
	if !ok || ua.Name == "" || ua.Name[0] == '@' { // unnamed or abstract: no file
		return
	}
	f := &sockFile{name: ua.Name, base: filepath.Base(ua.Name)}
	if abs, err := filepath.Abs(ua.Name); err == nil {
		f.abs = abs
	}
	if dir, err := openSocketDir(filepath.Dir(ua.Name)); err == nil {
		if fi, err := dir.Stat(); err == nil {
			f.dir, f.dirInfo = dir, fi
		} else {
			_ = dir.Close()
		}
	}
	if !pinSocketFile(f, c.pc) {
		f.close()
		return
	}
	c.sockFile = f
}

// removeSocketFile removes the socket file recorded at listen, if the path
// still names it in the directory it was bound in, and closes the
// descriptors that recorded it. A file that someone else put there is never
// touched. It runs once, after the socket is released.
func (c *core) removeSocketFile() error {
	f := c.sockFile
	if f == nil {
		return nil
	}
	defer f.close()
	if err := f.remove(); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("safeudp: remove socket file %s: %w", f.name, err)
	}
	return nil
}

// close closes the descriptors that recorded the file, leaving the file
// itself. It is safe on a nil sockFile and more than once.
func (f *sockFile) close() {
	if f == nil {
		return
	}
	if f.file != nil {
		_ = f.file.Close()
	}
	if f.dir != nil {
		_ = f.dir.Close()
	}
}

// remove removes the file if the path still names it. With dir: fstatat
// and unlinkat on dir (see removeAt); without: Lstat and Remove by name,
// which a swap of the file between the two can fool.
func (f *sockFile) remove() error {
	if f.dir != nil {
		return f.removeAt()
	}
	fi, err := os.Lstat(f.name)
	if err != nil || !os.SameFile(fi, f.fi) {
		return nil // gone or replaced: not ours to remove
	}
	return os.Remove(f.name)
}

// rebindName returns a name that binds the socket file again in the
// directory the socket was bound in: its own name if that still leads to
// the directory, else the name made absolute at listen, else (on Linux)
// the directory's current path. A name that is checked here can still be
// redirected before the bind (a rename or a symlink retargeted meanwhile);
// the new conn then records the file it actually bound.
func (f *sockFile) rebindName() (string, error) {
	if f.dir == nil {
		return f.name, nil
	}
	candidates := []string{f.name, f.abs}
	if p := dirPath(f.dir); p != "" {
		candidates = append(candidates, filepath.Join(p, f.base))
	}
	for _, name := range candidates {
		if name == "" {
			continue
		}
		if fi, err := os.Stat(filepath.Dir(name)); err == nil && os.SameFile(fi, f.dirInfo) {
			return name, nil
		}
	}
	return "", fmt.Errorf("safeudp: rebind: the directory of the socket file %s has moved (or the working directory changed) and no path to it is known: close the conn and listen again on the path you mean", f.name)
}

// notSocketError is the Err of a listen's *net.OpError when the unixgram
// path exists and is not a socket file: no holder will ever let it go.
type notSocketError struct {
	err  error // the bind's error, wrapping EADDRINUSE
	path string
	mode os.FileMode
}

func (e *notSocketError) Error() string {
	return fmt.Sprintf("%v (%s exists and is not a socket but a %s: remove it or choose another path)", e.err, e.path, fileKind(e.mode))
}

func (e *notSocketError) Unwrap() error { return e.err }

// fileKind names the type of a file in words.
func fileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&os.ModeSymlink != 0:
		return "symbolic link"
	case m&os.ModeNamedPipe != 0:
		return "named pipe"
	case m&os.ModeDevice != 0:
		return "device"
	case m.IsRegular():
		return "regular file"
	}
	return "file of mode " + m.String()
}

// notSocket returns oe, a unixgram listen's EADDRINUSE, with its Err
// replaced by a *notSocketError if path exists and is not a socket; nil
// otherwise.
func notSocket(network, path string, oe *net.OpError) error {
	if network != "unixgram" || path == "" || path[0] == '@' {
		return nil
	}
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&os.ModeSocket != 0 {
		return nil
	}
	e := *oe
	e.Err = &notSocketError{err: oe.Err, path: path, mode: fi.Mode()}
	return &e
}
