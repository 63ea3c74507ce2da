package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/test/e2e/cri"
)

// DefaultContainerdVersion is the version Options.ContainerdVersion falls
// back to (after $STRATA_E2E_CONTAINERD).
const DefaultContainerdVersion = "2.4.2"

// NRISocketEnv is the environment variable that carries the NRI socket path
// to plugins; "${STRATA_NRI_SOCKET}" in Plugin.Args is replaced by it too.
const NRISocketEnv = "STRATA_NRI_SOCKET"

// Plugin is an NRI plugin binary the harness runs against containerd's NRI
// socket. It gets NRI_PLUGIN_NAME and NRI_PLUGIN_IDX (which a pkg/stub
// plugin reads by default) and STRATA_NRI_SOCKET in its environment.
type Plugin struct {
	// Path is the plugin binary.
	Path string
	// Args are its arguments; ${STRATA_NRI_SOCKET} and ${STRATA_E2E_DIR}
	// (the run directory) are expanded.
	Args []string
	// Env is added to the plugin's environment ("KEY=value").
	Env []string
	// Name is the NRI plugin name; default the binary's base name.
	Name string
	// Index is the two-digit NRI index; default 10, 11, ... by position.
	Index string
	// NoWait skips waiting for containerd to report the plugin as
	// "connected and synchronized" when it starts.
	NoWait bool
}

// Options configure a test environment.
type Options struct {
	// ContainerdVersion picks the tool module test/e2e/containerd/v<X>.
	// Default $STRATA_E2E_CONTAINERD, else DefaultContainerdVersion.
	ContainerdVersion string
	// CacheDir holds built binaries and the image; default DefaultCacheDir().
	CacheDir string
	// BaseDir holds the run directory strata-e2e-<runid>; default /tmp.
	// Keep it short: unix socket paths are limited to 107 bytes.
	BaseDir string
	// Plugins are started, in order, after containerd is up.
	Plugins []Plugin
	// LogLevel is containerd's log level; default "debug".
	LogLevel string
	// NRIRegistrationTimeout and NRIRequestTimeout are containerd's NRI
	// timeouts; defaults 5s and 2s (containerd's own defaults).
	NRIRegistrationTimeout, NRIRequestTimeout time.Duration
	// ExtraConfig is TOML appended to the generated containerd config.
	ExtraConfig string
	// Detach leaves containerd and plugins running when this process
	// exits (for `e2eenv up`); Close or `e2eenv down` removes them later.
	// Without it, SIGINT/SIGTERM to this process tears the environment
	// down, and a later New removes environments whose owner died.
	Detach bool
	// Logf reports progress; nil is quiet.
	Logf func(format string, args ...any)
}

// State is what identifies a running environment on disk (state.json in
// the run directory), so another process can find and remove it.
type State struct {
	RunID string
	// Dir is the run directory: config, logs, sockets, root, state.
	Dir string
	// Socket is containerd's gRPC (and CRI) socket.
	Socket string
	// NRISocket is containerd's NRI socket that plugins connect to.
	NRISocket string
	// CgroupRoot is the cgroupfs parent all pods of this run live under,
	// "/strata-e2e-<runid>".
	CgroupRoot string
	// Image is the imported test image (ImageRef).
	Image         string
	Binaries      Binaries
	ContainerdLog string
	ContainerdPID int
	PluginPIDs    []int
	Plugins       []Plugin
	PluginLogs    []string
	// OwnerPID is the process that tears the environment down (0 when
	// detached).
	OwnerPID int
}

// Env is a running containerd (with NRI) plus plugins, owned by a test or
// by e2eenv. All methods are safe for concurrent use.
type Env struct {
	mu         sync.Mutex
	st         State
	opts       Options
	containerd *proc
	plugins    []*proc
	client     *cri.Client
	hier       *cgroup.Hierarchy
	closed     bool
	closeDone  chan struct{} // closed when the first Close returns
}

const stateFile = "state.json"

// New builds what is missing, starts containerd with NRI and the plugins,
// and imports the test image. On error nothing is left behind.
func New(ctx context.Context, opts Options) (*Env, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("harness: containerd needs root (running as uid %d)", os.Geteuid())
	}
	if opts.ContainerdVersion == "" {
		opts.ContainerdVersion = os.Getenv("STRATA_E2E_CONTAINERD")
	}
	if opts.ContainerdVersion == "" {
		opts.ContainerdVersion = DefaultContainerdVersion
	}
	if opts.BaseDir == "" {
		opts.BaseDir = "/tmp"
	}
	if opts.LogLevel == "" {
		opts.LogLevel = "debug"
	}
	if opts.NRIRegistrationTimeout == 0 {
		opts.NRIRegistrationTimeout = 5 * time.Second
	}
	if opts.NRIRequestTimeout == 0 {
		opts.NRIRequestTimeout = 2 * time.Second
	}
	runc, err := exec.LookPath("runc")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/runc"); serr == nil {
			runc, err = "/usr/sbin/runc", nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("harness: runc not found: install the apt package runc (see test/e2e/apt-packages.txt): %w", err)
	}
	opts.Plugins = append([]Plugin(nil), opts.Plugins...)
	for i, p := range opts.Plugins {
		if p.Path == "" {
			return nil, fmt.Errorf("harness: Plugins[%d].Path is empty", i)
		}
		// Plugins run in the run directory; a relative path would be
		// resolved there.
		abs, err := filepath.Abs(p.Path)
		if err != nil {
			return nil, fmt.Errorf("harness: Plugins[%d].Path %q: %w", i, p.Path, err)
		}
		opts.Plugins[i].Path = abs
		if p.Index != "" && (len(p.Index) != 2 || p.Index[0] < '0' || p.Index[0] > '9' || p.Index[1] < '0' || p.Index[1] > '9') {
			return nil, fmt.Errorf("harness: Plugins[%d].Index %q must be two digits 00-99", i, p.Index)
		}
	}
	if n := RemoveStale(opts.BaseDir, opts.Logf); n > 0 {
		logf(opts.Logf, "removed %d stale environment(s) of dead test processes", n)
	}

	hier, err := cgroup.Detect(cgroup.Options{})
	if err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	// Static, like the cgroup v2 guest's: one build per version serves the
	// host and the guest, which saves a cold CI run one containerd build.
	bins, err := BuildContainerd(ctx, BuildOptions{Version: opts.ContainerdVersion, CacheDir: opts.CacheDir, Static: true, Logf: opts.Logf})
	if err != nil {
		return nil, err
	}
	tarball, err := BuildImage(ctx, opts.CacheDir, opts.Logf)
	if err != nil {
		return nil, err
	}

	runID := newRunID()
	dir := filepath.Join(opts.BaseDir, "strata-e2e-"+runID)
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return nil, fmt.Errorf("harness: run dir: %w", err)
	}
	e := &Env{opts: opts, hier: hier}
	e.st = State{
		RunID:         runID,
		Dir:           dir,
		Socket:        filepath.Join(dir, "c.sock"),
		NRISocket:     filepath.Join(dir, "nri.sock"),
		CgroupRoot:    "/strata-e2e-" + runID,
		Image:         ImageRef,
		Binaries:      bins,
		ContainerdLog: filepath.Join(dir, "containerd.log"),
	}
	if !opts.Detach {
		e.st.OwnerPID = os.Getpid()
		registerLive(e)
	}
	for _, sub := range []string{"nri/plugins", "nri/conf", "cni/bin", "cni/conf", "tmp"} {
		if err == nil {
			err = os.MkdirAll(filepath.Join(dir, sub), 0o755)
		}
	}
	if err == nil {
		err = e.saveState()
	}
	if err == nil {
		err = writeConfig(filepath.Join(dir, "config.toml"), configData{
			Dir: dir, Socket: e.st.Socket, NRISocket: e.st.NRISocket, Image: ImageRef, Runc: runc,
			LogLevel:               opts.LogLevel,
			NRIRegistrationTimeout: opts.NRIRegistrationTimeout.String(),
			NRIRequestTimeout:      opts.NRIRequestTimeout.String(),
			Extra:                  opts.ExtraConfig,
			V2:                     strings.HasPrefix(bins.Version, "1."),
		})
	}
	if err == nil {
		err = e.startContainerd(ctx)
	}
	if err == nil {
		err = e.importImage(ctx, tarball)
	}
	for i, p := range opts.Plugins {
		if err != nil {
			break
		}
		if p.Name == "" {
			p.Name = filepath.Base(p.Path)
		}
		if p.Index == "" {
			p.Index = fmt.Sprintf("%02d", 10+i)
		}
		e.st.Plugins = append(e.st.Plugins, p)
		e.st.PluginLogs = append(e.st.PluginLogs, filepath.Join(dir, fmt.Sprintf("plugin-%d-%s.log", i, p.Name)))
		e.st.PluginPIDs = append(e.st.PluginPIDs, 0)
		e.plugins = append(e.plugins, nil)
		err = e.startPlugin(ctx, i)
	}
	if err != nil {
		err = fmt.Errorf("%w%s", err, e.logTail(e.st.ContainerdLog, 30))
		if cerr := e.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		return nil, err
	}
	logf(opts.Logf, "containerd v%s up in %s (socket %s, NRI %s, cgroups under %s)", bins.Version, dir, e.st.Socket, e.st.NRISocket, e.st.CgroupRoot)
	return e, nil
}

// State returns a copy of the environment's identifying state.
func (e *Env) State() State {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.st
	st.PluginPIDs = append([]int(nil), e.st.PluginPIDs...)
	st.Plugins = append([]Plugin(nil), e.st.Plugins...)
	st.PluginLogs = append([]string(nil), e.st.PluginLogs...)
	return st
}

// CRI returns the CRI client of the running containerd (replaced on each
// RestartContainerd, so call CRI() again after a restart).
func (e *Env) CRI() *cri.Client {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.client
}

// CgroupParent is the cgroupfs parent for a pod of this run,
// "/strata-e2e-<runid>/<name>"; everything under it is removed by Close.
func (e *Env) CgroupParent(name string) string { return e.st.CgroupRoot + "/" + name }

// Workload is a started pod with one container.
type Workload struct {
	Pod         *cri.Pod
	ContainerID string
}

// RunContainer creates a pod and one container in it and starts the
// container. Defaults: pod CgroupParent e.CgroupParent(pod.Name),
// container Name pod.Name, Image ImageRef, Command ["sleep", "3600"].
func (e *Env) RunContainer(ctx context.Context, pod cri.PodOptions, ctr cri.ContainerOptions) (*Workload, error) {
	if pod.CgroupParent == "" && pod.Name != "" {
		pod.CgroupParent = e.CgroupParent(pod.Name)
	}
	if ctr.Name == "" {
		ctr.Name = pod.Name
	}
	if ctr.Image == "" {
		ctr.Image = ImageRef
	}
	if ctr.Command == nil {
		ctr.Command = []string{"sleep", "3600"}
	}
	c := e.CRI()
	p, err := c.RunPod(ctx, pod)
	if err != nil {
		return nil, err
	}
	id, err := c.CreateContainer(ctx, p, ctr)
	if err != nil {
		return &Workload{Pod: p}, err
	}
	if err := c.StartContainer(ctx, id); err != nil {
		return &Workload{Pod: p, ContainerID: id}, err
	}
	return &Workload{Pod: p, ContainerID: id}, nil
}

// Cgroup returns the cgroup of a container (from linux.cgroupsPath of its
// runtime spec), to read its settings through package cgroup.
func (e *Env) Cgroup(ctx context.Context, containerID string) (*cgroup.Cgroup, error) {
	st, err := e.CRI().ContainerStatus(ctx, containerID)
	if err != nil {
		return nil, err
	}
	if st.CgroupsPath == "" {
		return nil, fmt.Errorf("harness: container %s: no cgroupsPath in its verbose status", containerID)
	}
	cg, err := e.hier.Open(st.CgroupsPath)
	if err != nil {
		return nil, fmt.Errorf("harness: container %s: %w", containerID, err)
	}
	return cg, nil
}

// CgroupDir is the directory of a container's cgroup for one controller
// (v1 name, e.g. "cpu", "cpuset", "memory"; "" for the unified one on v2).
func (e *Env) CgroupDir(ctx context.Context, containerID, controller string) (string, error) {
	cg, err := e.Cgroup(ctx, containerID)
	if err != nil {
		return "", err
	}
	dir, err := cg.Dir(controller)
	if err != nil {
		return "", fmt.Errorf("harness: container %s: %w", containerID, err)
	}
	return dir, nil
}

// Hierarchy is the host's cgroup hierarchy as detected at start.
func (e *Env) Hierarchy() *cgroup.Hierarchy { return e.hier }

// ContainerdLog returns containerd's log so far.
func (e *Env) ContainerdLog() (string, error) {
	b, err := os.ReadFile(e.st.ContainerdLog)
	return string(b), err
}

// PluginLog returns plugin i's output (stdout and stderr) so far.
func (e *Env) PluginLog(i int) (string, error) {
	st := e.State()
	if i < 0 || i >= len(st.PluginLogs) {
		return "", fmt.Errorf("harness: no plugin %d (have %d)", i, len(st.PluginLogs))
	}
	b, err := os.ReadFile(st.PluginLogs[i])
	return string(b), err
}

func (e *Env) saveState() error {
	b, err := json.MarshalIndent(e.st, "", "  ")
	if err != nil {
		return fmt.Errorf("harness: encode state: %w", err)
	}
	p := filepath.Join(e.st.Dir, stateFile)
	if err := os.WriteFile(p+".tmp", b, 0o644); err != nil {
		return fmt.Errorf("harness: write state: %w", err)
	}
	if err := os.Rename(p+".tmp", p); err != nil {
		return fmt.Errorf("harness: write state: %w", err)
	}
	return nil
}

// Attach finds the environment whose run directory is dir (made by New in
// this or another process), so that it can be inspected or Closed.
// Processes of an attached Env are known only by PID. A run directory whose
// state.json is missing (a Close that was cut short) is still attached,
// with what its name implies, so that Close can finish the job.
func Attach(dir string) (*Env, error) {
	dir = filepath.Clean(dir)
	var st State
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &st); err != nil {
			return nil, fmt.Errorf("harness: attach %s: decode %s: %w", dir, stateFile, err)
		}
		if st.RunID == "" || st.Dir != dir {
			return nil, fmt.Errorf("harness: attach %s: %s names run %q in %q", dir, stateFile, st.RunID, st.Dir)
		}
	case os.IsNotExist(err):
		runID, ok := runIDOf(dir)
		if !ok {
			return nil, fmt.Errorf("harness: attach %s: not a run directory (want strata-e2e-<8 hex digits>)", dir)
		}
		st = State{RunID: runID, Dir: dir, Socket: filepath.Join(dir, "c.sock"), CgroupRoot: "/strata-e2e-" + runID}
	default:
		return nil, fmt.Errorf("harness: attach %s: %w", dir, err)
	}
	hier, err := cgroup.Detect(cgroup.Options{})
	if err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	e := &Env{st: st, hier: hier}
	if st.ContainerdPID > 0 {
		e.containerd = attachProc(st.ContainerdPID, st.Dir)
	}
	for _, pid := range st.PluginPIDs {
		var p *proc
		if pid > 0 {
			p = attachProc(pid, st.Dir)
		}
		e.plugins = append(e.plugins, p)
	}
	if e.containerd.alive() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if c, err := cri.Dial(ctx, st.Socket); err == nil {
			e.client = c
		}
	}
	return e, nil
}

// runIDOf returns the run id of a run directory named strata-e2e-<8 hex>.
func runIDOf(dir string) (string, bool) {
	id, ok := strings.CutPrefix(filepath.Base(dir), "strata-e2e-")
	if !ok || len(id) != 8 {
		return "", false
	}
	if _, err := hex.DecodeString(id); err != nil {
		return "", false
	}
	return id, true
}

// List returns the run directories of all environments under baseDir
// (default /tmp), live or stale.
func List(baseDir string) ([]string, error) {
	if baseDir == "" {
		baseDir = "/tmp"
	}
	matches, err := filepath.Glob(filepath.Join(baseDir, "strata-e2e-*"))
	if err != nil {
		return nil, err
	}
	var dirs []string
	for _, m := range matches {
		if fi, err := os.Lstat(m); err == nil && fi.IsDir() {
			if _, ok := runIDOf(m); ok {
				dirs = append(dirs, m)
			}
		}
	}
	return dirs, nil
}

// RemoveStale closes every environment under baseDir whose owner process
// is gone (a test binary that was killed before its cleanup ran) or whose
// Close was cut short, and returns how many it removed. Detached
// environments are left alone.
func RemoveStale(baseDir string, logf func(string, ...any)) int {
	dirs, _ := List(baseDir)
	n := 0
	for _, dir := range dirs {
		e, err := Attach(dir)
		if err != nil {
			continue
		}
		if e.st.OwnerPID == 0 {
			// Detached (e2eenv up), or state.json is gone because a Close
			// was cut short. Only the latter is stale; the age check
			// spares a run that New is creating right now.
			fi, err := os.Stat(dir)
			_, serr := os.Stat(filepath.Join(dir, stateFile))
			if err != nil || serr == nil || time.Since(fi.ModTime()) < time.Minute {
				continue
			}
		} else if pidAlive(e.st.OwnerPID) {
			continue
		}
		if err := e.Close(); err != nil && logf != nil {
			logf("removing stale environment %s: %v", dir, err)
		}
		n++
	}
	return n
}

func newRunID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// logTail returns the last n lines of a log file, formatted for appending
// to an error ("" if unreadable).
func (e *Env) logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return fmt.Sprintf("\n--- last %d lines of %s ---\n%s", len(lines), path, strings.Join(lines, "\n"))
}
