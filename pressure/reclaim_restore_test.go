package pressure

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/strata-nri/strata/cgroup"
)

// A v1 reclaim whose limit write fails mid-way still puts the original
// limit back: the write may or may not have taken. The fixture makes the
// second write fail with EACCES by pointing memory.limit_in_bytes at a
// read-only sysctl that reads back exactly what the first write wrote
// (ngroups_max, 65536); the restore then fails the same way, and the
// error must show it was attempted.
func TestReclaimV1RestoresAfterFailedWrite(t *testing.T) {
	const sysctl = "/proc/sys/kernel/ngroups_max"
	if b, err := os.ReadFile(sysctl); err != nil || strings.TrimSpace(string(b)) != "65536" {
		t.Skipf("%s does not read 65536 (%q, %v); the fixture needs it", sysctl, b, err)
	}
	tree := newTree(t, cgroup.V1)
	h := mustHierarchy(t, tree)
	cg := addCgroup(t, tree, h, "/c")
	// 69632 bytes, all page cache: steps of one page write 65536, then 61440.
	memFixture(t, tree, "/c", 69632, 0, 69632, 0)
	if err := tree.WriteFile("memory", "/c", "memory.limit_in_bytes", "1073741824\n"); err != nil {
		t.Fatal(err)
	}
	limitFile := tree.ControllerDir("memory", "/c") + "/memory.limit_in_bytes"
	// Err calls: entry, loop 1 (first write), loop 2: swap the file before
	// the second write.
	ctx := &hookCtx{Context: context.Background(), at: 3, hook: func() {
		if err := os.Remove(limitFile); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(sysctl, limitFile); err != nil {
			t.Fatal(err)
		}
	}}
	res, err := ReclaimPageCache(ctx, cg, 0, ReclaimOptions{Step: 4096, Headroom: 1})
	if err == nil || res.Steps != 2 {
		t.Fatalf("ReclaimPageCache = %+v, %v; want the second write to fail", res, err)
	}
	if !strings.Contains(err.Error(), "restore memory limit 1073741824") {
		t.Errorf("error %q does not show the original limit being restored after the failed write", err)
	}
}
