package safeudp

// sockID identifies a conn's socket in the kernel, recorded when the conn
// is opened. It is filled in on Linux only (see identify); elsewhere every
// field stays zero and nothing is verified against the kernel.
type sockID struct {
	fd   int     // descriptor number at open, for logs; 0 if unknown
	ino  uint64  // socket inode (fstat); 0 if unknown
	diag diagKey // what a sock_diag exact lookup needs; platform-specific
}

// identified reports whether identify recorded anything.
func (s *sockID) identified() bool { return s.ino != 0 || s.diag != (diagKey{}) }
