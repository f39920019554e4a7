package safeudp

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTrackerPanicsOnAReleaseWithoutAcquire: a release without its
// acquire is a bug in the package; it must not reopen a closed tracker or
// end a drain early without a word.
func TestTrackerPanicsOnAReleaseWithoutAcquire(t *testing.T) {
	t.Run("open", func(t *testing.T) {
		var tr inflight
		require.True(t, tr.acquire())
		tr.release()
		tr.release()
		assert.PanicsWithValue(t, "safeudp: released more than acquired", func() { tr.close() }, "caught at close")
	})
	t.Run("closed", func(t *testing.T) {
		var tr inflight
		require.True(t, tr.close())
		assert.PanicsWithValue(t, "safeudp: released more than acquired", tr.release)
	})
	t.Run("closing with calls in flight", func(t *testing.T) {
		var tr inflight
		require.True(t, tr.acquire())
		require.True(t, tr.close())
		tr.release() // the drain ends here
		assert.True(t, tr.closing())
		assert.Zero(t, tr.count())
		assert.PanicsWithValue(t, "safeudp: released more than acquired", tr.release)
	})
}
