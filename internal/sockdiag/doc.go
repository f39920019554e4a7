// Package sockdiag asks the Linux kernel about sockets through the
// NETLINK_SOCK_DIAG interface (what ss uses): does the socket a Key names
// still exist? It reads a socket's Key from its descriptor, makes exact
// lookups, and probes once whether the kernel answers for a family. For
// unix sockets it also tells which file a socket is bound to (BoundFileOf,
// UnixBoundFiles), from the kernel's UNIX_DIAG_VFS, and it lists the UDP
// sockets bound to a port (UDPOnPort, a dump).
//
// It knows nothing of safeudp's conns: it takes descriptors, keys and
// inodes, and returns plain values. Elsewhere than on Linux the package is
// empty.
package sockdiag
