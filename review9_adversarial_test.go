package safeudp

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestReviewFileRacingClose: a File copy that succeeds while Close runs
// must make that Close fail (the copy holds the port), never return nil.
func TestReviewFileRacingClose(t *testing.T) {
	for _, network := range []string{"udp4", "udp6", "unixgram"} {
		t.Run(network, func(t *testing.T) {
			for i := 0; i < 300; i++ {
				addr := "127.0.0.1:0"
				if network == "udp6" {
					addr = "[::1]:0"
				} else if network == "unixgram" {
					addr = filepath.Join(t.TempDir(), "s.sock")
				}
				pc, err := ListenPacket(network, addr)
				require.NoError(t, err)
				fc := pc.(interface{ File() (*os.File, error) })
				var wg sync.WaitGroup
				var f *os.File
				var ferr error
				start := make(chan struct{})
				wg.Add(1)
				go func() { defer wg.Done(); <-start; f, ferr = fc.File() }()
				close(start)
				cerr := pc.Close()
				wg.Wait()
				if ferr == nil {
					if cerr == nil {
						t.Fatalf("iteration %d: File returned a copy and Close returned nil", i)
					}
					require.ErrorIs(t, cerr, ErrHeldElsewhere)
					require.NoError(t, f.Close())
				} else {
					require.ErrorIs(t, ferr, net.ErrClosed)
				}
			}
		})
	}
}

// TestReviewShutdownAfterCloseEveryType: Shutdown with a done ctx after a
// completed Close returns net.ErrClosed on every conn type.
func TestReviewShutdownAfterCloseEveryType(t *testing.T) {
	type shutdowner interface {
		net.PacketConn
		Shutdown(context.Context) error
	}
	open := map[string]func() (shutdowner, error){
		"udp": func() (shutdowner, error) {
			pc, err := ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				return nil, err
			}
			return pc.(shutdowner), nil
		},
		"unixgram": func() (shutdowner, error) {
			pc, err := ListenPacket("unixgram", filepath.Join(t.TempDir(), "x.sock"))
			if err != nil {
				return nil, err
			}
			return pc.(shutdowner), nil
		},
		"wrap-udp": func() (shutdowner, error) {
			pc, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				return nil, err
			}
			return Wrap(pc).(shutdowner), nil
		},
		"wrap-unixgram": func() (shutdowner, error) {
			pc, err := net.ListenPacket("unixgram", filepath.Join(t.TempDir(), "w.sock"))
			if err != nil {
				return nil, err
			}
			return Wrap(pc).(shutdowner), nil
		},
		"rebinding": func() (shutdowner, error) {
			return ListenRebinding("udp", "127.0.0.1:0")
		},
	}
	for name, o := range open {
		t.Run(name, func(t *testing.T) {
			c, err := o()
			require.NoError(t, err)
			// A short Shutdown racing a blocked read, then Close.
			readDone := make(chan error, 1)
			go func() {
				_, _, err := c.ReadFrom(make([]byte, 10))
				readDone <- err
			}()
			ctx, cancel := context.WithTimeout(context.Background(), time.Microsecond)
			serr := c.Shutdown(ctx)
			cancel()
			cerr := c.Close()
			if serr == nil {
				require.ErrorIs(t, cerr, net.ErrClosed, "Close after a Shutdown that reported")
			} else {
				require.NoError(t, cerr, "Close after a Shutdown that timed out reports the outcome")
			}
			require.ErrorIs(t, Await(t, readDone, "the read"), net.ErrClosed)
			done, cancel2 := context.WithCancel(context.Background())
			cancel2()
			require.ErrorIs(t, c.Shutdown(done), net.ErrClosed)
			require.ErrorIs(t, c.Close(), net.ErrClosed)
			if _, ok := c.LocalAddr().(*net.UDPAddr); ok {
				p, err := net.ListenPacket("udp", c.LocalAddr().String())
				require.NoError(t, err, "the port is free after Close")
				require.NoError(t, p.Close())
			}
		})
	}
}

// TestReviewRebindUnixgramOldCloseKeepsNewFile: closing the old conn
// again (and racing it with the Rebind) never removes the new socket's
// file, and the new conn receives at the path.
func TestReviewRebindUnixgramOldCloseKeepsNewFile(t *testing.T) {
	for i := 0; i < 50; i++ {
		path := filepath.Join(t.TempDir(), "r.sock")
		pc, err := ListenPacket("unixgram", path)
		require.NoError(t, err)
		closed := make(chan error, 1)
		go func() { closed <- pc.Close() }()
		np, rerr := Rebind(context.Background(), pc)
		cerr := Await(t, closed, "the racing Close")
		if rerr != nil {
			require.ErrorIs(t, rerr, net.ErrClosed)
			require.NoError(t, cerr)
			_, err := os.Lstat(path)
			require.True(t, os.IsNotExist(err), "file left after Close won: %v", err)
			continue
		}
		_ = cerr
		require.ErrorIs(t, pc.Close(), net.ErrClosed)
		_, err = os.Lstat(path)
		require.NoError(t, err, "iteration %d: the new conn's file is gone (Close of the old: %v)", i, cerr)
		s, err := net.Dial("unixgram", path)
		require.NoError(t, err)
		_, err = s.Write([]byte("x"))
		require.NoError(t, err)
		require.NoError(t, np.SetReadDeadline(time.Now().Add(2*time.Second)))
		_, _, err = np.ReadFrom(make([]byte, 4))
		require.NoError(t, err)
		require.NoError(t, s.Close())
		require.NoError(t, np.Close())
	}
}

// TestReviewRebindConnectedUnexposed: a conn from Rebind of a connected
// conn, never exposed, rebound again keeps its peer.
func TestReviewRebindConnectedUnexposed(t *testing.T) {
	for _, tc := range []struct{ network, laddr, peer string }{
		{"udp", "127.0.0.1:0", "127.0.0.1:0"},
		{"udp", "[::]:0", "127.0.0.1:0"},
		{"udp6", "[::1]:0", "[::1]:0"},
	} {
		t.Run(tc.network+tc.laddr, func(t *testing.T) {
			peer, err := net.ListenPacket(tc.network, tc.peer)
			if tc.peer == "127.0.0.1:0" {
				peer, err = net.ListenPacket("udp4", tc.peer)
			}
			require.NoError(t, err)
			defer peer.Close()
			la, err := net.ResolveUDPAddr("udp", tc.laddr)
			require.NoError(t, err)
			uc, err := net.DialUDP(tc.network, la, peer.LocalAddr().(*net.UDPAddr))
			require.NoError(t, err)
			var pc net.PacketConn = Wrap(uc)
			for j := 0; j < 3; j++ {
				np, err := Rebind(context.Background(), pc)
				require.NoError(t, err, "rebind %d", j)
				pc = np
				ra := pc.(interface{ RemoteAddr() net.Addr }).RemoteAddr()
				require.NotNil(t, ra, "rebind %d lost the peer", j)
				_, err = pc.(interface{ Write([]byte) (int, error) }).Write([]byte("hi"))
				require.NoError(t, err, "rebind %d", j)
				require.NoError(t, peer.SetReadDeadline(time.Now().Add(2*time.Second)))
				_, from, err := peer.ReadFrom(make([]byte, 4))
				require.NoError(t, err)
				require.Equal(t, pc.LocalAddr().(*net.UDPAddr).Port, from.(*net.UDPAddr).Port)
			}
			require.NoError(t, pc.Close())
		})
	}
}

// TestReviewUnixgramForeignFileKept: a foreign socket bound at our path
// after ours was moved away is never removed by our Close.
func TestReviewUnixgramForeignFileKept(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.sock")
	pc, err := ListenPacket("unixgram", path)
	require.NoError(t, err)
	require.NoError(t, os.Rename(path, filepath.Join(dir, "moved.sock")))
	foreign, err := net.ListenPacket("unixgram", path)
	require.NoError(t, err)
	defer foreign.Close()
	_ = pc.Close()
	_, err = os.Lstat(path)
	require.NoError(t, err, "the foreign socket's file was removed")
}
