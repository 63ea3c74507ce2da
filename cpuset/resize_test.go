package cpuset_test

import (
	"errors"
	"testing"

	"github.com/strata-nri/strata/cpuset"
	"github.com/strata-nri/strata/cpuset/cpusettest"
)

func TestGrow(t *testing.T) {
	tests := []struct {
		name                string
		shape               cpusettest.Shape
		current, candidates string
		k                   int
		want                string
	}{
		// Completing a half-used core comes first.
		{"sibling", cpusettest.Intel2S20C2T, "0", "1-79", 1, "40"},
		// Then the next whole core in the same L3.
		{"next core", cpusettest.Intel2S20C2T, "0-1,40-41", "2-79", 2, "2,42"},
		{"single", cpusettest.Intel2S20C2T, "0-1,40-41", "2-79", 1, "2"},
		// Growing a pool that lives on socket 1 stays on socket 1 even when
		// socket 0 has lower ids.
		{"stay on socket", cpusettest.Intel2S20C2T, "30,70", "0-29,31-69,71-79", 4, "20-21,60-61"},
		// EPYC: fill the pool's own CCX (cores 2-3), then the next CCX of
		// the same node.
		{"ccx then node", cpusettest.EPYCNPS4, "0-1,128-129", "2-127,130-255", 6, "2-4,130-132"},
		// A pool in two CCXs with room in both grows in the one holding
		// more of it (CCX 8, node 2), not in its stray core's CCX 0.
		{"weight", cpusettest.EPYCNPS4, "0,128,32-33,160-161", "1-31,34-127,129-159,162-255", 2, "34,162"},
		// The pool's own CCX is full: the rest of its L3 groups come before
		// other groups of the node.
		{"own ccx first", cpusettest.EPYCNPS4, "0,128,32-35,160-163", "1-31,36-127,129-159,164-255", 2, "1,129"},
		// An empty pool grows like an exclusive allocation.
		{"empty", cpusettest.EPYCNPS1, "", "0-255", 8, "0-3,128-131"},
		// SNC: node 0 is full; the nearest CPUs are node 1 on the same
		// socket (distance 11), not socket 1.
		{"snc", cpusettest.IntelSNC2, "0-13,56-69", "14-55,70-111", 2, "14,70"},
		{"zero", cpusettest.VM2, "0", "1", 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			topo := fixture(t, tc.shape)
			got, err := topo.Grow(mustParse(t, tc.current), mustParse(t, tc.candidates), tc.k)
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != tc.want {
				t.Errorf("Grow(%s, k=%d) = %s, want %s", tc.current, tc.k, got, tc.want)
			}
		})
	}
}

func TestGrowInsufficient(t *testing.T) {
	topo := fixture(t, cpusettest.Intel2S20C2T)
	// Candidates already in current do not count.
	_, err := topo.Grow(mustParse(t, "0-3"), mustParse(t, "2-5"), 3)
	var ie *cpuset.InsufficientCPUsError
	if !errors.As(err, &ie) || ie.Requested != 3 || ie.Available != 2 {
		t.Fatalf("Grow error = %v, want InsufficientCPUsError{3, 2}", err)
	}
	if _, err := topo.Grow(mustParse(t, "0"), mustParse(t, "1"), -1); err == nil {
		t.Error("Grow accepted k = -1")
	}
}

func TestShrink(t *testing.T) {
	tests := []struct {
		name               string
		shape              cpusettest.Shape
		current, protected string
		k                  int
		want               string
	}{
		// The lone core on socket 1 is the loosest part of the pool.
		{"remote core first", cpusettest.Intel2S20C2T, "0-3,40-43,20,60", "", 2, "20,60"},
		// Then, among equal whole cores, the highest id.
		{"then highest", cpusettest.Intel2S20C2T, "0-3,40-43,20,60", "", 3, "20,43,60"},
		{"protected", cpusettest.Intel2S20C2T, "0-3,40-43,20,60", "20,60", 1, "43"},
		// A lone thread goes before a thread of a whole core.
		{"lone thread", cpusettest.Intel2S20C2T, "0-3,40-42", "", 1, "3"},
		// EPYC: the CCX holding fewer of the pool's CPUs is released first.
		{"smaller ccx", cpusettest.EPYCNPS1, "0-3,128-131,4,132", "", 2, "4,132"},
		// SNC: the node holding less of the pool goes first, even though the
		// whole pool shares one L3.
		{"snc node", cpusettest.IntelSNC2, "0-13,56-69,14-15", "", 2, "14-15"},
		// CPUs that are not online (any more) are dropped first.
		{"offline first", cpusettest.OfflineCPUs, "4-7,12", "", 1, "12"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			topo := fixture(t, tc.shape)
			got, err := topo.Shrink(mustParse(t, tc.current), mustParse(t, tc.protected), tc.k)
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != tc.want {
				t.Errorf("Shrink(%s, protected %s, k=%d) = %s, want %s", tc.current, tc.protected, tc.k, got, tc.want)
			}
		})
	}
	topo := fixture(t, cpusettest.VM2)
	if _, err := topo.Shrink(mustParse(t, "0-1"), mustParse(t, "1"), 2); !errors.Is(err, cpuset.ErrInsufficientCPUs) {
		t.Errorf("Shrink beyond the unprotected CPUs: error = %v, want ErrInsufficientCPUs", err)
	}
}

func TestCarve(t *testing.T) {
	topo := fixture(t, cpusettest.Intel2S20C2T)
	// The 40-CPU pool takes a socket; the 20-CPU pool the best-fitting
	// half of the other; the 10-CPU pool what follows it.
	got, err := topo.Carve(mustParse(t, "0-79"), []int{10, 40, 20, 0})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"30-34,70-74", "0-19,40-59", "20-29,60-69", ""}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("pool %d = %s, want %s", i, got[i], want[i])
		}
	}
	// EPYC NPS4 with node 0 reserved elsewhere: three pools, each inside
	// one node.
	topo4 := fixture(t, cpusettest.EPYCNPS4)
	pools, err := topo4.Carve(mustParse(t, "16-127,144-255"), []int{32, 16, 8})
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range pools {
		if n := topo4.MemsFor(p).Size(); n != 1 {
			t.Errorf("pool %d = %s spans %d nodes, want 1", i, p, n)
		}
	}
	if _, err := topo.Carve(mustParse(t, "0-9"), []int{6, 5}); !errors.Is(err, cpuset.ErrInsufficientCPUs) {
		t.Errorf("Carve of 11 from 10: error = %v, want ErrInsufficientCPUs", err)
	}
	if _, err := topo.Carve(mustParse(t, "0-9"), []int{-1}); err == nil {
		t.Error("Carve accepted a negative size")
	}
}
