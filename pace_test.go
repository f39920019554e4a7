package safeudp

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestPacerDoublesItsWaitUpToTheCap(t *testing.T) {
	p := newPacer(time.Microsecond, 4*time.Microsecond)
	defer p.stop()
	var delays []time.Duration
	for range 4 {
		delays = append(delays, p.delay)
		assert.True(t, p.wait(context.Background()))
	}
	assert.Equal(t, []time.Duration{time.Microsecond, 2 * time.Microsecond, 4 * time.Microsecond, 4 * time.Microsecond}, delays)
}

// A wait shorter than a timer can keep sleeps in a system call; it still
// ends with its ctx: at once if ctx has ended, at ctx's deadline if that
// comes first.
func TestPacerShortWaitEndsWithItsContext(t *testing.T) {
	if timerGrain == 0 {
		t.Skip("every wait takes a timer here")
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	p := newPacer(timerGrain/2, timerGrain/2)
	assert.False(t, p.wait(cancelled), "a cancelled ctx ends the wait")

	// A deadline 1 µs away ends a wait of half a millisecond: wait
	// reports false, which it does only once the deadline has passed, even
	// before ctx's own timer has fired.
	deadline := time.Now().Add(time.Microsecond)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	p = newPacer(timerGrain/2, timerGrain/2)
	assert.False(t, p.wait(ctx))
	assert.False(t, time.Now().Before(deadline))
}

// A long wait takes a timer and ends as soon as ctx does.
func TestPacerLongWaitEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p := newPacer(time.Hour, time.Hour)
	defer p.stop()
	done := make(chan bool)
	go func() { done <- p.wait(ctx) }()
	cancel()
	select {
	case ok := <-done:
		assert.False(t, ok)
	case <-time.After(10 * time.Second):
		t.Fatal("the wait did not end with its ctx")
	}
}
