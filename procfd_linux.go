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
			// A kernel thread has no descriptors, but its fd directory
			// is unreadable for anyone but root: not worth reporting.
			if !errors.Is(err, fs.ErrNotExist) && !procKernelThread(pid) {
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

// procStat returns the fields of /proc/<pid>/stat after the command name
// (state, ppid, pgrp, session, tty_nr, tpgid, flags, ...), or nil. The
// comm is in parentheses and may contain anything, so the fields are read
// after the last ')'.
func procStat(pid int) [][]byte {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return bytes.Fields(b[i+1:])
}

// procParent returns the parent pid of pid, or 0.
func procParent(pid int) int {
	f := procStat(pid)
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(string(f[1]))
	return ppid
}

// pfKthread is the PF_KTHREAD bit of the flags in /proc/<pid>/stat.
const pfKthread = 0x00200000

// procKernelThread reports whether pid is a kernel thread.
func procKernelThread(pid int) bool {
	f := procStat(pid)
	if len(f) < 7 {
		return false
	}
	flags, err := strconv.ParseUint(string(f[6]), 10, 64)
	return err == nil && flags&pfKthread != 0
}

// fdCloseOnExec reports whether descriptor fd of pid is close-on-exec,
// from the flags line of /proc/<pid>/fdinfo/<fd> (octal, O_CLOEXEC is
// 02000000).
//
// It is called only for this process's own children (see holdersOf),
// never for another process: it is the one way to tell a child between
// fork and exec, which drops the socket at exec (close-on-exec), from one
// that keeps it across exec (ExtraFiles). The simpler rule, "a child still
// running our executable is between fork and exec", is wrong for a program
// that re-executes itself to hand its socket over (a graceful restart),
// which would then be waited for as transient instead of reported at once.
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
