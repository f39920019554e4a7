//go:build !windows

package safeudp_test

import (
	"errors"
	"fmt"

	"github.com/safeudp/safeudp"
)

// A program that hands its socket to another process on purpose (a
// graceful restart) tells that case apart from a leak with
// ErrHeldElsewhere: Close reports the copy at once instead of waiting.
func ExampleErrHeldElsewhere() {
	pc, err := safeudp.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	f, err := pc.(*safeudp.UDPConn).File() // say, passed on in exec.Cmd.ExtraFiles
	if err != nil {
		panic(err)
	}
	defer f.Close()

	err = pc.Close()
	switch {
	case errors.Is(err, safeudp.ErrHeldElsewhere):
		fmt.Println("closed here; the socket lives on in its copy")
	case err != nil:
		fmt.Println("close:", err)
	default:
		fmt.Println("released")
	}
	// Output: closed here; the socket lives on in its copy
}
