package safeudp_test

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/safeudp/safeudp"
)

func TestLoggerRecordsTheLifecycle(t *testing.T) {
	h := &safeudp.LogRecorder{}
	lc := safeudp.ListenConfig{Logger: slog.New(h)}
	pc, err := lc.ListenPacket(context.Background(), "udp4", "127.0.0.1:0")
	require.NoError(t, err)
	c := pc.(*safeudp.UDPConn)
	go func() { _, _, _ = c.ReadFrom(make([]byte, 8)) }()
	waitInFlight(t, c, 1)
	require.NoError(t, c.Close())

	msgs := h.Messages()
	for _, want := range []string{"safeudp: listen", "safeudp: close begun", "safeudp: drained", "safeudp: released"} {
		assert.Contains(t, msgs, want)
	}
	v, ok := h.Attr("safeudp: close begun", "inflight")
	require.True(t, ok)
	assert.Equal(t, int64(1), v.Int64(), "close begun records the calls in flight")
	v, ok = h.Attr("safeudp: listen", "addr")
	require.True(t, ok)
	assert.Equal(t, c.LocalAddr().String(), v.String())
}

func TestCloseLogsWhatItWaitsForWhenSlow(t *testing.T) {
	defer safeudp.SetSlowCloseAfter(10 * time.Millisecond)()
	h := &safeudp.LogRecorder{}
	inner := &gatedConn{PacketConn: rawUDP(t), gate: make(chan struct{})}
	c := safeudp.Wrap(inner).(safeudp.Conn)
	go func() { _, _, _ = c.ReadFrom(make([]byte, 8)) }()
	waitInFlight(t, c, 1)

	// Wrap has no ListenConfig, so the report goes to slog's default logger.
	old := slog.Default()
	slog.SetDefault(slog.New(h))
	defer slog.SetDefault(old)

	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	require.Eventually(t, func() bool {
		_, ok := h.Attr("safeudp: Close still waiting for calls in flight", "inflight")
		return ok
	}, bound, time.Millisecond)
	v, _ := h.Attr("safeudp: Close still waiting for calls in flight", "opened")
	assert.Regexp(t, `trace_test\.go:\d+$`, v.String(), "the report says where the conn was opened")
	close(inner.gate)
	require.NoError(t, safeudp.Await(t, closed, "Close"))
}

func TestLoggerOffLogsNothing(t *testing.T) {
	h := &safeudp.LogRecorder{}
	old := slog.Default()
	slog.SetDefault(slog.New(h))
	defer slog.SetDefault(old)
	pc, err := safeudp.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	_, err = pc.WriteTo([]byte("x"), pc.LocalAddr().(*net.UDPAddr))
	require.NoError(t, err)
	require.NoError(t, pc.Close())
	assert.Empty(t, h.Messages())
}
