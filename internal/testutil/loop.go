package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
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

// LoopOptions are the choices of NewLoopDeviceWith.
type LoopOptions struct {
	// Written fills the backing file with data instead of leaving it
	// sparse, on a disk-backed directory with direct IO (the test skips
	// when there is none, and fails if the loop driver refuses direct IO):
	// every read of the device is then a read of the disk below it. A
	// sparse file's holes are served as zeros without device time, so
	// readers of such a device contend for CPU, not for the disk. Filling
	// costs the time to write size bytes.
	Written bool
}

// NewLoopDevice creates a sparse file of size bytes in a disk-backed
// temporary directory and attaches it to a free loop device, as
// "losetup --find --show --direct-io=on" does, through the kernel's ioctls
// so that it needs no util-linux (the v2 VM tier has none). Direct IO to
// the backing file keeps the host's page cache out of what the device
// serves. Device and file are removed when the test ends, also on failure.
func NewLoopDevice(tb testing.TB, size int64) LoopDevice {
	tb.Helper()
	return NewLoopDeviceWith(tb, size, LoopOptions{})
}

// NewLoopDeviceWith is NewLoopDevice with options.
func NewLoopDeviceWith(tb testing.TB, size int64, opts LoopOptions) LoopDevice {
	tb.Helper()
	RequireRoot(tb)
	RequireFeature(tb, Loop)
	dir, direct := diskTempDir(tb)
	if dir == "" {
		if opts.Written {
			tb.Skip("no disk-backed temporary directory for a written loop device (/var/tmp and $TMPDIR are tmpfs)")
		}
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
	if opts.Written {
		if err := fill(file, size); err != nil {
			tb.Fatalf("fill %s: %v", file, err)
		}
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
		if opts.Written {
			// The driver falls back to buffered IO, silently, when the
			// backing file's filesystem cannot take the device's block
			// size directly; reads would then hit the page cache.
			dio, err := os.ReadFile(filepath.Join("/sys/block", dev.Name, "loop/dio"))
			if err != nil || string(dio) != "1\n" {
				tb.Fatalf("%s over %s: direct IO not in effect (loop/dio %q, %v)", dev.Path, file, dio, err)
			}
		}
		return dev
	}
}

// fill writes every block of the file at path, size bytes, with O_DIRECT
// (the page cache keeps nothing of it) and a non-zero pattern.
func fill(path string, size int64) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	const bs = 1 << 20
	buf, err := unix.Mmap(-1, 0, bs, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return err
	}
	defer unix.Munmap(buf)
	for off := int64(0); off < size; off += bs {
		for i := 0; i < bs; i += 4096 {
			buf[i], buf[i+1] = byte(off>>20), byte(i>>12) // every 4 KiB block differs
		}
		n := min(int64(bs), size-off)
		if _, err := unix.Pwrite(fd, buf[:n], off); err != nil {
			return fmt.Errorf("write at %d: %w", off, err)
		}
	}
	return unix.Fdatasync(fd)
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

// RequireIOScheduler skips tb, with the reason, unless the block device
// named device offers the IO scheduler sched among offered (its
// queue/scheduler list, e.g. iolimit's Device.Schedulers); see
// RequireFeature.
func RequireIOScheduler(tb testing.TB, device string, offered []string, sched string) {
	tb.Helper()
	if slices.Contains(offered, sched) {
		return
	}
	RequireFeature(tb, Feature{
		Name:   sched + " IO scheduler",
		Probe:  func() error { return fmt.Errorf("%s offers %v", device, offered) },
		Absent: func() string { return sched + " is neither built in nor loaded (modprobe " + sched + ")" },
	})
}
