package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Cgroup is one cgroup, identified by its path relative to the hierarchy
// root. On cgroup v1 it spans one directory per controller hierarchy. Values
// are read and written by meaning; the layer picks the file and unit.
type Cgroup struct {
	h    *Hierarchy
	path string
}

// Path is the cgroup's path relative to the hierarchy root, beginning with
// "/".
func (c *Cgroup) Path() string { return c.path }

// Hierarchy is the hierarchy this cgroup belongs to.
func (c *Cgroup) Hierarchy() *Hierarchy { return c.h }

// Child returns the cgroup name below c (name must be one path element).
func (c *Cgroup) Child(name string) (*Cgroup, error) {
	if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
		return nil, fmt.Errorf("%w: child name %q", ErrInvalidPath, name)
	}
	return &Cgroup{h: c.h, path: filepath.Join(c.path, name)}, nil
}

// Dir is the directory of this cgroup for a controller (v1 spelling). On v2
// every controller maps to the one unified directory.
func (c *Cgroup) Dir(controller string) (string, error) {
	if c.h.mode == V2 {
		if controller != "" && !c.h.available[v2Name(controller)] {
			return "", fmt.Errorf("%w: %s (cgroup v2 root offers %v)", ErrNoController, controller, c.h.Controllers())
		}
		return filepath.Join(c.h.unified, c.path), nil
	}
	root, ok := c.h.controllers[controller]
	if !ok {
		return "", fmt.Errorf("%w: %s is not mounted (mounted: %v)", ErrNoController, controller, c.h.Controllers())
	}
	return filepath.Join(root, c.path), nil
}

// UnifiedDir is the cgroup's directory in the cgroup2 mount (v2 or hybrid),
// where PSI files and BPF attach points live.
func (c *Cgroup) UnifiedDir() (string, error) {
	if c.h.unified == "" {
		return "", fmt.Errorf("%w: no cgroup2 mount", ErrNotSupported)
	}
	return filepath.Join(c.h.unified, c.path), nil
}

// Exists reports whether the cgroup's directory exists (for v1, in the cpu
// hierarchy, or the first mounted controller).
func (c *Cgroup) Exists() bool {
	dir, err := c.anyDir()
	if err != nil {
		return false
	}
	_, err = os.Stat(dir)
	return err == nil
}

func (c *Cgroup) anyDir() (string, error) {
	if c.h.mode == V2 {
		return c.Dir("")
	}
	if _, ok := c.h.controllers[CPU]; ok {
		return c.Dir(CPU)
	}
	keys := sortedKeys(c.h.controllers)
	if len(keys) == 0 {
		return "", ErrNoController
	}
	return c.Dir(keys[0])
}

// Remove deletes the cgroup directory in every hierarchy. A cgroup that is
// already gone is not an error. The cgroup must have no processes and no
// children.
func (c *Cgroup) Remove() error {
	dirs := map[string]bool{}
	if c.h.mode == V2 {
		dirs[filepath.Join(c.h.unified, c.path)] = true
	} else {
		for _, root := range c.h.controllers {
			dirs[filepath.Join(root, c.path)] = true
		}
		if c.h.unified != "" {
			dirs[filepath.Join(c.h.unified, c.path)] = true
		}
	}
	var errs []error
	for dir := range dirs {
		if err := syscall.Rmdir(dir); err != nil && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("cgroup: remove %s: %w", dir, err))
		}
	}
	return errors.Join(errs...)
}

func (c *Cgroup) read(controller, v1file, v2file string) (string, string, error) {
	dir, err := c.Dir(controller)
	if err != nil {
		return "", "", err
	}
	if c.h.mode == V2 {
		if v2file == "" {
			return "", "", fmt.Errorf("%w: %s on cgroup v2", ErrNotSupported, v1file)
		}
		return dir, v2file, nil
	}
	if v1file == "" {
		return "", "", fmt.Errorf("%w: %s on cgroup v1", ErrNotSupported, v2file)
	}
	return dir, v1file, nil
}
