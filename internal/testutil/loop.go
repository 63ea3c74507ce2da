package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Loop is the feature "loop block devices" (/dev/loop-control). It is truly
// absent when the kernel has no loop driver (no /sys/module/loop, built in
// or loaded).
var Loop = Feature{
	Name: "loop block devices (/dev/loop-control)",
	Probe: func() error {
		fd, err := unix.Open("/dev/loop-control", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		return unix.Close(fd)
	},
	Absent: func() string {
		if _, err := os.Stat("/sys/module/loop"); err != nil {
			return "the kernel has no loop driver (/sys/module/loop is absent)"
		}
		return ""
	},
}

// LoopDevice is a loop block device a test created.
type LoopDevice struct {
	// Path is the device node, "/dev/loopN"; Name is "loopN".
	Path, Name string
	// Major and Minor are its device number.
	Major, Minor uint32
}

// NewLoopDevice creates a sparse file of size bytes in a disk-backed
// temporary directory and attaches it to a free loop device, as
// "losetup --find --show --direct-io=on" does, through the kernel's ioctls
// so that it needs no util-linux (the v2 VM tier has none). Direct IO to
// the backing file keeps the host's page cache out of what the device
// serves. Device and file are removed when the test ends, also on failure.
func NewLoopDevice(tb testing.TB, size int64) LoopDevice {
	tb.Helper()
	RequireRoot(tb)
	RequireFeature(tb, Loop)
	dir, direct := diskTempDir(tb)
	if dir == "" {
		// A VM booted from an initramfs has only tmpfs; the loop driver
		// then reads the file through the page cache (tmpfs has no
		// O_DIRECT), which still gives a real block device to throttle.
		dir = tb.TempDir()
	}
	file := filepath.Join(dir, "loop.img")
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		tb.Fatal(err)
	}
	ctl, err := unix.Open("/dev/loop-control", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		tb.Fatal(err)
	}
	defer unix.Close(ctl)
	for try := 0; ; try++ {
		n, err := unix.IoctlRetInt(ctl, unix.LOOP_CTL_GET_FREE)
		if err != nil {
			tb.Fatalf("LOOP_CTL_GET_FREE: %v", err)
		}
		dev := LoopDevice{Path: fmt.Sprintf("/dev/loop%d", n), Name: fmt.Sprintf("loop%d", n)}
		fd, err := openWhenThere(dev.Path)
		if err != nil {
			tb.Fatal(err)
		}
		cfg := unix.LoopConfig{Fd: uint32(f.Fd()), Size: 0}
		if direct {
			cfg.Info.Flags = unix.LO_FLAGS_DIRECT_IO
		}
		copy(cfg.Info.File_name[:], file)
		err = unix.IoctlLoopConfigure(fd, &cfg)
		if err == unix.EBUSY && try < 10 {
			unix.Close(fd) // another process took it between the two calls
			continue
		}
		if err != nil {
			unix.Close(fd)
			tb.Fatalf("LOOP_CONFIGURE %s with %s: %v", dev.Path, file, err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			tb.Fatal(err)
		}
		dev.Major, dev.Minor = unix.Major(st.Rdev), unix.Minor(st.Rdev)
		tb.Cleanup(func() {
			if err := unix.IoctlSetInt(fd, unix.LOOP_CLR_FD, 0); err != nil {
				tb.Errorf("cleanup: detach %s: %v", dev.Path, err)
			}
			unix.Close(fd)
		})
		return dev
	}
}

// openWhenThere opens a device node devtmpfs may still be creating.
func openWhenThere(path string) (int, error) {
	deadline := time.Now().Add(2 * time.Second)
	for {
		fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err == nil || err != unix.ENOENT || time.Now().After(deadline) {
			if err != nil {
				return -1, fmt.Errorf("open %s: %w", path, err)
			}
			return fd, nil
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// DiskTempDir is a temporary directory on a disk-backed filesystem (not
// tmpfs or ramfs), removed when the test ends; the test skips when there is
// none.
func DiskTempDir(tb testing.TB) string {
	tb.Helper()
	dir, _ := diskTempDir(tb)
	if dir == "" {
		tb.Skip("no disk-backed temporary directory (/var/tmp and $TMPDIR are tmpfs)")
	}
	return dir
}

func diskTempDir(tb testing.TB) (string, bool) {
	for _, base := range []string{"/var/tmp", os.TempDir()} {
		var sfs unix.Statfs_t
		if err := unix.Statfs(base, &sfs); err != nil || sfs.Type == unix.TMPFS_MAGIC || sfs.Type == unix.RAMFS_MAGIC {
			continue
		}
		dir, err := os.MkdirTemp(base, "strata-test-")
		if err != nil {
			continue
		}
		tb.Cleanup(func() { os.RemoveAll(dir) })
		return dir, true
	}
	return "", false
}
