package safeudp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"time"

	"github.com/safeudp/safeudp/internal/listenfds"
)

// defaultUpgradeTimeout bounds an Upgrade whose ctx has no deadline.
const defaultUpgradeTimeout = 30 * time.Second

// ErrUpgradeUnsupported is wrapped by the error of an Upgrade on a system
// where a socket cannot be handed to a child process (Windows).
var ErrUpgradeUnsupported = errors.New("safeudp: upgrade not supported on this system")

// Upgrade starts cmd, the next generation of this program, hands it the
// sockets of conns, and waits until it is ready: until it calls Ready,
// having taken the sockets over with ListenPacket on their addresses.
// Meanwhile this process keeps serving on conns, and while both read,
// the kernel gives each datagram to one of them.
//
// The sockets travel as inherited descriptors, from 3, in systemd's
// convention (LISTEN_FDS, LISTEN_FDNAMES), so a program that takes its
// sockets with ListenPacket accepts them from systemd's socket activation
// as well. A Go parent cannot know its child's pid before exec, so
// LISTEN_PID is not set; SAFEUDP_LISTEN_PARENT names this process
// instead, and the child accepts the sockets only if it is this process's
// child. cmd.Env (os.Environ() if nil) is passed with those variables
// replaced; cmd.ExtraFiles must be empty, since Upgrade fills it.
//
// On success, cmd runs on (it is the caller's to Wait for) and conns stay
// open: close them, which drains their calls. Close then reports success
// for a socket held by the child it was handed to, not ErrHeldElsewhere;
// any other holder is reported as usual. What is queued in the socket
// when this process stops reading is read by the child.
//
// If the child exits, or closes the pipe without Ready, or ctx ends
// first (30s if ctx has no deadline), Upgrade kills and waits for the
// child, and returns an error that says why; conns are untouched and
// keep serving. conns must be open *UDPConn or *UnixConn conns of this
// package (a handle of a Shared socket hands on the socket it shares).
//
// On Windows, Upgrade returns an error wrapping ErrUpgradeUnsupported.
func Upgrade(ctx context.Context, cmd *exec.Cmd, conns ...net.PacketConn) error {
	if runtime.GOOS == "windows" {
		return fmt.Errorf("%w: Windows sockets cannot be inherited through LISTEN_FDS (WSADuplicateSocket is not implemented); "+
			"restart the program instead, or share the socket within one process (ListenConfig.Shared)", ErrUpgradeUnsupported)
	}
	if cmd == nil || len(conns) == 0 {
		return errors.New("safeudp: upgrade needs a command and at least one conn")
	}
	if len(cmd.ExtraFiles) > 0 {
		return errors.New("safeudp: upgrade: cmd.ExtraFiles must be empty: Upgrade passes the sockets there")
	}
	if cmd.Process != nil {
		return errors.New("safeudp: upgrade: cmd was already started")
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultUpgradeTimeout)
		defer cancel()
	}
	files, names, err := handOffFiles(conns)
	defer func() {
		for _, f := range files {
			_ = f.Close()
		}
	}()
	if err != nil {
		return err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("safeudp: upgrade: %w", err)
	}
	defer r.Close()
	env := cmd.Env
	if env == nil {
		env = os.Environ()
	}
	vars, err := listenfds.Env(os.Getpid(), names, listenfds.First+len(files))
	if err != nil {
		_ = w.Close()
		return fmt.Errorf("safeudp: upgrade: %w", err)
	}
	cmd.Env = append(listenfds.Without(env), vars...)
	cmd.ExtraFiles = append(files, w)
	err = cmd.Start()
	_ = w.Close() // the child has its own copy: EOF when it exits
	if err != nil {
		return fmt.Errorf("safeudp: upgrade: start %s: %w", cmd.Path, err)
	}
	if err := awaitReady(ctx, r); err != nil {
		_ = cmd.Process.Kill()
		werr := cmd.Wait()
		if ctx.Err() != nil {
			return fmt.Errorf("safeudp: upgrade: pid %d not ready in time, killed: %w", cmd.Process.Pid, ctx.Err())
		}
		return fmt.Errorf("safeudp: upgrade: pid %d exited before it was ready (%v): %w", cmd.Process.Pid, werr, err)
	}
	for _, pc := range conns {
		coreOf(pc).handOff(cmd.Process.Pid)
	}
	return nil
}

// errNotReady is why an Upgrade's child was not ready: its pipe closed.
var errNotReady = errors.New("its end of the ready pipe closed without Ready")

// awaitReady reads the ready byte from r, or fails when r reaches EOF or
// ctx ends.
func awaitReady(ctx context.Context, r *os.File) error {
	done := make(chan error, 1)
	go func() {
		var b [1]byte
		_, err := io.ReadFull(r, b[:])
		if err == nil && b[0] != readyByte {
			err = fmt.Errorf("the child wrote %q, not the ready byte", b[0])
		} else if err == io.EOF || err == io.ErrUnexpectedEOF {
			err = errNotReady
		}
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		_ = r.SetReadDeadline(time.Unix(1, 0)) // unblock the read: the pipe is pollable
		<-done
		return ctx.Err()
	}
}

// handOffFiles returns a copy of each conn's socket to hand to the
// child, and its name (the conn's network). Each conn is marked exposed:
// its descriptor left this process.
func handOffFiles(conns []net.PacketConn) (files []*os.File, names []string, err error) {
	for _, pc := range conns {
		var fc interface{ File() (*os.File, error) }
		switch c := pc.(type) {
		case *UDPConn:
			fc = c.uc
		case *UnixConn:
			fc = c.uc
		default:
			return files, nil, fmt.Errorf("safeudp: upgrade: a %T cannot be handed on: use a *UDPConn or *UnixConn from ListenPacket", pc)
		}
		c := coreOf(pc)
		c.exposed.Store(true) // before the acquire, as in fileCopy
		if !c.inflight.acquire() {
			return files, nil, c.errClosed("upgrade", c.raddr)
		}
		f, ferr := fc.File()
		c.inflight.release()
		if ferr != nil {
			return files, nil, fmt.Errorf("safeudp: upgrade: %w", ferr)
		}
		files = append(files, f)
		names = append(names, c.network)
	}
	return files, names, nil
}
