// Package procfd reads what Linux's /proc shows about processes and their
// descriptors: which descriptors refer to a socket, a process's command
// name and parent, and whether a descriptor is close-on-exec. It reads
// links and small text files only, and takes the procfs root ("/proc",
// or a directory of fixtures in tests).
package procfd

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// Ref is a descriptor of a process that refers to a socket.
type Ref struct {
	PID, FD int
}

// Scan is what a walk of root/<pid>/fd found.
type Scan struct {
	Refs       map[uint64][]Ref // socket inode -> descriptors referring to it
	Unreadable []int            // pids whose descriptors could not be read
	FirstErr   error            // why, for the first of them
}

// Sockets walks root/<pid>/fd of every process and records the
// descriptors that refer to one of the sockets in inodes. It reads only
// the links (socket:[inode]); a process that exits meanwhile is skipped,
// one whose descriptors cannot be read is listed in Unreadable.
func Sockets(root string, inodes map[uint64]bool) Scan {
	s := Scan{Refs: make(map[uint64][]Ref)}
	procs, err := os.ReadDir(root)
	if err != nil {
		s.FirstErr = err
		return s
	}
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid <= 0 {
			continue
		}
		dir := root + "/" + p.Name() + "/fd/"
		fds, err := os.ReadDir(dir)
		if err != nil {
			// A kernel thread has no descriptors, but its fd directory
			// is unreadable for anyone but root: not worth reporting.
			if !errors.Is(err, fs.ErrNotExist) && !KernelThread(root, pid) {
				s.Unreadable = append(s.Unreadable, pid)
				if s.FirstErr == nil {
					s.FirstErr = err
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
			s.Refs[ino] = append(s.Refs[ino], Ref{PID: pid, FD: fd})
		}
	}
	return s
}

// Comm returns the command name of pid, or "".
func Comm(root string, pid int) string {
	b, err := os.ReadFile(root + "/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return ""
	}
	return string(bytes.TrimRight(b, "\n"))
}

// stat returns the fields of root/<pid>/stat after the command name
// (state, ppid, pgrp, session, tty_nr, tpgid, flags, ...), or nil. The
// comm is in parentheses and may contain anything, so the fields are read
// after the last ')'.
func stat(root string, pid int) [][]byte {
	b, err := os.ReadFile(root + "/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return bytes.Fields(b[i+1:])
}

// Parent returns the parent pid of pid, or 0.
func Parent(root string, pid int) int {
	f := stat(root, pid)
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(string(f[1]))
	return ppid
}

// pfKthread is the PF_KTHREAD bit of the flags in /proc/<pid>/stat.
const pfKthread = 0x00200000

// KernelThread reports whether pid is a kernel thread.
func KernelThread(root string, pid int) bool {
	f := stat(root, pid)
	if len(f) < 7 {
		return false
	}
	flags, err := strconv.ParseUint(string(f[6]), 10, 64)
	return err == nil && flags&pfKthread != 0
}

// CloseOnExec reports whether descriptor fd of pid is close-on-exec,
// from the flags line of root/<pid>/fdinfo/<fd> (octal, O_CLOEXEC is
// 02000000).
//
// safeudp calls it only for its own children, never for another process:
// it is the one way to tell a child between
// fork and exec, which drops the socket at exec (close-on-exec), from one
// that keeps it across exec (ExtraFiles). The simpler rule, "a child still
// running our executable is between fork and exec", is wrong for a program
// that re-executes itself to hand its socket over (a graceful restart),
// which would then be waited for as transient instead of reported at once.
func CloseOnExec(root string, pid, fd int) bool {
	b, err := os.ReadFile(root + "/" + strconv.Itoa(pid) + "/fdinfo/" + strconv.Itoa(fd))
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

// Holds reports whether descriptor fd of pid still refers to socket ino,
// as root/<pid>/fd/<fd> shows it. A process that has exited, or closed
// or replaced the descriptor (a child that exec'd: close-on-exec), no
// longer holds it.
func Holds(root string, pid, fd int, ino uint64) bool {
	link, err := os.Readlink(root + "/" + strconv.Itoa(pid) + "/fd/" + strconv.Itoa(fd))
	return err == nil && link == "socket:["+strconv.FormatUint(ino, 10)+"]"
}

// Links returns what each open descriptor of pid ("self" for this
// process) refers to, as root/<pid>/fd shows it: "socket:[1234]", a path,
// "pipe:[5678]". A descriptor closed while the directory is read is left
// out.
func Links(root, pid string) (map[int]string, error) {
	dir := root + "/" + pid + "/fd/"
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := make(map[int]string, len(entries))
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		what, err := os.Readlink(dir + e.Name())
		if err != nil {
			continue // closed since the listing, like the listing's own descriptor
		}
		out[fd] = what
	}
	return out, nil
}
