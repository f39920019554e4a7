package safeudp

// sockID identifies a conn's socket in the kernel, recorded once when the
// conn is opened and never written again (Close and Holders read it
// without locks). It is filled in on Linux only (see identify); elsewhere
// every field stays zero and nothing is verified against the kernel.
type sockID struct {
	fd     int     // descriptor number at open, for logs; 0 if unknown
	ino    uint64  // socket inode (fstat); 0 if the socket is not identified
	family uint8   // AF_INET, AF_INET6 or AF_UNIX: which /proc/net table lists it
	diag   diagKey // what a sock_diag exact lookup needs; platform-specific
}

// identified reports whether identify recorded the socket: a UDP or unix
// datagram socket, with its inode. Only such sockets are verified.
func (s *sockID) identified() bool { return s.ino != 0 }
