package safeudp_test

import (
	"testing"

	"github.com/safeudp/safeudp/udptest"
)

// TestMain fails a passing run that leaves a safeudp conn open, a
// descriptor or a goroutine behind (udptest.VerifyTestMain runs goleak).
func TestMain(m *testing.M) {
	udptest.VerifyTestMain(m)
}
