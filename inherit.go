package safeudp

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"

	"github.com/safeudp/safeudp/internal/listenfds"
)

// Sockets this process inherited: from a parent's Upgrade, or from
// systemd's socket activation (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES;
// see internal/listenfds). They are read once, at the first listen, and
// each is marked close-on-exec at once so that it reaches no child of
// ours. ListenPacket takes one over when its address matches; Ready
// closes the datagram sockets nobody took.

// inheritedSocket is one inherited datagram socket, as a conn of net's.
type inheritedSocket struct {
	name  string         // its LISTEN_FDNAMES name
	pc    net.PacketConn // net's conn on it (a dup; the inherited descriptor is closed)
	taken bool           // returned by a listen; Ready leaves it
}

// inherited is what this process was handed.
var inherited struct {
	once  sync.Once
	mu    sync.Mutex // guards socks and ready, after once
	socks []*inheritedSocket
	ready *os.File // the write end of the Upgrade parent's ready pipe, or nil
	err   error    // why the variables could not be read; fixed by once
}

// loadInherited reads the inherited sockets, once.
func loadInherited() error {
	inherited.once.Do(func() {
		if runtime.GOOS == "windows" {
			return // no descriptor inheritance through LISTEN_FDS there
		}
		set, err := listenfds.Parse(os.Getenv, os.Getpid(), os.Getppid())
		if err != nil {
			inherited.err = fmt.Errorf("safeudp: the inherited sockets cannot be read (fix or unset the variables): %w", err)
			return
		}
		for _, fd := range set.FDs {
			if listenfds.Take(fd.Num) != nil {
				continue // not open: nothing to take
			}
			f := os.NewFile(uintptr(fd.Num), fd.Name)
			pc, err := net.FilePacketConn(f)
			if err != nil {
				// Not a datagram socket (a stream socket for other
				// code of this program, say): left as it is, unclosed.
				continue
			}
			_ = f.Close()
			inherited.socks = append(inherited.socks, &inheritedSocket{name: fd.Name, pc: pc})
		}
		if set.Ready >= 0 && listenfds.Take(set.Ready) == nil {
			inherited.ready = os.NewFile(uintptr(set.Ready), "safeudp-ready")
		}
	})
	return inherited.err
}

// takeInherited returns the inherited socket bound to network and
// address, taken over, or nil if there is none.
func takeInherited(network, address string) (net.PacketConn, error) {
	if err := loadInherited(); err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	inherited.mu.Lock()
	defer inherited.mu.Unlock()
	for _, s := range inherited.socks {
		if s.taken || !inheritedNetworkMatches(s, network) || !addrMatches(network, address, s.pc.LocalAddr()) {
			continue
		}
		s.taken = true
		return s.pc, nil
	}
	return nil, nil
}

// inheritedNetworkMatches reports whether s can serve a listen on
// network: by the network an Upgrade named it with, or else (systemd
// names sockets as it likes) by its kind of address.
func inheritedNetworkMatches(s *inheritedSocket, network string) bool {
	switch s.name {
	case "udp", "udp4", "udp6", "unixgram":
		return s.name == network
	}
	switch s.pc.LocalAddr().(type) {
	case *net.UDPAddr:
		return network != "unixgram"
	case *net.UnixAddr:
		return network == "unixgram"
	}
	return false
}

// Ready says that this process is ready to serve: the process that
// started it with Upgrade then drains its calls and closes its side. Take
// every inherited socket over (ListenPacket on its address) before Ready:
// Ready closes the inherited datagram sockets that no listen took, so that
// none keeps a port bound by accident. Inherited descriptors that are not
// datagram sockets are left alone.
//
// A process that was not started by Upgrade (by systemd, or by hand) may
// call Ready too: it only closes the sockets nobody took. Calling Ready
// again does nothing. The error says why the parent could not be told.
func Ready() error {
	if err := loadInherited(); err != nil {
		return err
	}
	inherited.mu.Lock()
	defer inherited.mu.Unlock()
	for _, s := range inherited.socks {
		if !s.taken {
			_ = s.pc.Close()
			s.taken = true // closed: never taken after Ready
		}
	}
	r := inherited.ready
	inherited.ready = nil
	if r == nil {
		return nil
	}
	_, err := r.Write([]byte{readyByte})
	if cerr := r.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("safeudp: ready: the parent cannot be told: %w", err)
	}
	return nil
}

// readyByte is what Ready writes on the parent's pipe.
const readyByte = 'R'
