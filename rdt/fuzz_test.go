package rdt

import (
	"testing"

	"github.com/strata-nri/strata/rdt/rdttest"
)

// Whatever a schemata file holds, parsing does not panic, and what parses
// formats to text that parses to the same.
func FuzzParseSchemata(f *testing.F) {
	for _, s := range []string{"L3:0=7ff;1=7ff\nMB:0=100;1=100\n", "L3CODE:0=00ff;1=0fff\n    MB:0= 50;1=100\n", "SMBA:0=2048", "L3:0=", "MB:x=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		s, err := ParseSchemata(text)
		if err != nil {
			return
		}
		again, err := ParseSchemata(s.String())
		if err != nil || !again.Equal(s) {
			t.Fatalf("%q parsed to %q, which reparsed to %q (%v)", text, s, again, err)
		}
	})
}

// Whatever a configuration's cache share or bandwidth says, Resolve does
// not panic, and what it accepts the hardware accepts.
func FuzzResolveShares(f *testing.F) {
	root, proc := rdttest.Write(f, rdttest.IntelL3MBA)
	r, err := Open(Options{Root: root, ProcRoot: proc})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"50%", "20-60%", "0-5", "2,3", "0x3f0", "100%", "0%", "80%", "1000MBps", "-1", "0x", "99-1%"} {
		f.Add(s, "0-1")
	}
	f.Fuzz(func(t *testing.T, share, ids string) {
		spec := ClassSpec{L3: cat(ids, share), MB: mbConfig(ids, share)}
		s, err := r.Resolve("c", spec)
		if err != nil {
			return
		}
		if err := r.Validate("c", s); err != nil {
			t.Fatalf("Resolve(%q on %q) gave %q, which Validate refuses: %v", share, ids, s, err)
		}
	})
}
