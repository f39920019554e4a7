package recipes_test

import (
	"bytes"
	"log"
	"os"
	"os/exec"
	"sync"
	"testing"

	"github.com/safeudp/safeudp/udptest"
)

// quicLog captures what quic-go logs (through the standard logger), so
// that a test can tell which path it took. quic-go reads its log level
// from QUIC_GO_LOG_LEVEL when it is initialised, so TestMain runs the
// tests again in a child with the level set.
var quicLog lockedBuffer

func TestMain(m *testing.M) {
	if os.Getenv("QUIC_GO_LOG_LEVEL") == "" {
		cmd := exec.Command(os.Args[0], os.Args[1:]...)
		cmd.Env = append(os.Environ(), "QUIC_GO_LOG_LEVEL=INFO")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			if ee, ok := err.(*exec.ExitError); ok {
				os.Exit(ee.ExitCode())
			}
			log.Fatal(err)
		}
		os.Exit(0)
	}
	log.SetOutput(&quicLog)
	udptest.VerifyTestMain(m)
}

// lockedBuffer is a bytes.Buffer safe for concurrent writes and reads.
type lockedBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
