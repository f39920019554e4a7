package safeudp

import (
	"net"
	"os"
	"syscall"
	"testing"

	"golang.org/x/sys/windows"
)

// A bind's WSAEADDRINUSE, as net returns it, is "address in use" (built
// and vetted for windows/amd64 and windows/arm64 by CI; not run there).
func TestIsAddrInUseWindows(t *testing.T) {
	err := &net.OpError{Op: "listen", Net: "udp", Err: os.NewSyscallError("bind", windows.WSAEADDRINUSE)}
	if !isAddrInUse(err) {
		t.Fatal("WSAEADDRINUSE not taken for address in use")
	}
	if isAddrInUse(&net.OpError{Op: "listen", Err: os.NewSyscallError("bind", syscall.Errno(10013))}) {
		t.Fatal("WSAEACCES taken for address in use")
	}
}
