package safeudp

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeSteps is a conn type whose release is cut short while its ctx has
// ended, as a transient holder cuts core's short.
type fakeSteps struct {
	l        *lifecycle
	releases int
}

func (f *fakeSteps) startClose(context.Context) { f.l.underlyingDone() }

func (f *fakeSteps) closeMayBlock() bool { return true }

func (f *fakeSteps) release(ctx context.Context) (int, error) {
	f.releases++
	if ctx.Err() != nil {
		return 1, &incompleteRelease{err: &ReleaseError{Network: "udp4", Addr: "127.0.0.1:1",
			Holders: []Holder{{Kind: HolderForking, PID: 42}}}}
	}
	return 1, nil
}

func TestAReleaseCutShortIsFinishedByTheNextCloser(t *testing.T) {
	var l lifecycle
	l.initLifecycle("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, nil, 0, nil)
	f := &fakeSteps{l: &l}
	done, cancel := context.WithCancel(context.Background())
	cancel()

	err := l.shutdown(done, f)
	require.ErrorIs(t, err, context.Canceled, "Shutdown returns at once")
	require.ErrorIs(t, err, ErrNotReleased, "naming the holder it could not wait for")
	assert.Contains(t, err.Error(), "release has not completed")
	assert.False(t, l.released.Load(), "the release is left to the next closer")
	assert.True(t, l.inflight.closing(), "the conn is shut down all the same")

	require.NoError(t, l.closeSequence(context.Background(), f, true), "a later Close finishes the job and reports")
	assert.Equal(t, 2, f.releases)
	err = l.shutdown(done, f)
	require.ErrorIs(t, err, net.ErrClosed)
	assert.False(t, errors.Is(err, ErrNotReleased), "the release completed: nothing more to report")
	assert.Equal(t, 2, f.releases, "the release runs to its end once")
}
