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
// port 0 keeps the port it was given.
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
		fmt.Println("rebind:", err) // the old conn is closed: listen again
		return
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
			fmt.Println("rebind:", err) // the old socket is still in service
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
