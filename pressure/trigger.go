package pressure

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-nri/strata/cgroup"
)

// StallKind is which PSI line a trigger watches.
type StallKind string

// The two kinds of stall PSI reports.
const (
	Some StallKind = "some"
	Full StallKind = "full"
)

// Trigger asks to be told when tasks stalled for at least Stall within any
// Window.
type Trigger struct {
	Kind   StallKind
	Stall  time.Duration
	Window time.Duration
}

// Kernel limits on triggers (kernel/sched/psi.c).
const (
	// MaxWindow is the longest window the kernel accepts.
	MaxWindow = 10 * time.Second
	// MinPrivilegedWindow is the shortest window with CAP_SYS_RESOURCE.
	MinPrivilegedWindow = 500 * time.Millisecond
	// UnprivilegedGranularity: without CAP_SYS_RESOURCE the kernel accepts
	// only windows that are multiples of 2 s (Linux 6.5+; earlier kernels
	// refuse unprivileged triggers altogether), evaluated at the 2 s
	// averaging tick.
	UnprivilegedGranularity = 2 * time.Second
)

// Validate checks the trigger against the limits that hold with or without
// privilege. The privilege-dependent 2 s rule is applied by WatchPSI.
func (t Trigger) Validate() error {
	switch {
	case t.Kind != Some && t.Kind != Full:
		return fmt.Errorf("pressure: trigger kind %q: want %q or %q", t.Kind, Some, Full)
	case t.Window <= 0 || t.Window > MaxWindow:
		return fmt.Errorf("pressure: trigger window %v outside (0, %v]", t.Window, MaxWindow)
	case t.Window%time.Microsecond != 0 || t.Stall%time.Microsecond != 0:
		return fmt.Errorf("pressure: trigger stall %v and window %v must be whole microseconds", t.Stall, t.Window)
	case t.Stall <= 0 || t.Stall > t.Window:
		return fmt.Errorf("pressure: trigger stall %v outside (0, window %v]", t.Stall, t.Window)
	}
	return nil
}

func (t Trigger) String() string {
	return fmt.Sprintf("%s %d %d", t.Kind, t.Stall.Microseconds(), t.Window.Microseconds())
}

// Delivery is how a watch learns of stalls.
type Delivery int

const (
	// KernelTrigger: the kernel evaluates the trigger and wakes us with
	// POLLPRI.
	KernelTrigger Delivery = iota + 1
	// Polling: the watch reads the file's cumulative total and applies the
	// same rule (stall growth within the window) itself, because the kernel
	// refused the trigger or the file cannot take one (a fixture file).
	Polling
)

func (d Delivery) String() string {
	switch d {
	case KernelTrigger:
		return "kernel trigger"
	case Polling:
		return "polling"
	}
	return "unknown"
}

// Rule reports how a watch was set up and which kernel rule decided it.
type Rule struct {
	Delivery Delivery
	// Privileged is whether the process holds CAP_SYS_RESOURCE, which
	// lifts the 2 s window rule.
	Privileged bool
	// Window is the window in force (the trigger's own).
	Window time.Duration
	// Interval is how often a polling watch reads the file (0 for kernel
	// triggers).
	Interval time.Duration
	// Reason says in words which rule applied.
	Reason string
}

func (r Rule) String() string {
	return fmt.Sprintf("%v (window %v, privileged %v): %s", r.Delivery, r.Window, r.Privileged, r.Reason)
}

// Event is one notification that a trigger's threshold was crossed.
type Event struct {
	Time time.Time
	// Stats is the PSI file read right after the notification (zero if
	// that read failed).
	Stats PSIStats
	// Err, on the last event before the channel closes, says why the
	// watch ended other than by cancellation (the cgroup was removed, the
	// file became unreadable).
	Err error
}

// WatchOptions tunes WatchPSI.
type WatchOptions struct {
	// PollInterval is how often a polling watch reads the file; default
	// Window/10 (the kernel's own update rate for triggers), at least
	// 50 ms.
	PollInterval time.Duration
	// ForcePolling skips the kernel trigger (for tests of the fallback).
	ForcePolling bool
	// Clock stamps events; default time.Now.
	Clock func() time.Time
}

// WatchNodePSI watches /proc/pressure/<resource> below procRoot.
func WatchNodePSI(ctx context.Context, procRoot string, r cgroup.PSIResource, t Trigger, opts WatchOptions) (<-chan Event, Rule, error) {
	if !r.Valid() {
		return nil, Rule{}, fmt.Errorf("pressure: PSI resource %q: want cpu, memory or io", r)
	}
	return WatchPSI(ctx, filepath.Join(procRoot, "pressure", string(r)), t, opts)
}

// WatchCgroupPSI watches a cgroup's PSI file for resource r (v2, or hybrid
// where the cgroup exists in the cgroup2 tree).
func WatchCgroupPSI(ctx context.Context, cg *cgroup.Cgroup, r cgroup.PSIResource, t Trigger, opts WatchOptions) (<-chan Event, Rule, error) {
	path, err := cg.PressureFile(r)
	if err != nil {
		return nil, Rule{}, fmt.Errorf("pressure: watch %s: %w", cg.Path(), err)
	}
	return WatchPSI(ctx, path, t, opts)
}

// WatchPSI delivers an Event whenever tasks stalled for at least t.Stall
// within t.Window, according to the PSI file at path. It registers a kernel
// trigger and waits for POLLPRI when it can; it falls back to polling the
// file when the kernel refuses the trigger, and says which in the Rule:
//
//   - without CAP_SYS_RESOURCE a window that is not a multiple of 2 s is
//     refused by the kernel (EINVAL), so it is not even tried: polling;
//   - a write the kernel refuses for another reason (an older kernel, no
//     write permission) falls back to polling with that reason;
//   - a regular file (a fixture) accepts the write but never signals
//     POLLPRI: polling.
//
// The kernel signals at most once per window; a polling watch does the same.
// Events are sent without blocking: a receiver that falls behind misses
// events rather than stalling the watch. The channel closes when ctx is done
// or the file goes away (then the last event carries Err).
func WatchPSI(ctx context.Context, path string, t Trigger, opts WatchOptions) (<-chan Event, Rule, error) {
	if err := t.Validate(); err != nil {
		return nil, Rule{}, err
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	priv := hasCapSysResource()
	rule := Rule{Privileged: priv, Window: t.Window}
	if _, err := os.Stat(path); err != nil {
		return nil, rule, fmt.Errorf("pressure: watch %s: %w", path, err)
	}
	reason := ""
	switch {
	case opts.ForcePolling:
		reason = "polling forced by the caller"
	case !isProcOrCgroupFS(path):
		reason = "not a procfs or cgroupfs file, which cannot signal POLLPRI"
	case !priv && t.Window%UnprivilegedGranularity != 0:
		reason = fmt.Sprintf("window %v is not a multiple of %v and the process lacks CAP_SYS_RESOURCE, so the kernel would refuse the trigger (EINVAL)", t.Window, UnprivilegedGranularity)
	case priv && t.Window < MinPrivilegedWindow:
		reason = fmt.Sprintf("window %v is below the kernel minimum %v", t.Window, MinPrivilegedWindow)
	}
	if reason == "" {
		fd, err := registerTrigger(path, t)
		if err == nil {
			rule.Delivery = KernelTrigger
			if priv {
				rule.Reason = "kernel trigger with CAP_SYS_RESOURCE: any window from 500 ms to 10 s"
			} else {
				rule.Reason = "kernel trigger without CAP_SYS_RESOURCE: window is a multiple of 2 s, evaluated at the 2 s averaging tick"
			}
			ch := make(chan Event, 4)
			go watchKernel(ctx, fd, path, opts.Clock, ch)
			return ch, rule, nil
		}
		reason = fmt.Sprintf("kernel refused the trigger %q: %v", t.String(), err)
	}
	rule.Delivery = Polling
	rule.Interval = opts.PollInterval
	if rule.Interval <= 0 {
		rule.Interval = t.Window / 10
		if rule.Interval < 50*time.Millisecond {
			rule.Interval = 50 * time.Millisecond
		}
	}
	rule.Reason = reason
	// Read once now so a file that cannot be parsed fails the call rather
	// than the first event.
	var first PSIStats
	if err := readPSIFile(path, &first); err != nil {
		return nil, rule, fmt.Errorf("pressure: watch: %w", err)
	}
	if t.Kind == Full && !first.HasFull {
		return nil, rule, fmt.Errorf("pressure: watch %s: file has no \"full\" line", path)
	}
	ch := make(chan Event, 4)
	go watchPolling(ctx, path, t, rule.Interval, opts.Clock, first, ch)
	return ch, rule, nil
}

// isProcOrCgroupFS reports whether path lies on procfs or a cgroup
// filesystem, whose PSI files support triggers.
func isProcOrCgroupFS(path string) bool {
	var sfs unix.Statfs_t
	if err := unix.Statfs(path, &sfs); err != nil {
		return false
	}
	switch sfs.Type {
	case unix.PROC_SUPER_MAGIC, unix.CGROUP2_SUPER_MAGIC, unix.CGROUP_SUPER_MAGIC:
		return true
	}
	return false
}

func registerTrigger(path string, t Trigger) (int, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	// The kernel wants the whole trigger in one write, NUL-terminated.
	if _, err := unix.Write(fd, append([]byte(t.String()), 0)); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

func hasCapSysResource() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	return data[0].Effective&(1<<unix.CAP_SYS_RESOURCE) != 0
}

func send(ch chan<- Event, ev Event) {
	select {
	case ch <- ev:
	default: // receiver behind: drop, the next crossing will tell again
	}
}

func watchKernel(ctx context.Context, fd int, path string, clock func() time.Time, ch chan<- Event) {
	defer close(ch)
	defer unix.Close(fd)
	// An eventfd wakes the poll when ctx is done, so no timeout loop is
	// needed.
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		ch <- Event{Time: clock(), Err: fmt.Errorf("pressure: watch %s: eventfd: %w", path, err)}
		return
	}
	defer unix.Close(efd)
	stop := context.AfterFunc(ctx, func() {
		var one = [8]byte{1}
		_, _ = unix.Write(efd, one[:])
	})
	defer stop()
	buf := make([]byte, 256)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLPRI}, {Fd: int32(efd), Events: unix.POLLIN}}
	for {
		fds[0].Revents, fds[1].Revents = 0, 0
		_, err := unix.Poll(fds, -1)
		if err == unix.EINTR {
			continue
		}
		if ctx.Err() != nil || fds[1].Revents != 0 {
			return
		}
		if err != nil {
			ch <- Event{Time: clock(), Err: fmt.Errorf("pressure: watch %s: poll: %w", path, err)}
			return
		}
		if fds[0].Revents&(unix.POLLERR|unix.POLLNVAL) != 0 {
			// The kernel destroys a cgroup's triggers when the cgroup
			// goes away.
			ch <- Event{Time: clock(), Err: fmt.Errorf("pressure: watch %s: %w", path, cgroup.ErrVanished)}
			return
		}
		if fds[0].Revents&unix.POLLPRI != 0 {
			ev := Event{Time: clock()}
			if n, err := unix.Pread(fd, buf, 0); err == nil {
				_ = parsePSI(path, buf[:n], &ev.Stats)
			}
			send(ch, ev)
		}
	}
}

func readPSIFile(path string, out *PSIStats) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return parsePSI(path, b, out)
}

// watchPolling applies the kernel's trigger rule in user space: keep the
// total at each tick of the last window, fire when the growth over the
// window reaches the stall threshold, at most once per window.
func watchPolling(ctx context.Context, path string, t Trigger, every time.Duration, clock func() time.Time, first PSIStats, ch chan<- Event) {
	defer close(ch)
	type point struct {
		at    time.Time
		total time.Duration
	}
	total := func(s *PSIStats) time.Duration {
		if t.Kind == Full {
			return s.Full.Total
		}
		return s.Some.Total
	}
	hist := []point{{clock(), total(&first)}}
	var lastEvent time.Time
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		var cur PSIStats
		if err := readPSIFile(path, &cur); err != nil {
			if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENODEV) {
				err = fmt.Errorf("%w: %v", cgroup.ErrVanished, err)
			}
			ch <- Event{Time: clock(), Err: fmt.Errorf("pressure: watch %s: %w", path, err)}
			return
		}
		now := clock()
		tot := total(&cur)
		if tot < hist[len(hist)-1].total {
			hist = hist[:0] // counter restarted (recreated cgroup)
		}
		hist = append(hist, point{now, tot})
		// Drop points older than the window, keeping the one just before
		// its start as the base.
		for len(hist) > 1 && now.Sub(hist[1].at) >= t.Window {
			hist = hist[1:]
		}
		if tot-hist[0].total >= t.Stall && (lastEvent.IsZero() || now.Sub(lastEvent) >= t.Window) {
			lastEvent = now
			send(ch, Event{Time: now, Stats: cur})
		}
	}
}
