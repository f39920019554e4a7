package udptest

import (
	"fmt"
	"sync"
)

// fakeTB records what a helper reports, so that tests can check the
// failure paths without failing themselves.
type fakeTB struct {
	mu       sync.Mutex // guards the fields below
	errors   []string
	fatal    bool
	cleanups []func()
}

var _ TB = (*fakeTB)(nil)

// fatalPanic is what fakeTB.Fatalf panics with; run recovers it.
type fatalPanic struct{}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}

func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.Errorf(format, args...)
	f.mu.Lock()
	f.fatal = true
	f.mu.Unlock()
	panic(fatalPanic{})
}

// run calls fn, stopping it where it calls Fatalf as the testing package
// would.
func (f *fakeTB) run(fn func()) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(fatalPanic); !ok {
				panic(r)
			}
		}
	}()
	fn()
}

// cleanup runs the registered cleanups, last-in first-out.
func (f *fakeTB) cleanup() {
	f.mu.Lock()
	fns := f.cleanups
	f.cleanups = nil
	f.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
}

func (f *fakeTB) errs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.errors...)
}
