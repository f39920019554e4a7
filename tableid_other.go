//go:build !linux && !darwin && !freebsd

package safeudp

// tableID is empty where the release is not looked up in socket tables.
type tableID struct{}
