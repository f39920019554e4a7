package main

// -mode reload: the generations are goroutines of one process, each
// reading its own handle on the socket (ListenConfig.Shared).

import (
	"context"
	"net"
	"sync/atomic"
	"time"

	"github.com/safeudp/safeudp"
)

// generation is one server generation of -mode reload.
type generation struct {
	conn net.PacketConn
	n    atomic.Int64
	done chan struct{}
}

func startGeneration(address string) (*generation, error) {
	lc := safeudp.ListenConfig{Shared: true}
	c, err := lc.ListenPacket(context.Background(), "udp4", address)
	if err != nil {
		return nil, err
	}
	_ = c.(*safeudp.UDPConn).SetReadBuffer(readBuffer)
	g := &generation{conn: c, done: make(chan struct{})}
	go func() {
		defer close(g.done)
		buf := make([]byte, 65536)
		for {
			if _, _, err := c.ReadFrom(buf); err != nil {
				return // closed: the next generation has the socket
			}
			g.n.Add(1)
		}
	}()
	return g, nil
}

// stop closes the generation's handle (its Close waits for its reader)
// and returns what it read.
func (g *generation) stop() (int64, error) {
	err := g.conn.Close()
	<-g.done
	return g.n.Load(), err
}

func runReload(rate, upgrades int, every time.Duration, size int) (result, error) {
	var r result
	cur, err := startGeneration("127.0.0.1:0")
	if err != nil {
		return r, err
	}
	address := cur.conn.LocalAddr().String()
	stopSending, err := sender(cur.conn.LocalAddr(), rate, size)
	if err != nil {
		return r, err
	}
	start := time.Now()
	for range upgrades {
		time.Sleep(every)
		begun := time.Now()
		next, err := startGeneration(address)
		if err != nil {
			r.bindFailures++
			continue
		}
		n, err := cur.stop()
		if err != nil {
			r.bindFailures++ // a Close that did not release cleanly
		}
		r.received += n
		cur = next
		r.upgrades++
		r.took = append(r.took, time.Since(begun))
	}
	time.Sleep(every)
	sent, serr := stopSending()
	r.elapsed = time.Since(start)
	awaitIdle(&cur.n)
	n, err := cur.stop()
	r.sent, r.received = sent, r.received+n
	if serr != nil {
		return r, serr
	}
	return r, err
}

// awaitIdle waits until n has not moved for 100ms: the last datagrams in
// the queue have been read.
func awaitIdle(n *atomic.Int64) {
	for last, idle := n.Load(), 0; idle < 100; idle++ {
		time.Sleep(time.Millisecond)
		if v := n.Load(); v != last {
			last, idle = v, 0
		}
	}
}
