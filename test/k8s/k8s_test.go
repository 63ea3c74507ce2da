package k8s_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/utils/cpuset"
	"sigs.k8s.io/yaml"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/isolation"
	nriplugin "github.com/strata-nri/strata/nri-plugin"
	"github.com/strata-nri/strata/test/k8s/harness"
)

// config is the tests' pool configuration: the default three pools with a
// 500 ms loop, QoS classes mapped one to one (Guaranteed →
// latency-critical, Burstable → online, BestEffort → batch), nothing
// reserved and batch without a minimum, so on the 2-CPU test machine a
// latency-critical pod can hold both CPUs and batch then borrows. The
// predictor is off so pools follow the load itself.
func config() *isolation.Config {
	cfg := isolation.DefaultConfig()
	cfg.Period = isolation.Duration{Duration: harness.Scaled(500 * time.Millisecond)}
	cfg.ReservedCPUs = ""
	cfg.Classification.QoS = isolation.QoSRules{Guaranteed: isolation.PoolLatencyCritical, Burstable: isolation.PoolOnline, BestEffort: isolation.PoolBatch}
	cfg.Pools[2].MinCPUs = 0
	cfg.Resize.ShrinkInterval = isolation.Duration{Duration: harness.Scaled(time.Second)}
	cfg.Predictor.Disabled = true
	return cfg
}

func start(t *testing.T, cfg *isolation.Config, args ...string) *harness.Cluster {
	t.Helper()
	harness.Require(t)
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return harness.Start(t, harness.Options{StrataConfig: string(b), StrataArgs: args})
}

func status(t *testing.T, c *harness.Cluster) *nriplugin.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := nriplugin.FetchStatus(ctx, "unix:"+filepath.Join(c.Env.State().Dir, "strata-http.sock"))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func member(st *nriplugin.Status, id string) *nriplugin.ContainerStatus {
	for i := range st.Containers {
		if st.Containers[i].ID == id {
			return &st.Containers[i]
		}
	}
	return nil
}

// pod is a manifest: one container "c" running busybox sh -c script on the
// host network (no CNI needed), image never pulled, 1 s grace period.
// resources is YAML for the container's resources ("" for none), extra
// goes into the pod spec.
func pod(name, resources, script, extra string) string {
	if resources == "" {
		resources = "{}"
	}
	return fmt.Sprintf(`
metadata: {name: %s, labels: {app: %s}}
spec:
  hostNetwork: true
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  enableServiceLinks: false
  containers:
  - name: c
    image: %s
    imagePullPolicy: Never
    command: [sh, -c, %q]
    resources: %s
%s`, name, name, harness.Image, script, resources, extra)
}

// burner burns a CPU while /burn exists in the container.
const burner = "while :; do if [ -e /burn ]; then while [ -e /burn ]; do :; done; else sleep 0.05; fi; done"

func run(t *testing.T, c *harness.Cluster, ns, manifest string) *harness.Pod {
	t.Helper()
	ctx := context.Background()
	name, err := c.CreatePod(ctx, ns, manifest)
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.WaitRunning(ctx, ns, name, harness.Scaled(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// ctr is a pod's container "c" as the tests read it. The kubelet may
// replace a container (a start it retries, a restart), and the old
// cgroup then vanishes between two reads — seen once in the burner
// scenario. A read that finds the cgroup gone looks the pod's current
// container up and reads that one: the claims are about the pod's
// container as it is now. A replacement is logged, and a burner that was
// burning is set burning again (the new container's filesystem has no
// /burn).
type ctr struct {
	t       *testing.T
	c       *harness.Cluster
	pod     *harness.Pod
	cg      *cgroup.Cgroup
	burning bool
}

func follow(t *testing.T, c *harness.Cluster, p *harness.Pod) *ctr {
	t.Helper()
	cg, err := c.ContainerCgroup(context.Background(), p, "c")
	if err != nil {
		t.Fatal(err)
	}
	return &ctr{t: t, c: c, pod: p, cg: cg}
}

// ID is the pod's container's ID as last seen.
func (k *ctr) ID() string { return k.pod.ContainerID("c") }

// replace waits for the container that replaced the one whose cgroup
// vanished.
func (k *ctr) replace() {
	k.t.Helper()
	ctx := context.Background()
	old := k.ID()
	deadline := time.Now().Add(30 * time.Second)
	for {
		p, err := k.c.Admin.Pod(ctx, k.pod.Metadata.Namespace, k.pod.Metadata.Name)
		if err != nil {
			k.t.Fatal(err)
		}
		if id := p.ContainerID("c"); id != "" && id != old {
			if cg, err := k.c.ContainerCgroup(ctx, p, "c"); err == nil && cg.Exists() {
				k.t.Logf("pod %s: container %.12s vanished; reading its replacement %.12s", k.pod.Metadata.Name, old, id)
				k.pod, k.cg = p, cg
				if k.burning {
					k.exec("touch", "/burn")
				}
				return
			}
		}
		if time.Now().After(deadline) {
			k.t.Fatalf("pod %s: container %.12s vanished and no replacement runs after 30 s", k.pod.Metadata.Name, old)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (k *ctr) cpus() cpuset.CPUSet {
	k.t.Helper()
	for try := 0; ; try++ {
		s, err := k.cg.CPUSetCPUs()
		if errors.Is(err, cgroup.ErrVanished) && try < 3 {
			k.replace()
			continue
		}
		if err != nil {
			k.t.Fatal(err)
		}
		return s
	}
}

// read returns a cgroup file of controller ctl.
func (k *ctr) read(ctl, file string) string {
	k.t.Helper()
	for try := 0; ; try++ {
		dir, err := k.cg.Dir(ctl)
		if err != nil {
			k.t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil && !k.cg.Exists() && try < 3 {
			k.replace()
			continue
		}
		if err != nil {
			k.t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
}

// quota is the container's CFS quota in µs per period (-1 for none), on
// either cgroup version (cpu.cfs_quota_us or cpu.max).
func (k *ctr) quota() int64 {
	k.t.Helper()
	for try := 0; ; try++ {
		q, _, err := k.cg.CPUQuota()
		if err != nil && !k.cg.Exists() && try < 3 {
			k.replace()
			continue
		}
		if err != nil {
			k.t.Fatal(err)
		}
		return q
	}
}

// sameShares says whether the container's CPU weight is want shares:
// cpu.shares on v1, on v2 cpu.weight as either conversion gives it.
func (k *ctr) sameShares(want uint64) (bool, uint64) {
	k.t.Helper()
	for try := 0; ; try++ {
		sh, err := k.cg.CPUShares()
		if err != nil && !k.cg.Exists() && try < 3 {
			k.replace()
			continue
		}
		if err != nil {
			k.t.Fatal(err)
		}
		return k.c.Env.Hierarchy().SameShares(sh, want), sh
	}
}

func v2(c *harness.Cluster) bool { return c.Env.Hierarchy().Mode() == cgroup.V2 }

func (k *ctr) exec(cmd ...string) {
	k.t.Helper()
	exec(k.t, k.c, k.pod, cmd...)
}

// burn starts or stops the burner script's loop.
func (k *ctr) burn(on bool) {
	k.t.Helper()
	k.burning = on
	if on {
		k.exec("touch", "/burn")
	} else {
		k.exec("rm", "-f", "/burn")
	}
}

func exec(t *testing.T, c *harness.Cluster, p *harness.Pod, cmd ...string) {
	t.Helper()
	if _, err := c.Env.CRI().ExecSync(context.Background(), p.ContainerID("c"), cmd, 10*time.Second); err != nil {
		t.Fatalf("exec %v in %s: %v", cmd, p.Metadata.Name, err)
	}
}

// waitFor polls cond for timeout times the time scale
// (harness.TimeScaleEnv).
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	return waitWithin(t, harness.Scaled(timeout), what, cond)
}

// waitWithin polls cond for timeout as it is: for bounds stated in loop
// periods, which config already scaled.
func waitWithin(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

func printStatus(t *testing.T, c *harness.Cluster) {
	if !t.Failed() {
		return
	}
	var b strings.Builder
	status(t, c).Print(&b)
	t.Log(b.String())
}

// TestE2EK8sQoSPools: pods of each QoS class created through the API land
// in the pools the configuration maps their class to. Strata classifies
// them from the cgroup parent the kubelet gives them (kubepods/pod…,
// kubepods/burstable/pod…, kubepods/besteffort/pod…), which the test
// checks too, and the cgroup files show each pool's profile.
func TestE2EK8sQoSPools(t *testing.T) {
	c := start(t, config())
	t.Cleanup(func() { printStatus(t, c) })
	g := run(t, c, "default", pod("guaranteed", "{requests: {cpu: 1, memory: 64Mi}, limits: {cpu: 1, memory: 64Mi}}", "sleep 3600", ""))
	bu := run(t, c, "default", pod("burstable", "{requests: {cpu: 100m}}", "sleep 3600", ""))
	be := run(t, c, "default", pod("besteffort", "", "sleep 3600", ""))

	for _, tc := range []struct {
		pod   *harness.Pod
		qos   string
		layer string // the kubelet's QoS level in the cgroup path
		pool  string
	}{
		{g, "Guaranteed", "/kubepods/pod", isolation.PoolLatencyCritical},
		{bu, "Burstable", "/kubepods/burstable/pod", isolation.PoolOnline},
		{be, "BestEffort", "/kubepods/besteffort/pod", isolation.PoolBatch},
	} {
		if tc.pod.Status.QOSClass != tc.qos {
			t.Errorf("pod %s: QoS class %q, want %q", tc.pod.Metadata.Name, tc.pod.Status.QOSClass, tc.qos)
		}
		id := tc.pod.ContainerID("c")
		cs, err := c.Env.CRI().ContainerStatus(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		path := cs.CgroupsPath
		if want := tc.layer + strings.ReplaceAll(tc.pod.Metadata.UID, "-", "_"); !strings.Contains(path, tc.layer+tc.pod.Metadata.UID) && !strings.Contains(path, want) {
			t.Errorf("pod %s: container cgroup %s is not under the kubelet's %s<uid>", tc.pod.Metadata.Name, path, tc.layer)
		}
		var m *nriplugin.ContainerStatus
		waitFor(t, 10*time.Second, "plugin lists the container", func() bool { m = member(status(t, c), id); return m != nil })
		if m.Pool != tc.pool {
			t.Errorf("pod %s (%s, cgroup %s): pool %q, want %q", tc.pod.Metadata.Name, tc.qos, path, m.Pool, tc.pool)
		}
		t.Logf("%-10s %-10s cgroup %s → pool %s cpus %s exclusive %v", tc.pod.Metadata.Name, tc.qos, path, m.Pool, m.CPUs, m.Exclusive)
	}

	// The pools' profiles, as the kernel shows them.
	gc, bc, ec := follow(t, c, g), follow(t, c, bu), follow(t, c, be)
	waitFor(t, 5*time.Second, "guaranteed pod on one exclusive CPU, apart from the burstable one", func() bool {
		a, b := gc.cpus(), bc.cpus()
		return a.Size() == 1 && a.Intersection(b).Size() == 0
	})
	if m := member(status(t, c), gc.ID()); m == nil || !m.Exclusive {
		t.Errorf("guaranteed 1-CPU pod not exclusive: %+v", m)
	}
	if v := ec.read(cgroup.CPU, "cpu.idle"); v != "1" {
		t.Errorf("batch member cpu.idle = %s, want 1", v)
	}
	// The batch profile asks for 2; an idle group reads the kernel's idle
	// weight, 3 (on v2 cpu.weight 3 × 100 / 1024 rounded, 0), and refuses
	// writes. That is not drift: no repair of the batch member's cpu
	// shares in the periods since.
	if v2(c) {
		if v := ec.read(cgroup.CPU, "cpu.weight"); v != "0" {
			t.Errorf("batch member cpu.weight = %s, want the kernel's idle weight 0", v)
		}
	} else if v := ec.read(cgroup.CPU, "cpu.shares"); v != "3" {
		t.Errorf("batch member cpu.shares = %s, want the kernel's idle weight 3", v)
	}
	time.Sleep(3 * config().Period.Duration)
	log, _ := c.Env.PluginLog(c.StrataPlugin)
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "drifted") && strings.Contains(line, ec.ID()) && strings.Contains(line, "cpu shares") {
			t.Errorf("idle batch member's cpu shares taken for drift: %s", line)
			break
		}
	}
	if v := gc.quota(); v != 100000 {
		t.Errorf("guaranteed member CFS quota = %d µs, want the kubelet's 100000 (quota: keep)", v)
	}
	if ok, sh := gc.sameShares(1024); !ok {
		t.Errorf("guaranteed member CPU weight = %d shares, want the kubelet's 1024 for 1 CPU (on v2 cpu.weight %d or %d)", sh,
			cgroup.LinearSharesToWeight(1024), cgroup.SharesToWeight(1024))
	}
}

// TestE2EK8sBatchResource: Strata publishes its batch capacity on the Node
// as strata.io/batch-cpu (millicores) with its own service account; the
// value follows the capacity within the interval when it moves by at least
// the minimum change, never more often than the interval; and a batch pod
// requesting more than is published stays Pending while a smaller one is
// scheduled (kube-scheduler).
func TestE2EK8sBatchResource(t *testing.T) {
	const interval, minChange = 3 * time.Second, 100
	c := start(t, config(), "--batch-resource-interval", interval.String(), "--batch-resource-min-change", strconv.Itoa(minChange))
	t.Cleanup(func() { printStatus(t, c) })
	ctx := context.Background()
	published := func() int64 {
		n, err := c.Admin.Node(ctx, harness.NodeName)
		if err != nil {
			t.Fatal(err)
		}
		v, ok := n.Status.Allocatable[nriplugin.DefaultBatchResource]
		if !ok {
			return -1
		}
		i, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("node allocatable %s = %q: %v", nriplugin.DefaultBatchResource, v, err)
		}
		return i
	}
	near := func(v int64) bool {
		want := int64(status(t, c).BatchCPUs * 1000)
		return v >= 0 && v-want < 2*minChange && want-v < 2*minChange
	}
	waitFor(t, 30*time.Second, "batch capacity on the node", func() bool { return published() >= 0 })
	waitFor(t, 2*interval+2*time.Second, "node's value near Strata's figure", func() bool { return near(published()) })
	idle := published()
	t.Logf("idle: node allocatable %s = %d, Strata: %s", nriplugin.DefaultBatchResource, idle, status(t, c).Batch)

	// Online load lowers the capacity: a burstable pod burning a CPU.
	b := run(t, c, "default", pod("burner", "{requests: {cpu: 100m}}", burner, ""))
	exec(t, c, b, "touch", "/burn")
	start := time.Now()
	waitFor(t, 20*time.Second, "capacity down by at least 0.5 CPU", func() bool {
		v := published()
		return v >= 0 && v <= idle-500
	})
	busy := published()
	t.Logf("busy: %d after %s (Strata: %s)", busy, time.Since(start).Round(100*time.Millisecond), status(t, c).Batch)

	// Gating: more than published stays Pending, less is scheduled.
	big := pod("too-big", fmt.Sprintf("{limits: {%s: %d}}", nriplugin.DefaultBatchResource, busy+1000), "sleep 3600", "")
	if _, err := c.CreatePod(ctx, "default", big); err != nil {
		t.Fatal(err)
	}
	small := run(t, c, "default", pod("fits", fmt.Sprintf("{limits: {%s: 50}}", nriplugin.DefaultBatchResource), "sleep 3600", ""))
	t.Logf("pod requesting 50 of %d scheduled on %s", busy, small.Spec.NodeName)
	var why string
	waitFor(t, 20*time.Second, "too-big pod reported unschedulable", func() bool {
		p, err := c.Admin.Pod(ctx, "default", "too-big")
		if err != nil {
			t.Fatal(err)
		}
		for _, cond := range p.Status.Conditions {
			if cond.Type == "PodScheduled" && cond.Status == "False" && cond.Reason == "Unschedulable" {
				why = cond.Message
				return true
			}
		}
		return false
	})
	if !strings.Contains(why, nriplugin.DefaultBatchResource) {
		t.Errorf("too-big pod unschedulable for another reason: %s", why)
	}
	p, _ := c.Admin.Pod(ctx, "default", "too-big")
	if p.Status.Phase != "Pending" || p.Spec.NodeName != "" {
		t.Errorf("too-big pod: phase %s node %q, want Pending and unbound", p.Status.Phase, p.Spec.NodeName)
	}
	t.Logf("pod requesting %d stays Pending: %s", busy+1000, why)

	// Back up when the load goes.
	exec(t, c, b, "rm", "/burn")
	waitFor(t, 30*time.Second, "capacity back near idle", func() bool { return published() >= idle-2*minChange })

	// The publisher's own record: at least interval apart, each a change
	// of at least minChange from the one before. It logs an update after
	// the API server took it, so the node can show a value a moment before
	// the log does.
	var times []time.Time
	var vals []int64
	records := func() {
		log, err := c.Env.PluginLog(c.StrataPlugin)
		if err != nil {
			t.Fatal(err)
		}
		times, vals = nil, nil
		for _, line := range strings.Split(log, "\n") {
			if !strings.Contains(line, "batch capacity published") {
				continue
			}
			ts, v := field(line, "time"), field(line, "millicores")
			tm, err1 := time.Parse(time.RFC3339Nano, ts)
			n, err2 := strconv.ParseInt(v, 10, 64)
			if err1 != nil || err2 != nil {
				t.Fatalf("cannot read publish log line %q", line)
			}
			times, vals = append(times, tm), append(vals, n)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if records(); len(times) >= 3 || time.Now().After(deadline) {
			break
		}
	}
	if len(times) < 3 {
		t.Fatalf("%d updates published, want at least 3 (idle, busy, idle again)", len(times))
	}
	for i := 1; i < len(times); i++ {
		if gap := times[i].Sub(times[i-1]); gap < interval-50*time.Millisecond {
			t.Errorf("updates %d and %d only %s apart, interval %s", i-1, i, gap, interval)
		}
		if d := vals[i] - vals[i-1]; d < minChange && -d < minChange {
			t.Errorf("update %d (%d) differs from %d by less than %d", i, vals[i], vals[i-1], minChange)
		}
	}
	t.Logf("%d updates: %v", len(vals), vals)
}

// field returns key=value's value from a slog text line.
func field(line, key string) string {
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

// TestE2EK8sEviction: under protection level "critical" (online pool's CPU
// load ≥ 0.5, action evict) Strata evicts through the Eviction API with its
// service account: first the lowest-priority batch pod (though the
// controller's own pick, most memory, was the other); with a
// PodDisruptionBudget protecting the lowest-priority one it falls back to
// the next; with every batch pod protected it evicts none and logs why.
// The latency-critical pod is never evicted.
func TestE2EK8sEviction(t *testing.T) {
	cfg := config()
	cfg.Protection.Levels = []isolation.ProtectionLevel{{Name: "critical", When: isolation.Thresholds{CPULoad: 0.5}, Actions: []isolation.ActionKind{isolation.ActionEvict}}}
	cfg.Protection.Cooldown = isolation.Duration{Duration: time.Second}
	cfg.Protection.EvictInterval = isolation.Duration{Duration: 8 * time.Second}
	c := start(t, cfg, "--evictor", "kubernetes")
	t.Cleanup(func() { printStatus(t, c) })
	ctx := context.Background()

	// The plugin's service account may evict but not delete pods.
	sa, err := c.StrataClient()
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []string{
		`{apiVersion: scheduling.k8s.io/v1, kind: PriorityClass, metadata: {name: batch-low}, value: 100}`,
		`{apiVersion: scheduling.k8s.io/v1, kind: PriorityClass, metadata: {name: batch-high}, value: 1000}`,
	} {
		if err := c.Admin.Create(ctx, "/apis/scheduling.k8s.io/v1/priorityclasses", o); err != nil {
			t.Fatal(err)
		}
	}
	lc := run(t, c, "default", pod("lc", "{requests: {cpu: 1, memory: 64Mi}, limits: {cpu: 1, memory: 64Mi}}", "sleep 3600", ""))
	burn := run(t, c, "default", pod("burn", "{requests: {cpu: 100m}}", burner, ""))
	// high holds 40 MiB in /dev/shm, so the controller itself would pick
	// it; Kubernetes priority puts low first.
	low := run(t, c, "default", pod("low", "", "sleep 3600", "  priorityClassName: batch-low"))
	high := run(t, c, "default", pod("high", "", "head -c 40m /dev/zero > /dev/shm/fill; sleep 3600", "  priorityClassName: batch-high"))
	if err := sa.Do(ctx, http.MethodDelete, "/api/v1/namespaces/default/pods/low", nil, nil); err == nil {
		t.Fatal("the plugin's service account deleted a pod: RBAC grants more than eviction")
	}

	gone := func(p *harness.Pod) bool {
		q, err := c.Admin.Pod(ctx, "default", p.Metadata.Name)
		return harness.IsNotFound(err) || err == nil && (q.Metadata.DeletionTimestamp != nil || q.Metadata.UID != p.Metadata.UID)
	}
	pressure := func(what string, victim *harness.Pod, spared ...*harness.Pod) {
		t.Helper()
		exec(t, c, burn, "touch", "/burn")
		if victim != nil {
			d := waitFor(t, 30*time.Second, what, func() bool { return gone(victim) })
			t.Logf("%s: %s evicted %s after the burner started", what, victim.Metadata.Name, d.Round(100*time.Millisecond))
		} else {
			lines := 0
			waitFor(t, 30*time.Second, what, func() bool {
				log, _ := c.Env.PluginLog(c.StrataPlugin)
				lines = strings.Count(log, "eviction blocked")
				return lines > 0
			})
		}
		exec(t, c, burn, "rm", "/burn")
		for _, p := range spared {
			if gone(p) {
				t.Errorf("%s: %s was evicted too", what, p.Metadata.Name)
			}
			// Strata's bookkeeping marks the pod the evictor took, not
			// the controller's proposal: a spared pod stays a member
			// Strata keeps adjusting and may propose again.
			if m := member(status(t, c), p.ContainerID("c")); m == nil || m.Evicting {
				t.Errorf("%s: spared %s is marked as being evicted in Strata's status: %+v", what, p.Metadata.Name, m)
			}
		}
		// Let the level cool down before the next phase.
		waitFor(t, 20*time.Second, "online pool back to no level", func() bool {
			for _, p := range status(t, c).Pools {
				if p.Name == isolation.PoolOnline {
					return p.Level == ""
				}
			}
			return false
		})
	}

	pressure("lowest-priority batch pod", low, high, lc)

	// A PDB that allows no disruption (minAvailable 1 of 1: bare pods have
	// no controller for maxUnavailable to count against) protects the next
	// low-priority pod.
	low2 := run(t, c, "default", pod("low2", "", "sleep 3600", "  priorityClassName: batch-low"))
	pdb := func(name string) {
		t.Helper()
		if err := c.Admin.Create(ctx, "/apis/policy/v1/namespaces/default/poddisruptionbudgets", fmt.Sprintf(
			`{apiVersion: policy/v1, kind: PodDisruptionBudget, metadata: {name: %s}, spec: {minAvailable: 1, selector: {matchLabels: {app: %s}}}}`, name, name)); err != nil {
			t.Fatal(err)
		}
		// The disruption controller computes its status; until then the
		// Eviction API refuses every pod it selects anyway.
		waitFor(t, 30*time.Second, "PDB "+name+" observed", func() bool {
			var p struct {
				Metadata struct{ Generation int64 }
				Status   struct {
					ObservedGeneration int64
					ExpectedPods       int
				}
			}
			if err := c.Admin.Do(ctx, http.MethodGet, "/apis/policy/v1/namespaces/default/poddisruptionbudgets/"+name, nil, &p); err != nil {
				t.Fatal(err)
			}
			return p.Status.ObservedGeneration >= p.Metadata.Generation && p.Status.ExpectedPods == 1
		})
	}
	pdb("low2")
	pressure("PDB on the lowest-priority pod: the next one is evicted", high, low2, lc)
	if log, _ := c.Env.PluginLog(c.StrataPlugin); !strings.Contains(log, "disruption budget") {
		t.Error("plugin log does not say a disruption budget passed over low2")
	}

	// Every batch pod protected: nothing is evicted, the log says why.
	high2 := run(t, c, "default", pod("high2", "", "sleep 3600", "  priorityClassName: batch-high"))
	pdb("high2")
	pressure("every batch pod protected", nil, low2, high2, lc)
	log, _ := c.Env.PluginLog(c.StrataPlugin)
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "eviction blocked") {
			t.Logf("plugin: %s", line[:min(len(line), 400)])
			if !strings.Contains(line, "low2") || !strings.Contains(line, "high2") {
				t.Errorf("blocked eviction does not name both protected pods: %s", line)
			}
			break
		}
	}
	if gone(lc) {
		t.Error("the latency-critical pod was evicted")
	}
}

// resize patches the pod's resize subresource to cpu (requests = limits).
func resize(t *testing.T, c *harness.Cluster, p *harness.Pod, cpu string) {
	t.Helper()
	body := fmt.Sprintf(`{spec: {containers: [{name: c, resources: {requests: {cpu: %q}, limits: {cpu: %q}}}]}}`, cpu, cpu)
	if err := c.Admin.DoType(context.Background(), http.MethodPatch,
		fmt.Sprintf("/api/v1/namespaces/%s/pods/%s/resize", p.Metadata.Namespace, p.Metadata.Name),
		"application/strategic-merge-patch+json", body, nil); err != nil {
		t.Fatal(err)
	}
}

// TestE2EK8sResize: an in-place resize of a latency-critical pod from 1 to
// 2 whole CPUs reaches Strata through the kubelet's
// UpdateContainerResources; Strata gives it 2 exclusive CPUs (both of this
// machine's: nothing is reserved, batch lends its last CPU and borrows),
// keeps the kubelet's new quota, and no kubelet update undoes the cpuset
// for longer than a period. Resized back to 1, batch gets its CPU back.
func TestE2EK8sResize(t *testing.T) {
	cfg := config()
	c := start(t, cfg)
	t.Cleanup(func() { printStatus(t, c) })
	period := cfg.Period.Duration
	lc := run(t, c, "default", pod("lc", "{requests: {cpu: 1, memory: 64Mi}, limits: {cpu: 1, memory: 64Mi}}", "sleep 3600", ""))
	batch := run(t, c, "default", pod("batch", "", "while :; do :; done", ""))
	lcg, bcg := follow(t, c, lc), follow(t, c, batch)
	waitFor(t, 10*time.Second, "lc on 1 exclusive CPU, batch on the other", func() bool {
		a, b := lcg.cpus(), bcg.cpus()
		return a.Size() == 1 && b.Size() == 1 && a.Intersection(b).Size() == 0
	})

	resize(t, c, lc, "2")
	d := waitFor(t, 30*time.Second, "kubelet applied the resize (CFS quota 200000 µs)", func() bool {
		return lcg.quota() == 200000
	})
	t.Logf("kubelet applied the resize %s after the patch", d.Round(100*time.Millisecond))
	applied := time.Now()
	waitWithin(t, period+200*time.Millisecond, "lc on 2 CPUs within a period of the kubelet's update", func() bool { return lcg.cpus().Size() == 2 })
	if m := member(status(t, c), lcg.ID()); m == nil || !m.Exclusive || m.CPUs != "0-1" {
		t.Errorf("lc after the resize: %+v, want exclusive on 0-1", m)
	}
	if ok, sh := lcg.sameShares(2048); !ok {
		t.Errorf("lc CPU weight = %d shares after the resize, want the kubelet's 2048", sh)
	}
	waitWithin(t, 3*period, "batch borrowing, idle-scheduled", func() bool {
		return bcg.cpus().Equals(lcg.cpus()) && bcg.read(cgroup.CPU, "cpu.idle") == "1"
	})
	t.Logf("lc on %s %s after the kubelet's update", lcg.cpus(), time.Since(applied).Round(10*time.Millisecond))

	// The kubelet reports the resize done, and while it keeps syncing the
	// pod nothing moves the cpuset for more than a period.
	ctx := context.Background()
	waitFor(t, 30*time.Second, "pod status reports 2 CPUs", func() bool {
		p, err := c.Admin.Pod(ctx, "default", "lc")
		if err != nil {
			t.Fatal(err)
		}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Resources != nil && cs.Resources.Requests["cpu"] == "2" {
				return true
			}
		}
		return false
	})
	logBefore := c.Env.ContainerdLogSize()
	want := lcg.cpus()
	var off time.Duration
	var since time.Time
	for end := time.Now().Add(12 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if got := lcg.cpus(); !got.Equals(want) {
			if since.IsZero() {
				since = time.Now()
			}
			off = max(off, time.Since(since))
		} else {
			since = time.Time{}
		}
	}
	if off > period {
		t.Errorf("lc's cpuset differed from Strata's %s for %s, longer than a period", want, off)
	}
	ctrd, _ := c.Env.ContainerdLog()
	t.Logf("12 s watch: longest deviation %s; kubelet UpdateContainerResources calls meanwhile: %d",
		off, strings.Count(ctrd[min(int(logBefore), len(ctrd)):], "\" with Linux: "))

	resize(t, c, lc, "1")
	waitFor(t, 30*time.Second, "lc back on 1 CPU", func() bool { return lcg.cpus().Size() == 1 })
	waitWithin(t, 3*period, "batch on a CPU of its own again", func() bool {
		b := bcg.cpus()
		return b.Size() == 1 && b.Intersection(lcg.cpus()).Size() == 0
	})
}

// TestE2EK8sBurnerAndRace: the burner scenario with pods created through
// the API — a latency-critical pod (1.5 CPUs, shared, beside an idle one
// of 0.5) starts burning; pool
// 0 grows to both CPUs and batch shrinks within 3 periods (one more for the
// sampler to see a loaded period). Meanwhile the kubelet resizes the pod
// in place, racing Strata's pool resize: after each kubelet update lands
// (its new CFS quota in the cgroup) the cpusets converge to Strata's within
// 2 periods.
func TestE2EK8sBurnerAndRace(t *testing.T) {
	cfg := config()
	c := start(t, cfg)
	t.Cleanup(func() { printStatus(t, c) })
	period := cfg.Period.Duration
	lc := run(t, c, "default", pod("lc", "{requests: {cpu: 1500m, memory: 64Mi}, limits: {cpu: 1500m, memory: 64Mi}}", burner, ""))
	// A second, idle member of 0.5 CPU: pool 0 holds at most its members'
	// requests (RCF max 1), and the kubelet admits at most the node's 2
	// CPUs of requests, so 1.5 + 0.5 lets pool 0 take both.
	run(t, c, "default", pod("lc2", "{requests: {cpu: 500m, memory: 64Mi}, limits: {cpu: 500m, memory: 64Mi}}", "sleep 3600", ""))
	batch := run(t, c, "default", pod("batch", "", "while :; do :; done", ""))
	lcg, bcg := follow(t, c, lc), follow(t, c, batch)
	waitFor(t, 15*time.Second, "idle pool 0 on 1 CPU and batch on the other", func() bool {
		a, b := lcg.cpus(), bcg.cpus()
		return a.Size() == 1 && b.Size() == 1 && a.Intersection(b).Size() == 0
	})
	if m := member(status(t, c), lcg.ID()); m == nil || m.Pool != isolation.PoolLatencyCritical || m.Exclusive {
		t.Fatalf("lc member %+v, want a shared latency-critical member", m)
	}

	start := time.Now()
	lcg.burn(true)
	d := waitWithin(t, 4*period+300*time.Millisecond, "pool 0 grown to 2 CPUs", func() bool { return lcg.cpus().Size() == 2 })
	t.Logf("pool 0 grew to %s in %s (%.1f periods)", lcg.cpus(), d.Round(10*time.Millisecond), float64(time.Since(start))/float64(period))
	waitFor(t, 2*time.Second, "batch borrowing pool 0's CPUs", func() bool { return bcg.cpus().Equals(lcg.cpus()) })
	if st := status(t, c); st.Pools[2].Size != 0 {
		t.Errorf("batch pool holds %d CPUs while pool 0 burns, want 0", st.Pools[2].Size)
	}

	// Race: stop the burner (Strata starts shrinking pool 0 and giving
	// batch its CPU back) and resize the pod at once, several times. The
	// kubelet's update passes through Strata's UpdateContainer (its reply
	// re-asserts the member's cpuset) but lands later, interleaved with
	// Strata's own queued updates; what lands last wins until drift repair
	// (every period) puts Strata's back.
	//
	// Strata's own view may move meanwhile (the burner stopped: pool 0
	// shrinks), and its updates take time to land too (under TCG a runc
	// update takes about a second, one container after another), so the
	// two periods count from the later of the kubelet's update and
	// Strata's last change of view; 6 periods bound it all, so a view
	// that keeps moving cannot hide a kubelet that wins.
	converged := func(what string, from time.Time) {
		t.Helper()
		var last, view string
		settle := from
		for time.Since(settle) < 2*period+100*time.Millisecond && time.Since(from) < 6*period {
			st := status(t, c)
			ml, mb := member(st, lcg.ID()), member(st, bcg.ID())
			gl, gb := lcg.cpus(), bcg.cpus()
			if ml != nil && mb != nil {
				if v := ml.CPUs + "|" + mb.CPUs; v != view {
					if view != "" {
						settle = time.Now()
					}
					view = v
				}
				if gl.String() == ml.CPUs && gb.String() == mb.CPUs {
					t.Logf("%s: cpusets Strata's (lc %s, batch %s) %s after the kubelet's update landed, %s after Strata's last change",
						what, gl, gb, time.Since(from).Round(10*time.Millisecond), time.Since(settle).Round(10*time.Millisecond))
					return
				}
			}
			last = fmt.Sprintf("cgroups lc %s batch %s, Strata %+v %+v", gl, gb, ml, mb)
			time.Sleep(20 * time.Millisecond)
		}
		t.Errorf("%s: cpusets not Strata's within 2 periods of the kubelet's update or of Strata's last change (%s and %s ago): %s",
			what, time.Since(from).Round(10*time.Millisecond), time.Since(settle).Round(10*time.Millisecond), last)
	}
	for i, cpu := range []string{"1400m", "1500m", "1300m"} {
		if i%2 == 0 {
			lcg.burn(false)
		} else {
			lcg.burn(true)
		}
		resize(t, c, lc, cpu)
		quota := mustMilli(t, cpu) * 100
		waitFor(t, 30*time.Second, fmt.Sprintf("kubelet's update landed (CFS quota %d µs)", quota), func() bool {
			return lcg.quota() == quota
		})
		converged("resize to "+cpu, time.Now())
	}
	lcg.burn(false)
	waitFor(t, 15*time.Second, "batch back on a CPU of its own", func() bool {
		b := bcg.cpus()
		return b.Size() == 1 && b.Intersection(lcg.cpus()).Size() == 0
	})
}

func mustMilli(t *testing.T, q string) int64 {
	t.Helper()
	if v, ok := strings.CutSuffix(q, "m"); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	n, err := strconv.ParseInt(q, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n * 1000
}
