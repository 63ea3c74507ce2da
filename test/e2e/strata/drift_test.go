package strata_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/utils/cpuset"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/internal/testutil"
	"github.com/strata-nri/strata/isolation"
	"github.com/strata-nri/strata/test/e2e/harness"
)

// TestE2EDriftRepaired changes running containers' settings behind
// Strata's back on the real containerd 2.4 (runc, the host's cgroup v1
// files) and expects each back within 2 loop periods: an online member's
// cpu.shares and cpuset.cpus (through NRI updates), a batch member's
// cpu.idle (a direct write) and cpuset.cpus. A batch member's shares are
// not Strata's to restore: with cpu.idle=1 the kernel holds the group at
// its idle weight (cpu.shares reads 3) and refuses writes; turning idle
// off resets them to 1024, and putting idle back gives 3 again, which the
// test checks too.
func TestE2EDriftRepaired(t *testing.T) {
	testutil.RequireFeature(t, testutil.CPUIdle)
	cfg := fastConfig()
	period := cfg.Period.Duration
	e := env(t, "2.4.2", cfg)
	web := run(t, e, "web", isolation.PoolOnline, res(500, 0))
	crunch := run(t, e, "crunch", isolation.PoolBatch, res(0, 0), "sleep", "3600")

	shares := func(id string) string { return read(t, e, id, cgroup.CPU, "cpu.shares") }
	idle := func(id string) string { return read(t, e, id, cgroup.CPU, "cpu.idle") }
	var webCPUs, crunchCPUs cpuset.CPUSet
	waitFor(t, 5*time.Second, "the members settled (web shares 512; crunch idle, shares 3)", func() bool {
		webCPUs, crunchCPUs = cpusOf(t, e, web.ContainerID), cpusOf(t, e, crunch.ContainerID)
		return shares(web.ContainerID) == "512" && idle(crunch.ContainerID) == "1" && shares(crunch.ContainerID) == "3" &&
			webCPUs.Size() > 0 && crunchCPUs.Size() > 0
	})
	// A CPU outside each member's set, where there is one.
	outside := func(s cpuset.CPUSet) string {
		o := online(t).Difference(s)
		if o.Size() == 0 {
			o = online(t)
		}
		return fmt.Sprint(o.List()[0])
	}
	// What Strata holds for each now (a pool may be resized meanwhile).
	holds := func() {
		for _, c := range statusOf(t, e).Containers {
			set, err := cpuset.Parse(c.CPUs)
			switch {
			case err != nil:
			case c.ID == web.ContainerID:
				webCPUs = set
			case c.ID == crunch.ContainerID:
				crunchCPUs = set
			}
		}
	}
	state := func() string {
		holds()
		var bad []string
		if got := shares(web.ContainerID); got != "512" {
			bad = append(bad, "web cpu.shares "+got+" (want 512)")
		}
		if got := cpusOf(t, e, web.ContainerID); !got.Equals(webCPUs) {
			bad = append(bad, fmt.Sprintf("web cpuset.cpus %s (want %s)", got, webCPUs))
		}
		if got := idle(crunch.ContainerID); got != "1" {
			bad = append(bad, "crunch cpu.idle "+got+" (want 1)")
		} else if got := shares(crunch.ContainerID); got != "3" {
			bad = append(bad, "crunch cpu.shares "+got+" (want the idle weight 3)")
		}
		if got := cpusOf(t, e, crunch.ContainerID); !got.Equals(crunchCPUs) {
			bad = append(bad, fmt.Sprintf("crunch cpuset.cpus %s (want %s)", got, crunchCPUs))
		}
		return strings.Join(bad, ", ")
	}
	// One window: change all four, then time their return. The loop may
	// be late on a loaded 2-CPU machine, so a window that misses 2 periods
	// is retried (up to 3); every window must still see everything back.
	window := func() time.Duration {
		for _, w := range []struct{ id, controller, file, value string }{
			{web.ContainerID, cgroup.CPU, "cpu.shares", "1024"},
			{web.ContainerID, cgroup.CPUSet, "cpuset.cpus", outside(webCPUs)},
			{crunch.ContainerID, cgroup.CPU, "cpu.idle", "0"},
			{crunch.ContainerID, cgroup.CPUSet, "cpuset.cpus", outside(crunchCPUs)},
		} {
			write(t, e, w.id, w.controller, w.file, w.value)
		}
		start := time.Now()
		if state() == "" {
			t.Fatal("the changes behind Strata's back did not take")
		}
		for {
			bad := state()
			if bad == "" {
				return time.Since(start)
			}
			if time.Since(start) > 5*time.Second {
				t.Fatalf("not restored after %s (period %s): %s", time.Since(start).Round(time.Millisecond), period, bad)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	for attempt := 1; ; attempt++ {
		took := window()
		t.Logf("window %d: cpu.shares, cpu.idle and both cpusets restored %s after the change (period %s)", attempt, took.Round(time.Millisecond), period)
		if took <= 2*period {
			return
		}
		if attempt == 3 {
			t.Fatalf("restored only after more than 2 periods of %s in 3 windows", period)
		}
	}
}

// write changes a container's cgroup file, as another agent would.
func write(t *testing.T, e *harness.Env, id, controller, file, value string) {
	t.Helper()
	dir, err := e.CgroupDir(context.Background(), id, controller)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, file), []byte(value), 0o644); err != nil {
		t.Fatalf("write %s of container %s: %v", file, id, err)
	}
}
