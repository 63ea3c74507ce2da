package rdt_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	grdt "github.com/intel/goresctrl/pkg/rdt"

	"github.com/strata-nri/strata/rdt"
	"github.com/strata-nri/strata/rdt/rdttest"
)

// A latency-critical class gets three exclusive L3 ways, batch four shared
// ways and 40 % of the memory bandwidth, on a fixture of a two-socket Intel
// server (in production: rdt.Open(rdt.Options{})).
func Example() {
	dir, _ := os.MkdirTemp("", "rdt-example")
	defer os.RemoveAll(dir)
	root, proc := filepath.Join(dir, "resctrl"), filepath.Join(dir, "proc")
	if err := rdttest.WriteTo(root, proc, rdttest.IntelL3MBA); err != nil {
		panic(err)
	}

	r, err := rdt.Open(rdt.Options{Root: root, ProcRoot: proc})
	if errors.Is(err, rdt.ErrNotSupported) {
		fmt.Println("no RDT here:", err)
		return
	}
	l3 := r.Info().L3Info()
	fmt.Printf("L3: %d ways on cache ids %v; MB in %s\n", l3.Ways(), l3.CacheIDs, r.Info().MB.Mode)

	// Batch in goresctrl's syntax; the latency-critical class by ways.
	batch, err := r.Resolve("batch", rdt.ClassSpec{
		L3: grdt.CatConfig{"all": {Unified: "0-3"}},
		MB: grdt.MbaConfig{"all": {"40%", "2000MBps"}},
	})
	if err != nil {
		panic(err)
	}
	top := l3.Mask(l3.Ways()-3, 3)
	err = r.Apply(map[string]rdt.ClassConfig{
		// The default group gives up the exclusive ways.
		"":      {Schemata: rdt.Schemata{rdt.L3: {0: l3.CBMMask &^ top, 1: l3.CBMMask &^ top}}},
		"lc":    {Schemata: rdt.Schemata{rdt.L3: {0: top, 1: top}}, Exclusive: true},
		"batch": {Schemata: batch},
	})
	if err != nil {
		panic(err)
	}
	class, _ := r.Class("batch")
	if _, err := class.AddTasks(4242); err != nil {
		panic(err)
	}
	s, _ := class.Schemata()
	fmt.Print(s)
	name, _, _ := r.ClassOf(4242)
	fmt.Println("task 4242 is in", name)

	// Too many ways for the cache: refused, nothing written.
	err = r.Apply(map[string]rdt.ClassConfig{"batch": {Schemata: rdt.Schemata{rdt.L3: {0: 0xfff}}}})
	fmt.Println(err)
	// Output:
	// L3: 11 ways on cache ids [0 1]; MB in percent
	// L3:0=f;1=f
	// MB:0=40;1=40
	// task 4242 is in batch
	// rdt: class "batch" L3 cache id 0 value "0xfff": mask is wider than the cache: cbm_mask is 0x7ff (11 ways)
}
