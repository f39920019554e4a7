package main

// The -swap mode: one safeudp.RebindingConn whose socket is swapped under
// steady traffic. A sender sends numbered datagrams to it at a steady rate
// while the conn is rebound N times, and a reader counts what arrives. A
// datagram is lost only if the receive buffer overflows, as it does
// without any swap when the reader does not keep up: compare with
// -rebinds 0 at the same rate.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/safeudp/safeudp"
)

func runSwap(rate, rebinds int, every time.Duration, size int) error {
	c, err := safeudp.ListenRebinding("udp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer c.Close()

	var received atomic.Int64
	var readErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 65536)
		for {
			if _, _, err := c.ReadFrom(buf); err != nil {
				if !isClosed(err) {
					readErr = err
				}
				return
			}
			received.Add(1)
		}
	})

	snd, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer snd.Close()
	var sent atomic.Int64
	stop := make(chan struct{})
	var sendErr error
	sendDone := make(chan struct{})
	go func() {
		defer close(sendDone)
		sendErr = send(snd, c.LocalAddr(), rate, size, &sent, stop)
	}()

	start := time.Now()
	took := make([]time.Duration, 0, rebinds)
	for range rebinds {
		time.Sleep(every) // traffic between rebinds
		begun := time.Now()
		if err := c.Rebind(context.Background()); err != nil {
			close(stop)
			<-sendDone
			return err
		}
		took = append(took, time.Since(begun))
	}
	time.Sleep(every)
	close(stop)
	<-sendDone // the last burst is sent before the count is waited for
	elapsed := time.Since(start)

	// Wait until the reader has everything, or it stops making progress.
	for last, idle := received.Load(), 0; received.Load() < sent.Load() && idle < 100; idle++ {
		time.Sleep(time.Millisecond)
		if n := received.Load(); n != last {
			last, idle = n, 0
		}
	}
	c.Close()
	wg.Wait()
	if sendErr != nil {
		return sendErr
	}
	if readErr != nil {
		return fmt.Errorf("read: %w", readErr)
	}

	slices.Sort(took)
	var total time.Duration
	for _, d := range took {
		total += d
	}
	s, r := sent.Load(), received.Load()
	fmt.Printf("rate %d/s (sent at %.0f/s), size %d: sent %d, received %d, lost %d, rebinds %d\n",
		rate, float64(s)/elapsed.Seconds(), size, s, r, s-r, len(took))
	if len(took) > 0 {
		fmt.Printf("rebind time: mean %v, median %v, max %v\n", total/time.Duration(len(took)), took[len(took)/2], took[len(took)-1])
	}
	if s != r {
		return fmt.Errorf("%d datagrams lost", s-r)
	}
	return nil
}

// send sends numbered datagrams to addr at about rate per second until stop
// is closed, counting them in sent. It sends rate/1000 datagrams each
// millisecond and never catches up on a tick it missed, so a stall of the
// sender never turns into a burst that overflows the receive buffer.
func send(snd net.PacketConn, addr net.Addr, rate, size int, sent *atomic.Int64, stop chan struct{}) error {
	b := make([]byte, size)
	perTick, period := rate/1000, time.Millisecond
	if perTick == 0 {
		perTick, period = 1, time.Second/time.Duration(max(rate, 1))
	}
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return nil
		case <-tick.C:
		}
		for range perTick {
			binary.BigEndian.PutUint64(b, uint64(sent.Load()))
			if _, err := snd.WriteTo(b, addr); err != nil {
				return fmt.Errorf("send: %w", err)
			}
			sent.Add(1)
		}
	}
}

func isClosed(err error) bool { return errors.Is(err, net.ErrClosed) }
