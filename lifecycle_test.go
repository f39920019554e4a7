package safeudp_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/safeudp/safeudp"
)

// Every conn type shares one close sequence; these tests hold each of them
// to the same contract.

// closable is what every conn type of the package has.
type closable interface {
	net.PacketConn
	Shutdown(ctx context.Context) error
	InFlight() int
}

// plainWrapper hides a *net.UDPConn's type, so that Wrap returns a
// *safeudp.PacketConn.
type plainWrapper struct{ net.PacketConn }

// everyConnType opens one conn of each type on loopback.
var everyConnType = []struct {
	name string
	open func(t *testing.T) closable
}{
	{"UDPConn", func(t *testing.T) closable { return listenUDP(t) }},
	{"UnixConn", func(t *testing.T) closable {
		pc, err := safeudp.ListenPacket("unixgram", shortTempDir(t)+"/s")
		require.NoError(t, err)
		return pc.(*safeudp.UnixConn)
	}},
	{"PacketConn", func(t *testing.T) closable {
		return safeudp.Wrap(plainWrapper{rawUDP(t)}).(*safeudp.PacketConn)
	}},
	{"RebindingConn", func(t *testing.T) closable {
		c, err := safeudp.ListenRebinding("udp4", "127.0.0.1:0")
		require.NoError(t, err)
		return c
	}},
	{"RebindingConnGap", func(t *testing.T) closable {
		c, err := safeudp.ListenRebindingGap(&safeudp.ListenConfig{}, "udp4", "127.0.0.1:0")
		require.NoError(t, err)
		return c
	}},
}

// forEveryConnType runs f on a fresh conn of each type.
func forEveryConnType(t *testing.T, f func(t *testing.T, c closable)) {
	for _, ct := range everyConnType {
		t.Run(ct.name, func(t *testing.T) {
			c := ct.open(t)
			t.Cleanup(func() { _ = c.Close() })
			f(t, c)
		})
	}
}

func TestEveryConnTypeReportsErrClosedToALaterClose(t *testing.T) {
	forEveryConnType(t, func(t *testing.T, c closable) {
		require.NoError(t, c.Close())
		requireErrClosed(t, c.Close())
		requireErrClosed(t, c.Shutdown(context.Background()))
	})
}

func TestEveryConnTypeReportsErrClosedToAShutdownWithADoneContextAfterClose(t *testing.T) {
	forEveryConnType(t, func(t *testing.T, c closable) {
		require.NoError(t, c.Close())
		done, cancel := context.WithCancel(context.Background())
		cancel()
		requireErrClosed(t, c.Shutdown(done))
	})
}

func TestEveryConnTypeReportsTheOutcomeToExactlyOneOfConcurrentClosers(t *testing.T) {
	forEveryConnType(t, func(t *testing.T, c closable) {
		const closers = 8
		errs := make(chan error, closers)
		var start sync.WaitGroup
		start.Add(1)
		for i := range closers {
			go func() {
				start.Wait()
				if i%2 == 0 {
					errs <- c.Close()
				} else {
					errs <- c.Shutdown(context.Background())
				}
			}()
		}
		start.Done()
		nils := 0
		for range closers {
			select {
			case err := <-errs:
				if err == nil {
					nils++
				} else {
					requireErrClosed(t, err)
				}
			case <-time.After(bound):
				t.Fatal("a Close did not return")
			}
		}
		assert.Equal(t, 1, nils, "exactly one closer reports the outcome")
	})
}

func TestEveryConnTypeRefusesCallsOnceClosed(t *testing.T) {
	forEveryConnType(t, func(t *testing.T, c closable) {
		peer := c.LocalAddr()
		require.NoError(t, c.Close())
		_, _, err := c.ReadFrom(make([]byte, 8))
		requireErrClosed(t, err)
		_, err = c.WriteTo([]byte("x"), peer)
		requireErrClosed(t, err)
		requireErrClosed(t, c.SetDeadline(time.Time{}))
		requireErrClosed(t, c.SetReadDeadline(time.Time{}))
		requireErrClosed(t, c.SetWriteDeadline(time.Time{}))
	})
}

func TestEveryConnTypeUnblocksAndDrainsABlockedRead(t *testing.T) {
	forEveryConnType(t, func(t *testing.T, c closable) {
		read := make(chan error, 1)
		go func() {
			_, _, err := c.ReadFrom(make([]byte, 8))
			read <- err
		}()
		require.Eventually(t, func() bool { return c.InFlight() == 1 }, bound, time.Millisecond)
		require.NoError(t, c.Close())
		// The guarantee: when Close returns, no call is running. The
		// read's own return is the tracker's release, its last step; the
		// goroutine's send on read comes after it, so it is awaited
		// (bounded) rather than required to be there already.
		assert.Zero(t, c.InFlight(), "Close returned with a call in flight")
		select {
		case err := <-read:
			requireErrClosed(t, err)
		case <-time.After(bound):
			t.Fatal("the blocked read never returned")
		}
	})
}

func TestEveryConnTypeShutsDownOnAShutdownWithADoneContext(t *testing.T) {
	forEveryConnType(t, func(t *testing.T, c closable) {
		read := make(chan error, 1)
		go func() {
			_, _, err := c.ReadFrom(make([]byte, 8))
			read <- err
		}()
		require.Eventually(t, func() bool { return c.InFlight() == 1 }, bound, time.Millisecond)
		done, cancel := context.WithCancel(context.Background())
		cancel()
		err := c.Shutdown(done)
		if err != nil {
			require.ErrorIs(t, err, context.Canceled, "Shutdown returns at once, saying what is pending")
		}
		requireErrClosed(t, safeudp.Await(t, read, "the blocked read, after Shutdown with a done ctx"))
		_, werr := c.WriteTo([]byte("x"), c.LocalAddr())
		requireErrClosed(t, werr)
		requireErrClosed(t, c.SetReadDeadline(time.Now()), "the conn is closed to new calls")
		if err != nil {
			require.NoError(t, c.Close(), "a later Close finishes the job and reports the outcome")
		}
		requireErrClosed(t, c.Close())
		if _, ok := c.LocalAddr().(*net.UDPAddr); ok {
			requireBindable(t, "udp4", c.LocalAddr().String())
		}
	})
}
