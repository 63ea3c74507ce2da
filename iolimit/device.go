package iolimit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"

	"github.com/strata-nri/strata/cgroup"
)

// Options says where the kernel's trees are. Every root is a parameter so
// tests run against fixture trees.
type Options struct {
	// SysRoot is the sysfs mount; default "/sys".
	SysRoot string
	// ProcRoot is the procfs mount, for self/mountinfo; default "/proc".
	ProcRoot string
	// DevRoot replaces the leading "/dev" of device paths (class Devices
	// patterns, mount sources); default "/dev".
	DevRoot string
}

func (o Options) withDefaults() Options {
	if o.SysRoot == "" {
		o.SysRoot = "/sys"
	}
	if o.ProcRoot == "" {
		o.ProcRoot = "/proc"
	}
	if o.DevRoot == "" {
		o.DevRoot = "/dev"
	}
	return o
}

// Device is a whole block device, where the kernel applies throttling and
// weights (it refuses a partition's number in blkio and io files).
type Device struct {
	// Num is the whole disk's major:minor.
	Num cgroup.DevNum
	// Name is the kernel's name ("sda", "nvme0n1", "loop3").
	Name string
	// Partition is the partition the device was resolved from ("sda1"),
	// or "".
	Partition string
	// Scheduler is the active IO scheduler ("bfq", "mq-deadline",
	// "none"); Schedulers lists those the device offers. Both are empty
	// for a device without a request queue scheduler file.
	Scheduler  string
	Schedulers []string
}

func (d Device) String() string {
	s := fmt.Sprintf("%s (%s)", d.Name, d.Num)
	if d.Partition != "" {
		s += " from partition " + d.Partition
	}
	return s
}

// Resolver finds block devices in sysfs: from a number, a name or a path on
// a filesystem. It holds no state besides its roots.
type Resolver struct {
	opts Options
}

// NewResolver returns a Resolver over the given roots.
func NewResolver(opts Options) *Resolver { return &Resolver{opts: opts.withDefaults()} }

// ByNumber validates major:minor against sysfs /sys/dev/block and returns
// its whole disk: a partition's number resolves to the disk it is on.
func (r *Resolver) ByNumber(num cgroup.DevNum) (Device, error) {
	link := filepath.Join(r.opts.SysRoot, "dev", "block", num.String())
	dir, err := filepath.EvalSymlinks(link)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Device{}, fmt.Errorf("iolimit: block device %s: %w (no %s)", num, ErrUnknownDevice, link)
		}
		return Device{}, fmt.Errorf("iolimit: block device %s: %w", num, err)
	}
	var d Device
	if _, err := os.Stat(filepath.Join(dir, "partition")); err == nil {
		d.Partition = filepath.Base(dir)
		dir = filepath.Dir(dir)
	}
	d.Name = filepath.Base(dir)
	devFile := filepath.Join(dir, "dev")
	b, err := os.ReadFile(devFile)
	if err != nil {
		return Device{}, fmt.Errorf("iolimit: block device %s: %w", num, err)
	}
	if d.Num, err = cgroup.ParseDevNum(strings.TrimSpace(string(b))); err != nil {
		return Device{}, fmt.Errorf("iolimit: %s: %w", devFile, err)
	}
	if d.Partition == "" && d.Num != num {
		return Device{}, fmt.Errorf("iolimit: %s says %s, not %s", devFile, d.Num, num)
	}
	d.Scheduler, d.Schedulers, err = r.scheduler(dir)
	if err != nil {
		return Device{}, err
	}
	return d, nil
}

// scheduler reads queue/scheduler: "none [mq-deadline] kyber bfq".
func (r *Resolver) scheduler(dir string) (string, []string, error) {
	file := filepath.Join(dir, "queue", "scheduler")
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil, nil
	}
	if err != nil {
		return "", nil, fmt.Errorf("iolimit: %w", err)
	}
	var active string
	var all []string
	for _, f := range strings.Fields(string(b)) {
		if strings.HasPrefix(f, "[") && strings.HasSuffix(f, "]") {
			f = f[1 : len(f)-1]
			active = f
		}
		all = append(all, f)
	}
	if len(all) == 1 { // a queue with one choice prints it without brackets
		active = all[0]
	}
	if active == "" {
		return "", nil, fmt.Errorf("iolimit: %s: %q shows no active scheduler", file, strings.TrimSpace(string(b)))
	}
	return active, all, nil
}

// ByName returns the device named "sda" (a kernel name, looked up in
// /sys/class/block) or "/dev/sda" (a device node, stat'ed below DevRoot).
func (r *Resolver) ByName(name string) (Device, error) {
	if strings.Contains(name, "/") {
		return r.ByPath(name)
	}
	if name == "" || name == "." || name == ".." {
		return Device{}, fmt.Errorf("iolimit: block device name %q: %w", name, ErrUnknownDevice)
	}
	file := filepath.Join(r.opts.SysRoot, "class", "block", name, "dev")
	b, err := os.ReadFile(file)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Device{}, fmt.Errorf("iolimit: block device %q: %w (no %s)", name, ErrUnknownDevice, file)
		}
		return Device{}, fmt.Errorf("iolimit: block device %q: %w", name, err)
	}
	num, err := cgroup.ParseDevNum(strings.TrimSpace(string(b)))
	if err != nil {
		return Device{}, fmt.Errorf("iolimit: %s: %w", file, err)
	}
	return r.ByNumber(num)
}

// devPath maps "/dev/..." below DevRoot.
func (r *Resolver) devPath(p string) string {
	if rest, ok := strings.CutPrefix(p, "/dev/"); ok {
		return filepath.Join(r.opts.DevRoot, rest)
	}
	return p
}

// ByPath returns the device behind path: a block device node gives its own
// device; any other file gives the device of the filesystem it lives on
// (a partition resolves to its disk). A filesystem with no block device
// (tmpfs, proc, an overlay) is ErrNoBlockDevice naming the filesystem; a
// filesystem that reports an anonymous device number (btrfs) is looked up
// in mountinfo and resolved through its mount source.
func (r *Resolver) ByPath(path string) (Device, error) {
	p := r.devPath(path)
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return Device{}, fmt.Errorf("iolimit: device of %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFBLK {
		return r.ByNumber(cgroup.DevNum{Major: unix.Major(st.Rdev), Minor: unix.Minor(st.Rdev)})
	}
	if st.Mode&unix.S_IFMT == unix.S_IFCHR {
		return Device{}, fmt.Errorf("iolimit: %s is a character device: %w", path, ErrNoBlockDevice)
	}
	num := cgroup.DevNum{Major: unix.Major(st.Dev), Minor: unix.Minor(st.Dev)}
	if _, err := os.Lstat(filepath.Join(r.opts.SysRoot, "dev", "block", num.String())); err == nil {
		return r.ByNumber(num)
	}
	m, err := r.mountOf(num, p)
	if err != nil {
		return Device{}, fmt.Errorf("iolimit: device of %s (filesystem device %s): %w", path, num, err)
	}
	if strings.HasPrefix(m.Source, "/dev/") {
		var sst unix.Stat_t
		if err := unix.Stat(r.devPath(m.Source), &sst); err == nil && sst.Mode&unix.S_IFMT == unix.S_IFBLK {
			d, err := r.ByNumber(cgroup.DevNum{Major: unix.Major(sst.Rdev), Minor: unix.Minor(sst.Rdev)})
			if err != nil {
				return Device{}, fmt.Errorf("iolimit: device of %s (mount source %s): %w", path, m.Source, err)
			}
			return d, nil
		}
	}
	return Device{}, fmt.Errorf("iolimit: %s is on a %s filesystem (source %q, mounted at %s, device %s), which has no block device: %w",
		path, m.FSType, m.Source, m.MountPoint, num, ErrNoBlockDevice)
}

// mountOf finds the mount with device number num, preferring the longest
// mount point that contains path (one filesystem may be mounted twice).
func (r *Resolver) mountOf(num cgroup.DevNum, path string) (*procfs.MountInfo, error) {
	pfs, err := procfs.NewFS(r.opts.ProcRoot)
	if err != nil {
		return nil, err
	}
	mounts, err := pfs.GetMounts()
	if err != nil {
		return nil, fmt.Errorf("read %s/self/mountinfo: %w", r.opts.ProcRoot, err)
	}
	abs, _ := filepath.Abs(path)
	var best *procfs.MountInfo
	for _, m := range mounts {
		if m.MajorMinorVer != num.String() {
			continue
		}
		if best == nil || (within(abs, m.MountPoint) && len(m.MountPoint) > len(best.MountPoint)) {
			best = m
		}
	}
	if best == nil {
		return nil, fmt.Errorf("%w: no mount with device %s in mountinfo", ErrNoBlockDevice, num)
	}
	return best, nil
}

func within(path, dir string) bool {
	return dir == "/" || path == dir || strings.HasPrefix(path, dir+"/")
}

// Glob resolves device patterns the way goresctrl's blockio classes name
// devices ("/dev/sd[a-z]", "/dev/disk/by-id/*SSD*"): each pattern is
// expanded below DevRoot, symlinks followed, and every match must be a
// block device; partitions resolve to their disks. The result is sorted
// and free of duplicates. A pattern that matches nothing adds nothing, as in
// goresctrl: one class file serves machines with different disks.
func (r *Resolver) Glob(patterns ...string) ([]Device, error) {
	var out []Device
	for _, pat := range patterns {
		matches, err := filepath.Glob(r.devPath(pat))
		if err != nil {
			return nil, fmt.Errorf("iolimit: device pattern %q: %w", pat, err)
		}
		for _, m := range matches {
			var st unix.Stat_t
			if err := unix.Stat(m, &st); err != nil {
				return nil, fmt.Errorf("iolimit: device pattern %q: %w", pat, err)
			}
			if st.Mode&unix.S_IFMT != unix.S_IFBLK {
				return nil, fmt.Errorf("iolimit: device pattern %q: %s is not a block device node: %w", pat, m, ErrNoBlockDevice)
			}
			d, err := r.ByNumber(cgroup.DevNum{Major: unix.Major(st.Rdev), Minor: unix.Minor(st.Rdev)})
			if err != nil {
				return nil, fmt.Errorf("iolimit: device pattern %q: %s: %w", pat, m, err)
			}
			if !slices.ContainsFunc(out, func(x Device) bool { return x.Num == d.Num }) {
				out = append(out, d)
			}
		}
	}
	slices.SortFunc(out, func(a, b Device) int {
		if a.Num.Major != b.Num.Major {
			return int(a.Num.Major) - int(b.Num.Major)
		}
		return int(a.Num.Minor) - int(b.Num.Minor)
	})
	return out, nil
}

// SetScheduler selects the device's IO scheduler (one of d.Schedulers) and
// returns the device as it is now.
func (r *Resolver) SetScheduler(d Device, scheduler string) (Device, error) {
	if !slices.Contains(d.Schedulers, scheduler) {
		return d, fmt.Errorf("iolimit: scheduler %q for %s: the device offers %v", scheduler, d, d.Schedulers)
	}
	file := filepath.Join(r.opts.SysRoot, "block", d.Name, "queue", "scheduler")
	if err := os.WriteFile(file, []byte(scheduler), 0); err != nil {
		return d, fmt.Errorf("iolimit: write %q to %s: %w", scheduler, file, err)
	}
	return r.ByNumber(d.Num)
}
