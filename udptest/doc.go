// Package udptest provides helpers for tests of code that closes and
// re-binds UDP and unixgram sockets, and a conformance suite for any
// [net.PacketConn], in the spirit of net/http/httptest and
// golang.org/x/net/nettest.
//
// Listen and Pair give a test loopback conns (or temporary unixgram
// sockets) that are closed at cleanup, failing the test with any error that
// Close returns. ReservePort hands out fixed ports that no other test
// binary of the same user gets at the same time, for tests that must
// re-bind a known port. VerifyNone and VerifyTestMain fail a test that leaves a
// safeudp conn open, leaks a descriptor (on Linux) or leaks a goroutine.
// TestPacketConn checks that a net.PacketConn keeps the contract of the net
// package; like nettest.TestConn it can miss bugs, but it raises no false
// alarms on a correct conn.
//
// The package is meant for tests only; nothing in it is tuned for
// production use.
package udptest
