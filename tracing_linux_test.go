package safeudp_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/safeudp/safeudp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recorder is a slog.Handler that keeps every record's message and
// attributes.
type recorder struct {
	mu   sync.Mutex // guards recs
	recs []map[string]any
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *recorder) WithGroup(string) slog.Handler            { return r }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	m := map[string]any{"msg": rec.Message, "level": rec.Level}
	rec.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.Any(); return true })
	r.mu.Lock()
	r.recs = append(r.recs, m)
	r.mu.Unlock()
	return nil
}

func (r *recorder) find(msg string) map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.recs {
		if m["msg"] == msg {
			return m
		}
	}
	return nil
}

func TestTracingRecordsDescriptorInodeAttemptsAndHolders(t *testing.T) {
	rec := &recorder{}
	lc := safeudp.ListenConfig{Logger: slog.New(rec)}
	pc, err := lc.ListenPacket(context.Background(), "udp", "127.0.0.1:0")
	require.NoError(t, err)
	f, err := pc.(*safeudp.UDPConn).File()
	require.NoError(t, err)
	defer f.Close()

	listen := rec.find("safeudp: listen")
	require.NotNil(t, listen)
	assert.NotZero(t, listen["fd"])
	assert.NotZero(t, listen["inode"])

	require.ErrorIs(t, pc.Close(), safeudp.ErrHeldElsewhere)
	held := rec.find("safeudp: socket still held")
	require.NotNil(t, held)
	assert.Equal(t, slog.LevelWarn, held["level"])
	assert.Contains(t, held["holders"], "File() copy")
	assert.Equal(t, listen["inode"], held["inode"])
	released := rec.find("safeudp: released")
	require.NotNil(t, released)
	assert.EqualValues(t, 1, released["attempts"])
}
