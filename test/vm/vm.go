package vm

import (
	"bufio"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/strata-nri/strata/internal/buildcache"
)

// MeasureLock is the lock file every measured run on the development
// machines holds: a TCG guest keeps all host CPUs busy.
const MeasureLock = "/tmp/strata-measure.lock"

// Run is one test binary to run in the guest.
type Run struct {
	// Name identifies the run in the report (e.g. the import path).
	Name string
	// Binary is the host path of a static test binary.
	Binary string
	// SourceDir is the package's directory on the host; its testdata/ is
	// packed and the binary runs in its copy, as under `go test`.
	SourceDir string
	// GuestDir is where SourceDir appears in the guest, e.g. "/src/cgroup".
	GuestDir string
	// Args are the binary's arguments, e.g. -test.run Kernel -test.v.
	Args []string
	// Env is added to the guest environment for this run.
	Env []string
	// Timeout is a hard limit on the run in the guest, beyond its own
	// -test.timeout. Default 10 min.
	Timeout time.Duration
}

// Options configure one guest.
type Options struct {
	Kernel *Kernel
	// Init is the host path of the static guest /init (BuildGuestInit).
	Init string
	// Busybox is a static busybox (default /bin/busybox, from the apt
	// package busybox-static); every applet is linked in /bin.
	Busybox string
	// WorkDir receives the initramfs and console.log.
	WorkDir string
	// CPUs and MemoryMiB size the guest (default 4 and 3072).
	CPUs      int
	MemoryMiB int
	// Runs are run in order.
	Runs []Run
	// Files are extra host files or directories packed into the guest,
	// guest path → host path.
	Files map[string]string
	// Env is passed to every run.
	Env []string
	// ScratchMiB sizes the guest's disk-backed scratch directory: an ext4
	// file system on a virtio disk (a sparse image in WorkDir, made with
	// the host's mkfs.ext4) mounted on /var/tmp, which is the runs' TMPDIR.
	// Default 4096; negative for none (TMPDIR is then the tmpfs /tmp).
	ScratchMiB int
	// KernelArgs are added to the kernel command line (e.g. "loglevel=7"
	// to see the kernel's warnings on the console).
	KernelArgs []string
	// Timeout bounds the whole guest, boot included (default 20 min).
	Timeout time.Duration
	// Lock is the file flock'ed while qemu runs (default MeasureLock; "-"
	// for none).
	Lock string
	// Console receives every console line as it arrives (nil: only the log).
	Console io.Writer
	// Logf reports progress.
	Logf func(format string, args ...any)
}

// BuildGuestInit compiles the guest's /init (package test/vm/guest of the
// module at root) statically into dir.
func BuildGuestInit(ctx context.Context, root, dir string) (string, error) {
	out := filepath.Join(dir, "strata-vm-init")
	return out, BuildBinary(ctx, root, "./test/vm/guest", out)
}

// Boot packs the initramfs, boots the guest under qemu (TCG), waits until
// it powers off and returns what its console reported. An error means the
// guest could not be booted at all; test problems are in the Report.
func Boot(ctx context.Context, opts Options) (*Report, error) {
	if opts.CPUs == 0 {
		opts.CPUs = 4
	}
	if opts.MemoryMiB == 0 {
		opts.MemoryMiB = 3072
	}
	if opts.Timeout == 0 {
		opts.Timeout = 20 * time.Minute
	}
	if opts.Lock == "" {
		opts.Lock = MeasureLock
	}
	if opts.Busybox == "" {
		opts.Busybox = "/bin/busybox"
	}
	if opts.ScratchMiB == 0 {
		opts.ScratchMiB = 4096
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return nil, fmt.Errorf("vm: %w (apt package qemu-system-x86)", err)
	}
	initrd := filepath.Join(opts.WorkDir, "initramfs.cpio")
	if err := writeInitramfs(ctx, opts, initrd); err != nil {
		return nil, err
	}
	var drives []string
	if opts.ScratchMiB > 0 {
		img := filepath.Join(opts.WorkDir, "scratch.img")
		if err := makeScratch(ctx, img, opts.ScratchMiB); err != nil {
			return nil, err
		}
		// cache=unsafe: the guest's flushes stop at the host's page cache,
		// so guest fsyncs do not wait on the host disk other work shares.
		drives = append(drives, "-drive", "file="+img+",if=virtio,format=raw,cache=unsafe")
	}
	if opts.Lock != "-" {
		logf2(opts.Logf, "waiting for %s", opts.Lock)
		unlock, err := buildcache.Lock(opts.Lock)
		if err != nil {
			return nil, err
		}
		defer unlock()
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	args := []string{
		"-machine", "q35", "-accel", "tcg,thread=multi", "-cpu", "max",
		"-smp", strconv.Itoa(opts.CPUs), "-m", strconv.Itoa(opts.MemoryMiB),
		"-nodefaults", "-display", "none", "-serial", "stdio", "-monitor", "none", "-nic", "none",
		"-no-reboot", "-kernel", opts.Kernel.Image, "-initrd", initrd,
		// quiet plus loglevel=3 keep kernel chatter off the console; panic=-1
		// with -no-reboot turns a crashed /init into a qemu exit.
		"-append", strings.Join(append([]string{"console=ttyS0 rdinit=/init panic=-1 quiet loglevel=3 mitigations=off"}, opts.KernelArgs...), " "),
	}
	args = append(args, drives...)
	// The guest measures CPU shares and rates by its own clocks, which a
	// descheduled vCPU thread skews (tick-based /proc/stat most): as root,
	// run qemu ahead of the host's builds (which run at nice 15).
	if os.Geteuid() == 0 {
		args = append([]string{"-n", "-5", qemu}, args...)
		qemu = "nice"
	}
	cmd := exec.CommandContext(ctx, qemu, args...)
	// Pdeathsig: a test binary killed outright (timeout, ^C) must not leave
	// the guest running and holding the measure lock.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout // qemu's own complaints land in the log too
	log, err := os.Create(filepath.Join(opts.WorkDir, "console.log"))
	if err != nil {
		return nil, fmt.Errorf("vm: %w", err)
	}
	defer log.Close()
	start := time.Now()
	logf2(opts.Logf, "booting %s with %d vCPUs and %d MiB (qemu TCG); console in %s", opts.Kernel.Release, opts.CPUs, opts.MemoryMiB, log.Name())
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("vm: start qemu: %w", err)
	}
	rep := NewReport()
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(log, line)
		if opts.Console != nil {
			fmt.Fprintln(opts.Console, line)
		}
		rep.AddLine(line)
		if ev, ok, _ := ParseEvent(line); ok {
			switch ev.Kind {
			case EventBoot:
				logf2(opts.Logf, "guest up after %s: %v", time.Since(start).Round(time.Second), ev.Info)
			case EventExit:
				logf2(opts.Logf, "guest: %s exited with code %d at %s", ev.Run, ev.Code, time.Since(start).Round(time.Second))
			}
		}
	}
	werr := cmd.Wait()
	logf2(opts.Logf, "guest powered off after %s", time.Since(start).Round(time.Second))
	if ctx.Err() != nil {
		rep.Errors = append(rep.Errors, fmt.Sprintf("vm: guest killed after %s: %v", opts.Timeout, ctx.Err()))
	} else if werr != nil {
		rep.Errors = append(rep.Errors, fmt.Sprintf("vm: qemu: %v", werr))
	}
	return rep, nil
}

// writeInitramfs packs the guest's root: /init, busybox with its applets,
// the kernel modules, the runs' binaries and testdata, extra files and the
// manifest. Initramfs keeps the first error; WriteTo returns it.
func writeInitramfs(ctx context.Context, opts Options, out string) error {
	fs := NewInitramfs()
	fs.File("init", opts.Init, 0o755)
	fs.File("bin/busybox", opts.Busybox, 0o755)
	applets, err := exec.CommandContext(ctx, opts.Busybox, "--list").Output()
	if err != nil {
		return fmt.Errorf("vm: %s --list: %w (apt package busybox-static)", opts.Busybox, err)
	}
	for _, a := range strings.Fields(string(applets)) {
		if a != "busybox" && a != "init" {
			fs.Symlink("bin/"+a, "busybox")
		}
	}
	for _, l := range []string{"sbin", "usr/bin", "usr/sbin"} {
		fs.Symlink(l, "/bin")
	}
	for _, d := range []string{"proc", "sys", "dev", "run", "root", "var/tmp", "mnt", "strata/bin"} {
		fs.Dir(d, 0o755)
	}
	fs.Dir("tmp", 0o777|os.ModeSticky)
	fs.Bytes("etc/passwd", []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644)
	fs.Bytes("etc/group", []byte("root:x:0:\n"), 0o644)
	fs.Bytes("etc/hosts", []byte("127.0.0.1 localhost\n::1 localhost\n"), 0o644)
	// containerd copies it into host-network sandboxes.
	fs.Bytes("etc/resolv.conf", nil, 0o644)

	mods, err := opts.Kernel.ResolveModules(GuestModules)
	if err != nil {
		return err
	}
	man := Manifest{Env: opts.Env}
	if opts.ScratchMiB > 0 {
		man.Scratch = "/dev/vda" // the only virtio disk
	}
	for _, m := range mods {
		p := filepath.Join("lib/modules", opts.Kernel.Release, m.Path)
		fs.File(p, filepath.Join(opts.Kernel.ModulesDir(), m.Path), 0o644)
		man.Modules = append(man.Modules, Module{Path: "/" + p, Params: m.Params})
	}
	for guest, host := range opts.Files {
		if isDir(host) {
			fs.Tree(guest, host)
			continue
		}
		fs.File(guest, host, 0o755)
		libs, err := SharedLibraries(ctx, host)
		if err != nil {
			return err
		}
		for _, l := range libs {
			fs.File(l, l, 0o755)
		}
	}
	for i, r := range opts.Runs {
		bin := fmt.Sprintf("/strata/bin/%02d-%s", i, filepath.Base(r.Binary))
		fs.File(bin, r.Binary, 0o755)
		dir := r.GuestDir
		if dir == "" {
			dir = "/"
		} else {
			fs.Dir(dir, 0o755)
			if td := filepath.Join(r.SourceDir, "testdata"); r.SourceDir != "" && isDir(td) {
				fs.Tree(filepath.Join(dir, "testdata"), td)
			}
		}
		timeout := r.Timeout
		if timeout == 0 {
			timeout = 10 * time.Minute
		}
		man.Runs = append(man.Runs, GuestRun{Name: r.Name, Binary: bin, Dir: dir, Args: r.Args, Env: r.Env, TimeoutSec: int(timeout / time.Second)})
	}
	b, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		return fmt.Errorf("vm: manifest: %w", err)
	}
	fs.Bytes(strings.TrimPrefix(ManifestPath, "/"), b, 0o644)

	f, err := os.Create(out)
	if err != nil {
		return fmt.Errorf("vm: %w", err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if _, err := fs.WriteTo(w); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("vm: write %s: %w", out, err)
	}
	return f.Close()
}

// SharedLibraries lists the shared libraries (the dynamic loader included)
// a dynamically linked ELF program loads, by their host paths, as ldd
// resolves them; nil for a static program or a file that is not ELF.
// Options.Files packs them at the same paths, so a host binary such as
// Debian's runc runs in the guest as it is.
func SharedLibraries(ctx context.Context, file string) ([]string, error) {
	f, err := elf.Open(file)
	if err != nil {
		return nil, nil // not ELF: a script or data
	}
	dynamic := false
	for _, p := range f.Progs {
		dynamic = dynamic || p.Type == elf.PT_INTERP
	}
	f.Close()
	if !dynamic {
		return nil, nil
	}
	out, err := exec.CommandContext(ctx, "ldd", file).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("vm: ldd %s: %w\n%s", file, err, out)
	}
	var libs []string
	for _, line := range strings.Split(string(out), "\n") {
		// "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or
		// "/lib64/ld-linux-x86-64.so.2 (0x...)"; the vdso has no file.
		f := strings.Fields(line)
		switch {
		case len(f) >= 4 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			libs = append(libs, f[2])
		case len(f) == 2 && strings.HasPrefix(f[0], "/"):
			libs = append(libs, f[0])
		case len(f) >= 3 && f[1] == "=>" && f[2] == "not":
			return nil, fmt.Errorf("vm: %s needs %s, which the host lacks", file, f[0])
		}
	}
	return libs, nil
}

// makeScratch makes a sparse ext4 image of sizeMiB at path (a fresh one
// per boot: tests leave files behind).
func makeScratch(ctx context.Context, path string, sizeMiB int) error {
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		for _, p := range []string{"/sbin/mkfs.ext4", "/usr/sbin/mkfs.ext4"} {
			if _, serr := os.Stat(p); serr == nil {
				mkfs, err = p, nil
			}
		}
	}
	if err != nil {
		return fmt.Errorf("vm: scratch disk: %w (apt package e2fsprogs)", err)
	}
	_ = os.Remove(path)
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("vm: scratch disk: %w", err)
	}
	err = f.Truncate(int64(sizeMiB) << 20)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("vm: scratch disk %s: %w", path, err)
	}
	// Lazy init: the guest's ext4 zeroes inode tables and the journal in
	// the background instead of mkfs writing gigabytes now.
	out, err := exec.CommandContext(ctx, mkfs, "-q", "-F", "-L", "strata-scratch",
		"-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard", path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("vm: %s %s: %w\n%s", mkfs, path, err, out)
	}
	return nil
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
