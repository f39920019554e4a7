//go:build !unix

package udptest

import "net"

// probeBind binds addr with plain net and closes it. There is no fork
// window to guard against here: Windows creates sockets non-inheritable,
// and the other systems cannot start a process.
func probeBind(network string, addr *net.UDPAddr) error {
	pc, err := net.ListenUDP(network, addr)
	if err != nil {
		return err
	}
	return pc.Close()
}

// plainBind has nothing to add to probeBind, which is net's own bind here.
func plainBind(network string, addr *net.UDPAddr) error { return nil }
