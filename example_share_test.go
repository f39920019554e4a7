package safeudp_test

import (
	"context"
	"fmt"

	"github.com/safeudp/safeudp"
)

// A reload in one process: the new generation opens the address again
// with Shared and gets a second handle on the same socket; the old one
// closes its handle, which drains only its own calls.
func ExampleListenConfig_shared() {
	lc := safeudp.ListenConfig{Shared: true}
	old, err := lc.ListenPacket(context.Background(), "udp4", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	next, err := lc.ListenPacket(context.Background(), "udp4", old.LocalAddr().String())
	if err != nil {
		panic(err)
	}
	fmt.Println("same address:", next.LocalAddr().String() == old.LocalAddr().String())
	fmt.Println("old closed:", old.Close())
	fmt.Println("last closed, released:", next.Close())
	// Output:
	// same address: true
	// old closed: <nil>
	// last closed, released: <nil>
}
