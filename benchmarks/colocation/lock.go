package main

import (
	"fmt"
	"os"
	"syscall"
)

// measureLock, when set (-lock), is a file every measured section holds an
// exclusive flock(2) on — the same lock `flock FILE cmd` takes — so a long
// run shares a machine with other measurements section by section (one
// load level of one repeat, one reaction period, one overhead point)
// instead of holding it for the whole run.
var measureLock string

// locked runs f holding measureLock, when one is set.
func locked(f func() error) error {
	if measureLock == "" {
		return f()
	}
	fd, err := os.OpenFile(measureLock, os.O_RDONLY|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("measurement lock: %w", err)
	}
	defer fd.Close()
	if err := syscall.Flock(int(fd.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("measurement lock %s: %w", measureLock, err)
	}
	defer syscall.Flock(int(fd.Fd()), syscall.LOCK_UN)
	return f()
}
