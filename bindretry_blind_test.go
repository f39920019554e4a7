package safeudp

import (
	"context"
	"net"
	"testing"
	"time"
)

// The blind retry that ListenPacket makes on Windows, where no holder can
// be looked up: a port that a moment later is free is bound.
func TestRetryBlindBindsOnceFree(t *testing.T) {
	holder, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := holder.LocalAddr().String()
	first, err := net.ListenPacket("udp4", addr)
	if err == nil {
		first.Close()
		t.Fatal("the port was not in use")
	}
	tries := 0
	bind := func() (net.PacketConn, error) {
		tries++
		if tries == 2 {
			holder.Close() // the holder lets go between two retries
		}
		return net.ListenPacket("udp4", addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pc, err := retryBlind(ctx, bind, err)
	if err != nil {
		holder.Close()
		t.Fatalf("retryBlind: %v after %d tries", err, tries)
	}
	pc.Close()
}

// It gives up when its ctx ends, with the bind's own error.
func TestRetryBlindBounded(t *testing.T) {
	holder, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	addr := holder.LocalAddr().String()
	bind := func() (net.PacketConn, error) { return net.ListenPacket("udp4", addr) }
	_, first := bind()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := retryBlind(ctx, bind, first); !isAddrInUse(err) {
		t.Fatalf("err %v, want address in use", err)
	}
}
