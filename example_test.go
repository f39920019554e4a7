package safeudp_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/safeudp/safeudp"
)

// Replace net.ListenPacket with safeudp.ListenPacket: Close now returns
// only once the reader goroutine's ReadFrom has returned and the socket is
// released, so the same address can be bound again at once.
func Example() {
	pc, err := safeudp.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	addr := pc.LocalAddr().String()

	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				fmt.Println("reader stopped, closed:", errors.Is(err, net.ErrClosed))
				return
			}
		}
	}()

	if err := pc.Close(); err != nil { // waits for the reader's ReadFrom
		fmt.Println(err)
	}
	<-done

	again, err := safeudp.ListenPacket("udp4", addr)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer again.Close()
	fmt.Println("bound the same address again")
	// Output:
	// reader stopped, closed: true
	// bound the same address again
}

// Wrap takes over a conn that was opened elsewhere. A *net.UDPConn comes
// back as a *safeudp.UDPConn with the same methods.
func ExampleWrap() {
	uc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		fmt.Println(err)
		return
	}
	pc := safeudp.Wrap(uc)
	c := pc.(*safeudp.UDPConn)
	fmt.Println("in flight:", c.InFlight())

	if err := c.Close(); err != nil {
		fmt.Println(err)
	}
	// Every call after Close fails with net.ErrClosed, as with net.
	_, err = c.WriteToUDP([]byte("late"), uc.LocalAddr().(*net.UDPAddr))
	fmt.Println(errors.Is(err, net.ErrClosed))
	// Output:
	// in flight: 0
	// true
}

// Shutdown always shuts the conn down, as Close does; its ctx bounds only
// the wait, for servers that must stop in time.
func ExampleUDPConn_Shutdown() {
	pc, err := safeudp.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	go func() { _, _, _ = pc.ReadFrom(make([]byte, 1500)) }()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := pc.(*safeudp.UDPConn).Shutdown(ctx); err != nil {
		fmt.Println("shutdown:", err) // wraps ctx.Err() and says what is pending; a later Close finishes
		return
	}
	fmt.Println("released")
	// Output:
	// released
}

// A Logger on the ListenConfig traces each socket's lifecycle.
func ExampleListenConfig_ListenPacket() {
	onlyMessages := func(groups []string, a slog.Attr) slog.Attr {
		if a.Key == slog.MessageKey || a.Key == slog.LevelKey {
			return a
		}
		return slog.Attr{}
	}
	lc := safeudp.ListenConfig{
		Logger: slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: onlyMessages})),
	}
	pc, err := lc.ListenPacket(context.Background(), "udp4", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = pc.Close()
	// Output:
	// level=INFO msg="safeudp: listen"
	// level=INFO msg="safeudp: close begun"
	// level=INFO msg="safeudp: drained"
	// level=INFO msg="safeudp: released"
}
