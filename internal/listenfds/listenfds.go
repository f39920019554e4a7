// Package listenfds reads and writes the descriptors a process inherits
// under systemd's socket-activation convention (sd_listen_fds(3)):
// LISTEN_FDS descriptors starting at 3, for the process LISTEN_PID, named
// by LISTEN_FDNAMES. It also reads safeudp's two additions for an upgrade
// started by a Go parent, which cannot know its child's pid before exec:
// SAFEUDP_LISTEN_PARENT (the parent's pid, accepted in place of
// LISTEN_PID when that is unset) and SAFEUDP_READY_FD (the write end of
// the pipe on which the child says it is ready).
//
// Parse and Env work on plain values; Take touches one descriptor.
package listenfds

import (
	"fmt"
	"strconv"
	"strings"
)

// The environment variables of the convention, and safeudp's additions.
const (
	VarPID    = "LISTEN_PID"
	VarFDs    = "LISTEN_FDS"
	VarNames  = "LISTEN_FDNAMES"
	VarParent = "SAFEUDP_LISTEN_PARENT"
	VarReady  = "SAFEUDP_READY_FD"
)

// Vars lists every variable Parse reads, for a caller that unsets them.
var Vars = []string{VarPID, VarFDs, VarNames, VarParent, VarReady}

// First is the first inherited descriptor (SD_LISTEN_FDS_START).
const First = 3

// unknownName is the name systemd gives a descriptor when LISTEN_FDNAMES
// is not set.
const unknownName = "unknown"

// FD is one inherited descriptor.
type FD struct {
	Num  int    // the descriptor number, from First
	Name string // its name in LISTEN_FDNAMES, or "unknown"
}

// Set is what a process was handed.
type Set struct {
	FDs   []FD
	Ready int // the descriptor to write "ready" to and close, or -1
}

// Parse reads the convention through getenv for the process pid, whose
// parent is ppid. The descriptors are for this process if LISTEN_PID is
// pid, or if LISTEN_PID is unset and SAFEUDP_LISTEN_PARENT is ppid. A
// process the variables are not for (a grandchild that inherited the
// environment, say) gets an empty Set and no error, as from
// sd_listen_fds. Malformed values, or a LISTEN_FDNAMES whose count is not
// LISTEN_FDS, give an error that names the variable.
func Parse(getenv func(string) string, pid, ppid int) (Set, error) {
	none := Set{Ready: -1}
	fds := getenv(VarFDs)
	if fds == "" {
		return none, nil
	}
	if p := getenv(VarPID); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 {
			return none, fmt.Errorf("listenfds: %s=%q is not a pid", VarPID, p)
		}
		if n != pid {
			return none, nil
		}
	} else {
		p := getenv(VarParent)
		n, err := strconv.Atoi(p)
		if p == "" || err != nil || n != ppid || n <= 1 {
			return none, nil // not handed to us (or by init, which is no parent of ours)
		}
	}
	n, err := strconv.Atoi(fds)
	if err != nil || n < 0 || n > 1<<16 {
		return none, fmt.Errorf("listenfds: %s=%q is not a count of descriptors", VarFDs, fds)
	}
	names := make([]string, n)
	for i := range names {
		names[i] = unknownName
	}
	if v := getenv(VarNames); v != "" {
		parts := strings.Split(v, ":")
		if len(parts) != n {
			return none, fmt.Errorf("listenfds: %s names %d descriptors, %s=%d", VarNames, len(parts), VarFDs, n)
		}
		copy(names, parts)
	}
	s := Set{Ready: -1}
	for i, name := range names {
		s.FDs = append(s.FDs, FD{Num: First + i, Name: name})
	}
	if v := getenv(VarReady); v != "" {
		r, err := strconv.Atoi(v)
		if err != nil || r < First+n {
			return none, fmt.Errorf("listenfds: %s=%q is not a descriptor after the %d sockets", VarReady, v, n)
		}
		s.Ready = r
	}
	return s, nil
}

// Env returns the variables that hand len(names) descriptors, numbered
// from First, to a child of the process parent, and the ready pipe's
// write end at descriptor ready (-1: none). A name may not contain ':'.
func Env(parent int, names []string, ready int) ([]string, error) {
	for _, n := range names {
		if n == "" || strings.ContainsRune(n, ':') {
			return nil, fmt.Errorf("listenfds: descriptor name %q is empty or has a ':'", n)
		}
	}
	env := []string{
		VarFDs + "=" + strconv.Itoa(len(names)),
		VarNames + "=" + strings.Join(names, ":"),
		VarParent + "=" + strconv.Itoa(parent),
	}
	if ready >= 0 {
		env = append(env, VarReady+"="+strconv.Itoa(ready))
	}
	return env, nil
}

// Without returns env without the convention's variables (and LISTEN_PID,
// which a parent handed its own sockets may have), for a child's
// environment.
func Without(env []string) []string {
	out := make([]string, 0, len(env))
outer:
	for _, kv := range env {
		for _, v := range Vars {
			if strings.HasPrefix(kv, v+"=") {
				continue outer
			}
		}
		out = append(out, kv)
	}
	return out
}
