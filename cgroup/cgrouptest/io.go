package cgrouptest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/strata-nri/strata/cgroup"
)

// IOFiles says which block IO knobs a fixture cgroup shows; the throttle,
// statistics and (v2) io.max files are always there.
type IOFiles struct {
	// BFQ: the bfq scheduler is built in or loaded, so non-root cgroups
	// have blkio.bfq.weight(_device) (v1) or io.bfq.weight (v2).
	BFQ bool
	// Cost: v2 io.weight (a kernel with iocost; the root also gets an
	// empty io.cost.qos), v1 blkio.weight(_device) (kernels with cfq).
	Cost bool
	// Latency: v2 io.latency.
	Latency bool
}

// AddIO gives cgroup rel (which AddCgroup created) the block IO files a
// Linux 6.x kernel shows, with their defaults: v1 in the blkio mount, v2 in
// the unified tree. The root cgroup has no weight or latency files.
func (t *Tree) AddIO(rel string, f IOFiles) error {
	rel = filepath.Clean("/" + rel)
	root := rel == "/"
	files := map[string]string{}
	if t.Mode == cgroup.V2 {
		files["io.stat"] = ""
		files["io.pressure"] = psi(true)
		if !root {
			files["io.max"] = ""
			if f.BFQ {
				files["io.bfq.weight"] = "default 100\n"
			}
			if f.Cost {
				files["io.weight"] = "default 100\n"
			}
			if f.Latency {
				files["io.latency"] = ""
			}
		} else if f.Cost {
			files["io.cost.qos"] = ""
			files["io.cost.model"] = ""
		}
	} else {
		for _, name := range []string{"read_bps_device", "write_bps_device", "read_iops_device", "write_iops_device"} {
			files["blkio.throttle."+name] = ""
		}
		files["blkio.throttle.io_service_bytes"] = "Total 0\n"
		files["blkio.throttle.io_serviced"] = "Total 0\n"
		if f.BFQ && !root {
			files["blkio.bfq.weight"] = "100\n"
			files["blkio.bfq.weight_device"] = "default 100\n"
		}
		if f.Cost && !root {
			files["blkio.weight"] = "100\n"
			files["blkio.weight_device"] = ""
		}
	}
	dir := t.ControllerDir("blkio", rel)
	for name, content := range files {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			continue
		}
		if err := writeFile(p, content); err != nil {
			return err
		}
	}
	return nil
}

// NewIOCgroup builds a fixture tree of mode in a temporary directory with
// the root and cgroup rel, both given block IO files, and opens rel.
func NewIOCgroup(tb testing.TB, mode cgroup.Mode, files IOFiles, rel string) (*Tree, *cgroup.Cgroup) {
	tb.Helper()
	tree, err := New(tb.TempDir(), mode, "0-3", "0")
	if err != nil {
		tb.Fatal(err)
	}
	for _, r := range []string{"/", rel} {
		if err := tree.AddCgroup(r); err != nil {
			tb.Fatal(err)
		}
		if err := tree.AddIO(r, files); err != nil {
			tb.Fatal(err)
		}
	}
	h, err := tree.Hierarchy()
	if err != nil {
		tb.Fatal(err)
	}
	cg, err := h.Open(rel)
	if err != nil {
		tb.Fatal(err)
	}
	return tree, cg
}
