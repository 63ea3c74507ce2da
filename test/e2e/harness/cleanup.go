package harness

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/sys/mountinfo"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/test/e2e/cri"
)

// Close tears the environment down, step by step, carrying on past
// failures so that one stuck step does not leave the rest behind:
//
//  1. stop and remove every pod through CRI (containerd unmounts rootfs and
//     shm, the shims exit, runc removes the containers' cgroups);
//  2. stop the plugins and containerd;
//  3. kill what is left: shims serving this run's socket, processes in this
//     run's cgroups;
//  4. unmount everything under the run directory, deepest first;
//  5. remove the run's cgroup tree in every hierarchy and the run directory.
//
// Close is idempotent and returns every error it met. A Close that finds
// another one under way (the SIGINT handler and a test's cleanup) waits for
// it, so the process does not exit half-way through.
func (e *Env) Close() error {
	e.mu.Lock()
	if e.closed {
		done := e.closeDone
		e.mu.Unlock()
		<-done
		return nil
	}
	e.closed = true
	e.closeDone = make(chan struct{})
	defer close(e.closeDone)
	client, ctrd := e.client, e.containerd
	plugins := append([]*proc(nil), e.plugins...)
	e.mu.Unlock()
	defer unregisterLive(e)

	if client != nil {
		_ = client.Close()
	}
	var errs []error
	if ctrd.alive() {
		// A client of its own: the test may be closing the shared one
		// (a restart interrupted by SIGINT) while this runs.
		// 100 pods (TestE2EParallelCreate), 4 at a time, on this 2-CPU
		// machine: 49 s with no plugin, 52 s with Strata, 83 s with Strata
		// at load 23; 135 s while drift repair still resent every idle
		// member's shares each period (7b72151).
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		if c, err := cri.Dial(ctx, e.st.Socket); err != nil {
			errs = append(errs, err)
		} else if pods, err := c.ListPods(ctx); err != nil {
			errs = append(errs, err)
			_ = c.Close()
		} else {
			// A few at a time: tests that make dozens of pods would
			// otherwise spend most of the minute here.
			var mu sync.Mutex
			var wg sync.WaitGroup
			sem := make(chan struct{}, 4)
			for _, p := range pods {
				wg.Add(1)
				sem <- struct{}{}
				go func(id string) {
					defer func() { <-sem; wg.Done() }()
					err := c.StopPod(ctx, id)
					if rerr := c.RemovePod(ctx, id); err == nil {
						err = rerr
					}
					if err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
					}
				}(p.Id)
			}
			wg.Wait()
			_ = c.Close()
		}
		cancel()
	}
	for i, p := range plugins {
		if err := p.stop(5 * time.Second); err != nil {
			errs = append(errs, fmt.Errorf("plugin %d: %w", i, err))
		}
	}
	if err := ctrd.stop(10 * time.Second); err != nil {
		errs = append(errs, fmt.Errorf("containerd: %w", err))
	}
	if n, err := killOwned(e.st.Dir); n > 0 || err != nil {
		logf(e.opts.Logf, "killed %d left-over process(es) of %s (shims, strays)", n, e.st.Dir)
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := e.removeCgroups(); err != nil {
		errs = append(errs, err)
	}
	if err := unmountUnder(e.st.Dir); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(e.st.Dir); err != nil {
		errs = append(errs, fmt.Errorf("harness: remove %s: %w", e.st.Dir, err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("harness: close run %s: %w", e.st.RunID, err)
	}
	return nil
}

// killOwned SIGKILLs every process of the run in dir that is still there
// (shims serving its socket, a containerd or plugin that escaped) and waits
// up to 5 s for them to go; it returns how many it found.
func killOwned(dir string) (int, error) {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || pid == os.Getpid() || !pidAlive(pid) || !ownedBy(pid, dir) {
			continue
		}
		removeShimSockets(pid) // before the kill: a dead process has no cmdline
		_ = syscall.Kill(pid, syscall.SIGKILL)
		pids = append(pids, pid)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for pidAlive(pid) {
			if time.Now().After(deadline) {
				return len(pids), fmt.Errorf("harness: process %d of %s survived SIGKILL", pid, dir)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return len(pids), nil
}

// removeShimSockets removes the sockets a killed shim leaves in
// /run/containerd/s (a shim removes them itself only on a clean exit). Their
// names are containerd's: sha256 of <address>/<namespace>/<id>[/debug].
func removeShimSockets(pid int) {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return
	}
	args := strings.Split(string(bytes.TrimRight(cmdline, "\x00")), "\x00")
	if len(args) == 0 || !strings.HasPrefix(filepath.Base(args[0]), "containerd-shim") {
		return
	}
	flags := map[string]string{}
	for i := 1; i+1 < len(args); i++ {
		if strings.HasPrefix(args[i], "-") {
			flags[strings.TrimLeft(args[i], "-")] = args[i+1]
		}
	}
	if flags["address"] == "" || flags["namespace"] == "" || flags["id"] == "" {
		return
	}
	base := filepath.Join(flags["address"], flags["namespace"], flags["id"])
	for _, p := range []string{base, filepath.Join(base, "debug")} {
		_ = os.Remove(fmt.Sprintf("/run/containerd/s/%x", sha256.Sum256([]byte(p))))
	}
}

// removeCgroups kills every process left in the run's cgroup tree and
// removes the tree, deepest first, in every hierarchy (runc creates a
// container's cgroup in each v1 controller).
func (e *Env) removeCgroups() error {
	root, err := e.hier.Open(e.st.CgroupRoot)
	if err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	rels := map[string]bool{}
	ctls := append(e.hier.Controllers(), "")
	for _, ctl := range ctls {
		var dir string
		if ctl == "" {
			dir, err = root.UnifiedDir()
		} else {
			dir, err = root.Dir(ctl)
		}
		if err != nil {
			continue
		}
		_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				rel, _ := filepath.Rel(dir, p)
				rels[rel] = true
			}
			return nil
		})
	}
	paths := make([]string, 0, len(rels))
	for rel := range rels {
		paths = append(paths, rel)
	}
	// Deepest first: children before their parents.
	sort.Slice(paths, func(i, j int) bool {
		di, dj := strings.Count(paths[i], "/"), strings.Count(paths[j], "/")
		if paths[i] == "." {
			di = -1
		}
		if paths[j] == "." {
			dj = -1
		}
		return di > dj || (di == dj && paths[i] < paths[j])
	})
	var errs []error
	for _, rel := range paths {
		cg, err := e.hier.Open(filepath.Join(e.st.CgroupRoot, rel))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := killAndRemove(cg); err != nil {
			errs = append(errs, err)
		}
	}
	// Named v1 hierarchies (name=systemd) are not controllers, so package
	// cgroup does not list them, but runc creates the container's cgroup
	// there too: remove what is left in every cgroup v1 mount.
	if mounts, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup")); err == nil {
		for _, m := range mounts {
			if err := removeTree(filepath.Join(m.Mountpoint, e.st.CgroupRoot)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// removeTree rmdirs dir and every directory below it, deepest first. Only
// rmdir: cgroup directories cannot be unlinked file by file.
func removeTree(dir string) error {
	var dirs []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	var errs []error
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := syscall.Rmdir(dirs[i]); err != nil && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("harness: remove cgroup %s: %w", dirs[i], err))
		}
	}
	return errors.Join(errs...)
}

func killAndRemove(cg *cgroup.Cgroup) error {
	deadline := time.Now().Add(10 * time.Second)
	var err error
	for {
		if pids, perr := cg.Procs(); perr == nil {
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if err = cg.Remove(); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("harness: %w", err)
		}
		// Killed tasks leave the cgroup asynchronously.
		time.Sleep(20 * time.Millisecond)
	}
}

// unmountUnder lazily unmounts every mount below dir, deepest first:
// overlay rootfs, sandbox shm and anything a shim left behind.
func unmountUnder(dir string) error {
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return fmt.Errorf("harness: read mountinfo: %w", err)
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].Mountpoint) > len(mounts[j].Mountpoint) })
	var errs []error
	for _, m := range mounts {
		if err := syscall.Unmount(m.Mountpoint, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("harness: unmount %s: %w", m.Mountpoint, err))
		}
	}
	return errors.Join(errs...)
}

// live holds the environments of this process that are not detached, so a
// SIGINT or SIGTERM (Ctrl-C on `go test`, or go test's -timeout) can tear
// them down before the process dies; t.Cleanup does not run then. It is the
// one piece of package state, and only the signal handler reads it.
var live struct {
	sync.Mutex
	envs map[*Env]bool
	once sync.Once
}

func registerLive(e *Env) {
	live.Lock()
	if live.envs == nil {
		live.envs = map[*Env]bool{}
	}
	live.envs[e] = true
	live.Unlock()
	live.once.Do(func() {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
		go func() {
			sig := <-sigs
			fmt.Fprintf(os.Stderr, "strata-e2e: %v: tearing down test environments\n", sig)
			live.Lock()
			envs := make([]*Env, 0, len(live.envs))
			for env := range live.envs {
				envs = append(envs, env)
			}
			live.Unlock()
			for _, env := range envs {
				if err := env.Close(); err != nil {
					fmt.Fprintln(os.Stderr, "strata-e2e:", err)
				}
			}
			os.Exit(2)
		}()
	})
}

func unregisterLive(e *Env) {
	live.Lock()
	delete(live.envs, e)
	live.Unlock()
}
