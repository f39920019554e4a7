//go:build !unix && !windows

package udptest

import "os"

// lockPortFile has no machine-wide lock to take on this system: the
// in-process lock taken by lockPort is all there is.
func lockPortFile(port int) (*os.File, bool, error) { return nil, true, nil }

// lockDirOwner and checkLockDir are never called on this system, which has
// no lock files.
func lockDirOwner() (string, error) { return "", nil }

func checkLockDir(dir string) error { return nil }
