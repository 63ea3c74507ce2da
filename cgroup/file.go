package cgroup

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/strata-nri/strata/internal/byteconv"
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

// Files reads a cgroup's settings back through files it keeps open, for a
// caller that re-reads the same values every period (drift repair): each
// read is one pread(2) on a kept descriptor instead of an open, a read and
// a close with a path lookup through the cgroup's directories. The values
// and errors are those of the Cgroup method of the same name. Files are
// opened on first use and kept only on cgroupfs, where a removed cgroup's
// open file answers ENODEV; on any other file system (a fixture tree) a
// kept descriptor would go on reading the unlinked file's old content, so
// there every read opens the file by path. Not safe for concurrent use;
// Close releases the descriptors.
type Files struct {
	c     *Cgroup
	files [numKeptFiles]keptFile
	buf   []byte // every kept file but cgroup.procs holds one short value
	pids  []int  // Procs' result, reused
}

// keptFileID names the files Files keeps open.
type keptFileID int

const (
	keptCPUSetCPUs keptFileID = iota
	keptCPUSetMems
	keptCPUShares
	keptCPUQuota // v1 cpu.cfs_quota_us, v2 cpu.max
	keptCPUPeriod
	keptCPUIdle
	keptMemoryMin
	keptMemoryLow
	keptMemoryHigh
	keptMemorySoftLimit
	keptProcs
	numKeptFiles
)

// keptFile is one file of Files: its location once resolved, the kept
// descriptor (-1: none) and the last content read with what it parsed to,
// so a value that did not change is not parsed again (a CPU list parses
// into a map).
type keptFile struct {
	dir, path string
	fd        int
	byPath    bool // not on cgroupfs: read by path every time
	last      []byte
	parsed    any
}

// Files returns c's settings reader (nothing is opened yet).
func (c *Cgroup) Files() *Files {
	f := &Files{c: c, buf: make([]byte, 64)}
	for i := range f.files {
		f.files[i].fd = -1
	}
	return f
}

// Cgroup is the cgroup whose files f reads.
func (f *Files) Cgroup() *Cgroup { return f.c }

// Close closes every kept descriptor. f stays usable: a later read opens
// its file again.
func (f *Files) Close() error {
	var errs []error
	for i := range f.files {
		if k := &f.files[i]; k.fd >= 0 {
			errs = append(errs, syscall.Close(k.fd))
			k.fd = -1
		}
	}
	return errors.Join(errs...)
}

// read returns the trimmed content of file id — controller's v1file or
// v2file — and the kept file, whose parsed value is the caller's cache for
// that content (valid while unchanged is true). The bytes are f's buffer:
// valid until the next read.
func (f *Files) read(id keptFileID, controller, v1file, v2file string) (b []byte, k *keptFile, unchanged bool, err error) {
	k = &f.files[id]
	if k.path == "" {
		dir, file, err := f.c.read(controller, v1file, v2file)
		if err != nil {
			return nil, k, false, err
		}
		k.dir, k.path = dir, filepath.Join(dir, file)
	}
	n, err := k.pread(f.buf)
	for err == nil && n == len(f.buf) && id == keptProcs && n < maxProcsBytes {
		// Might be truncated: grow and read again (once per size).
		f.buf = make([]byte, 2*len(f.buf))
		n, err = k.pread(f.buf)
	}
	if err != nil {
		return nil, k, false, &FileError{Op: "read", Path: k.path, Err: classify(k.dir, k.path, err)}
	}
	if n == len(f.buf) {
		// Not a value this layer knows: the kernel's are far shorter.
		return nil, k, false, &FileError{Op: "read", Path: k.path, Err: fmt.Errorf("more than %d bytes", len(f.buf)-1)}
	}
	b = bytes.TrimSpace(f.buf[:n])
	if k.parsed != nil && bytes.Equal(b, k.last) {
		return b, k, true, nil
	}
	k.last, k.parsed = append(k.last[:0], b...), nil
	return b, k, false, nil
}

// pread reads the file from offset 0 through the kept descriptor, opening
// it first when there is none. A kept descriptor of a removed cgroup
// answers ENODEV: the file is opened again by path once, so a cgroup
// recreated at the same path is followed, and a missing one reports
// ENOENT (which classify turns into ErrVanished).
func (k *keptFile) pread(buf []byte) (int, error) {
	reopened := false
	for {
		if k.fd < 0 {
			fd, err := openKept(k.path)
			if err != nil {
				return 0, err
			}
			k.fd = fd
			if !k.byPath && !onCgroupfs(fd) {
				k.byPath = true
			}
			reopened = true
		}
		n, err := syscall.Pread(k.fd, buf, 0)
		if err == syscall.EINTR {
			continue
		}
		if k.byPath || err != nil {
			syscall.Close(k.fd)
			k.fd = -1
		}
		if (err == syscall.ENODEV || err == syscall.EBADF) && !reopened {
			continue
		}
		return n, err
	}
}

func openKept(path string) (int, error) {
	for {
		fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != syscall.EINTR {
			return fd, err
		}
	}
}

// onCgroupfs reports whether fd is a file of a cgroup (v1 or v2) mount.
func onCgroupfs(fd int) bool {
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil {
		return false
	}
	return st.Type == unix.CGROUP_SUPER_MAGIC || st.Type == unix.CGROUP2_SUPER_MAGIC
}

// readUint, readInt and readMaxInt are the Files versions of the
// functions of the same names above, parsing without allocating.
func (f *Files) readUint(id keptFileID, controller, v1file, v2file string) (uint64, error) {
	b, k, _, err := f.read(id, controller, v1file, v2file)
	if err != nil {
		return 0, err
	}
	v, ok := byteconv.ParseUint(b)
	if !ok {
		return 0, &FileError{Op: "parse", Path: k.path, Value: string(b), Err: errors.New("want an unsigned integer")}
	}
	return v, nil
}

func (f *Files) readInt(id keptFileID, controller, v1file, v2file string) (int64, error) {
	b, k, _, err := f.read(id, controller, v1file, v2file)
	if err != nil {
		return 0, err
	}
	return parseInt(b, k)
}

func (f *Files) readMaxInt(id keptFileID, controller, v1file, v2file string) (int64, error) {
	b, k, _, err := f.read(id, controller, v1file, v2file)
	if err != nil {
		return 0, err
	}
	if string(b) == "max" {
		return -1, nil
	}
	return parseInt(b, k)
}

func parseInt(b []byte, k *keptFile) (int64, error) {
	neg := len(b) > 0 && b[0] == '-'
	digits := b
	if neg {
		digits = b[1:]
	}
	u, ok := byteconv.ParseUint(digits)
	if !ok || u > math.MaxInt64 {
		return 0, &FileError{Op: "parse", Path: k.path, Value: string(b), Err: errors.New("want an integer")}
	}
	if neg {
		return -int64(u), nil
	}
	return int64(u), nil
}
