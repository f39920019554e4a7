//go:build linux || darwin || freebsd

package safeudp

// tableID names a socket in the socket tables of macOS and FreeBSD (see
// release_table.go): the kernel's handle of the socket and its generation
// count, which together never name a later socket at the same address.
// The zero value is a socket not identified; why then says why, for the
// one log line of the fallback.
type tableID struct {
	so, gen uint64
	ok      bool
	why     error
}
