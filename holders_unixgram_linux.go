package safeudp

import (
	"fmt"
	"os"
	"syscall"

	"github.com/safeudp/safeudp/internal/procnet"
	"github.com/safeudp/safeudp/internal/sockdiag"
)

// unixgramSockets finds the unix sockets that hold the unixgram address,
// for holders. An abstract name is compared as a string (it has no file).
// A path is compared by file identity: the asked path's device and inode
// against the file each socket is bound to (sock_diag UNIX_DIAG_VFS, one
// dump), so a socket bound as "rel.sock" or "dir//x.sock" is found by any
// spelling of its path, and paths gives the name each socket was bound
// with. When no socket is found, early is the answer: nothing for a path
// that does not exist or is not a socket file, HolderStaleFile only when
// the dump proved that no socket of this network namespace is bound to the
// file, and a HolderUnseen whose Err says why when the dump could not be
// made (the file is then never called stale).
func unixgramSockets(address string) (socks []procnet.UDPEntry, paths map[uint64]string, early []Holder, err error) {
	names := map[uint64]string{}
	entries, perr := procnet.Unix(procRoot)
	for _, e := range entries {
		names[e.Inode] = e.Path
	}
	want := address
	if len(want) > 0 && want[0] == 0 { // Go spells abstract names with a leading NUL too
		want = "@" + want[1:]
	}
	if want == "" {
		return nil, nil, nil, nil
	}
	paths = map[uint64]string{}
	if want[0] == '@' {
		if perr != nil {
			return nil, nil, nil, perr
		}
		for _, e := range entries {
			if e.Path == want {
				socks = append(socks, procnet.UDPEntry{Inode: e.Inode})
				paths[e.Inode] = e.Path
			}
		}
		return socks, paths, nil, nil
	}
	fi, err := os.Lstat(address)
	if err != nil || fi.Mode()&os.ModeSocket == 0 {
		return nil, nil, nil, nil // no file, or not a socket file: no socket can hold it
	}
	st := fi.Sys().(*syscall.Stat_t)
	files, derr := unixBoundFiles()
	if derr != nil {
		h := Holder{Kind: HolderUnseen, FD: -1, Addr: address, asked: address,
			Err: fmt.Errorf("the socket bound to this file cannot be identified (%w): it may be a live server's, so do not remove the file unless you know no program uses it", derr)}
		return nil, nil, []Holder{h}, nil
	}
	for _, f := range files {
		if f.Matches(uint64(st.Dev), st.Ino) {
			socks = append(socks, procnet.UDPEntry{Inode: f.Socket})
			paths[f.Socket] = names[f.Socket]
			if paths[f.Socket] == "" {
				paths[f.Socket] = address
			}
		}
	}
	if len(socks) == 0 {
		return nil, nil, []Holder{{Kind: HolderStaleFile, FD: -1, Addr: address, asked: address}}, nil
	}
	return socks, paths, nil, nil
}

// unixBoundFiles is sockdiag.UnixBoundFiles; tests make it fail.
var unixBoundFiles = sockdiag.UnixBoundFiles
