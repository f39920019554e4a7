// Package recipes shows safeudp with the libraries its users run over
// it, as runnable examples and tests: quic-go over a *safeudp.UDPConn and
// over a *safeudp.RebindingConn, and a miekg/dns server.
//
// It is a module of its own, so that the library's go.mod stays lean:
// run it with `cd examples/recipes && go test ./...`.
//
// Which libraries keep their fast paths: quic-go and golang.org/x/net
// detect what a conn can do by interface checks, so they take their
// optimized paths (quic-go: ECN, GSO, batches, DF; x/net: batches and
// control messages) on a safeudp conn, a RebindingConn included.
// miekg/dns checks for the concrete *net.UDPConn, which no wrapper can
// be, so it takes its generic path (ReadFrom and WriteTo, without the
// control messages it uses to answer from the address a query came to on
// a wildcard socket): bind a DNS server over safeudp to a specific
// address.
package recipes
