package safeudp_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/safeudp/safeudp"
)

// Rebind closes a conn and binds the same address again: a conn opened on
// port 0 keeps the port it was given. Rebind always returns the conn to use
// from now on, so assigning it back to pc loses nothing: on failure it is
// pc itself when pc is still open (nothing was closed), or nil when pc is
// closed.
func ExampleRebind() {
	pc, err := safeudp.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	before := pc.LocalAddr().String()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pc, err = safeudp.Rebind(ctx, pc)
	if err != nil {
		fmt.Println("rebind:", err)
		if pc == nil {
			return // the old conn is closed and the bind failed: listen again
		}
		// pc is the old conn, still open and in service.
	}
	defer pc.Close()
	fmt.Println("same address:", pc.LocalAddr().String() == before)
	// Output: same address: true
}

// A RebindingConn keeps its readers across a swap of its socket: the read
// below is blocked when Rebind replaces the socket, carries on with the new
// one and returns the datagram sent after the swap, with no error.
func ExampleRebindingConn() {
	c, err := safeudp.ListenRebinding("udp4", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	got := make(chan string)
	go func() {
		buf := make([]byte, 64)
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			got <- err.Error()
			return
		}
		got <- string(buf[:n])
	}()

	for range 3 {
		if err := c.Rebind(context.Background()); err != nil {
			// On Linux the old socket is still in service; elsewhere
			// calls wait for the next Rebind to bind one.
			fmt.Println("rebind:", err)
			return
		}
	}

	snd, err := net.Dial("udp4", c.LocalAddr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer snd.Close()
	if _, err := snd.Write([]byte("hello after 3 rebinds")); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(<-got)
	// Output: hello after 3 rebinds
}

// Close wins over Rebind: once the conn is closed, Rebind never brings it
// back to life.
func ExampleRebindingConn_Rebind_afterClose() {
	c, err := safeudp.ListenRebinding("udp4", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	c.Close()
	err = c.Rebind(context.Background())
	fmt.Println(errors.Is(err, net.ErrClosed))
	// Output: true
}
