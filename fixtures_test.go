package safeudp

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// Fixtures shared by the package's tests, internal and external (which
// reach them as safeudp.X: this file is compiled into the package under
// test only).

// awaitBound bounds every wait of a test on the thing under test.
const awaitBound = 10 * time.Second

// Await receives from ch, or fails the test if nothing comes within
// awaitBound: a test never waits unbounded on the code it tests. what
// says what was awaited. Exported for the package's external tests.
func Await[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	timer := time.NewTimer(awaitBound)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("%s: nothing after %v", what, awaitBound)
		var zero T
		return zero
	}
}

// LogRecorder is a slog.Handler that keeps every record, for tests of
// what the package logs. On, if set before use, is called with each
// record's message as it is handled.
type LogRecorder struct {
	On func(msg string)

	mu      sync.Mutex // guards records
	records []slog.Record
}

// Enabled records every level.
func (h *LogRecorder) Enabled(context.Context, slog.Level) bool { return true }

// WithAttrs returns h: the records keep their own attributes only.
func (h *LogRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }

// WithGroup returns h.
func (h *LogRecorder) WithGroup(string) slog.Handler { return h }

// Handle keeps a copy of r, then calls On.
func (h *LogRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.records = append(h.records, r.Clone())
	h.mu.Unlock()
	if h.On != nil {
		h.On(r.Message)
	}
	return nil
}

// Messages returns the messages of the records, in order.
func (h *LogRecorder) Messages() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, 0, len(h.records))
	for _, r := range h.records {
		out = append(out, r.Message)
	}
	return out
}

// Count returns how many records have the message msg.
func (h *LogRecorder) Count(msg string) int {
	n := 0
	for _, m := range h.Messages() {
		if m == msg {
			n++
		}
	}
	return n
}

// Find returns the first record with the message msg as a map of its
// attributes' values, plus "msg" and "level"; nil if there is none.
func (h *LogRecorder) Find(msg string) map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.records {
		if r.Message != msg {
			continue
		}
		m := map[string]any{"msg": r.Message, "level": r.Level}
		r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.Any(); return true })
		return m
	}
	return nil
}

// Attr returns the value of attribute key in the first record with the
// message msg.
func (h *LogRecorder) Attr(msg, key string) (slog.Value, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.records {
		if r.Message != msg {
			continue
		}
		var v slog.Value
		var found bool
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == key {
				v, found = a.Value, true
				return false
			}
			return true
		})
		return v, found
	}
	return slog.Value{}, false
}
