package udptest

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/safeudp/safeudp"
	"go.uber.org/goleak"
)

// defaultMaxWait is how long VerifyNone and VerifyTestMain wait, by
// default, for conns, descriptors and goroutines that are still going
// away. goleak's own budget (about 0.4 s) is short for goroutines that are
// still unwinding after a Close.
const defaultMaxWait = 5 * time.Second

// An Option changes what VerifyNone and VerifyTestMain check, and how
// long the cleanup of ReservePorts waits (MaxWait, the one option it
// uses).
type Option interface {
	apply(*options)
}

// options is what the Options build; buildOpts sets the defaults first.
type options struct {
	maxWait     time.Duration
	goleak      []goleak.Option
	ignoreConns map[safeudp.OpenConn]bool // conns open when IgnoreCurrent was built
	fds         fdSnapshot                // the descriptors allowed to be open; nil: the package-init snapshot
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

func buildOpts(opts ...Option) *options {
	o := &options{
		maxWait: defaultMaxWait,
		// The CPU profile's writer runs from before the first test to
		// after the last: it is the testing package's, not a leak.
		goleak: []goleak.Option{goleak.IgnoreAnyFunction("runtime/pprof.profileWriter")},
	}
	for _, opt := range opts {
		opt.apply(o)
	}
	return o
}

// Goleak passes opts to goleak.Find for the goroutine check, for example
// goleak.IgnoreTopFunction for a goroutine a library keeps running on
// purpose. goleak.Cleanup is refused by goleak.Find and so by this check.
func Goleak(opts ...goleak.Option) Option {
	return optionFunc(func(o *options) { o.goleak = append(o.goleak, opts...) })
}

// MaxWait sets how long the checks keep looking while something they would
// report is still going away (a conn whose Close is in progress, a
// goroutine that is unwinding), and how long the cleanup of ReservePort,
// ReservePorts and ReserveAddr waits for a reserved port to be free again.
// The default is 5 seconds; a check that passes returns as soon as it
// passes, whatever the wait.
func MaxWait(d time.Duration) Option {
	return optionFunc(func(o *options) { o.maxWait = d })
}

// IgnoreCurrent ignores the safeudp conns, descriptors and goroutines that
// exist when the option is built, so that a check reports only what was
// opened or started after that point:
//
//	defer udptest.VerifyNone(t, udptest.IgnoreCurrent())
//
// (the arguments of a deferred call are evaluated at the defer statement).
// Conns are matched by network, address and where they were opened.
func IgnoreCurrent() Option {
	conns := make(map[safeudp.OpenConn]bool)
	for _, c := range safeudp.OpenConns() {
		c.InFlight = 0
		conns[c] = true
	}
	fds := takeFDSnapshot()
	g := goleak.IgnoreCurrent()
	return optionFunc(func(o *options) {
		o.ignoreConns = conns
		o.fds = fds
		o.goleak = append(o.goleak, g)
	})
}

// initFDs are the descriptors open when this package was initialized,
// before any test ran: VerifyNone's baseline unless IgnoreCurrent is given.
var initFDs = takeFDSnapshot()

// VerifyNone fails the test, with one t.Errorf per problem, if any of these
// remain after up to MaxWait (5 seconds by default):
//
//   - a safeudp conn of this process that is not fully closed, reported
//     with its network, address and the file:line that opened it;
//   - on Linux, a descriptor open now that was not open when this package
//     was initialized (or when IgnoreCurrent was built), reported with what
//     /proc/self/fd says it is; the Go runtime's own netpoller descriptors,
//     sock_diag netlink sockets (safeudp keeps one open for the life of the
//     process to verify releases), the files the testing package keeps open (the go command's test log,
//     -test.cpuprofile, -test.trace) and the lock files of ReservePorts are
//     not counted. Other systems have no descriptor check;
//   - a goroutine that goleak.Find reports (see Goleak for its options),
//     except the writer of a -test.cpuprofile.
//
// VerifyNone sees the whole process, so it gives false alarms when tests
// run in parallel with the one that calls it, and it counts what a test's
// t.Cleanup functions have not closed yet. With Listen or ReservePorts,
// call it from a cleanup registered before them (cleanups run last-in
// first-out):
//
//	t.Cleanup(func() { udptest.VerifyNone(t) })
//	a, b := udptest.Pair(t, "udp4")
func VerifyNone(t TB, opts ...Option) {
	t.Helper()
	for _, p := range findLeaks(buildOpts(opts...)) {
		t.Errorf("%s", p)
	}
}

// TestingM is the part of *testing.M that VerifyTestMain uses.
type TestingM interface {
	// Run runs the tests and returns the exit status, as testing.M.Run.
	Run() int
}

// VerifyTestMain runs the tests with m.Run and, if they passed, checks what
// VerifyNone checks, with the descriptors open when VerifyTestMain was
// called as the baseline. Problems are printed to standard error and turn
// the exit status into 1. It then calls os.Exit, so call it as the last
// statement of TestMain:
//
//	func TestMain(m *testing.M) { udptest.VerifyTestMain(m) }
func VerifyTestMain(m TestingM, opts ...Option) {
	os.Exit(verifyTestMain(m, os.Stderr, opts...))
}

// verifyTestMain is VerifyTestMain returning the exit status.
func verifyTestMain(m TestingM, stderr io.Writer, opts ...Option) int {
	start := takeFDSnapshot()
	o := buildOpts(opts...)
	if o.fds == nil {
		o.fds = start
	}
	code := m.Run()
	if code != 0 {
		return code
	}
	if problems := findLeaks(o); len(problems) > 0 {
		fmt.Fprintf(stderr, "udptest: errors on a successful test run:\n%s\n", strings.Join(problems, "\n"))
		return 1
	}
	return code
}

// findLeaks looks for open conns, leaked descriptors and goroutines until
// there are none or o.maxWait has passed, and returns what it found last.
func findLeaks(o *options) []string {
	deadline := time.Now().Add(o.maxWait)
	pause := time.Millisecond
	for {
		problems := openConnProblems(o)
		problems = append(problems, fdProblems(o)...)
		if err := goleak.Find(o.goleak...); err != nil {
			problems = append(problems, fmt.Sprintf("udptest: goroutines leaked (stop them before the test ends, or ignore them with udptest.Goleak): %v", err))
		}
		if len(problems) == 0 || time.Now().After(deadline) {
			return problems
		}
		time.Sleep(pause)
		pause = min(2*pause, 100*time.Millisecond)
	}
}

// openConnProblems reports each safeudp conn that is still open.
func openConnProblems(o *options) []string {
	var out []string
	for _, c := range safeudp.OpenConns() {
		inflight := c.InFlight
		c.InFlight = 0
		if o.ignoreConns[c] {
			continue
		}
		out = append(out, fmt.Sprintf("udptest: safeudp conn %s %s opened at %s is still open (%d calls in flight); "+
			"close it before the test ends, for example with t.Cleanup, or open it with udptest.Listen",
			c.Network, c.Addr, c.OpenedAt, inflight))
	}
	sort.Strings(out)
	return out
}

// fdProblems reports each descriptor open now that the baseline does not
// have.
func fdProblems(o *options) []string {
	base := o.fds
	if base == nil {
		base = initFDs
	}
	now := takeFDSnapshot()
	if now == nil || base == nil {
		return nil // no descriptor check on this system
	}
	held := make(map[int]bool)
	for _, f := range heldLockFiles() {
		held[int(f.Fd())] = true
	}
	testing := testingFiles()
	var fds []int
	for fd, what := range now {
		if held[fd] || runtimeFD(what) || base[fd] == what || testing[what] {
			continue
		}
		fds = append(fds, fd)
	}
	sort.Ints(fds)
	out := make([]string, 0, len(fds))
	for _, fd := range fds {
		out = append(out, fmt.Sprintf("udptest: descriptor %d (%s) was opened since the baseline and is still open; "+
			"close it (a conn, a File() copy, a file or pipe) before the test ends", fd, describeFD(now[fd])))
	}
	return out
}

// testingFiles returns the files that the testing package keeps open
// while tests run, named by its -test.* flags (the go command's test log,
// a CPU profile, an execution trace), as absolute paths.
func testingFiles() map[string]bool {
	out := make(map[string]bool)
	dir := ""
	if f := flag.Lookup("test.outputdir"); f != nil {
		dir = f.Value.String()
	}
	for _, name := range []string{"test.testlogfile", "test.cpuprofile", "test.trace"} {
		f := flag.Lookup(name)
		if f == nil || f.Value.String() == "" {
			continue
		}
		path := f.Value.String()
		if abs, err := filepath.Abs(path); err == nil {
			out[abs] = true
		}
		if dir != "" && !filepath.IsAbs(path) {
			if abs, err := filepath.Abs(filepath.Join(dir, path)); err == nil {
				out[abs] = true
			}
		}
	}
	return out
}
