package nriplugin

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"

	"github.com/strata-nri/strata/cpuset/cpusettest"
	"github.com/strata-nri/strata/isolation"
)

// TestStatusOverUnixSocket serves the plugin's endpoints on a unix socket,
// as `strata run --listen unix:...` does, reads /status back as `strata
// status` does, and prints it: pools with their CPUs and bands, and members.
func TestStatusOverUnixSocket(t *testing.T) {
	node := newFakeNode(t, cpusettest.Intel2S20C2T)
	rt := newRuntime(t)
	h := startPlugin(t, node, rt, trusting())
	p := pod("prod", "frontend", map[string]string{"strata.io/pool": "latency-critical"})
	if _, err := rt.create(t, p, container(p, "server", 2000, 2000)); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "strata.sock")
	l, err := Listen("unix:"+sock, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = h.plugin.Serve(ctx, l) }()

	fctx, fcancel := context.WithTimeout(ctx, patience)
	defer fcancel()
	st, err := FetchStatus(fctx, "unix:"+sock)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Connected || len(st.Pools) != 3 || len(st.Containers) != 1 {
		t.Fatalf("status: connected %v, %d pools, %d containers; want connected, 3, 1", st.Connected, len(st.Pools), len(st.Containers))
	}
	var b strings.Builder
	st.Print(&b)
	out := b.String()
	for _, want := range []string{"strata: connected", "latency-critical", "30–50%", "45–60%", "50–80%",
		"server (ctr-", "prod/frontend", "true"} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
	// The unix socket is private to its owner.
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("socket %s mode %o, want 600", sock, mode)
	}
}

// TestStatusOfBorrowingPool: on a 2-CPU node with batch allowed to lend its
// last CPU, a busy batch member has usage but its pool has no CPUs: load is
// infinite, which JSON cannot carry. /status must still answer, marking
// the pool as borrowing.
func TestStatusOfBorrowingPool(t *testing.T) {
	node := newFakeNode(t, cpusettest.VM2)
	rt := newRuntime(t)
	cfg := trusting()
	cfg.Pools[2].MinCPUs = 0
	cfg.Period = isolation.Duration{Duration: 50 * time.Millisecond}
	h := startPlugin(t, node, rt, cfg)
	lc := pod("prod", "lc", map[string]string{"strata.io/pool": isolation.PoolLatencyCritical})
	b := pod("jobs", "crunch", map[string]string{"strata.io/pool": isolation.PoolBatch})
	var bc *api.Container
	for _, x := range []struct {
		p     *api.PodSandbox
		milli int64
	}{{lc, 2500}, {b, 0}} {
		c := container(x.p, "c", x.milli, 0)
		if err := node.tree.AddCgroup(c.Linux.CgroupsPath); err != nil {
			t.Fatal(err)
		}
		if _, err := rt.create(t, x.p, c); err != nil {
			t.Fatal(err)
		}
		bc = c
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go burn(ctx, t, node, bc, 1)

	sock := filepath.Join(t.TempDir(), "strata.sock")
	l, err := Listen("unix:"+sock, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = h.plugin.Serve(ctx, l) }()
	deadline := time.Now().Add(patience)
	for {
		st, err := FetchStatus(ctx, "unix:"+sock)
		if err != nil {
			t.Fatalf("status with a borrowing pool: %v", err)
		}
		if st.Pools[2].Borrowing {
			if st.Pools[2].Size != 0 {
				t.Errorf("borrowing batch pool has %d CPUs", st.Pools[2].Size)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("batch never shown borrowing: %+v", st.Pools[2])
		}
		time.Sleep(50 * time.Millisecond)
	}
}
