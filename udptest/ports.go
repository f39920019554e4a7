package udptest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// maxPortTries bounds how many candidate ports one ReservePorts call looks
// at before it gives up.
const maxPortTries = 4096

// reservations holds the lock of every port this process has reserved and
// not yet returned, so that VerifyNone does not count the lock files'
// descriptors as leaks.
var reservations struct {
	mu    sync.Mutex       // guards ports
	ports map[int]portLock // reserved port -> its machine-wide lock
}

// ReservePort returns a UDP port outside the ephemeral range that is free
// on both 127.0.0.1 and ::1, for a test that must bind, close and bind again
// a port it knows in advance. It is ReservePorts(t, 1, opts...)[0]: its
// failures are reported at the caller's line.
func ReservePort(t TB, opts ...Option) int {
	t.Helper()
	return ReservePorts(t, 1, opts...)[0]
}

// ReserveAddr returns a loopback address with a port reserved as
// ReservePort reserves it, ready for [safeudp.ListenPacket] or [safeudp.DialUDP]:
// "127.0.0.1:N" for "udp4", "[::1]:N" for "udp6", and "127.0.0.1:N" for
// "udp", as Listen binds "udp" on 127.0.0.1 (a "udp" socket on it is an
// IPv4 socket; the port is free on ::1 too, so the test may also bind
// "[::1]:N" itself). It panics for any other network.
func ReserveAddr(t TB, network string, opts ...Option) string {
	t.Helper()
	var host string
	switch network {
	case "udp", "udp4":
		host = "127.0.0.1"
	case "udp6":
		host = "::1"
	default:
		panic(fmt.Sprintf(`udptest: ReserveAddr of unsupported network %q: use "udp", "udp4" or "udp6"`, network))
	}
	return net.JoinHostPort(host, strconv.Itoa(ReservePort(t, opts...)))
}

// ReservePorts returns n distinct UDP ports outside the ephemeral range of
// the system, each free on 127.0.0.1 and on ::1 when it was handed out (::1
// is skipped on a host without IPv6), and each held by a machine-wide lock
// until the test's cleanup: no other ReservePorts call, in this process or
// in any other test binary run by the same user at the same time, gets the
// same port. Ports from ":0" never collide with them, since the kernel picks
// those inside the ephemeral range. A port is handed out only once plain
// net can bind it on both addresses, and the checks never leave a copy of
// their sockets in a child process started meanwhile (os/exec, on Unix):
// the test can bind it at once.
//
// The candidate ports are, on Linux, 1024 up to 65535 minus the range in
// /proc/sys/net/ipv4/ip_local_port_range; elsewhere 7000 to 9999, which is
// outside the default ephemeral ranges of macOS, FreeBSD and Windows. The
// lock is an exclusive lock (flock on Unix, LockFileEx on Windows) on a
// file per port in a directory of the user's own: on Unix
// os.TempDir()/safeudp-ports-<uid>, created with mode 0700 and refused if
// another user owns it or may write to it; on Windows
// os.TempDir()/safeudp-ports-<the user's SID>. Test binaries of different
// users therefore never share locks, nor block each other's. The files are
// left in place, as removing a lock file races with the next locker. On
// other systems the lock covers this process only.
//
// At cleanup, each port goes back to the pool only once it can be bound
// again on 127.0.0.1 and ::1: the cleanup waits up to MaxWait (5 seconds
// unless an option says otherwise) for that and fails the test if the port
// is still bound, since the code under test then left a socket open. Of
// opts, only MaxWait applies. Failures are reported at the caller's line,
// the cleanup's too. Cleanups run last-in first-out, so call
// ReservePorts before opening conns on its ports.
//
// ReservePorts fails the test with t.Fatalf if it cannot take a lock (the
// directory cannot be made, or is refused) or cannot find n free ports, so
// it must be called from the goroutine running the test. It panics if n is
// less than 1.
func ReservePorts(t TB, n int, opts ...Option) []int {
	t.Helper()
	if n < 1 {
		panic(fmt.Sprintf("udptest: ReservePorts of %d ports", n))
	}
	wait := buildOpts(opts...).maxWait
	candidates := portCandidates()
	total := 0
	for _, r := range candidates {
		total += r.hi - r.lo + 1
	}
	if total == 0 {
		t.Fatalf("udptest: ReservePorts: the ephemeral range leaves no port to reserve")
	}
	ports := make([]int, 0, n)
	start := rand.IntN(total)
	tries := min(total, maxPortTries)
	var lastErr error
	for i := 0; i < tries && len(ports) < n; i++ {
		port := nthPort(candidates, (start+i)%total)
		lk, ok, err := lockPort(port)
		if err != nil {
			// The same error would stop every other port: say it now.
			t.Fatalf("udptest: ReservePorts(%d): %v", n, err)
		}
		if !ok {
			continue // another reservation holds it
		}
		if err := portFree(port); err != nil {
			lk.unlock()
			lastErr = err
			continue
		}
		holdPort(port, lk)
		ports = append(ports, port)
		t.Cleanup(func() {
			t.Helper() // reported where ReservePorts was called
			returnPort(t, port, wait)
		})
	}
	if len(ports) < n {
		t.Fatalf("udptest: ReservePorts(%d): found only %d free ports after %d tries in %v (last error: %v); "+
			"free some ports or run fewer tests at once", n, len(ports), tries, candidates, lastErr)
	}
	return ports
}

// portRange is an inclusive range of ports.
type portRange struct{ lo, hi int }

func (r portRange) String() string { return fmt.Sprintf("%d-%d", r.lo, r.hi) }

// portCandidates returns the ranges ReservePorts draws from; a variable so
// that tests can narrow it.
var portCandidates = defaultPortCandidates

func defaultPortCandidates() []portRange {
	eph, ok := ephemeralRange()
	if !ok {
		return []portRange{{7000, 9999}}
	}
	var out []portRange
	if eph.lo > 1024 {
		out = append(out, portRange{1024, eph.lo - 1})
	}
	if eph.hi < 65535 {
		out = append(out, portRange{eph.hi + 1, 65535})
	}
	return out
}

// nthPort returns the i-th port of the ranges, counting from zero.
func nthPort(ranges []portRange, i int) int {
	for _, r := range ranges {
		if size := r.hi - r.lo + 1; i >= size {
			i -= size
			continue
		}
		return r.lo + i
	}
	panic("udptest: port index out of range")
}

// portFree reports, as an error, whether port cannot be bound for UDP on
// 127.0.0.1 or ::1. A host without IPv6 is judged on 127.0.0.1 alone.
//
// Each address is bound by a probe that no child process can copy (see
// probeBind), then, once the probe is closed, bound again as plain net
// binds it (see plainBind): a port is handed out only if the code under
// test can bind it at once. A plain net.ListenPacket here would leave a
// copy of its socket in any child forked meanwhile (under exec noise, a
// few ports in a hundred), still bound when the port was handed out.
func portFree(port int) error {
	for _, a := range []struct {
		network string
		ip      net.IP
	}{
		{"udp4", net.IPv4(127, 0, 0, 1).To4()},
		{"udp6", net.IPv6loopback},
	} {
		addr := &net.UDPAddr{IP: a.ip, Port: port}
		err := probeBind(a.network, addr)
		if err == nil {
			err = plainBind(a.network, addr)
		}
		if err != nil {
			if a.network == "udp6" && noIPv6(err) {
				continue
			}
			return err
		}
	}
	return nil
}

// noIPv6 reports whether err says that the host has no IPv6 loopback.
func noIPv6(err error) bool {
	return errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EAFNOSUPPORT) || errors.Is(err, syscall.EPROTONOSUPPORT)
}

func holdPort(port int, lk portLock) {
	reservations.mu.Lock()
	defer reservations.mu.Unlock()
	if reservations.ports == nil {
		reservations.ports = make(map[int]portLock)
	}
	reservations.ports[port] = lk
}

// returnPort waits until port can be bound again, then unlocks it; if the
// port stays bound, the test fails, and the port is unlocked all the same
// (the next ReservePorts checks that a port is free before handing it out).
func returnPort(t TB, port int, wait time.Duration) {
	t.Helper()
	err := waitPortFree(port, wait)
	reservations.mu.Lock()
	lk := reservations.ports[port]
	delete(reservations.ports, port)
	reservations.mu.Unlock()
	lk.unlock()
	if err != nil {
		t.Errorf("udptest: reserved port %d is still bound %v after the test ended: %v; "+
			"close every conn on it (and every File() copy or child process holding one) before the test ends",
			port, wait, err)
	}
}

// waitPortFree polls until port is free or the wait is over.
func waitPortFree(port int, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	pause := time.Millisecond
	for {
		err := portFree(port)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(pause)
		pause = min(2*pause, 50*time.Millisecond)
	}
}

// heldLockFiles returns the lock files of the ports reserved right now.
func heldLockFiles() []*os.File {
	reservations.mu.Lock()
	defer reservations.mu.Unlock()
	var out []*os.File
	for _, lk := range reservations.ports {
		if lk.f != nil {
			out = append(out, lk.f)
		}
	}
	return out
}

// portLock is a reservation's machine-wide lock on one port.
type portLock struct {
	f    *os.File // the locked file; nil where only the in-process lock exists
	port int
}

// portLockDir returns the directory of the current user's per-port lock
// files, creating it if needed, after checking that it is the user's own
// (see checkLockDir).
func portLockDir() (string, error) {
	owner, err := lockDirOwner()
	if err != nil {
		return "", fmt.Errorf("port lock directory: %w", err)
	}
	dir := filepath.Join(os.TempDir(), "safeudp-ports-"+owner)
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("port lock directory: %w", err)
	}
	if err := checkLockDir(dir); err != nil {
		return "", fmt.Errorf("port lock directory %s: %w", dir, err)
	}
	return dir, nil
}

// lockPort takes the lock of port without waiting. It reports false, with
// no error, if someone else holds it.
func lockPort(port int) (portLock, bool, error) {
	if !lockInProcess(port) {
		return portLock{}, false, nil
	}
	f, ok, err := lockPortFile(port)
	if err != nil || !ok {
		unlockInProcess(port)
		return portLock{}, false, err
	}
	return portLock{f: f, port: port}, true, nil
}

func (lk portLock) unlock() {
	if lk.f != nil {
		_ = lk.f.Close() // closing the descriptor drops the lock
	}
	unlockInProcess(lk.port)
}

// inProcess guards the ports locked by this process, so that two
// reservations in one process never share a port even where the file lock
// is not exclusive between descriptors of one process.
var inProcess struct {
	mu    sync.Mutex // guards ports
	ports map[int]bool
}

func lockInProcess(port int) bool {
	inProcess.mu.Lock()
	defer inProcess.mu.Unlock()
	if inProcess.ports[port] {
		return false
	}
	if inProcess.ports == nil {
		inProcess.ports = make(map[int]bool)
	}
	inProcess.ports[port] = true
	return true
}

func unlockInProcess(port int) {
	inProcess.mu.Lock()
	delete(inProcess.ports, port)
	inProcess.mu.Unlock()
}

// openPortLockFile opens (creating if needed) the lock file of port.
func openPortLockFile(port int) (*os.File, error) {
	dir, err := portLockDir()
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(port)+".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("port lock file: %w", err)
	}
	return f, nil
}
