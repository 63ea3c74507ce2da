package nriplugin

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"
	"k8s.io/utils/cpuset"

	"github.com/strata-nri/strata/cpuset/cpusettest"
	"github.com/strata-nri/strata/isolation"
)

// lockedBuffer is a log sink safe for the plugin's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestVanishedMemberIsSkippedAndLogged: a started member whose cgroup
// disappears before the runtime reports it stopped (it exited, or the
// kubelet replaced it) is skipped by every path of the loop — sampling,
// drift repair, direct writes, updates — and logged once, not warned
// about; the loop goes on repairing the other members; StopContainer then
// forgets it.
func TestVanishedMemberIsSkippedAndLogged(t *testing.T) {
	node := newFakeNode(t, cpusettest.Intel2S20C2T)
	rt := newRuntime(t)
	rt.runc = runcOnFixture(t, node)
	cfg := trusting()
	cfg.Period = isolation.Duration{Duration: 50 * time.Millisecond}
	logs := &lockedBuffer{}
	h := startPlugin(t, node, rt, cfg, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	ctx := context.Background()
	var pods []*api.PodSandbox
	var ctrs []*api.Container
	for i, name := range []string{"gone", "stays"} {
		p := pod("jobs", name, map[string]string{"strata.io/pool": isolation.PoolBatch})
		c := container(p, "worker", 0, 0)
		rt.startRunning(t, node, p, c, 7001+i)
		pods, ctrs = append(pods, p), append(ctrs, c)
	}
	gone, stays := ctrs[0], ctrs[1]
	scg, err := node.h.Open(stays.Linux.CgroupsPath)
	if err != nil {
		t.Fatal(err)
	}
	want := func() cpuset.CPUSet {
		h.plugin.mu.Lock()
		defer h.plugin.mu.Unlock()
		return h.plugin.ctrs[stays.Id].cpus
	}
	waitFor(t, 3*time.Second, "settings applied", func() bool {
		got, _ := scg.CPUSetCPUs()
		return got.Equals(want())
	})

	// The container exits: its cgroup goes, in every hierarchy.
	dirs, _ := filepath.Glob(filepath.Join(node.tree.Dir, "sys/fs/cgroup/*", gone.Linux.CgroupsPath))
	if len(dirs) == 0 {
		t.Fatal("no fixture cgroup directories to remove")
	}
	for _, d := range dirs {
		if err := os.RemoveAll(d); err != nil {
			t.Fatal(err)
		}
	}
	// The loop goes on: the other member's drift is still repaired. (The
	// cpuset came with the adjustment, so the loop may not have planned yet.)
	waitFor(t, 3*time.Second, "a first plan", func() bool { return h.plugin.lastPlan.Load() != nil })
	before := h.plugin.lastPlan.Load().Time
	if err := node.tree.WriteFile("cpuset", stays.Linux.CgroupsPath, "cpuset.cpus", "0\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "the other member's cpuset repaired", func() bool {
		got, _ := scg.CPUSetCPUs()
		return got.Equals(want())
	})
	waitFor(t, 3*time.Second, "five more periods", func() bool {
		return h.plugin.lastPlan.Load().Time.Sub(before) >= 5*cfg.Period.Duration
	})
	var noted int
	for _, line := range strings.Split(logs.String(), "\n") {
		if !strings.Contains(line, gone.Id) {
			continue
		}
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			t.Errorf("vanished container warned about: %s", line)
		}
		if strings.Contains(line, "vanished") && strings.Contains(line, "level=INFO") {
			noted++
		}
	}
	if noted != 1 {
		t.Errorf("vanished container logged %d times at info, want once", noted)
	}

	if _, err := rt.r.StopContainer(ctx, &api.StopContainerRequest{Pod: pods[0], Container: gone}); err != nil {
		t.Fatal(err)
	}
	for _, m := range h.plugin.Status().Containers {
		if m.ID == gone.Id {
			t.Errorf("stopped container still a member: %+v", m)
		}
	}
}
