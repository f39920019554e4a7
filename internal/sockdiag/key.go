package sockdiag

// Key is what an exact lookup of a socket needs. Its Family is 0 when
// sock_diag cannot look the socket up (no cookie, a kernel without the
// diag module for the family): ask /proc/net then.
type Key struct {
	Family uint8  // AF_INET, AF_INET6 or AF_UNIX; 0 when sock_diag is not used
	Cookie uint64 // SO_COOKIE: unique to this socket for the life of the system

	// For UDP: the bound and the connected addresses, in network byte
	// order (4 bytes used for AF_INET), and their ports.
	Local, Remote         [16]byte
	LocalPort, RemotePort uint16
	// Ifindex is the interface the socket is bound to (SO_BINDTODEVICE,
	// or the scope of an IPv6 link-local bind), 0 if none: the kernel's
	// UDP lookup skips a socket bound to a device unless asked for that
	// device, so without it a bound socket would look gone.
	Ifindex uint32
}

// Socket is what Identify reads of a socket: enough to find it again in
// the kernel's tables.
type Socket struct {
	FD     int    // descriptor number it was read from, for logs
	Inode  uint64 // socket inode (fstat); 0 if fd is not a socket Identify knows
	Family uint8  // AF_INET, AF_INET6 or AF_UNIX: which /proc/net table lists it
	Key    Key    // the exact-lookup key; Key.Family is 0 when sock_diag cannot answer for it
}
