package safeudp_test

import (
	"bytes"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"golang.org/x/net/ipv4"
)

func TestReadBatchReportsTruncation(t *testing.T) {
	sender := listenUDPOn(t, "udp4", "127.0.0.1:0")
	receiver := listenUDPOn(t, "udp4", "127.0.0.1:0")

	out := []ipv4.Message{
		{Buffers: [][]byte{bytes.Repeat([]byte("x"), 100)}, Addr: receiver.LocalAddr()},
		{Buffers: [][]byte{[]byte("short")}, Addr: receiver.LocalAddr()},
	}
	writeAll(t, sender, out)

	in := newMessages(2, 10)
	readAll(t, receiver, in)
	assert.Equal(t, 10, in[0].N, "a truncated datagram fills the buffer")
	assert.NotZero(t, in[0].Flags&syscall.MSG_TRUNC, "MSG_TRUNC not set on a 100-byte datagram read into 10 bytes")
	assert.Equal(t, "short", string(in[1].Buffers[0][:in[1].N]))
	assert.Zero(t, in[1].Flags&syscall.MSG_TRUNC, "MSG_TRUNC set on a datagram that fit")
}
