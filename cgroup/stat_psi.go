package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// PSIResource names a pressure stall information resource, as the kernel
// spells it in /proc/pressure and in a cgroup's "<resource>.pressure" file.
type PSIResource string

// The PSI resources of Linux 4.20+ (irq, 6.1+, exists only node-wide).
const (
	PSICPU    PSIResource = "cpu"
	PSIMemory PSIResource = "memory"
	PSIIO     PSIResource = "io"
)

// Valid reports whether r is one of cpu, memory and io.
func (r PSIResource) Valid() bool { return r == PSICPU || r == PSIMemory || r == PSIIO }

// PressureFile is the path of the cgroup's PSI file for a resource. It lives
// in the cgroup2 mount in both V2 and Hybrid mode; pure v1 has none
// (ErrNotSupported).
//
// On a Hybrid host the cgroup2 directory is a separate cgroup at the same
// path: it reports the stalls of the processes placed in it. runc (and so
// containerd and CRI-O) places a container's processes there too, so the
// file describes the container; a cgroup created without that step has no
// directory there and the file does not exist. Callers treat a missing file
// as "no per-cgroup PSI", not as a vanished cgroup.
func (c *Cgroup) PressureFile(r PSIResource) (string, error) {
	if !r.Valid() {
		return "", fmt.Errorf("cgroup %s: PSI resource %q: want cpu, memory or io", c.path, r)
	}
	dir, err := c.UnifiedDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, string(r)+".pressure"), nil
}

// JoinUnified places pid in the cgroup's directory of the cgroup2 mount on a
// Hybrid host, creating the directory, as runc does for containers on such
// hosts, so that the cgroup gets per-cgroup PSI. On V2 it is AddProc; on pure
// v1 it is ErrNotSupported. Remove deletes the directory with the others.
func (c *Cgroup) JoinUnified(pid int) error {
	switch c.h.mode {
	case V2:
		return c.AddProc(pid)
	case Hybrid:
	default:
		return fmt.Errorf("%w: no cgroup2 mount", ErrNotSupported)
	}
	dir, err := c.UnifiedDir()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("cgroup: create %s: %w", dir, err)
	}
	return writeString(dir, "cgroup.procs", strconv.Itoa(pid))
}
