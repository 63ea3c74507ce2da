package vm

import (
	"bufio"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
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
	// DiskFiles are host files or directories (guest path relative to
	// FilesMount → host path) put on a second virtio disk, a read-only
	// ext4 image made on the host with mkfs.ext4 -d, rather than in the
	// initramfs, which lives in guest RAM: the Kubernetes node's binaries
	// are hundreds of megabytes. Dynamically linked files bring their
	// shared libraries into the initramfs, as for Files.
	DiskFiles map[string]string
	// Network gives the guest a NIC on qemu's user network (slirp): the
	// guest is GuestIP and reaches the host's 127.0.0.1 at HostIP (slirp's
	// restrict=on would cut that too; the guest is given no DNS and no
	// reason to go further). Default none.
	Network bool
	// KernelArgs are added to the kernel command line (e.g. "loglevel=7"
	// to see the kernel's warnings on the console after boot too).
	KernelArgs []string
	// Timeout bounds the whole guest, boot included (default 20 min).
	Timeout time.Duration
	// BootTimeout bounds the boot: from qemu's start to /init's boot
	// event (kernel, initramfs unpacking, /init's set-up). A guest not up
	// by then has hung: the host diagnoses it (see Silence) and kills it
	// (default 3 min; negative for never).
	BootTimeout time.Duration
	// BootRetry boots the guest once more, logged, when the first boot
	// hung before its boot event: nothing of the runs had started. The
	// Report is the second boot's, with the first one's diagnosis in
	// Report.Retried; a second hang is reported as such.
	BootRetry bool
	// Silence is how long the console may stay quiet once the guest is up
	// before the host takes it as wedged. The guest's /init prints a
	// heartbeat every HeartbeatInterval whatever its runs print, so a
	// quiet console means the guest itself has stopped: the host asks
	// qemu's monitor for the guest's state (QemuStatus) and where each
	// vCPU is (DumpCPUs), kills it, and the Report has an error with
	// that and the last console lines (default 2 min: 8 heartbeats;
	// negative for never).
	Silence time.Duration
	// Lock is the file flock'ed while qemu runs (default MeasureLock; "-"
	// for none). One a parent process already holds, as under
	// `flock /tmp/strata-measure.lock go test ./test/vm/`, is not taken
	// again: that would wait forever on the caller's own lock.
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
	if opts.Silence == 0 {
		opts.Silence = 2 * time.Minute
	}
	if opts.BootTimeout == 0 {
		opts.BootTimeout = 3 * time.Minute
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return nil, fmt.Errorf("vm: %w (apt package qemu-system-x86)", err)
	}
	initrd := filepath.Join(opts.WorkDir, "initramfs.cpio")
	if err := writeInitramfs(ctx, opts, initrd); err != nil {
		return nil, err
	}
	var files string
	if len(opts.DiskFiles) > 0 {
		files = filepath.Join(opts.WorkDir, "files.img")
		if err := makeFilesDisk(ctx, files, filepath.Join(opts.WorkDir, "files"), opts.DiskFiles); err != nil {
			return nil, err
		}
	}
	if pid, ok := lockedByAncestor(opts.Lock); ok && opts.Lock != "-" {
		logf2(opts.Logf, "%s is held by our caller (pid %d, flock(1)): not taken again", opts.Lock, pid)
	} else if opts.Lock != "-" {
		logf2(opts.Logf, "waiting for %s", opts.Lock)
		unlock, err := buildcache.Lock(opts.Lock)
		if err != nil {
			return nil, err
		}
		defer unlock()
	}
	rep, err := bootOnce(ctx, opts, qemu, initrd, files)
	if err != nil || rep.bootHang == "" || !opts.BootRetry {
		return rep, err
	}
	first := filepath.Join(opts.WorkDir, "console-boot1.log")
	_ = os.Rename(filepath.Join(opts.WorkDir, "console.log"), first)
	logf2(opts.Logf, "vm: the first boot hung before its boot event; booting once more (Options.BootRetry; its console is in %s)", first)
	hung := rep.bootHang
	rep, err = bootOnce(ctx, opts, qemu, initrd, files)
	if rep != nil {
		rep.Retried = hung
	}
	return rep, err
}

// bootOnce boots the guest once (a fresh scratch disk, the files disk
// made by Boot) and collects its console until it powers off or is killed.
func bootOnce(ctx context.Context, opts Options, qemu, initrd, files string) (*Report, error) {
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
	if files != "" {
		drives = append(drives, "-drive", "file="+files+",if=virtio,format=raw,readonly=on")
	}
	nic := "none"
	if opts.Network {
		nic = "user,model=virtio-net-pci"
	}
	caller := ctx
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	ctx, kill := context.WithCancelCause(ctx)
	defer kill(nil)
	monitor := filepath.Join(opts.WorkDir, "monitor.sock")
	if len(monitor) > 100 { // a unix socket's path has room for 107 bytes
		dir, err := os.MkdirTemp("", "strata-vm")
		if err != nil {
			return nil, fmt.Errorf("vm: %w", err)
		}
		defer os.RemoveAll(dir)
		monitor = filepath.Join(dir, "monitor.sock")
	}
	args := []string{
		"-machine", "q35", "-accel", "tcg,thread=multi", "-cpu", "max",
		"-smp", strconv.Itoa(opts.CPUs), "-m", strconv.Itoa(opts.MemoryMiB),
		"-nodefaults", "-display", "none", "-serial", "stdio", "-nic", nic,
		"-monitor", "unix:" + monitor + ",server=on,wait=off",
		"-no-reboot", "-kernel", opts.Kernel.Image, "-initrd", initrd,
		"-append", strings.Join(kernelArgs(opts.KernelArgs), " "),
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
	// The console log, rep and con, written by the watch too.
	var mu sync.Mutex
	con := &console{last: start, tail: make([]string, 0, tailKept)}
	stopWatch := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		watch(opts, monitor, start, stopWatch, func() (bool, time.Duration, []string) {
			mu.Lock()
			defer mu.Unlock()
			return rep.Boot != nil, time.Since(con.last), slices.Clone(con.tail)
		}, func(lines []string) {
			mu.Lock()
			defer mu.Unlock()
			for _, l := range lines {
				fmt.Fprintln(log, l)
			}
		}, kill)
	}()
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		mu.Lock()
		con.add(line)
		fmt.Fprintln(log, line)
		if opts.Console != nil {
			fmt.Fprintln(opts.Console, line)
		}
		rep.AddLine(line)
		mu.Unlock()
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
	close(stopWatch)
	<-watched
	logf2(opts.Logf, "guest powered off after %s", time.Since(start).Round(time.Second))
	if cause := context.Cause(ctx); errors.Is(cause, errWedged) || errors.Is(cause, errBootHang) {
		rep.Errors = append(rep.Errors, cause.Error())
		if errors.Is(cause, errBootHang) {
			rep.bootHang = cause.Error()
		}
	} else if ctx.Err() != nil {
		if caller.Err() != nil { // e.g. TestVM's deadline, which a long wait for the lock eats into
			rep.Errors = append(rep.Errors, fmt.Sprintf("vm: guest killed after %s: the caller's context ended: %v", time.Since(start).Round(time.Second), caller.Err()))
		} else {
			rep.Errors = append(rep.Errors, fmt.Sprintf("vm: guest killed after %s: %v", opts.Timeout, ctx.Err()))
		}
	} else if werr != nil {
		rep.Errors = append(rep.Errors, fmt.Sprintf("vm: qemu: %v", werr))
	}
	return rep, nil
}

// tailKept is how many of the last console lines a diagnosis shows.
const tailKept = 25

// console is when the guest last printed, and its last lines.
type console struct {
	last time.Time
	tail []string
}

func (c *console) add(line string) {
	c.last = time.Now()
	if len(c.tail) == tailKept {
		copy(c.tail, c.tail[1:])
		c.tail = c.tail[:tailKept-1]
	}
	c.tail = append(c.tail, line)
}

var (
	errWedged   = errors.New("vm: guest wedged")
	errBootHang = errors.New("vm: guest hung before its boot event")
)

// watch kills a guest that hangs: one without its boot event
// opts.BootTimeout after qemu started, or, once up, one whose console
// (which /init's heartbeat keeps busy) has been quiet for opts.Silence.
// The kill's cause, which ends up in the Report, says what qemu and the
// vCPUs were doing and what the console said last; the same goes to the
// console log (report) and opts.Logf.
func watch(opts Options, monitor string, start time.Time, stop <-chan struct{}, state func() (booted bool, quiet time.Duration, tail []string), report func([]string), kill context.CancelCauseFunc) {
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		booted, quiet, tail := state()
		var cause error
		switch {
		case !booted && opts.BootTimeout > 0 && time.Since(start) >= opts.BootTimeout:
			cause = fmt.Errorf("%w: no boot event %s after qemu started (Options.BootTimeout %s), console quiet for %s",
				errBootHang, time.Since(start).Round(time.Second), opts.BootTimeout, quiet.Round(time.Second))
		case booted && opts.Silence > 0 && quiet >= opts.Silence:
			cause = fmt.Errorf("%w: console silent for %s (Options.Silence %s), though /init prints a heartbeat every %s",
				errWedged, quiet.Round(time.Second), opts.Silence, HeartbeatInterval)
		default:
			continue
		}
		diag := diagnose(opts, monitor, tail)
		logf2(opts.Logf, "%v; killed:\n\t%s", cause, strings.Join(diag, "\n\t"))
		report(append([]string{cause.Error() + "; killed:"}, diag...))
		kill(fmt.Errorf("%w; killed:\n\t%s", cause, strings.Join(diag, "\n\t")))
		return
	}
}

// diagnose says what a hung guest is doing: qemu's run state, where each
// vCPU is, and the console's last lines.
func diagnose(opts Options, monitor string, tail []string) []string {
	var lines []string
	if st, err := QemuStatus(monitor); err != nil {
		lines = append(lines, "qemu status: "+err.Error())
	} else {
		lines = append(lines, "qemu status: "+st)
	}
	cpus, err := DumpCPUs(monitor, filepath.Join(opts.Kernel.Root, "boot", "System.map-"+opts.Kernel.Release))
	if err != nil {
		lines = append(lines, "where the vCPUs are: "+err.Error())
	} else {
		lines = append(lines, "where the vCPUs are (qemu monitor):")
		for _, c := range cpus {
			lines = append(lines, "  "+c)
		}
	}
	if len(tail) == 0 {
		return append(lines, "the console printed nothing")
	}
	lines = append(lines, fmt.Sprintf("the console's last %d lines:", len(tail)))
	for _, l := range tail {
		lines = append(lines, "  | "+l)
	}
	return lines
}

// WatchdogArgs are on every guest's kernel command line: a CPU stuck in
// the kernel (a soft lockup, 20 s) or a stalled RCU grace period (21 s,
// the kernel's default) panics the guest instead of leaving it silent
// until the host's timeout. The panic prints its backtrace whatever the
// console's log level, panic_print=0x60 adds every CPU's backtrace and
// replays the kernel log (where the stall report itself went under
// bootLoglevel), and panic=-1 with qemu's -no-reboot ends the run, which
// the Report names as "guest kernel panicked".
var WatchdogArgs = []string{"softlockup_panic=1", "sysctl.kernel.panic_on_rcu_stall=1", "panic_print=0x60"}

// SchedTraceArgs keep the guest kernel from patching its own text when a
// BPF program attaches to or detaches from the scheduler tracepoints the
// eBPF scheduler probe of package pressure uses. Under qemu's
// multi-threaded TCG that live patching (text_poke_bp: an int3 on the call
// site in __schedule, then an IPI to every CPU to sync) has wedged the
// guest: the idle vCPUs kept trapping on the int3 with interrupts off and
// never answered the patching CPU's IPI (issue 18: the soft-lockup
// backtrace is in the commit that added these). These events, enabled on
// the command line, are patched in while the kernel boots (jump labels and
// static calls are written directly then, not through int3), and each
// tracepoint then has two probes (the event's and ftrace's cmdline
// recorder), so a third, a probe's program, comes and goes without a
// text change. A one-page buffer that drops rather than overwrites keeps
// the recording's cost to a few instructions per event.
var SchedTraceArgs = []string{
	"trace_event=sched:sched_switch,sched:sched_wakeup,sched:sched_wakeup_new",
	"trace_buf_size=4k", "trace_options=nooverwrite",
}

// DebugEnv set to 1 boots the guest with DebugArgs: the kernel's whole
// log on the console and a task blocked for 60 s panics it too.
const DebugEnv = "STRATA_VM_DEBUG"

// DebugArgs are added under DebugEnv=1. A hung task (D state) for 60 s is
// a panic only here: the io tests' throttled writers may legitimately
// block that long under TCG.
var DebugArgs = []string{"loglevel=7", "hung_task_panic=1", "sysctl.kernel.hung_task_timeout_secs=60", "printk.time=1"}

// kernelArgs is the guest's kernel command line. The kernel's whole log
// goes to the console while it boots, with timestamps (about 360 lines,
// no slower a boot: 6–8 s to /init's boot event measured either way), so
// a boot that hangs before /init shows where; /init then lowers the
// console's log level to bootLoglevel (Manifest.ConsoleLoglevel), which
// keeps kernel chatter off the console but its errors, unless DebugEnv
// keeps it all. panic=-1 with -no-reboot turns a crashed /init or a kernel
// panic into a qemu exit.
func kernelArgs(extra []string) []string {
	args := []string{"console=ttyS0", "rdinit=/init", "panic=-1", "loglevel=7", "printk.time=1", "mitigations=off",
		"nokaslr"} // stable kernel addresses, for DumpCPUs
	args = append(args, WatchdogArgs...)
	args = append(args, SchedTraceArgs...)
	if os.Getenv(DebugEnv) == "1" {
		args = append(args, DebugArgs...)
	}
	return append(args, extra...)
}

// bootLoglevel is the console log level once /init runs: errors and worse
// (the kernel's trouble reports, which Report reads, are among them).
const bootLoglevel = 3

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
	man := Manifest{Env: opts.Env, Network: opts.Network, ConsoleLoglevel: bootLoglevel}
	if os.Getenv(DebugEnv) == "1" {
		man.ConsoleLoglevel = 0
	}
	// Virtio disks are named in the order of qemu's -drive options.
	disks := []string{"/dev/vda", "/dev/vdb"}
	if opts.ScratchMiB > 0 {
		man.Scratch, disks = disks[0], disks[1:]
	}
	if len(opts.DiskFiles) > 0 {
		man.Files = disks[0]
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
	for _, host := range opts.DiskFiles {
		if isDir(host) {
			continue
		}
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
	mkfs, err := mkfsExt4()
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

// makeFilesDisk makes the read-only disk of Options.DiskFiles: the files
// are linked (or copied) into stage at their guest paths and mkfs.ext4 -d
// turns that tree into an image sized to fit.
func makeFilesDisk(ctx context.Context, img, stage string, files map[string]string) error {
	mkfs, err := mkfsExt4()
	if err != nil {
		return fmt.Errorf("vm: files disk: %w (apt package e2fsprogs)", err)
	}
	_ = os.RemoveAll(stage)
	var size int64
	for guest, host := range files {
		dst := filepath.Join(stage, filepath.Clean("/"+guest))
		n, err := stageTree(dst, host)
		if err != nil {
			return fmt.Errorf("vm: files disk %s: %w", guest, err)
		}
		size += n
	}
	// Room for the file system's own metadata and block rounding.
	size = size + size/8 + 64<<20
	_ = os.Remove(img)
	f, err := os.Create(img)
	if err != nil {
		return fmt.Errorf("vm: files disk: %w", err)
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("vm: files disk %s: %w", img, err)
	}
	out, err := exec.CommandContext(ctx, mkfs, "-q", "-F", "-L", "strata-files", "-d", stage,
		"-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard", img).CombinedOutput()
	if err != nil {
		return fmt.Errorf("vm: %s -d %s %s: %w\n%s", mkfs, stage, img, err, out)
	}
	return os.RemoveAll(stage)
}

// stageTree links (or, across file systems, copies) the host file or
// tree src to dst and returns the bytes it holds.
func stageTree(dst, src string) (int64, error) {
	fi, err := os.Stat(src)
	if err != nil {
		return 0, err
	}
	if !fi.IsDir() {
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return 0, err
		}
		if err := os.Link(src, dst); err != nil {
			if err := copyFile(dst, src, fi.Mode().Perm()); err != nil {
				return 0, err
			}
		}
		return fi.Size(), nil
	}
	var total int64
	err = filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.Type()&os.ModeSymlink != 0 {
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			return os.Symlink(link, target)
		}
		n, err := stageTree(target, p)
		total += n
		return err
	})
	return total, err
}

func copyFile(dst, src string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func mkfsExt4() (string, error) {
	if p, err := exec.LookPath("mkfs.ext4"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/sbin/mkfs.ext4", "/usr/sbin/mkfs.ext4"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("mkfs.ext4 not found")
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
