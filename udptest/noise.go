package udptest

import (
	"context"
	"fmt"
	"os/exec"
	"runtime"
	"sync"
)

// ExecNoise starts goroutines that each start a trivial child process in
// a loop ("true", or "cmd /c exit" on Windows) until the test's cleanup,
// which stops them and waits for them. It reproduces, in a test of your
// own, the race behind most "address already in use" errors after a
// Close: every fork copies every descriptor of the process into the child
// until the child execs, so a socket closed meanwhile stays bound for a
// moment. Two goroutines keep a child between fork and exec about nearly
// all the time on a 2-core machine; plain net fails a few close-then-bind
// cycles in a hundred under it, safeudp none.
//
// Cleanups run last-in first-out: call ExecNoise before opening the conns
// (and before ReservePort), so that the noise stops only after they are
// closed. ExecNoise fails the test with t.Fatalf if no trivial command can
// be found, so it must be called from the goroutine running the test. It
// panics if goroutines is less than 1.
func ExecNoise(t TB, goroutines int) {
	t.Helper()
	if goroutines < 1 {
		panic(fmt.Sprintf("udptest: ExecNoise with %d goroutines", goroutines))
	}
	name, args, err := trivialCommand()
	if err != nil {
		t.Fatalf("udptest: ExecNoise: %v", err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for ctx.Err() == nil {
				_ = exec.Command(name, args...).Run()
			}
		})
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
}

// trivialCommand returns a command that starts and exits at once.
func trivialCommand() (name string, args []string, err error) {
	if runtime.GOOS == "windows" {
		path, err := exec.LookPath("cmd")
		if err != nil {
			return "", nil, fmt.Errorf("no cmd.exe to start: %w", err)
		}
		return path, []string{"/c", "exit"}, nil
	}
	for _, p := range []string{"/bin/true", "/usr/bin/true"} {
		if path, err := exec.LookPath(p); err == nil {
			return path, nil, nil
		}
	}
	path, err := exec.LookPath("true")
	if err != nil {
		return "", nil, fmt.Errorf("no true(1) to start: %w", err)
	}
	return path, nil, nil
}
