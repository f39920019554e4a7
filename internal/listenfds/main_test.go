package listenfds

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks for leaked goroutines (goleak itself: udptest imports
// internal packages).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
