package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// classify turns an error from the kernel into our typed errors: a missing
// file in a missing directory means the cgroup vanished; a missing file in a
// live directory means the kernel or hierarchy lacks that knob.
func classify(dir, path string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if _, statErr := os.Stat(dir); statErr != nil && errors.Is(statErr, fs.ErrNotExist) {
			return ErrVanished
		}
		return fmt.Errorf("%w: %s does not exist", ErrNotSupported, filepath.Base(path))
	case errors.Is(err, syscall.ENODEV):
		// Writing to a cgroup that was removed after open gives ENODEV.
		return ErrVanished
	}
	return err
}

func readString(dir, name string) (string, error) {
	path := filepath.Join(dir, name)
	b, err := os.ReadFile(path)
	if err != nil {
		return "", &FileError{Op: "read", Path: path, Err: classify(dir, path, err)}
	}
	return strings.TrimSpace(string(b)), nil
}

// writeString writes value with a single write(2), as the kernel expects one
// value per write. O_TRUNC keeps fixture files exact and is ignored by
// cgroupfs.
//
// The file is opened with open(2), not os.OpenFile: cgroupfs files support
// poll, so os.OpenFile registers them with Go's poller, and a write the
// kernel answers with EAGAIN (memory.reclaim when it cannot reclaim the
// whole amount) then waits for writability forever instead of returning.
// Found by the cgroup v2 guest of test/vm.
func writeString(dir, name, value string) error {
	path := filepath.Join(dir, name)
	fd, err := syscall.Open(path, syscall.O_WRONLY|syscall.O_TRUNC|syscall.O_CLOEXEC, 0)
	if err != nil {
		return &FileError{Op: "write", Path: path, Value: value, Err: classify(dir, path, err)}
	}
	var n int
	for {
		n, err = syscall.Write(fd, []byte(value))
		if err != syscall.EINTR {
			break
		}
	}
	if cerr := syscall.Close(fd); err == nil {
		err = cerr
	}
	if err == nil && n != len(value) {
		err = fmt.Errorf("short write: %d of %d bytes", n, len(value))
	}
	if err != nil {
		return &FileError{Op: "write", Path: path, Value: value, Err: classify(dir, path, err)}
	}
	return nil
}

func readUint(dir, name string) (uint64, error) {
	s, err := readString(dir, name)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, &FileError{Op: "parse", Path: filepath.Join(dir, name), Value: s, Err: err}
	}
	return v, nil
}

func readInt(dir, name string) (int64, error) {
	s, err := readString(dir, name)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, &FileError{Op: "parse", Path: filepath.Join(dir, name), Value: s, Err: err}
	}
	return v, nil
}

// readMaxInt reads a cgroup v2 value that is either a number or "max"; "max"
// becomes -1.
func readMaxInt(dir, name string) (int64, error) {
	s, err := readString(dir, name)
	if err != nil {
		return 0, err
	}
	if s == "max" {
		return -1, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, &FileError{Op: "parse", Path: filepath.Join(dir, name), Value: s, Err: err}
	}
	return v, nil
}

func formatMax(v int64) string {
	if v < 0 {
		return "max"
	}
	return strconv.FormatInt(v, 10)
}
