package recipes_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/safeudp/safeudp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Both conns have what quic-go looks for before it takes its optimized
// path (ECN, GSO, batches, DF), and ReadBatch, which it reads through.
var (
	_ quic.OOBCapablePacketConn = (*safeudp.UDPConn)(nil)
	_ quic.OOBCapablePacketConn = (*safeudp.RebindingConn)(nil)
)

// echoServer accepts QUIC connections on ln and echoes every stream,
// until ln is closed.
func echoServer(ln *quic.Listener) {
	for {
		conn, err := ln.Accept(context.Background())
		if err != nil {
			return
		}
		go func() {
			for {
				st, err := conn.AcceptStream(context.Background())
				if err != nil {
					return
				}
				go func() {
					defer st.Close()
					_, _ = io.Copy(st, st)
				}()
			}
		}()
	}
}

// echo sends msg on a new stream of conn and returns what comes back.
func echo(ctx context.Context, conn *quic.Conn, msg string) (string, error) {
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return "", err
	}
	if _, err := st.Write([]byte(msg)); err != nil {
		return "", err
	}
	if err := st.Close(); err != nil { // the write side: the server's io.Copy ends
		return "", err
	}
	_ = st.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(st)
	return string(b), err
}

// A quic-go server on a fixed port over a safeudp conn. quic.Transport
// never closes a conn it was given, so the stop order that releases the
// port is: close the Transport (which closes its listeners and
// connections and stops reading the conn), then the conn, whose Close
// returns once the port can be bound again. The restart then binds the
// same port at once.
func Example_quicTransport() {
	serverTLS, clientTLS := tlsConfigs()
	addr := "127.0.0.1:0"
	for run := range 2 {
		pc, err := safeudp.ListenPacket("udp4", addr)
		if err != nil {
			fmt.Println("listen:", err)
			return
		}
		addr = pc.LocalAddr().String() // the second run binds the same port
		tr := &quic.Transport{Conn: pc.(*safeudp.UDPConn)}
		ln, err := tr.Listen(serverTLS, nil)
		if err != nil {
			fmt.Println("quic listen:", err)
			return
		}
		go echoServer(ln)

		client, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			fmt.Println(err)
			return
		}
		ctr := &quic.Transport{Conn: client}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		conn, err := ctr.Dial(ctx, pc.LocalAddr(), clientTLS, nil)
		if err == nil {
			var got string
			got, err = echo(ctx, conn, fmt.Sprintf("hello %d", run))
			fmt.Println(got)
			_ = conn.CloseWithError(0, "")
		}
		cancel()
		if err != nil {
			fmt.Println("echo:", err)
		}
		_ = ctr.Close()
		_ = client.Close()

		// The stop order: the Transport first, then the conn.
		_ = tr.Close()
		if err := pc.Close(); err != nil {
			fmt.Println("close:", err)
		}
	}
	// Output:
	// hello 0
	// hello 1
}

// A quic-go server over a RebindingConn: its socket is replaced under a
// live connection, which carries on. The stop order is the same: the
// Transport, then the conn.
func Example_quicRebinding() {
	serverTLS, clientTLS := tlsConfigs()
	rc, err := safeudp.ListenRebinding("udp4", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	tr := &quic.Transport{Conn: rc}
	ln, err := tr.Listen(serverTLS, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	go echoServer(ln)
	client, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	ctr := &quic.Transport{Conn: client}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := ctr.Dial(ctx, rc.LocalAddr(), clientTLS, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	for i := range 3 {
		if err := rc.Rebind(ctx); err != nil { // a new socket, the same address
			fmt.Println("rebind:", err)
		}
		got, err := echo(ctx, conn, fmt.Sprintf("after swap %d", i+1))
		fmt.Println(got, err)
	}
	_ = conn.CloseWithError(0, "")
	_ = ctr.Close()
	_ = client.Close()
	_ = tr.Close()
	fmt.Println(rc.Close())
	// Output:
	// after swap 1 <nil>
	// after swap 2 <nil>
	// after swap 3 <nil>
	// <nil>
}

// TestQUICEchoOverRebindingConnSurvivesSwapsOnTheOptimizedPath: quic-go
// takes its OOB path on a RebindingConn (it does not log that it disables
// its optimizations, as it does for a conn without them), and a
// connection keeps echoing across swaps made mid-connection, with
// streams open across each swap.
func TestQUICEchoOverRebindingConnSurvivesSwapsOnTheOptimizedPath(t *testing.T) {
	serverTLS, clientTLS := tlsConfigs()
	rc, err := safeudp.ListenRebinding("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	addr := rc.LocalAddr().String()
	before := strings.Count(quicLog.String(), "Disabling optimizations")
	tr := &quic.Transport{Conn: rc}
	ln, err := tr.Listen(serverTLS, nil)
	require.NoError(t, err)
	go echoServer(ln)
	assert.Equal(t, before, strings.Count(quicLog.String(), "Disabling optimizations"),
		"quic-go took its generic path on a RebindingConn: %s", quicLog.String())

	client, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	ctr := &quic.Transport{Conn: client}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := ctr.Dial(ctx, rc.LocalAddr(), clientTLS, &quic.Config{MaxIdleTimeout: 30 * time.Second})
	require.NoError(t, err)

	const swaps = 8
	for i := range swaps {
		// A stream opened before the swap, finished after it.
		st, err := conn.OpenStreamSync(ctx)
		require.NoError(t, err)
		_, err = st.Write([]byte("before "))
		require.NoError(t, err)
		require.NoError(t, rc.Rebind(ctx), "swap %d", i)
		_, err = st.Write([]byte(fmt.Sprint("swap ", i)))
		require.NoError(t, err)
		require.NoError(t, st.Close())
		require.NoError(t, st.SetReadDeadline(time.Now().Add(10*time.Second)))
		b, err := io.ReadAll(st)
		require.NoError(t, err, "swap %d", i)
		assert.Equal(t, fmt.Sprint("before swap ", i), string(b))
		// And a bulk echo, larger than a packet, after it.
		msg := strings.Repeat(fmt.Sprint(i), 64<<10)
		got, err := echo(ctx, conn, msg)
		require.NoError(t, err, "swap %d", i)
		assert.Equal(t, len(msg), len(got))
	}
	assert.Equal(t, addr, rc.LocalAddr().String())
	require.NoError(t, conn.CloseWithError(0, ""))
	require.NoError(t, ctr.Close())
	require.NoError(t, client.Close())
	require.NoError(t, tr.Close())
	require.NoError(t, rc.Close())
	// Released: the address can be bound again at once.
	again, err := net.ListenPacket("udp4", addr)
	require.NoError(t, err)
	require.NoError(t, again.Close())
}

// TestQUICDisablesOptimizationsOnAConnWithoutThem shows that the log
// check above can fail: quic-go logs it for a conn that lacks the
// methods.
func TestQUICDisablesOptimizationsOnAConnWithoutThem(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	before := strings.Count(quicLog.String(), "Disabling optimizations")
	tr := &quic.Transport{Conn: struct{ net.PacketConn }{pc}}
	serverTLS, _ := tlsConfigs()
	ln, err := tr.Listen(serverTLS, nil)
	require.NoError(t, err)
	assert.Equal(t, before+1, strings.Count(quicLog.String(), "Disabling optimizations"))
	require.NoError(t, ln.Close())
	require.NoError(t, tr.Close())
	require.NoError(t, pc.Close())
}
