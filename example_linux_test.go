package safeudp_test

import (
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/safeudp/safeudp"
)

// Holders says who holds a port: here a plain net socket of this process.
// (Linux; elsewhere Holders returns an error saying it is not supported.)
func ExampleHolders() {
	held, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer held.Close()
	hs, err := safeudp.Holders("udp4", held.LocalAddr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, h := range hs {
		fmt.Println(h.Kind, "this process:", h.PID == syscall.Getpid(), "transient:", h.Transient())
	}
	// Output: Process this process: true transient: false
}

// A bind whose address is in use fails with net's *net.OpError, still
// EADDRINUSE inside, whose Err is an *AddrInUseError that names the
// holders (Linux).
func ExampleAddrInUseError() {
	held, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer held.Close()
	_, err = safeudp.ListenUDP("udp4", held.LocalAddr().(*net.UDPAddr))
	var inUse *safeudp.AddrInUseError
	if errors.As(err, &inUse) {
		fmt.Println("in use:", errors.Is(err, syscall.EADDRINUSE), "holders:", len(inUse.Holders))
		fmt.Println("held by this process:", inUse.Holders[0].PID == syscall.Getpid())
	}
	// Output:
	// in use: true holders: 1
	// held by this process: true
}

// Close returns a *ReleaseError when the socket outlives the conn: here a
// File() copy keeps it. The error names the copy and where it was made.
func ExampleReleaseError() {
	c, err := safeudp.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		fmt.Println(err)
		return
	}
	f, err := c.File()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()

	err = c.Close()
	var re *safeudp.ReleaseError
	if errors.As(err, &re) {
		fmt.Println("held elsewhere:", errors.Is(err, safeudp.ErrHeldElsewhere))
		fmt.Println(re.Holders[0].Kind, "made at", re.Holders[0].CopiedAt != "")
	}
	// A later Close says the conn is closed, and still what held it.
	err = c.Close()
	fmt.Println(errors.Is(err, net.ErrClosed), errors.Is(err, safeudp.ErrHeldElsewhere))
	// Output:
	// held elsewhere: true
	// FileCopy made at true
	// true true
}
