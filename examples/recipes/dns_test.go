package recipes_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/safeudp/safeudp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// serveDNS starts a miekg/dns server on pc that answers every A query
// with 192.0.2.1, and returns once it serves.
func serveDNS(pc net.PacketConn) (*dns.Server, <-chan error) {
	started := make(chan struct{})
	srv := &dns.Server{
		PacketConn:        pc,
		NotifyStartedFunc: func() { close(started) },
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
			m := new(dns.Msg)
			m.SetReply(r)
			m.Answer = append(m.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
				A:   net.IPv4(192, 0, 2, 1),
			})
			_ = w.WriteMsg(m)
		}),
	}
	done := make(chan error, 1)
	go func() { done <- srv.ActivateAndServe() }()
	select {
	case <-started:
	case err := <-done:
		done <- err
	}
	return srv, done
}

// query asks addr for example.org's A record.
func query(addr string) (string, error) {
	m := new(dns.Msg)
	m.SetQuestion("example.org.", dns.TypeA)
	c := &dns.Client{Timeout: 5 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		return "", err
	}
	if len(r.Answer) != 1 {
		return "", fmt.Errorf("%d answers", len(r.Answer))
	}
	return r.Answer[0].(*dns.A).A.String(), nil
}

// A miekg/dns server on a fixed port over a safeudp conn, shut down and
// started again on the same port. miekg/dns's serve loop closes the conn
// when Shutdown stops it, and discards that Close's error; the conn's own
// Close afterwards waits for the same release and reports the outcome
// (net.ErrClosed once released), so the restart can bind at once.
//
// miekg/dns checks for the concrete *net.UDPConn, which a safeudp conn
// cannot be, so it takes its generic path: ReadFrom and WriteTo, without
// the control messages it uses to answer from the address a query came
// to. Bind such a server to a specific address, not a wildcard.
func Example_dnsServer() {
	addr := "127.0.0.1:0"
	for range 2 {
		pc, err := safeudp.ListenPacket("udp4", addr)
		if err != nil {
			fmt.Println("listen:", err)
			return
		}
		addr = pc.LocalAddr().String() // the restart binds the same port
		srv, done := serveDNS(pc)
		fmt.Println(query(addr))

		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := srv.ShutdownContext(ctx); err != nil {
			fmt.Println("shutdown:", err)
		}
		cancel()
		<-done
		// miekg/dns closed pc; this Close waits for the release.
		if err := pc.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			fmt.Println("close:", err)
		}
	}
	// Output:
	// 192.0.2.1 <nil>
	// 192.0.2.1 <nil>
}

// TestDNSServerRestartsOnAFixedPort restarts a miekg/dns server over
// safeudp on one port many times: each restart binds at once.
func TestDNSServerRestartsOnAFixedPort(t *testing.T) {
	addr := "127.0.0.1:0"
	for i := range 20 {
		pc, err := safeudp.ListenPacket("udp4", addr)
		require.NoError(t, err, "restart %d", i)
		addr = pc.LocalAddr().String()
		srv, done := serveDNS(pc)
		got, err := query(addr)
		require.NoError(t, err)
		assert.Equal(t, "192.0.2.1", got)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		require.NoError(t, srv.ShutdownContext(ctx))
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the server did not stop")
		}
		err = pc.Close()
		if err != nil {
			require.ErrorIs(t, err, net.ErrClosed, "a Close after miekg/dns's own reports the release, or net.ErrClosed")
		}
	}
}
