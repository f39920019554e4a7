package procfd

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks for leaked goroutines with goleak itself: udptest,
// which the other packages' tests use, imports this package, so this
// package's own tests cannot import it.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
