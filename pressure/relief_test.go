package pressure

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/cgroup/cgrouptest"
)

// memFixture sets a fixture cgroup's memory usage and memory.stat.
func memFixture(t *testing.T, tree *cgrouptest.Tree, rel string, usage int64, anon, file, shmem uint64) {
	t.Helper()
	setCounters(t, tree, rel, map[cgroup.Counter]uint64{
		cgroup.CounterMemoryAnon: anon, cgroup.CounterMemoryFile: file,
		cgroup.CounterMemoryActiveFile: file / 2, cgroup.CounterMemoryInactiveFile: file - file/2,
	})
	usageFile, shmemKey := "memory.usage_in_bytes", "total_shmem"
	mount := "memory"
	if tree.Mode == cgroup.V2 {
		usageFile, shmemKey, mount = "memory.current", "shmem", ""
	}
	if err := tree.WriteFile(mount, rel, usageFile, strconv.FormatInt(usage, 10)+"\n"); err != nil {
		t.Fatal(err)
	}
	st, err := tree.ReadFile(mount, rel, "memory.stat")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(st, "\n") {
		if k, _, _ := strings.Cut(l, " "); k == shmemKey {
			l = shmemKey + " " + strconv.FormatUint(shmem, 10)
		}
		out = append(out, l)
	}
	if err := tree.WriteFile(mount, rel, "memory.stat", strings.Join(out, "\n")+"\n"); err != nil {
		t.Fatal(err)
	}
}

// TestReclaimV2Fixture checks the amount asked of memory.reclaim: usage
// down to the target, but never into memory that page-cache reclaim cannot
// free (anon, shmem) plus headroom.
func TestReclaimV2Fixture(t *testing.T) {
	for _, tc := range []struct {
		name   string
		target int64
		want   string // content written to memory.reclaim, "" = nothing
	}{
		// usage 300 MiB: anon 60, file 220 of which shmem 20, kernel 20.
		// Reclaimable 200 MiB; floor = 100 MiB + 8 MiB headroom.
		{"drop all", 0, strconv.Itoa(192<<20) + " swappiness=0"},
		{"to target", 250 << 20, strconv.Itoa(50<<20) + " swappiness=0"},
		{"target below anon", 10 << 20, strconv.Itoa(192<<20) + " swappiness=0"},
		{"already below", 400 << 20, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tree := newTree(t, cgroup.V2)
			h := mustHierarchy(t, tree)
			cg := addCgroup(t, tree, h, "/c")
			memFixture(t, tree, "/c", 300<<20, 60<<20, 220<<20, 20<<20)
			res, err := ReclaimPageCache(context.Background(), cg, tc.target, ReclaimOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := tree.ReadFile("", "/c", "memory.reclaim")
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("memory.reclaim got %q, want %q", got, tc.want)
			}
			if tc.want != "" && (res.Method != ProactiveReclaim || res.Steps != 1) {
				t.Errorf("result = %+v", res)
			}
			if res.UsageBefore != 300<<20 || res.Before.File != 220<<20 || res.Reclaimed != 0 {
				t.Errorf("result = %+v (a fixture reclaims nothing)", res)
			}
		})
	}
}

// countdownCtx is a context that reports cancellation after its Err method
// was asked n times: a deterministic way to cancel in the middle of the v1
// stepping loop.
type countdownCtx struct {
	context.Context
	left atomic.Int32
}

func (c *countdownCtx) Err() error {
	if c.left.Add(-1) < 0 {
		return context.Canceled
	}
	return nil
}

// hookCtx runs hook when its Err method is asked for the at-th time, to
// act in the middle of the v1 stepping loop.
type hookCtx struct {
	context.Context
	n, at int
	hook  func()
}

func (c *hookCtx) Err() error {
	c.n++
	if c.n == c.at {
		c.hook()
	}
	return nil
}

// TestReclaimV1Fixture checks the v1 stepping on a fixture, where writes to
// the limit reclaim nothing: the steps go from usage to the goal and the
// original limit is back byte for byte afterwards, also after cancellation.
func TestReclaimV1Fixture(t *testing.T) {
	const orig = "1073770496" // 1 GiB + 7 pages
	setup := func(t *testing.T) *cgroup.Cgroup {
		tree := newTree(t, cgroup.V1)
		h := mustHierarchy(t, tree)
		cg := addCgroup(t, tree, h, "/c")
		memFixture(t, tree, "/c", 300<<20, 60<<20, 220<<20, 20<<20)
		if err := tree.WriteFile("memory", "/c", "memory.limit_in_bytes", orig+"\n"); err != nil {
			t.Fatal(err)
		}
		return cg
	}
	check := func(t *testing.T, cg *cgroup.Cgroup) {
		t.Helper()
		got, err := cg.MemoryLimit()
		if err != nil || strconv.FormatInt(got, 10) != orig {
			t.Errorf("limit after reclaim = %d, %v; want %s", got, err, orig)
		}
	}
	t.Run("to floor", func(t *testing.T) {
		cg := setup(t)
		res, err := ReclaimPageCache(context.Background(), cg, 0, ReclaimOptions{Step: 64 << 20})
		if err != nil {
			t.Fatal(err)
		}
		// 300 -> 236 -> 172 -> 108 (goal) MiB: three writes.
		if res.Method != LimitStepping || res.Steps != 3 || res.Goal != 108<<20 || res.Stopped != "reached the goal" {
			t.Errorf("result = %+v", res)
		}
		check(t, cg)
	})
	t.Run("cancelled", func(t *testing.T) {
		cg := setup(t)
		ctx := &countdownCtx{Context: context.Background()}
		ctx.left.Store(2) // the entry check and the first step pass
		res, err := ReclaimPageCache(ctx, cg, 0, ReclaimOptions{Step: 64 << 20})
		if !errors.Is(err, context.Canceled) || res.Steps != 1 || res.Stopped != "context cancelled" {
			t.Errorf("ReclaimPageCache = %+v, %v; want one step then context.Canceled", res, err)
		}
		check(t, cg)
	})
	t.Run("limit changed by someone else", func(t *testing.T) {
		cg := setup(t)
		// After the first step, a runtime resizes the container.
		ctx := &hookCtx{Context: context.Background(), at: 3, hook: func() {
			if err := cg.SetMemoryLimit(512 << 20); err != nil {
				t.Error(err)
			}
		}}
		_, err := ReclaimPageCache(ctx, cg, 0, ReclaimOptions{Step: 64 << 20})
		if !errors.Is(err, ErrLimitChanged) {
			t.Errorf("ReclaimPageCache = %v, want ErrLimitChanged", err)
		}
		if got, _ := cg.MemoryLimit(); got != 512<<20 {
			t.Errorf("limit = %d, want the runtime's 512 MiB kept", got)
		}
	})
	t.Run("limit changed after the last step", func(t *testing.T) {
		cg := setup(t)
		// Err calls: entry, then one per loop; the 4th loop finds the goal
		// reached, so the change lands between the last write and the
		// restore.
		ctx := &hookCtx{Context: context.Background(), at: 5, hook: func() {
			if err := cg.SetMemoryLimit(512 << 20); err != nil {
				t.Error(err)
			}
		}}
		res, err := ReclaimPageCache(ctx, cg, 0, ReclaimOptions{Step: 64 << 20})
		if !errors.Is(err, ErrLimitChanged) || res.Steps != 3 {
			t.Errorf("ReclaimPageCache = %+v, %v; want 3 steps and ErrLimitChanged", res, err)
		}
		if got, _ := cg.MemoryLimit(); got != 512<<20 {
			t.Errorf("limit = %d, want the runtime's 512 MiB kept", got)
		}
	})
	t.Run("unaligned target", func(t *testing.T) {
		cg := setup(t)
		res, err := ReclaimPageCache(context.Background(), cg, 200<<20+1, ReclaimOptions{Step: 64 << 20})
		if err != nil || res.Steps != 2 {
			t.Errorf("ReclaimPageCache = %+v, %v; want 2 steps (300 -> 236 -> 200 MiB + 1 page)", res, err)
		}
		check(t, cg)
	})
	t.Run("bad input", func(t *testing.T) {
		cg := setup(t)
		for _, tc := range []struct {
			target int64
			opts   ReclaimOptions
			want   string
		}{{-1, ReclaimOptions{}, "target -1 bytes"}, {0, ReclaimOptions{Step: -5}, "step -5"}} {
			if _, err := ReclaimPageCache(context.Background(), cg, tc.target, tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ReclaimPageCache(%d, %+v) = %v, want %q", tc.target, tc.opts, err, tc.want)
			}
		}
		check(t, cg)
	})
}

// procOOMFixture makes procRoot/<pid>/oom_score_adj files and lists the
// pids in the fixture cgroup's cgroup.procs.
func procOOMFixture(t *testing.T, tree *cgrouptest.Tree, rel string, pids map[int]int) string {
	t.Helper()
	procRoot := t.TempDir()
	var list []string
	for pid, v := range pids {
		dir := filepath.Join(procRoot, strconv.Itoa(pid))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "oom_score_adj"), []byte(strconv.Itoa(v)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		list = append(list, strconv.Itoa(pid))
	}
	if err := tree.WriteFile("", rel, "cgroup.procs", strings.Join(list, "\n")+"\n"); err != nil {
		t.Fatal(err)
	}
	return procRoot
}

func TestOOMScoreAdjFixture(t *testing.T) {
	tree := newTree(t, cgroup.V2)
	h := mustHierarchy(t, tree)
	cg := addCgroup(t, tree, h, "/c")
	procRoot := procOOMFixture(t, tree, "/c", map[int]int{101: 0, 102: 0, 103: 100})
	if err := SetOOMScoreAdj(cg, 500, procRoot); err != nil {
		t.Fatal(err)
	}
	got, err := OOMScoreAdj(cg, procRoot)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[101] != 500 || got[102] != 500 || got[103] != 500 {
		t.Errorf("OOMScoreAdj = %v, want 500 for 101..103", got)
	}
	if err := SetOOMScoreAdj(cg, 1001, procRoot); err == nil || !strings.Contains(err.Error(), "outside [-1000, 1000]") {
		t.Errorf("SetOOMScoreAdj(1001) = %v", err)
	}

	// A process that exited between listing and writing is skipped.
	if err := os.RemoveAll(filepath.Join(procRoot, "102")); err != nil {
		t.Fatal(err)
	}
	if err := SetOOMScoreAdj(cg, 300, procRoot); err != nil {
		t.Fatalf("exited process not skipped: %v", err)
	}

	// A write that fails leaves nothing half-applied: 101 is rolled back.
	bad := filepath.Join(procRoot, "103", "oom_score_adj")
	if err := os.Remove(bad); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(bad, 0o755); err != nil { // reads and writes fail, not with ENOENT
		t.Fatal(err)
	}
	err = SetOOMScoreAdj(cg, 700, procRoot)
	if err == nil || !strings.Contains(err.Error(), "pid 103") {
		t.Fatalf("SetOOMScoreAdj with a broken pid 103 = %v", err)
	}
	if v, _ := readOOMScoreAdj(filepath.Join(procRoot, "101", "oom_score_adj")); v != 300 {
		t.Errorf("pid 101 has %d after a failed SetOOMScoreAdj, want 300 rolled back", v)
	}
}

func TestOOMGroupFixture(t *testing.T) {
	tree := newTree(t, cgroup.V2)
	h := mustHierarchy(t, tree)
	cg := addCgroup(t, tree, h, "/c")
	if err := SetOOMGroup(cg, true); err != nil {
		t.Fatal(err)
	}
	if on, err := cg.OOMGroup(); err != nil || !on {
		t.Errorf("OOMGroup = %v, %v after SetOOMGroup(true)", on, err)
	}
	v1 := newTree(t, cgroup.V1)
	cg1 := addCgroup(t, v1, mustHierarchy(t, v1), "/c")
	if err := SetOOMGroup(cg1, true); !errors.Is(err, cgroup.ErrNotSupported) {
		t.Errorf("SetOOMGroup on v1 = %v, want ErrNotSupported", err)
	}
}

func ExampleReclaimPageCache() {
	// A fixture cgroup v2 tree: 300 MiB charged, 60 MiB anon, 220 MiB page
	// cache of which 20 MiB shmem. On a host, the kernel then reclaims.
	dir, _ := os.MkdirTemp("", "pressure-example")
	defer os.RemoveAll(dir)
	tree, _ := cgrouptest.New(dir, cgroup.V2, "0-3", "0")
	_ = tree.AddCgroup("/besteffort/ctr")
	_ = tree.SetCounters("/besteffort/ctr", map[cgroup.Counter]uint64{
		cgroup.CounterMemoryAnon: 60 << 20, cgroup.CounterMemoryFile: 220 << 20,
	})
	_ = tree.WriteFile("", "/besteffort/ctr", "memory.current", strconv.Itoa(300<<20))
	h, _ := tree.Hierarchy()
	cg, _ := h.Open("/besteffort/ctr")

	// Target 0: drop what page-cache reclaim can reach.
	res, err := ReclaimPageCache(context.Background(), cg, 0, ReclaimOptions{Headroom: 4 << 20})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s: usage %d MiB, goal %d MiB\n", res.Method, res.UsageBefore>>20, res.Goal>>20)
	// Output:
	// v2 proactive reclaim (swappiness=0): usage 300 MiB, goal 84 MiB
}
