package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// dirEnv names the directory on the benchmark's disk where the LC service
// keeps its log (with fsync) and the disk antagonist streams.
const (
	dirEnv   = "STRATA_COLOCATION_DIR"
	fsyncEnv = "STRATA_COLOCATION_FSYNC"
)

// benchDisk is a disk of the benchmark's own: an ext4 filesystem on a loop
// device (direct IO to its backing file, bfq scheduler so block IO weights
// and IO priorities act), so the disk antagonist and the LC service's log
// share one device nothing else uses.
type benchDisk struct {
	file, dev, mnt string
}

func setupDisk(sizeMiB int) (d *benchDisk, err error) {
	f, err := os.CreateTemp("/var/tmp", "strata-colocation-disk-*.img")
	if err != nil {
		return nil, err
	}
	d = &benchDisk{file: f.Name()}
	defer func() {
		if err != nil {
			d.remove()
			d = nil
		}
	}()
	if err := f.Truncate(int64(sizeMiB) << 20); err != nil {
		f.Close()
		return d, err
	}
	f.Close()
	out, err := exec.Command("losetup", "--find", "--show", "--direct-io=on", d.file).Output()
	if err != nil {
		return d, fmt.Errorf("losetup %s: %w", d.file, err)
	}
	d.dev = strings.TrimSpace(string(out))
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", d.dev).CombinedOutput(); err != nil {
		return d, fmt.Errorf("mkfs.ext4 %s: %w: %s", d.dev, err, out)
	}
	if d.mnt, err = os.MkdirTemp("", "strata-colocation-mnt-"); err != nil {
		return d, err
	}
	if err := syscall.Mount(d.dev, d.mnt, "ext4", 0, ""); err != nil {
		return d, fmt.Errorf("mount %s on %s: %w", d.dev, d.mnt, err)
	}
	sched := filepath.Join("/sys/block", filepath.Base(d.dev), "queue", "scheduler")
	if err := os.WriteFile(sched, []byte("bfq"), 0); err != nil {
		return d, fmt.Errorf("%s: bfq: %w", sched, err)
	}
	return d, nil
}

func (d *benchDisk) remove() error {
	var errs []error
	if d.mnt != "" {
		for i := 0; i < 50; i++ {
			err := syscall.Unmount(d.mnt, 0)
			if err == nil || errors.Is(err, syscall.EINVAL) {
				break
			}
			if i == 49 {
				errs = append(errs, fmt.Errorf("unmount %s: %w", d.mnt, err))
			}
			time.Sleep(50 * time.Millisecond)
		}
		errs = append(errs, os.Remove(d.mnt))
	}
	if d.dev != "" {
		if out, err := exec.Command("losetup", "-d", d.dev).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("losetup -d %s: %w: %s", d.dev, err, out))
		}
	}
	errs = append(errs, os.Remove(d.file))
	return errors.Join(errs...)
}

// diskStream is the disk antagonist: 1 MiB direct-IO writes, sequential
// over a 256 MiB file on the benchmark's disk, round and round; one
// operation is one MiB written.
func diskStream(ops *atomic.Uint64) {
	path := filepath.Join(os.Getenv(dirEnv), "stream.dat")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|syscall.O_DIRECT, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "disk antagonist:", err)
		os.Exit(1)
	}
	const block, blocks = 1 << 20, 256
	raw := make([]byte, block+4096)
	off := int(4096 - uintptr(unsafe.Pointer(&raw[0]))%4096) // O_DIRECT wants an aligned buffer
	buf := raw[off : off+block]
	for i := range buf {
		buf[i] = byte(i)
	}
	for n := 0; ; n++ {
		if _, err := f.WriteAt(buf, int64(n%blocks)*block); err != nil {
			fmt.Fprintln(os.Stderr, "disk antagonist:", err)
			os.Exit(1)
		}
		ops.Add(1)
	}
}
