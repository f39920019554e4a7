package safeudp

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// fdRef is a descriptor of a process that refers to a socket.
type fdRef struct {
	pid, fd int
}

// procScan is what a walk of /proc/<pid>/fd found.
type procScan struct {
	refs       map[uint64][]fdRef // socket inode -> descriptors referring to it
	unreadable []int              // pids whose descriptors could not be read
	firstErr   error              // why, for the first of them
}

// scanFDs walks /proc/<pid>/fd of every process and records the
// descriptors that refer to one of the sockets in inodes. It reads only
// the links (socket:[inode]); a process that exits meanwhile is skipped,
// one whose descriptors cannot be read is listed in unreadable.
func scanFDs(inodes map[uint64]bool) procScan {
	s := procScan{refs: make(map[uint64][]fdRef)}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		s.firstErr = err
		return s
	}
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid <= 0 {
			continue
		}
		dir := "/proc/" + p.Name() + "/fd/"
		fds, err := os.ReadDir(dir)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				s.unreadable = append(s.unreadable, pid)
				if s.firstErr == nil {
					s.firstErr = err
				}
			}
			continue
		}
		for _, e := range fds {
			link, err := os.Readlink(dir + e.Name())
			if err != nil || !strings.HasPrefix(link, "socket:[") || !strings.HasSuffix(link, "]") {
				continue
			}
			ino, err := strconv.ParseUint(link[len("socket:["):len(link)-1], 10, 64)
			if err != nil || !inodes[ino] {
				continue
			}
			fd, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			s.refs[ino] = append(s.refs[ino], fdRef{pid: pid, fd: fd})
		}
	}
	return s
}

// procComm returns the command name of pid, or "".
func procComm(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return ""
	}
	return string(bytes.TrimRight(b, "\n"))
}

// procParent returns the parent pid of pid, or 0. The comm in
// /proc/<pid>/stat is in parentheses and may contain anything, so the
// fields are read after the last ')'.
func procParent(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := bytes.Fields(b[i+1:]) // state, ppid, ...
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(string(f[1]))
	return ppid
}

// fdCloseOnExec reports whether descriptor fd of pid is close-on-exec,
// from the flags line of /proc/<pid>/fdinfo/<fd> (octal, O_CLOEXEC is
// 02000000).
func fdCloseOnExec(pid, fd int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/fdinfo/" + strconv.Itoa(fd))
	if err != nil {
		return false
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("flags:")); ok {
			flags, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 8, 64)
			return err == nil && flags&0o2000000 != 0
		}
	}
	return false
}
