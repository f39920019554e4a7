package safeudp

import (
	"errors"
	"syscall"

	"golang.org/x/sys/windows"
)

// Windows.
//
// A bind there fails with WSAEADDRINUSE (10048), which is not
// syscall.EADDRINUSE (an errno Go invents on Windows): both are taken for
// "address in use" here, and the error is returned as the system gave it.
//
// An immediate bind of the same UDP port after a close can fail there for
// a moment (NordSecurity/libtelio#361; libtorrent waits 100 ms), and no
// table names a holder, so ListenPacket retries such a bind blindly for
// up to bindRetryTimeout; Rebind retries until its ctx ends, as everywhere.
//
// Windows has no fork window: Go creates every socket with
// WSA_FLAG_NO_HANDLE_INHERIT, and syscall.StartProcess hands a child only
// the handles it names, through PROC_THREAD_ATTRIBUTE_HANDLE_LIST, so no
// child inherits a socket behind the program's back.

// isAddrInUse reports whether err is a bind's "address in use".
func isAddrInUse(err error) bool {
	return errors.Is(err, windows.WSAEADDRINUSE) || errors.Is(err, syscall.EADDRINUSE)
}

// retryWithoutHolders: a bind that finds its address in use is retried
// briefly although no holder can be looked up.
const retryWithoutHolders = true
