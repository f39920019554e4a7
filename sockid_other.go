//go:build !linux

package safeudp

import "net"

// diagKey is empty: there is no sock_diag outside Linux.
type diagKey struct{}

// identify records nothing outside Linux.
func (c *core) identify(pc net.PacketConn) {}

// fdInode is not needed outside Linux.
func fdInode(fd int) uint64 { return 0 }
