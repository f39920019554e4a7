package main

// -mode exec: each generation is a process. A supervisor (the process
// that was run) sends the traffic and tells the current generation, over
// a TCP control connection, when to upgrade; the generation starts the
// next one with safeudp.Upgrade, closes its conn once that one is ready,
// reports its count and exits.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/safeudp/safeudp"
)

// event is a line a generation sent on its control connection.
type event struct {
	from net.Conn
	verb string // "hello" (pid addr), "count" (n), "bindfail", "upgradefail" or "closefail" (error)
	arg  string
}

func runExec(rate, upgrades int, every time.Duration, size int) (result, error) {
	var r result
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return r, err
	}
	defer ln.Close()
	events := make(chan event, 16)
	go acceptControl(ln, events)

	first := exec.Command(os.Args[0], "-role", "server", "-control", ln.Addr().String())
	first.Stdout, first.Stderr = os.Stderr, os.Stderr
	if err := first.Start(); err != nil {
		return r, err
	}
	go func() { _ = first.Wait() }()
	ev, err := await(events, "hello")
	if err != nil {
		return r, err
	}
	cur := ev.from
	_, addrStr, _ := strings.Cut(ev.arg, " ")
	addr, err := net.ResolveUDPAddr("udp4", addrStr)
	if err != nil {
		return r, err
	}
	stopSending, err := sender(addr, rate, size)
	if err != nil {
		return r, err
	}
	start := time.Now()
	for range upgrades {
		time.Sleep(every)
		begun := time.Now()
		fmt.Fprintln(cur, "upgrade")
		// The new generation says hello; the old one then reports its
		// count, or why the upgrade failed.
		// Both come, in either order (two connections); or the old
		// generation says the upgrade failed, and keeps serving.
		var next net.Conn
		failed := false
		for counted := false; !failed && (!counted || next == nil); {
			ev, err := await(events, "")
			if err != nil {
				return r, err
			}
			switch ev.verb {
			case "hello":
				next = ev.from
			case "count":
				n, _ := strconv.ParseInt(ev.arg, 10, 64)
				r.received += n
				r.upgrades++
				counted = true
			case "bindfail", "closefail": // a new generation that could not listen exits; a Close that did not release
				fmt.Fprintln(os.Stderr, "upgrade:", ev.verb, ev.arg)
				r.bindFailures++
			case "upgradefail": // the old generation keeps serving
				fmt.Fprintln(os.Stderr, "upgrade:", ev.verb, ev.arg)
				r.bindFailures++
				failed = ev.from == cur
			}
		}
		if !failed {
			cur.Close()
			cur = next
		}
		r.took = append(r.took, time.Since(begun))
	}
	time.Sleep(every)
	sent, serr := stopSending()
	r.elapsed = time.Since(start)
	r.sent = sent
	fmt.Fprintln(cur, "stop")
	ev, err = await(events, "count")
	if err != nil {
		return r, err
	}
	n, _ := strconv.ParseInt(ev.arg, 10, 64)
	r.received += n
	cur.Close()
	return r, serr
}

// acceptControl turns every line of every control connection into an
// event.
func acceptControl(ln net.Listener, events chan<- event) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			sc := bufio.NewScanner(c)
			for sc.Scan() {
				verb, arg, _ := strings.Cut(sc.Text(), " ")
				events <- event{from: c, verb: verb, arg: arg}
			}
		}()
	}
}

// await returns the next event (of the verb, if not ""), bounded.
func await(events <-chan event, verb string) (event, error) {
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev := <-events:
			if verb == "" || ev.verb == verb {
				return ev, nil
			}
			if ev.verb == "bindfail" || ev.verb == "upgradefail" {
				return ev, fmt.Errorf("%s: %s", ev.verb, ev.arg)
			}
		case <-timeout:
			return event{}, fmt.Errorf("no %q from a server generation in 30s", verb)
		}
	}
}

// serve is one generation of -mode exec. It takes the socket over (or
// binds it, the first time), says hello, tells its parent it is ready,
// and serves until the supervisor says "upgrade" (and the next
// generation is ready) or "stop".
func serve(address, control string) int {
	ctl, err := net.Dial("tcp", control)
	if err != nil {
		fmt.Fprintln(os.Stderr, "upgrade server:", err)
		return 1
	}
	defer ctl.Close()
	c, err := safeudp.ListenPacket("udp4", address)
	if err != nil {
		fmt.Fprintln(ctl, "bindfail", oneLine(err))
		return 1
	}
	_ = c.(*safeudp.UDPConn).SetReadBuffer(readBuffer)
	var n atomic.Int64
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		buf := make([]byte, 65536)
		for {
			if _, _, err := c.ReadFrom(buf); err != nil {
				return
			}
			n.Add(1)
		}
	}()
	fmt.Fprintln(ctl, "hello", os.Getpid(), c.LocalAddr())
	if err := safeudp.Ready(); err != nil {
		fmt.Fprintln(os.Stderr, "upgrade server:", err)
	}
	sc := bufio.NewScanner(ctl)
	for sc.Scan() {
		switch sc.Text() {
		case "upgrade":
			next := exec.Command(os.Args[0], "-role", "server", "-addr", c.LocalAddr().String(), "-control", control)
			next.Stdout, next.Stderr = os.Stderr, os.Stderr
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := safeudp.Upgrade(ctx, next, c)
			cancel()
			if err != nil {
				fmt.Fprintln(ctl, "upgradefail", oneLine(err))
				continue // keep serving
			}
		case "stop":
			awaitIdle(&n)
		default:
			continue
		}
		// Upgraded (the child serves too, now) or stopped: drain and close.
		cerr := c.Close()
		<-readerDone
		if cerr != nil && !errors.Is(cerr, net.ErrClosed) {
			fmt.Fprintln(ctl, "closefail", oneLine(cerr))
		}
		fmt.Fprintln(ctl, "count", n.Load())
		return 0
	}
	return 1 // the supervisor went away
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", " ") }
