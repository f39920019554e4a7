package safeudp

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// latchWait is how long these tests wait for any one thing.
const latchWait = 10 * time.Second

// waitUntil polls cond, for at most latchWait, until it holds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(latchWait)
	for !cond() {
		require.False(t, time.Now().After(deadline), "%s: not after %v", what, latchWait)
		runtime.Gosched()
	}
}

// waitersMade waits until a goroutine waits on l: a waiter that came
// before the set has made the latch's channel.
func waitersMade(t *testing.T, l *latch) {
	t.Helper()
	waitUntil(t, "a waiter on the latch", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.ch != nil
	})
}

// within returns what ch delivers, failing the test after latchWait.
func within(t *testing.T, ch <-chan bool, what string) bool {
	t.Helper()
	select {
	case ok := <-ch:
		return ok
	case <-time.After(latchWait):
		t.Fatalf("%s: not within %v", what, latchWait)
		return false
	}
}

func TestLatch(t *testing.T) {
	done, cancel := context.WithCancel(context.Background())
	cancel()

	t.Run("set before wait wins over a done ctx", func(t *testing.T) {
		var l latch
		assert.False(t, l.done())
		assert.False(t, l.wait(done), "an unset latch with a done ctx")
		l.set()
		l.set() // a second set does nothing
		assert.True(t, l.done())
		assert.True(t, l.wait(done))
	})

	t.Run("every waiter wakes at the set", func(t *testing.T) {
		var l latch
		const waiters = 8
		woke := make(chan bool, waiters)
		for range waiters {
			go func() { woke <- l.wait(context.Background()) }()
		}
		waitersMade(t, &l)
		l.set()
		for range waiters {
			assert.True(t, within(t, woke, "a waiter wakes at the set"))
		}
	})

	t.Run("a waiter whose ctx ends gives up, the latch stays usable", func(t *testing.T) {
		var l latch
		ctx, cancel := context.WithCancel(context.Background())
		gaveUp := make(chan bool, 1)
		go func() { gaveUp <- l.wait(ctx) }()
		waitersMade(t, &l)
		cancel()
		assert.False(t, within(t, gaveUp, "the waiter gives up when its ctx ends"), "ctx ended before the set")
		l.set()
		assert.True(t, l.wait(done))
	})

	t.Run("no allocation when set before anyone waits", func(t *testing.T) {
		ls := make([]latch, 101) // a fresh latch per run, allocated here
		i := 0
		allocs := testing.AllocsPerRun(100, func() {
			l := &ls[i]
			i++
			l.set()
			if !l.wait(context.Background()) {
				t.Fatal("set latch not done")
			}
		})
		assert.Zero(t, allocs)
	})
}

func TestTurn(t *testing.T) {
	done, cancel := context.WithCancel(context.Background())
	cancel()

	t.Run("one holder at a time", func(t *testing.T) {
		var tu turn
		var wg sync.WaitGroup
		holders, most := 0, 0 // guarded by tu: the race detector checks it
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 100 {
					require.True(t, tu.lock(context.Background()))
					holders++
					most = max(most, holders)
					runtime.Gosched()
					holders--
					tu.unlock()
				}
			}()
		}
		wg.Wait()
		assert.Equal(t, 1, most)
	})

	t.Run("a free turn is taken even with a done ctx", func(t *testing.T) {
		var tu turn
		require.True(t, tu.lock(done))
		assert.False(t, tu.lock(done), "held: a done ctx gives up")
		tu.unlock()
		assert.True(t, tu.lock(done))
		tu.unlock()
	})

	t.Run("a waiter gets the turn at unlock, or gives up with its ctx", func(t *testing.T) {
		var tu turn
		require.True(t, tu.lock(context.Background()))
		ctx, cancel := context.WithCancel(context.Background())
		gaveUp := make(chan bool, 1)
		go func() { gaveUp <- tu.lock(ctx) }()
		got := make(chan bool, 1)
		go func() { got <- tu.lock(context.Background()) }()
		waitUntil(t, "a waiter for the turn", func() bool {
			tu.mu.Lock()
			defer tu.mu.Unlock()
			return tu.free != nil
		})
		cancel()
		assert.False(t, within(t, gaveUp, "the waiter gives up when its ctx ends"))
		tu.unlock()
		assert.True(t, within(t, got, "the waiter gets the turn at the unlock"))
		tu.unlock()
	})

	t.Run("unlock of a free turn panics", func(t *testing.T) {
		var tu turn
		assert.PanicsWithValue(t, "safeudp: unlock of a turn not held", tu.unlock)
	})

	t.Run("no allocation without contention", func(t *testing.T) {
		var tu turn
		allocs := testing.AllocsPerRun(100, func() {
			if !tu.lock(context.Background()) {
				t.Fatal("free turn not taken")
			}
			tu.unlock()
		})
		assert.Zero(t, allocs)
	})
}
