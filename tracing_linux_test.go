package safeudp_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/safeudp/safeudp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTracingRecordsDescriptorInodeAttemptsAndHolders(t *testing.T) {
	rec := &safeudp.LogRecorder{}
	lc := safeudp.ListenConfig{Logger: slog.New(rec)}
	pc, err := lc.ListenPacket(context.Background(), "udp", "127.0.0.1:0")
	require.NoError(t, err)
	f, err := pc.(*safeudp.UDPConn).File()
	require.NoError(t, err)
	defer f.Close()

	listen := rec.Find("safeudp: listen")
	require.NotNil(t, listen)
	assert.NotZero(t, listen["fd"])
	assert.NotZero(t, listen["inode"])

	require.ErrorIs(t, pc.Close(), safeudp.ErrHeldElsewhere)
	held := rec.Find("safeudp: socket still held")
	require.NotNil(t, held)
	assert.Equal(t, slog.LevelWarn, held["level"])
	assert.Contains(t, held["holders"], "File() copy")
	assert.Equal(t, listen["inode"], held["inode"])
	released := rec.Find("safeudp: released")
	require.NotNil(t, released)
	assert.EqualValues(t, 1, released["attempts"])
}
