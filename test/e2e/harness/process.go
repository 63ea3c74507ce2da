package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/strata-nri/strata/test/e2e/cri"
)

// proc is a process the harness started (cmd set) or found again by PID
// after Attach (cmd nil).
type proc struct {
	pid  int
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd.Wait returns
	// marker is the run directory; an attached proc is signalled only
	// while ownedBy(pid, marker) holds, so a recycled PID is never hit.
	marker string
}

// runEnv marks every process the harness starts (containerd, plugins) with
// its run directory, so Close and Attach can find them again by
// /proc/<pid>/environ. It is not exported to the user's shell by e2eenv.
const runEnv = "STRATA_E2E_RUN"

// RunEnvVar is runEnv for processes started beside the harness's own (the
// Kubernetes tier's components): a process whose environment has
// RunEnvVar=<run dir> is killed by Close and by the removal of a stale run.
const RunEnvVar = runEnv

// ownedBy reports whether pid belongs to the run in dir: it carries
// STRATA_E2E_RUN=dir, or it is a containerd binary (daemon, shim) whose
// command line names the run directory.
func ownedBy(pid int, dir string) bool {
	environ, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if bytes.HasPrefix(environ, []byte(runEnv+"="+dir+"\x00")) || bytes.Contains(environ, []byte("\x00"+runEnv+"="+dir+"\x00")) {
		return true
	}
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	args := strings.Split(string(bytes.TrimRight(cmdline, "\x00")), "\x00")
	return len(args) > 0 && strings.HasPrefix(filepath.Base(args[0]), "containerd") && strings.Contains(string(cmdline), dir+"/")
}

var errClosed = errors.New("harness: environment is closed")

func startProc(cmd *exec.Cmd) (*proc, error) {
	// A session of its own: a terminal's Ctrl-C reaches only the test
	// binary, which then tears down in order (plugins, pods, containerd).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{pid: cmd.Process.Pid, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func attachProc(pid int, marker string) *proc { return &proc{pid: pid, marker: marker} }

func (p *proc) alive() bool {
	if p == nil || p.pid <= 0 {
		return false
	}
	if p.cmd != nil {
		select {
		case <-p.done:
			return false
		default:
			return true
		}
	}
	return pidAlive(p.pid) && ownedBy(p.pid, p.marker)
}

// stop sends SIGTERM, waits up to grace, then SIGKILLs and waits again.
func (p *proc) stop(grace time.Duration) error {
	if !p.alive() {
		return nil
	}
	_ = syscall.Kill(p.pid, syscall.SIGTERM)
	if p.wait(grace) {
		return nil
	}
	_ = syscall.Kill(p.pid, syscall.SIGKILL)
	if p.wait(5 * time.Second) {
		return nil
	}
	return fmt.Errorf("harness: process %d survived SIGKILL", p.pid)
}

func (p *proc) wait(d time.Duration) bool {
	if p.cmd != nil {
		select {
		case <-p.done:
			return true
		case <-time.After(d):
			return false
		}
	}
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !p.alive() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return !p.alive()
}

func pidAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	if err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	// A zombie has exited; only its parent has not reaped it yet.
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z'
	}
	return true
}

func openLog(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("harness: open log: %w", err)
	}
	return f, nil
}

// adopt starts cmd as one of the environment's processes (what names it in
// errors); record, called under e.mu, files it in e, and the state is
// saved. If Close ran meanwhile (SIGINT during a restart) it did not see
// this process, which then must not outlive the call: it is stopped and
// the error is errClosed.
func (e *Env) adopt(cmd *exec.Cmd, what string, record func(*proc)) (*proc, error) {
	p, err := startProc(cmd)
	if err != nil {
		return nil, fmt.Errorf("harness: start %s: %w", what, err)
	}
	p.marker = e.st.Dir
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		_ = p.stop(0)
		return nil, errClosed
	}
	record(p)
	err = e.saveState()
	e.mu.Unlock()
	return p, err
}

// startContainerd starts containerd and waits until CRI answers. The log is
// appended to, so one file tells the story across restarts.
func (e *Env) startContainerd(ctx context.Context) error {
	logFile, err := openLog(e.st.ContainerdLog)
	if err != nil {
		return err
	}
	defer logFile.Close()
	fmt.Fprintf(logFile, "=== strata-e2e: starting containerd v%s at %s ===\n", e.st.Binaries.Version, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(e.st.Binaries.Containerd, "--config", filepath.Join(e.st.Dir, "config.toml"))
	cmd.Dir = e.st.Dir
	// The shim must be on containerd's PATH; runc and the host tools
	// (mount, ...) are found through the rest of it.
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(e.st.Binaries.Shim)+":"+os.Getenv("PATH")+":/usr/sbin:/sbin",
		runEnv+"="+e.st.Dir)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	p, err := e.adopt(cmd, "containerd", func(p *proc) {
		e.containerd = p
		e.st.ContainerdPID = p.pid
	})
	if err != nil {
		return err
	}

	deadline := time.Now().Add(60 * time.Second)
	for {
		if !p.alive() {
			return fmt.Errorf("harness: containerd exited during start-up")
		}
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		c, err := cri.Dial(dctx, e.st.Socket)
		cancel()
		if err == nil {
			e.mu.Lock()
			defer e.mu.Unlock()
			if e.closed {
				_ = c.Close()
				return errClosed
			}
			if e.client != nil {
				_ = e.client.Close()
			}
			e.client = c
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("harness: containerd's CRI at %s not ready after 60s: %w", e.st.Socket, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// importImage imports the test image into the k8s.io namespace, where CRI
// looks for images.
func (e *Env) importImage(ctx context.Context, tarball string) error {
	cmd := exec.CommandContext(ctx, e.st.Binaries.Ctr, "--address", e.st.Socket, "--namespace", "k8s.io",
		"images", "import", "--snapshotter", "overlayfs", tarball)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("harness: ctr images import %s: %w\n%s", tarball, err, out)
	}
	return nil
}

// StopContainerd stops containerd (SIGTERM, then SIGKILL after 10 s). Pods
// and containers keep running under their shims.
func (e *Env) StopContainerd() error {
	e.mu.Lock()
	p, c := e.containerd, e.client
	e.client = nil
	e.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
	return p.stop(10 * time.Second)
}

// StartContainerd starts containerd again after StopContainerd.
func (e *Env) StartContainerd(ctx context.Context) error {
	if e.containerd.alive() {
		return fmt.Errorf("harness: containerd (pid %d) is already running", e.containerd.pid)
	}
	return e.startContainerd(ctx)
}

// RestartContainerd stops and starts containerd, as an upgrade or crash
// recovery would. Plugins are not touched: a plugin must reconnect on its
// own; check with WaitPluginRegistered.
func (e *Env) RestartContainerd(ctx context.Context) error {
	if err := e.StopContainerd(); err != nil {
		return err
	}
	return e.startContainerd(ctx)
}

// startPlugin starts plugin i and, unless NoWait, waits until containerd
// logs it as connected and synchronized.
func (e *Env) startPlugin(ctx context.Context, i int) error {
	e.mu.Lock()
	pl, logPath := e.st.Plugins[i], e.st.PluginLogs[i]
	e.mu.Unlock()
	offset := fileSize(e.st.ContainerdLog)
	logFile, err := openLog(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	fmt.Fprintf(logFile, "=== strata-e2e: starting plugin %s-%s at %s ===\n", pl.Index, pl.Name, time.Now().Format(time.RFC3339Nano))
	expand := func(k string) string {
		switch k {
		case NRISocketEnv:
			return e.st.NRISocket
		case "STRATA_E2E_DIR":
			return e.st.Dir
		}
		return "${" + k + "}"
	}
	args := make([]string, len(pl.Args))
	for j, a := range pl.Args {
		args[j] = os.Expand(a, expand)
	}
	cmd := exec.Command(pl.Path, args...)
	cmd.Dir = e.st.Dir
	cmd.Env = append(os.Environ(),
		"NRI_PLUGIN_NAME="+pl.Name, "NRI_PLUGIN_IDX="+pl.Index,
		NRISocketEnv+"="+e.st.NRISocket, "STRATA_E2E_DIR="+e.st.Dir, runEnv+"="+e.st.Dir)
	cmd.Env = append(cmd.Env, pl.Env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	_, err = e.adopt(cmd, fmt.Sprintf("plugin %d (%s)", i, pl.Path), func(p *proc) {
		e.plugins[i] = p
		e.st.PluginPIDs[i] = p.pid
	})
	if err != nil || pl.NoWait {
		return err
	}
	return e.waitPluginRegistered(ctx, i, offset, 30*time.Second)
}

// StopPlugin stops plugin i (SIGTERM, then SIGKILL after 5 s).
func (e *Env) StopPlugin(i int) error {
	e.mu.Lock()
	if i < 0 || i >= len(e.plugins) {
		e.mu.Unlock()
		return fmt.Errorf("harness: no plugin %d (have %d)", i, len(e.plugins))
	}
	p := e.plugins[i]
	e.mu.Unlock()
	return p.stop(5 * time.Second)
}

// RestartPlugin stops plugin i and starts it again, waiting (unless NoWait)
// until containerd reports it connected and synchronized.
func (e *Env) RestartPlugin(ctx context.Context, i int) error {
	if err := e.StopPlugin(i); err != nil {
		return err
	}
	return e.startPlugin(ctx, i)
}

// PluginRunning reports whether plugin i's process is alive.
func (e *Env) PluginRunning(i int) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return i >= 0 && i < len(e.plugins) && e.plugins[i].alive()
}

// WaitPluginRegistered waits until containerd's log, from now on or from
// since (a byte offset from ContainerdLogSize; pass -1 for "now"), shows
// plugin i connected and synchronized.
func (e *Env) WaitPluginRegistered(ctx context.Context, i int, since int64, timeout time.Duration) error {
	if since < 0 {
		since = fileSize(e.st.ContainerdLog)
	}
	return e.waitPluginRegistered(ctx, i, since, timeout)
}

// ContainerdLogSize is the current size of containerd's log, an offset for
// WaitPluginRegistered and WaitLog.
func (e *Env) ContainerdLogSize() int64 { return fileSize(e.st.ContainerdLog) }

func (e *Env) waitPluginRegistered(ctx context.Context, i int, since int64, timeout time.Duration) error {
	e.mu.Lock()
	if i < 0 || i >= len(e.st.Plugins) {
		e.mu.Unlock()
		return fmt.Errorf("harness: no plugin %d", i)
	}
	pl, p := e.st.Plugins[i], e.plugins[i]
	e.mu.Unlock()
	// NRI v0.8 to v0.12 all log: plugin "<idx>-<name>" connected and synchronized
	want := strconv.Quote(pl.Index + "-" + pl.Name)
	want = strings.ReplaceAll(want, `"`, `\"`) // logrus quotes the message
	err := e.WaitLog(ctx, since, timeout, func(line string) bool {
		return strings.Contains(line, "connected and synchronized") && strings.Contains(line, want)
	}, func() error {
		if !p.alive() {
			return fmt.Errorf("plugin process %d exited", p.pid)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("harness: plugin %d (%s-%s) did not register: %w%s", i, pl.Index, pl.Name, err, e.logTail(e.st.PluginLogs[i], 20))
	}
	return nil
}

// WaitLog polls containerd's log from byte offset since until a line
// matches, the timeout passes, or check (optional) returns an error. It
// reads only what was appended since the last poll.
func (e *Env) WaitLog(ctx context.Context, since int64, timeout time.Duration, match func(line string) bool, check func() error) error {
	deadline := time.Now().Add(timeout)
	var partial []byte // an unfinished last line, kept for the next poll
	for {
		if chunk, err := readFrom(e.st.ContainerdLog, since); err == nil && len(chunk) > 0 {
			since += int64(len(chunk))
			lines := bytes.Split(append(partial, chunk...), []byte("\n"))
			partial = append([]byte(nil), lines[len(lines)-1]...)
			for _, line := range lines[:len(lines)-1] {
				if match(string(line)) {
					return nil
				}
			}
		}
		if check != nil {
			if err := check(); err != nil {
				return err
			}
		}
		if time.Now().After(deadline) {
			if len(partial) > 0 && match(string(partial)) {
				return nil
			}
			return fmt.Errorf("no matching line in %s after %s", e.st.ContainerdLog, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// readFrom returns the content of path from byte offset off to its end.
func readFrom(path string, off int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return nil, err
	}
	return io.ReadAll(f)
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}
