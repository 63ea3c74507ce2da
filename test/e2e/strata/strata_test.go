// Package strata_test runs Strata's NRI plugin against a real containerd
// (built by package harness) and checks what the kernel shows: cgroup
// files, process attributes, and the plugin's own status.
package strata_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/cpuset"
	"sigs.k8s.io/yaml"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/isolation"
	nriplugin "github.com/strata-nri/strata/nri-plugin"
	"github.com/strata-nri/strata/test/e2e/cri"
	"github.com/strata-nri/strata/test/e2e/harness"
)

var (
	buildOnce sync.Once
	strataBin string
	buildErr  error
)

// strata builds the plugin binary once per test binary.
func strata(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "strata-bin-")
		if err != nil {
			buildErr = err
			return
		}
		strataBin, buildErr = harness.GoBuild(context.Background(), "./nri-plugin/cmd/strata", dir)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return strataBin
}

// env starts containerd with the plugin configured by cfg.
func env(t *testing.T, version string, cfg *isolation.Config) *harness.Env {
	t.Helper()
	return envWith(t, version, cfg, "")
}

// envWith is env with more containerd configuration (TOML) and more
// arguments to strata run.
func envWith(t *testing.T, version string, cfg *isolation.Config, containerdConfig string, args ...string) *harness.Env {
	t.Helper()
	harness.Require(t)
	bin := strata(t)
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(t.TempDir(), "strata.yaml")
	if err := os.WriteFile(cfgFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return harness.Start(t, harness.Options{
		ContainerdVersion: version,
		ExtraConfig:       containerdConfig,
		Plugins: []harness.Plugin{{Path: bin, Name: "strata", Index: "50",
			Args: append([]string{"run", "--socket-path", "${STRATA_NRI_SOCKET}", "--config", cfgFile,
				"--listen", "unix:${STRATA_E2E_DIR}/strata.sock", "--log-level", "debug"}, args...)}},
	})
}

func statusOf(t *testing.T, e *harness.Env) *nriplugin.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := nriplugin.FetchStatus(ctx, "unix:"+filepath.Join(e.State().Dir, "strata.sock"))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TimeScaleEnv stretches the tests' loop period and waits by a whole
// factor on machines where every runtime call is slow: in the qemu TCG
// guest of test/vm, starting a container takes seconds and a runc update
// about one. Claims stated in periods stay the same claims.
const TimeScaleEnv = "STRATA_E2E_TIME_SCALE"

// scaled is d times the time scale (default 1).
func scaled(d time.Duration) time.Duration {
	if n, err := strconv.Atoi(os.Getenv(TimeScaleEnv)); err == nil && n > 1 {
		return d * time.Duration(n)
	}
	return d
}

// basePeriod is fastConfig's loop period before scaling.
const basePeriod = 200 * time.Millisecond

// fastConfig is the default configuration with a 200 ms loop (scaled) and
// the latency-critical pool open to namespace demo, where the tests' pods
// live.
func fastConfig() *isolation.Config {
	cfg := isolation.DefaultConfig()
	cfg.Period = isolation.Duration{Duration: scaled(basePeriod)}
	cfg.Pools[0].Allow = isolation.AllowList{Namespaces: []string{"demo"}}
	return cfg
}

// res builds CRI resources as the kubelet would for a request and limit in
// millicores (0: none).
func res(requestMilli, limitMilli int64) *runtimeapi.LinuxContainerResources {
	r := &runtimeapi.LinuxContainerResources{CpuShares: 2, CpuPeriod: 100000}
	if requestMilli > 0 {
		r.CpuShares = requestMilli * 1024 / 1000
	}
	if limitMilli > 0 {
		r.CpuQuota = limitMilli * 100
	}
	return r
}

func read(t *testing.T, e *harness.Env, id, controller, file string) string {
	t.Helper()
	dir, err := e.CgroupDir(context.Background(), id, controller)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func cpusOf(t *testing.T, e *harness.Env, id string) cpuset.CPUSet {
	t.Helper()
	s, err := cg(t, e, id).CPUSetCPUs()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func run(t *testing.T, e *harness.Env, name, pool string, r *runtimeapi.LinuxContainerResources, command ...string) *harness.Workload {
	t.Helper()
	ann := map[string]string{}
	if pool != "" {
		ann["strata.io/pool"] = pool
	}
	w, err := e.RunContainer(context.Background(), cri.PodOptions{Name: name, Namespace: "demo", Annotations: ann},
		cri.ContainerOptions{Resources: r, Command: command})
	if err != nil {
		t.Fatalf("run %s in pool %q: %v", name, pool, err)
	}
	return w
}

func online(t *testing.T) cpuset.CPUSet {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		t.Fatal(err)
	}
	s, err := cpuset.Parse(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestE2EPlacement (containerd 2.4.2, 2.1.4 and 1.7.35 with NRI enabled):
// a latency-critical container with a whole-CPU request
// gets exclusive CPUs on one NUMA node; a batch container gets the batch
// pool's cpuset and profile (weight 2, idle scheduling, oom_score_adj 1000)
// in its cgroup files and on its process. On cgroup v2 (the test/vm guest)
// the pools' v2 settings are checked too: cpu.max and cpu.weight as the
// request and limit give them, batch's memory.high at 90 % of its limit,
// and, with 4 or more CPUs, an online container on the shared pool's own
// CPUs.
func TestE2EPlacement(t *testing.T) {
	for _, version := range []string{"2.4.2", "2.1.4", "1.7.35"} {
		t.Run("containerd-"+version, func(t *testing.T) { checkPlacement(t, version) })
	}
}

// batchMemoryLimit is the batch container's memory limit in the placement
// test; its profile's memory.high is 90 % of it.
const batchMemoryLimit = 256 << 20

func checkPlacement(t *testing.T, version string) {
	e := env(t, version, fastConfig())
	v2 := e.Hierarchy().Mode() == cgroup.V2
	lc := run(t, e, "lc", isolation.PoolLatencyCritical, res(1000, 1000))
	var on *harness.Workload
	if online(t).Size() >= 4 { // room for the shared online pool beside the others
		on = run(t, e, "web", isolation.PoolOnline, res(500, 0))
	}
	br := res(0, 0)
	br.MemoryLimitInBytes = batchMemoryLimit
	batch := run(t, e, "batch", isolation.PoolBatch, br)

	lcCPUs := cpusOf(t, e, lc.ContainerID)
	if lcCPUs.Size() != 1 {
		t.Fatalf("latency-critical container cpuset.cpus = %s, want 1 exclusive CPU", lcCPUs)
	}
	if mems, err := cg(t, e, lc.ContainerID).CPUSetMems(); err != nil || mems.String() != "0" {
		t.Errorf("latency-critical cpuset.mems = %q (%v), want the CPU's NUMA node 0", mems, err)
	}
	bCPUs := cpusOf(t, e, batch.ContainerID)
	if bCPUs.Size() == 0 || bCPUs.Intersection(lcCPUs).Size() != 0 {
		t.Errorf("batch cpuset.cpus = %s: must be non-empty and exclude the exclusive CPU %s", bCPUs, lcCPUs)
	}
	covered := bCPUs.Union(lcCPUs)
	if on != nil {
		oCPUs := cpusOf(t, e, on.ContainerID)
		if oCPUs.Size() == 0 || oCPUs.Intersection(covered).Size() != 0 {
			t.Errorf("online cpuset.cpus = %s: must be non-empty and apart from exclusive %s and batch %s", oCPUs, lcCPUs, bCPUs)
		}
		covered = covered.Union(oCPUs)
	}
	if !covered.Equals(online(t)) {
		t.Errorf("the pools' cpusets (exclusive %s, batch %s, all %s) do not cover the node's CPUs %s", lcCPUs, bCPUs, covered, online(t))
	}
	// cpu.idle cannot travel through NRI on cgroup v1: the plugin writes
	// it when the container starts; on v2 the unified map carries it. The
	// kernel then gives the group the idle weight, WEIGHT_IDLEPRIO (3), in
	// place of the profile's 2 shares: v1's cpu.shares reads 3, v2's
	// cpu.weight 3 × 100 / 1024 rounded, 0.
	waitFor(t, 5*time.Second, "batch cpu.idle = 1", func() bool {
		idle, err := cg(t, e, batch.ContainerID).CPUIdle()
		return err == nil && idle
	})
	if v2 {
		if w := read(t, e, batch.ContainerID, "", "cpu.weight"); w != "0" {
			t.Errorf("batch cpu.weight = %s, want 0 (the kernel's idle weight once cpu.idle=1)", w)
		}
	} else if s := read(t, e, batch.ContainerID, cgroup.CPU, "cpu.shares"); s != "3" {
		t.Errorf("batch cpu.shares = %s, want 3 (the kernel's idle weight once cpu.idle=1)", s)
	}
	// The latency-critical pool keeps the limit (quota: keep) and the
	// request's weight: 1 CPU of quota per 100 ms period, 1024 shares
	// (on v2 cpu.weight 39 or 100, as the runtime converts).
	if q, period, err := cg(t, e, lc.ContainerID).CPUQuota(); err != nil || q != 100000 || period != 100000 {
		t.Errorf("latency-critical CPU quota = %d/%d µs (%v), want 100000/100000 (its 1-CPU limit)", q, period, err)
	}
	if sh, err := cg(t, e, lc.ContainerID).CPUShares(); err != nil || !e.Hierarchy().SameShares(sh, 1024) {
		t.Errorf("latency-critical CPU weight = %d shares (%v), want 1024 (on v2 cpu.weight %d or %d)", sh, err,
			cgroup.LinearSharesToWeight(1024), cgroup.SharesToWeight(1024))
	}
	if lim, err := cg(t, e, batch.ContainerID).MemoryLimit(); err != nil || !cgroup.SameBytes(lim, batchMemoryLimit) {
		t.Errorf("batch memory limit = %d (%v), want %d", lim, err, batchMemoryLimit)
	}
	if v2 {
		// memory.high: v2 only, carried by the unified map at creation.
		want := int64(batchMemoryLimit * 9 / 10)
		if high, err := cg(t, e, batch.ContainerID).MemoryHigh(); err != nil || !cgroup.SameBytes(high, want) {
			t.Errorf("batch memory.high = %d (%v), want 90 %% of its limit, %d", high, err, want)
		}
		for _, w := range []*harness.Workload{lc, on} {
			if w == nil {
				continue
			}
			if high, err := cg(t, e, w.ContainerID).MemoryHigh(); err != nil || high >= 0 {
				t.Errorf("container %s memory.high = %d (%v), want max: only batch's profile sets it", w.ContainerID, high, err)
			}
		}
	}
	st, err := e.CRI().ContainerStatus(context.Background(), batch.ContainerID)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "batch process oom_score_adj = 1000", func() bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/oom_score_adj", st.Pid))
		return err == nil && strings.TrimSpace(string(b)) == "1000"
	})
	allowed := procField(t, st.Pid, "Cpus_allowed_list")
	if allowed != bCPUs.String() {
		t.Errorf("batch process Cpus_allowed_list = %s, want its cgroup's %s", allowed, bCPUs)
	}

	// The plugin's status agrees with the kernel.
	status := statusOf(t, e)
	byName := map[string]nriplugin.ContainerStatus{}
	for _, c := range status.Containers {
		byName[c.Pod] = c
	}
	if c := byName["demo/lc"]; c.Pool != isolation.PoolLatencyCritical || !c.Exclusive || c.CPUs != lcCPUs.String() {
		t.Errorf("status of lc: %+v, want pool %s exclusive on %s", c, isolation.PoolLatencyCritical, lcCPUs)
	}
	if c := byName["demo/batch"]; c.Pool != isolation.PoolBatch {
		t.Errorf("status of batch: %+v", c)
	}
	if c := byName["demo/web"]; on != nil && c.Pool != isolation.PoolOnline {
		t.Errorf("status of web: %+v, want pool %s", c, isolation.PoolOnline)
	}
}

// cg is a container's cgroup, read through package cgroup whatever the
// host's cgroup mode.
func cg(t *testing.T, e *harness.Env, id string) *cgroup.Cgroup {
	t.Helper()
	c, err := e.Cgroup(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func procField(t *testing.T, pid int, field string) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == field {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("/proc/%d/status has no %s", pid, field)
	return ""
}

// waitFor polls ok for d times the time scale.
func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	d = scaled(d)
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestE2EInvalidAnnotation: creation fails with an error that names the
// annotation and the allowed values.
func TestE2EInvalidAnnotation(t *testing.T) {
	e := env(t, "2.4.2", fastConfig())
	_, err := e.RunContainer(context.Background(), cri.PodOptions{Name: "bad", Namespace: "demo",
		Annotations: map[string]string{"strata.io/pool": "turbo"}}, cri.ContainerOptions{})
	if err == nil {
		t.Fatal("container with strata.io/pool=turbo was created")
	}
	for _, want := range []string{"strata.io/pool", "turbo", isolation.PoolLatencyCritical, isolation.PoolOnline, isolation.PoolBatch} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("creation error does not name %q: %v", want, err)
		}
	}
}

// TestE2EAllowList: with pool 0 restricted to namespace "trusted", a pod of
// another namespace asking for it is refused; a trusted one is admitted.
func TestE2EAllowList(t *testing.T) {
	cfg := fastConfig()
	cfg.Pools[0].Allow = isolation.AllowList{Namespaces: []string{"trusted"}}
	e := env(t, "2.4.2", cfg)
	ann := map[string]string{"strata.io/pool": isolation.PoolLatencyCritical}
	_, err := e.RunContainer(context.Background(), cri.PodOptions{Name: "sneaky", Namespace: "demo", Annotations: ann},
		cri.ContainerOptions{Resources: res(1000, 1000)})
	if err == nil || !strings.Contains(err.Error(), isolation.ErrNotAllowed.Error()) {
		t.Fatalf("pod outside pool 0's allow-list: %v, want refusal %q", err, isolation.ErrNotAllowed)
	}
	w, err := e.RunContainer(context.Background(), cri.PodOptions{Name: "trusted", Namespace: "trusted", Annotations: ann},
		cri.ContainerOptions{Resources: res(1000, 1000)})
	if err != nil {
		t.Fatalf("pod inside the allow-list: %v", err)
	}
	if c := cpusOf(t, e, w.ContainerID); c.Size() != 1 {
		t.Errorf("trusted pod cpuset %s, want 1 exclusive CPU", c)
	}
}

// TestE2ERestarts: containerd restarted → the plugin reconnects and no
// container changes pool or CPUs; the plugin killed and restarted → the
// same state is rebuilt from the containers' annotations.
func TestE2ERestarts(t *testing.T) {
	e := env(t, "2.4.2", fastConfig())
	lc := run(t, e, "lc", isolation.PoolLatencyCritical, res(1000, 1000))
	batch := run(t, e, "batch", isolation.PoolBatch, res(0, 0))
	snapshot := func() map[string]string {
		out := map[string]string{}
		for _, c := range statusOf(t, e).Containers {
			out[c.Pod] = c.Pool + " " + c.CPUs + " " + strconv.FormatBool(c.Exclusive)
		}
		return out
	}
	before := snapshot()
	lcCPUs, bCPUs := cpusOf(t, e, lc.ContainerID), cpusOf(t, e, batch.ContainerID)

	since := e.ContainerdLogSize()
	if err := e.RestartContainerd(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.WaitPluginRegistered(context.Background(), 0, since, 20*time.Second); err != nil {
		t.Fatalf("strata did not reconnect after containerd restart: %v", err)
	}
	waitFor(t, 5*time.Second, "status connected after containerd restart", func() bool { return statusOf(t, e).Connected })
	if after := snapshot(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("after containerd restart:\n got %v\nwant %v", after, before)
	}

	if err := e.RestartPlugin(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "status after plugin restart", func() bool { return statusOf(t, e).Synced })
	if after := snapshot(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("after plugin restart:\n got %v\nwant %v", after, before)
	}
	if got := cpusOf(t, e, lc.ContainerID); !got.Equals(lcCPUs) {
		t.Errorf("lc cpuset after restarts %s, want %s", got, lcCPUs)
	}
	if got := cpusOf(t, e, batch.ContainerID); !got.Equals(bCPUs) {
		t.Errorf("batch cpuset after restarts %s, want %s", got, bCPUs)
	}
}

// TestE2EParallelCreate creates 100 containers at once across the pools:
// all must be adjusted correctly, and the plugin's slowest CreateContainer
// must stay far from NRI's 2 s request timeout.
func TestE2EParallelCreate(t *testing.T) {
	e := env(t, "2.4.2", fastConfig())
	const n = 100
	pools := []string{isolation.PoolOnline, isolation.PoolBatch}
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			w, err := e.RunContainer(context.Background(), cri.PodOptions{Name: fmt.Sprintf("p%03d", i), Namespace: "demo",
				Annotations: map[string]string{"strata.io/pool": pools[i%2]}}, cri.ContainerOptions{Resources: res(100, 0)})
			errs[i] = err
			if w != nil {
				ids[i] = w.ContainerID
			}
		}(i)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("container %d: %v", i, err)
		}
	}
	status := statusOf(t, e)
	poolCPUs := map[string]string{}
	for _, p := range status.Pools {
		poolCPUs[p.Name] = p.CPUs
	}
	members := 0
	for _, c := range status.Containers {
		if strings.HasPrefix(c.Pod, "demo/p") {
			members++
		}
	}
	if members != n {
		t.Errorf("status lists %d of the %d containers", members, n)
	}
	for i, id := range ids {
		pool := pools[i%2]
		want := poolCPUs[pool]
		waitFor(t, 5*time.Second, fmt.Sprintf("container %d on pool %s's CPUs %s", i, pool, want), func() bool {
			return cpusOf(t, e, id).String() == want || want == "" && cpusOf(t, e, id).Size() > 0
		})
	}
	max := maxHandlerSeconds(t, e, "CreateContainer")
	t.Logf("slowest CreateContainer handler bucket: ≤ %.4f s", max)
	if max > 0.25 {
		t.Errorf("a CreateContainer handler took up to %.3f s; NRI's timeout is 2 s and we promise to stay far below", max)
	}
}

// maxHandlerSeconds reads the plugin's handler histogram and returns the
// upper bound of the highest non-empty bucket.
func maxHandlerSeconds(t *testing.T, e *harness.Env, event string) float64 {
	t.Helper()
	metrics := fetch(t, e, "/metrics")
	prev, upper := 0.0, 0.0
	for _, line := range strings.Split(metrics, "\n") {
		if !strings.HasPrefix(line, "strata_nri_handler_seconds_bucket{") || !strings.Contains(line, `event="`+event+`"`) {
			continue
		}
		le := line[strings.Index(line, `le="`)+4:]
		le = le[:strings.Index(le, `"`)]
		count, _ := strconv.ParseFloat(line[strings.LastIndex(line, " ")+1:], 64)
		if le == "+Inf" {
			if count > prev {
				return 1e9
			}
			break
		}
		bound, _ := strconv.ParseFloat(le, 64)
		if count > prev {
			upper = bound
		}
		prev = count
	}
	return upper
}

func fetch(t *testing.T, e *harness.Env, path string) string {
	t.Helper()
	sock := filepath.Join(e.State().Dir, "strata.sock")
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
	resp, err := client.Get("http://strata" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestE2EBurnerGrowsPool0: a CPU burner started in a latency-critical
// container makes pool 0 grow and batch shrink within 3 periods, as the
// cgroup cpuset files show; when it stops, batch gets its CPUs back. Batch
// runs idle-scheduled (cpu.idle=1) throughout. On a 2-CPU machine batch may
// lend its last CPU only with minCPUs 0; its members then run on pool 0's
// CPUs. On more CPUs (the test/vm guest has 4) batch keeps CPUs of its own.
func TestE2EBurnerGrowsPool0(t *testing.T) {
	cfg := fastConfig()
	cfg.Pools[2].MinCPUs = 0
	cfg.Resize.ShrinkInterval = isolation.Duration{Duration: scaled(2 * basePeriod)}
	cfg.Predictor.Disabled = true // react to the load itself, so the test measures the loop
	all := online(t)
	if all.Size() < 2 {
		t.Fatalf("the test needs 2 CPUs, the node has %s", all)
	}
	e := env(t, "2.4.2", cfg)
	// 2.5 CPUs requested, fractional: pool 0 shares CPUs and may hold 2
	// or more. The latency-critical container burns a CPU while /burn
	// exists.
	lc := run(t, e, "lc", isolation.PoolLatencyCritical, res(2500, 0),
		"sh", "-c", "while :; do if [ -e /burn ]; then while [ -e /burn ]; do :; done; else sleep 0.05; fi; done")
	batch := run(t, e, "batch", isolation.PoolBatch, res(0, 0), "sh", "-c", "while :; do :; done")
	waitFor(t, 10*time.Second, "idle pool 0 on 1 CPU and batch on the others", func() bool {
		a, b := cpusOf(t, e, lc.ContainerID), cpusOf(t, e, batch.ContainerID)
		return a.Size() == 1 && a.Union(b).Equals(all) && a.Intersection(b).Size() == 0
	})
	batchOwn := cpusOf(t, e, batch.ContainerID)
	if idle, err := cg(t, e, batch.ContainerID).CPUIdle(); err != nil || !idle {
		t.Errorf("batch cpu.idle = %v (%v), want 1", idle, err)
	}

	period := cfg.Period.Duration
	if _, err := e.CRI().ExecSync(context.Background(), lc.ContainerID, []string{"touch", "/burn"}, scaled(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	// The burner runs from before ExecSync returns (by seconds in the TCG
	// guest): times from here are lower bounds.
	start := time.Now()
	// 3 periods, plus one for the sampler to see a full period of load.
	defer func() {
		if t.Failed() {
			st := statusOf(t, e)
			var b strings.Builder
			st.Print(&b)
			t.Log(b.String())
			log, _ := e.PluginLog(0)
			t.Log(log[max(0, len(log)-3000):])
		}
	}()
	waitFor(t, 4*basePeriod+300*time.Millisecond, "pool 0 grown to 2 CPUs in its container's cpuset.cpus", func() bool {
		return cpusOf(t, e, lc.ContainerID).Size() >= 2
	})
	grown := cpusOf(t, e, lc.ContainerID)
	t.Logf("pool 0 grew to %s %.0f ms (%.1f periods) after the burner started", grown,
		float64(time.Since(start).Milliseconds()), float64(time.Since(start))/float64(period))
	st := statusOf(t, e)
	if want := all.Size() - st.Pools[0].Size; st.Pools[2].Size != want {
		t.Errorf("batch pool holds %d CPUs while pool 0 holds %d, want the other %d", st.Pools[2].Size, st.Pools[0].Size, want)
	}
	if all.Size()-grown.Size() == 0 {
		waitFor(t, 2*time.Second, "batch member borrowing pool 0's CPUs", func() bool {
			return cpusOf(t, e, batch.ContainerID).Equals(cpusOf(t, e, lc.ContainerID))
		})
	} else {
		waitFor(t, 2*time.Second, "batch shrunk to the CPUs pool 0 left", func() bool {
			b := cpusOf(t, e, batch.ContainerID)
			return b.Size() < batchOwn.Size() && b.Intersection(cpusOf(t, e, lc.ContainerID)).Size() == 0
		})
	}
	if idle, err := cg(t, e, batch.ContainerID).CPUIdle(); err != nil || !idle {
		t.Errorf("batch member on %s: cpu.idle = %v (%v), want 1", cpusOf(t, e, batch.ContainerID), idle, err)
	}
	// The update that moved the idle member took as a whole: containerd
	// hands runc the container's whole resources, and shares in them made
	// the kernel refuse it (EINVAL on an idle group) — before the cpuset on
	// v2, after it on v1, where the cgroup moved, the update failed anyway
	// and containerd kept its record of the old cpuset (what the kubelet
	// reads in ContainerStatus).
	waitFor(t, time.Second, "containerd's record of batch's cpuset following its cgroup", func() bool {
		st, err := e.CRI().ContainerStatus(context.Background(), batch.ContainerID)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := cpuset.Parse(st.GetResources().GetLinux().GetCpusetCpus())
		return err == nil && rec.Equals(cpusOf(t, e, batch.ContainerID))
	})

	if _, err := e.CRI().ExecSync(context.Background(), lc.ContainerID, []string{"rm", "/burn"}, scaled(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "batch back on CPUs of its own", func() bool {
		b := cpusOf(t, e, batch.ContainerID)
		return b.Size() == batchOwn.Size() && b.Intersection(cpusOf(t, e, lc.ContainerID)).Size() == 0
	})
	t.Logf("batch got CPUs %s back (had %s)", cpusOf(t, e, batch.ContainerID), batchOwn)
}

// TestE2EPreinstalled installs strata the way an operator pre-installs an
// NRI plugin: the binary as <plugin_path>/50-strata and its configuration
// as <plugin_config_path>/50-strata.conf. containerd launches it at start,
// passes the configuration at Configure, and the plugin places containers
// (here: a latency-critical one with an exclusive CPU, allowed by the
// file's allow-list). When containerd stops, the plugin exits with it.
func TestE2EPreinstalled(t *testing.T) {
	// The environment starts an external strata; stop it, so only the
	// pre-installed one (index 40) places containers.
	e := env(t, "2.4.2", fastConfig())
	dir := e.State().Dir
	if err := e.StopPlugin(0); err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(strata(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg := fastConfig()
	cfg.Pools[0].Allow = isolation.AllowList{Namespaces: []string{"preinstalled"}}
	y, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for path, data := range map[string][]byte{
		filepath.Join(dir, "nri/plugins/40-strata"):   bin,
		filepath.Join(dir, "nri/conf/40-strata.conf"): y,
	} {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	since := e.ContainerdLogSize()
	if err := e.RestartContainerd(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.WaitLog(context.Background(), since, 20*time.Second, func(line string) bool {
		// containerd 2.4 words it "pre-installed NRI plugin ... synchronization success".
		return strings.Contains(line, `40-strata`) && (strings.Contains(line, "synchronization success") || strings.Contains(line, "connected and synchronized"))
	}, nil); err != nil {
		t.Fatalf("containerd did not launch the pre-installed plugin: %v", err)
	}
	w, err := e.RunContainer(context.Background(), cri.PodOptions{Name: "lc", Namespace: "preinstalled",
		Annotations: map[string]string{"strata.io/pool": isolation.PoolLatencyCritical}}, cri.ContainerOptions{Resources: res(1000, 1000)})
	if err != nil {
		t.Fatalf("latency-critical pod allowed by the pre-installed configuration: %v", err)
	}
	if c := cpusOf(t, e, w.ContainerID); c.Size() != 1 {
		t.Errorf("cpuset %s, want 1 exclusive CPU", c)
	}
	// The configuration came from the .conf file: namespace demo, which
	// the external plugin's configuration trusted, is refused here.
	_, err = e.RunContainer(context.Background(), cri.PodOptions{Name: "other", Namespace: "demo",
		Annotations: map[string]string{"strata.io/pool": isolation.PoolLatencyCritical}}, cri.ContainerOptions{Resources: res(1000, 1000)})
	if err == nil || !strings.Contains(err.Error(), isolation.ErrNotAllowed.Error()) {
		t.Errorf("namespace demo under the pre-installed configuration: %v, want refusal", err)
	}
	if err := e.StopContainerd(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the pre-installed plugin to exit with containerd", func() bool {
		out, _ := exec.Command("pgrep", "-f", filepath.Join(dir, "nri/plugins/40-strata")).Output()
		return len(strings.TrimSpace(string(out))) == 0
	})
}

// TestE2EUpdateKeepsStrataCPUs: when something else (the kubelet) updates a
// container's resources with another cpuset, the plugin's UpdateContainer
// reply puts Strata's cpuset back.
func TestE2EUpdateKeepsStrataCPUs(t *testing.T) {
	e := env(t, "2.4.2", fastConfig())
	lc := run(t, e, "lc", isolation.PoolLatencyCritical, res(1000, 1000))
	mine := cpusOf(t, e, lc.ContainerID)
	all := online(t)
	r := res(1000, 1000)
	r.CpusetCpus = all.String()
	r.CpuShares = 4096
	if err := e.CRI().UpdateContainerResources(context.Background(), lc.ContainerID, r); err != nil {
		t.Fatal(err)
	}
	if got := cpusOf(t, e, lc.ContainerID); !got.Equals(mine) {
		t.Errorf("after an update asking for %s: cpuset %s, want Strata's %s", all, got, mine)
	}
}

// TestE2ECRIEvictor evicts a container through the CRI evictor against the
// real containerd: the container stops.
func TestE2ECRIEvictor(t *testing.T) {
	e := env(t, "2.4.2", fastConfig())
	w := run(t, e, "victim", isolation.PoolBatch, res(0, 0))
	ev := nriplugin.CRIEvictor{Endpoint: e.State().Socket, Timeout: time.Second}
	if _, err := ev.Evict(context.Background(), nriplugin.Evictee{ContainerID: w.ContainerID, Pod: "victim", Namespace: "demo",
		Pool: isolation.PoolBatch, Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	st, err := e.CRI().ContainerStatus(context.Background(), w.ContainerID)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != runtimeapi.ContainerState_CONTAINER_EXITED {
		t.Errorf("container state after eviction = %s, want CONTAINER_EXITED", st.State)
	}
}
