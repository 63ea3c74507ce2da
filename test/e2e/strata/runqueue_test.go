package strata_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/strata-nri/strata/isolation"
	nriplugin "github.com/strata-nri/strata/nri-plugin"
)

// TestE2ERunQueueDelayProtection (containerd 2.4.2): a latency-critical
// container that wakes every 2 ms runs alone on pool 0's one shared CPU; a
// CPU hog with 18 times its CPU request (so 18 times its cpu.shares) then
// lands in the same pool, on the same CPU: the two requests sum to under
// one CPU, so admission does not grow the pool (with requests over one CPU
// it would, and whether the waking container then waits behind the hog
// depends on whether the machine's two CPUs share a cache domain, where
// the scheduler looks for an idle CPU at wake-up: CI's did not). At that weight ratio the
// scheduler does not preempt the hog for the waking container (the wake-up
// granularity, scaled by the waker's small weight, exceeds its sleeper
// credit), so it waits for the hog's slice: several milliseconds. (At equal
// weights CFS preempts the hog on every wake-up and the delay stays under a
// millisecond: measured here, p99 0.3 ms; with a 10x weight ratio 3.8 ms.)
//
// The scheduler probe sees the latency-critical container's run-queue
// delay rise; with the protection levels' CPU-load thresholds removed, only
// that delay can raise pool 0's level, which it must do within 2 periods
// after the hog's first full period. The level's action (preempt: pool 0
// grows onto the batch pool's CPU) must bring the container's p99 back
// under the threshold.
//
// The threshold is 2 ms rather than the default 1 ms: on a shared 2-CPU
// development VM the container's p99 alone reaches about 1 ms from the host's
// other work; the hog's delay is 4-12 ms.
func TestE2ERunQueueDelayProtection(t *testing.T) {
	const threshold = 2 * time.Millisecond
	cfg := fastConfig()
	cfg.Pools[2].MinCPUs = 0
	cfg.Predictor.Disabled = true
	for i := range cfg.Protection.Levels {
		cfg.Protection.Levels[i].When.CPULoad = 0
		// Only the first level may act on run-queue delay, so the
		// action that must bring the delay down is its preempt.
		cfg.Protection.Levels[i].When.RunQueueP99 = isolation.Duration{}
	}
	cfg.Protection.Levels[0].When.RunQueueP99 = isolation.Duration{Duration: threshold}
	if online(t).Size() < 2 {
		t.Fatalf("the test needs 2 CPUs, the node has %s", online(t))
	}
	e := env(t, "2.4.2", cfg)
	defer func() {
		if t.Failed() {
			var b strings.Builder
			statusOf(t, e).Print(&b)
			t.Log(b.String())
			log, _ := e.PluginLog(0)
			t.Log(log[max(0, len(log)-4000):])
		}
	}()
	// The machine is shared with builds: give the test's containers the
	// highest CPU weight against the rest of the host, as kernel tests do
	// (testutil.Prioritize), so the latency-critical container's delay is
	// the hog's doing, not the builds'.
	root, err := e.Hierarchy().Create(e.State().CgroupRoot) // runc would create it with the first pod
	if err != nil {
		t.Fatal(err)
	}
	if err := root.SetCPUShares(262144); err != nil {
		t.Fatal(err)
	}
	lc := run(t, e, "lc", isolation.PoolLatencyCritical, res(50, 0), "sh", "-c",
		// Wakes every 2 ms from a timed read on a FIFO nobody writes: no fork per wake-up.
		"mkfifo /tmp/f; exec 3<>/tmp/f; while :; do read -t 0.002 -u 3 x; done")
	lcFigures := func(st *nriplugin.Status) *nriplugin.RunQueueStatus {
		for _, c := range st.Containers {
			if c.ID == lc.ContainerID {
				return c.RunQueue
			}
		}
		return nil
	}
	waitFor(t, 30*time.Second, "the latency-critical container measured alone on one CPU, p99 under the threshold", func() bool {
		st := statusOf(t, e)
		f := lcFigures(st)
		return st.Sampler == "ebpf" && f != nil && f.P99Ms > 0 && f.P99Ms < float64(threshold)/float64(time.Millisecond) &&
			st.Pools[0].Level == "" && cpusOf(t, e, lc.ContainerID).Size() == 1
	})
	st := statusOf(t, e)
	alone := cpusOf(t, e, lc.ContainerID)
	t.Logf("alone on %s: run-queue delay %+v ms", alone, *lcFigures(st))

	period := cfg.Period.Duration
	// The hog lands between creating and run's return (its start); the
	// delay is counted from the return, the later of the two, and the
	// time creating it took is logged beside it.
	creating := time.Now()
	hog := run(t, e, "hog", isolation.PoolLatencyCritical, res(900, 0), "sh", "-c", "while :; do :; done")
	started := time.Now()
	t.Logf("creating and starting the hog took %v", started.Sub(creating))
	// The premise: admission put the hog on one CPU, the latency-critical
	// container's (the loop may grow the pool afterwards).
	log, _ := e.PluginLog(0)
	admitted := regexp.MustCompile(`container=hog id=` + hog.ContainerID + ` \S+ pool=latency-critical cpus=(\S+) `).FindStringSubmatch(log)
	if admitted == nil || admitted[1] != alone.String() {
		t.Fatalf("the hog was not admitted onto the latency-critical container's CPU %s (admission: %q):\n%s",
			alone, admitted, log[max(0, len(log)-2000):])
	}
	var raised time.Duration
	var at *nriplugin.RunQueueStatus
	waitFor(t, 4*period, "pool 0 raised by the run-queue delay", func() bool {
		st := statusOf(t, e)
		if st.Pools[0].Level == "" {
			return false
		}
		raised, at = time.Since(started), lcFigures(st)
		return true
	})
	// The period the hog started in is partial; the next one is its
	// first full period, and the level must be up within 2 after it.
	if raised > 3*period {
		t.Errorf("pool 0 raised %v after the hog started, more than 2 periods after its first full period (%v)", raised, 3*period)
	}
	log, _ = e.PluginLog(0)
	if !strings.Contains(log, "run-queue delay p99") {
		t.Errorf("the plugin's log names no run-queue delay as the reason:\n%s", log[max(0, len(log)-3000):])
	}
	t.Logf("hog on %s: pool 0 raised after %v (%.1f periods); lc delay then %+v ms", cpusOf(t, e, hog.ContainerID),
		raised, float64(raised)/float64(period), at)

	var under time.Duration
	waitFor(t, 10*time.Second, "the latency-critical container's p99 back under the threshold", func() bool {
		f := lcFigures(statusOf(t, e))
		if f == nil || f.P99Ms >= float64(threshold)/float64(time.Millisecond) {
			return false
		}
		under = time.Since(started)
		return true
	})
	t.Logf("p99 under %v %v after the hog started; pool 0 on %s, lc %+v ms", threshold, under,
		cpusOf(t, e, lc.ContainerID), lcFigures(statusOf(t, e)))
}
