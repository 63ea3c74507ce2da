package rdttest_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/strata-nri/strata/rdt/rdttest"
)

// The AMD EPYC fixture's root group, as its kernel shows it: 16 ways on
// cache ids 0-7 and 16-23, bandwidth unthrottled at 2048 units.
func Example() {
	dir, _ := os.MkdirTemp("", "rdttest")
	defer os.RemoveAll(dir)
	root := filepath.Join(dir, "resctrl")
	if err := rdttest.WriteTo(root, filepath.Join(dir, "proc"), rdttest.AMDEPYC); err != nil {
		panic(err)
	}
	mask, _ := os.ReadFile(filepath.Join(root, "info", "L3", "cbm_mask"))
	schemata, _ := os.ReadFile(filepath.Join(root, "schemata"))
	fmt.Printf("cbm_mask %s%s", mask, schemata)
	// Output:
	// cbm_mask ffff
	// L3:0=ffff;1=ffff;2=ffff;3=ffff;4=ffff;5=ffff;6=ffff;7=ffff;16=ffff;17=ffff;18=ffff;19=ffff;20=ffff;21=ffff;22=ffff;23=ffff
	// MB:0=2048;1=2048;2=2048;3=2048;4=2048;5=2048;6=2048;7=2048;16=2048;17=2048;18=2048;19=2048;20=2048;21=2048;22=2048;23=2048
}
