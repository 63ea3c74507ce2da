// Command guest is the /init of Strata's test VM (package test/vm): it
// sets up a cgroup v2 machine in the guest, runs the test binaries its
// manifest lists one after another, reports every result on the console as
// a parseable event line, and powers the guest off.
//
// It must be built statically (CGO_ENABLED=0): the initramfs has no
// shared libraries.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/strata-nri/strata/cgroup"
	vm "github.com/strata-nri/strata/test/vm"
)

// controllers are enabled for the root's children, so every test cgroup
// gets cpu, cpuset, memory, io and pids files.
const controllers = "+cpu +cpuset +memory +io +pids"

// optionalControllers are enabled too where the kernel has them: the
// kubelet refuses a cgroup root without hugetlb.
var optionalControllers = []string{"hugetlb"}

var console sync.Mutex

func emit(ev vm.Event) {
	console.Lock()
	defer console.Unlock()
	fmt.Println(vm.FormatEvent(ev))
}

func echo(format string, args ...any) {
	console.Lock()
	defer console.Unlock()
	fmt.Printf(format+"\n", args...)
}

func main() {
	go heartbeat()
	// os.Exit would panic the kernel with a useless message: power off
	// instead, after saying why.
	if err := run(); err != nil {
		emit(vm.Event{Kind: vm.EventError, Msg: err.Error()})
	}
	unix.Sync()
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	select {}
}

func run() error {
	stage.set("set-up: mounts and cgroup2")
	if err := setup(); err != nil {
		return err
	}
	b, err := os.ReadFile(vm.ManifestPath)
	if err != nil {
		return err
	}
	var man vm.Manifest
	if err := json.Unmarshal(b, &man); err != nil {
		return fmt.Errorf("manifest %s: %w", vm.ManifestPath, err)
	}
	if man.ConsoleLoglevel != 0 {
		// The first of printk's four numbers: the console's level.
		if err := os.WriteFile("/proc/sys/kernel/printk", []byte(strconv.Itoa(man.ConsoleLoglevel)), 0o644); err != nil {
			return fmt.Errorf("console log level: %w", err)
		}
	}
	for _, m := range man.Modules {
		stage.set("set-up: load module " + filepath.Base(m.Path))
		if err := loadModule(m); err != nil {
			return err
		}
	}
	stage.set("set-up: scratch disk " + man.Scratch)
	if err := diskTmp(man.Scratch); err != nil {
		return err
	}
	stage.set("set-up: files disk " + man.Files)
	if err := filesDisk(man.Files); err != nil {
		return err
	}
	stage.set("set-up: network")
	_ = exec.Command("/bin/ip", "link", "set", "lo", "up").Run()
	if man.Network {
		if err := network(); err != nil {
			return err
		}
	}
	emit(vm.Event{Kind: vm.EventBoot, Info: info()})

	reap := startReaper()
	for _, r := range man.Runs {
		runOne(r, man.Env, reap)
	}
	stage.set("runs done")
	emit(vm.Event{Kind: vm.EventDone})
	return nil
}

// stage is what /init is doing, for the heartbeat.
var stage = &progress{}

// progress is a set-up step, or the run under way and when its binary
// last printed.
type progress struct {
	mu   sync.Mutex
	what string
	run  string    // the run under way ("" between runs)
	last time.Time // its last output line
	ps   bool      // the process table was printed for this quiet stretch
}

func (p *progress) set(what string) {
	p.mu.Lock()
	p.what, p.run = what, ""
	p.mu.Unlock()
}

func (p *progress) startRun(name string) {
	p.mu.Lock()
	p.what, p.run, p.last, p.ps = "run "+name, name, time.Now(), false
	p.mu.Unlock()
}

func (p *progress) output() {
	p.mu.Lock()
	p.last, p.ps = time.Now(), false
	p.mu.Unlock()
}

// psAfter is how long a run may print nothing before the heartbeat adds
// the guest's process table (once per quiet stretch): a run that waits
// silently says on what.
const psAfter = 2 * time.Minute

// heartbeat prints an EventAlive every vm.HeartbeatInterval for as long
// as /init lives: uptime, load, runnable and blocked tasks, and the stage.
func heartbeat() {
	start := time.Now()
	for range time.Tick(vm.HeartbeatInterval) {
		stage.mu.Lock()
		what := stage.what
		var quiet time.Duration
		if stage.run != "" {
			quiet = time.Since(stage.last)
			what += fmt.Sprintf(" (its last output %s ago)", quiet.Round(time.Second))
		}
		dumpPS := quiet >= psAfter && !stage.ps
		if dumpPS {
			stage.ps = true
		}
		stage.mu.Unlock()
		emit(vm.Event{Kind: vm.EventAlive, Msg: fmt.Sprintf("init up %s; %s; %s", time.Since(start).Round(time.Second), load(), what)})
		if dumpPS {
			for _, l := range processes() {
				echo("strata-vm ps: %s", l)
			}
		}
	}
}

// load is the load average and the scheduler's running and blocked
// counts (/proc/loadavg, /proc/stat).
func load() string {
	avg, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(avg))
	s := "load ?"
	if len(f) >= 3 {
		s = "load " + strings.Join(f[:3], " ")
	}
	st, _ := os.ReadFile("/proc/stat")
	for _, l := range strings.Split(string(st), "\n") {
		if v, ok := strings.CutPrefix(l, "procs_running "); ok {
			s += ", running " + v
		} else if v, ok := strings.CutPrefix(l, "procs_blocked "); ok {
			s += ", blocked " + v
		}
	}
	return s
}

// processes lists the guest's user processes: pid, state, the kernel
// function a sleeping one waits in, and its command line.
func processes() []string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		pid := e.Name()
		if pid[0] < '0' || pid[0] > '9' {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + pid + "/cmdline")
		if len(cmdline) == 0 {
			continue // a kernel thread
		}
		st, _ := os.ReadFile("/proc/" + pid + "/stat")
		state := "?"
		if i := strings.LastIndexByte(string(st), ')'); i >= 0 {
			if f := strings.Fields(string(st[i+1:])); len(f) > 0 {
				state = f[0]
			}
		}
		wchan, _ := os.ReadFile("/proc/" + pid + "/wchan")
		cmd := strings.ReplaceAll(strings.TrimRight(string(cmdline), "\x00"), "\x00", " ")
		if len(cmd) > 120 {
			cmd = cmd[:120] + "…"
		}
		out = append(out, fmt.Sprintf("%s %s %s %s", pid, state, orDash(string(wchan)), cmd))
	}
	return out
}

func orDash(s string) string {
	if s == "" || s == "0" {
		return "-"
	}
	return s
}

type mount struct{ src, dst, fstype, data string }

func setup() error {
	if err := movableRoot(); err != nil {
		return err
	}
	for _, m := range []mount{
		{"proc", "/proc", "proc", ""},
		{"sysfs", "/sys", "sysfs", ""},
		{"devtmpfs", "/dev", "devtmpfs", ""},
		{"tmpfs", "/tmp", "tmpfs", "mode=1777"},
		{"tmpfs", "/run", "tmpfs", "mode=755"},
		{"tmpfs", "/dev/shm", "tmpfs", "mode=1777"},
		{"devpts", "/dev/pts", "devpts", "ptmxmode=666"},
		{"cgroup2", "/sys/fs/cgroup", "cgroup2", ""},
		{"bpf", "/sys/fs/bpf", "bpf", ""},
		{"tracefs", "/sys/kernel/tracing", "tracefs", ""},
		{"debugfs", "/sys/kernel/debug", "debugfs", ""},
	} {
		if err := os.MkdirAll(m.dst, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(m.src, m.dst, m.fstype, 0, m.data); err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.fstype, m.dst, err)
		}
	}
	subtree := filepath.Join("/sys/fs/cgroup", cgroup.SubtreeControlFile)
	want := controllers
	have, _ := os.ReadFile(filepath.Join("/sys/fs/cgroup", cgroup.ControllersFile))
	for _, c := range optionalControllers {
		if slices.Contains(strings.Fields(string(have)), c) {
			want += " +" + c
		}
	}
	if err := os.WriteFile(subtree, []byte(want), 0o644); err != nil {
		return fmt.Errorf("enable %q in %s: %w", want, subtree, err)
	}
	return nil
}

// movableRoot makes / a bind mount of the initial rootfs, as switch_root
// would a real root: pivot_root (which runc uses to enter a container's
// root) refuses to move the initial rootfs itself, which has no parent
// mount.
func movableRoot() error {
	const dir = "/.root"
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := unix.Mount("/", dir, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind-mount / on %s: %w", dir, err)
	}
	if err := unix.Chdir(dir); err != nil {
		return err
	}
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move %s to /: %w", dir, err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot %s: %w", dir, err)
	}
	return unix.Chdir("/")
}

func loadModule(m vm.Module) error {
	f, err := os.Open(m.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.FinitModule(int(f.Fd()), m.Params, 0); err != nil && err != unix.EEXIST {
		return fmt.Errorf("load module %s %s: %w", m.Path, m.Params, err)
	}
	return nil
}

// tmpDir is the runs' TMPDIR: the disk-backed /var/tmp when the host gave
// the guest a scratch disk, else the tmpfs /tmp.
var tmpDir = "/tmp"

// diskTmp mounts the scratch disk on /var/tmp and makes it the runs'
// TMPDIR: page cache of a disk file system, unlike tmpfs pages, is
// reclaimable, and io controls need a block device under a test's
// TempDir. noinit_itable: no background zeroing of inode tables, which
// would be IO the io tests measure alongside their own.
func diskTmp(dev string) error {
	if dev == "" {
		return nil // no scratch disk: TMPDIR stays /tmp
	}
	// The disk's driver was just loaded; its node may lag a little.
	if err := waitDevice(dev); err != nil {
		return fmt.Errorf("scratch disk: %w", err)
	}
	if err := unix.Mount(dev, "/var/tmp", "ext4", 0, "noinit_itable"); err != nil {
		return fmt.Errorf("mount %s on /var/tmp: %w", dev, err)
	}
	if err := os.Chmod("/var/tmp", 0o1777); err != nil {
		return err
	}
	tmpDir = "/var/tmp"
	return nil
}

// waitDevice waits for a block device node of a driver just loaded.
func waitDevice(dev string) error {
	for i := 0; ; i++ {
		if _, err := os.Stat(dev); err == nil {
			return nil
		} else if i == 50 {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// filesDisk mounts the read-only disk of the host's Options.DiskFiles on
// vm.FilesMount.
func filesDisk(dev string) error {
	if dev == "" {
		return nil
	}
	if err := waitDevice(dev); err != nil {
		return fmt.Errorf("files disk: %w", err)
	}
	if err := os.MkdirAll(vm.FilesMount, 0o755); err != nil {
		return err
	}
	if err := unix.Mount(dev, vm.FilesMount, "ext4", unix.MS_RDONLY, "noload"); err != nil {
		return fmt.Errorf("mount %s on %s: %w", dev, vm.FilesMount, err)
	}
	return nil
}

// network configures the NIC of qemu's user network statically, as its
// DHCP server would: vm.GuestIP/24 on eth0, default route via vm.HostIP.
func network() error {
	var ifname string
	for i := 0; i < 50 && ifname == ""; i++ {
		entries, _ := os.ReadDir("/sys/class/net")
		for _, e := range entries {
			if e.Name() != "lo" {
				ifname = e.Name()
				break
			}
		}
		if ifname == "" {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if ifname == "" {
		return fmt.Errorf("network: no NIC in /sys/class/net (virtio_net loaded?)")
	}
	for _, args := range [][]string{
		{"link", "set", ifname, "up"},
		{"addr", "add", vm.GuestIP + "/24", "dev", ifname},
		{"route", "add", "default", "via", vm.HostIP},
	} {
		if out, err := exec.Command("/bin/ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("network: ip %s: %w: %s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

func info() map[string]string {
	read := func(p string) string {
		b, _ := os.ReadFile(p)
		return strings.TrimSpace(string(b))
	}
	var u unix.Utsname
	_ = unix.Uname(&u)
	mem := ""
	for _, l := range strings.Split(read("/proc/meminfo"), "\n") {
		if strings.HasPrefix(l, "MemTotal:") {
			mem = strings.TrimSpace(strings.TrimPrefix(l, "MemTotal:"))
		}
	}
	return map[string]string{
		"kernel":          unix.ByteSliceToString(u.Release[:]),
		"cpus":            read("/sys/devices/system/cpu/online"),
		"memory":          mem,
		"controllers":     read(filepath.Join("/sys/fs/cgroup", cgroup.ControllersFile)),
		"subtree_control": read(filepath.Join("/sys/fs/cgroup", cgroup.SubtreeControlFile)),
		"go":              runtime.Version(),
		"tmpdir":          tmpDir,
		"scratch_sectors": read("/sys/block/vda/size"),
	}
}

// reaper reaps orphans that the kernel reparents to init (daemonised
// shims, processes a test left behind) without stealing the exit status of
// the test binary being waited for: it peeks with WNOWAIT and reaps only
// other pids.
type reaper struct {
	mu      sync.Mutex
	running int // pid of the current test binary
}

func startReaper() *reaper {
	r := &reaper{}
	sig := make(chan os.Signal, 16)
	signal.Notify(sig, syscall.SIGCHLD)
	go func() {
		tick := time.NewTicker(time.Second)
		for {
			select {
			case <-sig:
			case <-tick.C:
			}
			r.reap()
		}
	}()
	return r
}

func (r *reaper) reap() {
	for {
		var info unix.Siginfo
		if err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil); err != nil {
			return
		}
		pid := siginfoPid(&info)
		r.mu.Lock()
		mine := pid == r.running
		r.mu.Unlock()
		if pid == 0 || mine {
			return
		}
		var ws unix.WaitStatus
		_, _ = unix.Wait4(pid, &ws, unix.WNOHANG, nil)
	}
}

// siginfoPid reads si_pid: x/sys/unix leaves the siginfo union opaque.
// On 64-bit Linux it follows si_signo, si_errno, si_code and 4 bytes of
// padding.
func siginfoPid(info *unix.Siginfo) int {
	return int(*(*int32)(unsafe.Add(unsafe.Pointer(info), 16)))
}

func (r *reaper) set(pid int) {
	r.mu.Lock()
	r.running = pid
	r.mu.Unlock()
}

func runOne(r vm.GuestRun, env []string, reap *reaper) {
	stage.startRun(r.Name)
	defer stage.set("after run " + r.Name)
	emit(vm.Event{Kind: vm.EventStart, Run: r.Name})
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(r.TimeoutSec)*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.Binary, r.Args...)
	cmd.Dir = r.Dir
	cmd.Env = append([]string{"PATH=/bin", "HOME=/root", "TMPDIR=" + tmpDir}, append(env, r.Env...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	pr, pw, err := os.Pipe()
	if err != nil {
		emit(vm.Event{Kind: vm.EventExit, Run: r.Name, Code: -1, Msg: err.Error()})
		return
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	// Hold the reaper off while the binary starts, so its pid is known
	// before it can exit.
	reap.mu.Lock()
	err = cmd.Start()
	if err == nil {
		reap.running = cmd.Process.Pid
	}
	reap.mu.Unlock()
	pw.Close()
	if err != nil {
		pr.Close()
		emit(vm.Event{Kind: vm.EventExit, Run: r.Name, Code: -1, Msg: err.Error()})
		return
	}
	short := filepath.Base(r.Name)
	p := &parser{run: r.Name}
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		stage.output()
		echo("[%s] %s", short, line)
		if ev, ok := p.line(line); ok {
			emit(ev)
		}
	}
	pr.Close()
	werr := cmd.Wait()
	reap.set(0)
	ev := vm.Event{Kind: vm.EventExit, Run: r.Name}
	if werr != nil {
		ev.Code = -1
		if ee, ok := werr.(*exec.ExitError); ok && ee.ExitCode() >= 0 {
			ev.Code = ee.ExitCode()
		}
		if ctx.Err() != nil {
			ev.Msg = fmt.Sprintf("killed after %ds: %v", r.TimeoutSec, ctx.Err())
		}
	}
	emit(ev)
}

// parser turns `go test -test.v` output into result events for top-level
// tests, keeping each test's last lines for failures and skips. A failing
// test's message can sit far above its last lines (cleanups print status
// and logs after it), so the test's message lines (file.go:N: …) that
// scrolled out of the tail are kept too, the last msgLines of them, ahead
// of the tail.
type parser struct {
	run     string
	tail    []string
	msgs    []string // message lines that scrolled out of tail
	dropped int      // message lines that scrolled out of msgs
}

const (
	tailLines = 40
	msgLines  = 40
)

// isMessage: a test's t.Log/t.Error line, "    name_test.go:12: …".
func isMessage(l string) bool {
	s := strings.TrimLeft(l, " ")
	if len(s) == len(l) {
		return false
	}
	file, rest, ok := strings.Cut(s, ":")
	if !ok || !strings.HasSuffix(file, ".go") || strings.Contains(file, " ") {
		return false
	}
	n, _, ok := strings.Cut(rest, ":")
	_, err := strconv.Atoi(n)
	return ok && err == nil
}

func (p *parser) reset() {
	p.tail, p.msgs, p.dropped = p.tail[:0], p.msgs[:0], 0
}

func (p *parser) line(l string) (vm.Event, bool) {
	if strings.HasPrefix(l, "=== RUN   ") && !strings.Contains(l[10:], "/") {
		p.reset()
		return vm.Event{}, false
	}
	for _, res := range []string{"PASS", "FAIL", "SKIP"} {
		prefix := "--- " + res + ": "
		if !strings.HasPrefix(l, prefix) {
			continue
		}
		name, rest, _ := strings.Cut(l[len(prefix):], " ")
		var secs float64
		fmt.Sscanf(rest, "(%gs)", &secs)
		ev := vm.Event{Kind: vm.EventResult, Run: p.run, Test: name, Result: strings.ToLower(res), Elapsed: secs}
		if res != "PASS" {
			var out []string
			if p.dropped > 0 {
				out = append(out, fmt.Sprintf("[%d earlier message lines not kept]", p.dropped))
			}
			if len(p.msgs) > 0 {
				out = append(append(out, p.msgs...), "[…]")
			}
			ev.Output = strings.Join(append(out, p.tail...), "\n")
		}
		p.reset()
		return ev, true
	}
	p.tail = append(p.tail, l)
	if len(p.tail) > tailLines {
		if out := p.tail[0]; isMessage(out) {
			p.msgs = append(p.msgs, out)
			if len(p.msgs) > msgLines {
				p.msgs = p.msgs[1:]
				p.dropped++
			}
		}
		p.tail = p.tail[1:]
	}
	return vm.Event{}, false
}
