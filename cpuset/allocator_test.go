package cpuset_test

import (
	"errors"
	"testing"

	"github.com/strata-nri/strata/cpuset"
	"github.com/strata-nri/strata/cpuset/cpusettest"
)

// CPU numbering reminders for the expectations below (see cpusettest):
//
//	Intel2S20C2T  socket 0: cores 0-19 = CPUs 0-19 + siblings 40-59;
//	              socket 1: CPUs 20-39 + 60-79.
//	EPYCNPS1/4    socket 0: cores 0-63 = CPUs 0-63 + 128-191; CCX k holds
//	              cores 4k..4k+3; NPS4 node k holds cores 16k..16k+15.
//	FourSocket    socket s: CPUs 24s..24s+23 + 96+24s...
//	IntelSNC2     socket 0: node 0 = cores 0-13 (0-13, 56-69),
//	              node 1 = cores 14-27 (14-27, 70-83); one L3 for both.
//	Big448        node k (two per socket) = cores 28k..28k+27, siblings +224.
//	Hybrid        P-cores 0-15 (siblings 2k, 2k+1); E-cores 16-23 in L2
//	              clusters 16-19 and 20-23.
//	OfflineCPUs   CCX 0: cores {0,8} {1,9} {2,10} {3,11}; CCX 1: cores
//	              {4} {5} {6} {7} (siblings 12-15 offline); core 2 isolated.
func TestTakeExclusive(t *testing.T) {
	type take struct {
		n    int
		opts cpuset.TakeOptions
		want string // "" = expect ErrInsufficientCPUs
	}
	tests := []struct {
		name  string
		shape cpusettest.Shape
		alloc cpuset.AllocatorOptions
		takes []take // in sequence on one allocator
	}{
		{"vm2", cpusettest.VM2, cpuset.AllocatorOptions{}, []take{
			{n: 1, want: "0"}, {n: 1, want: "1"}, {n: 1, want: ""},
		}},
		{"vm2 reserved", cpusettest.VM2, cpuset.AllocatorOptions{Reserved: mustParse(t, "0")}, []take{
			{n: 2, want: ""}, {n: 1, want: "1"},
		}},
		// 4 CPUs on 2-socket SMT = 2 whole cores in one L3 on one socket.
		{"intel 4", cpusettest.Intel2S20C2T, cpuset.AllocatorOptions{}, []take{
			{n: 4, want: "0-1,40-41"},
		}},
		// Whole cores first; the odd thread breaks the next core; the
		// following single CPU fills that core's free sibling rather than
		// breaking a whole core.
		{"intel sequence", cpusettest.Intel2S20C2T, cpuset.AllocatorOptions{}, []take{
			{n: 2, want: "0,40"}, {n: 3, want: "1-2,41"}, {n: 1, want: "42"}, {n: 1, want: "3"},
		}},
		// A socket exactly; one more spills one core into the other socket.
		{"intel socket", cpusettest.Intel2S20C2T, cpuset.AllocatorOptions{}, []take{
			{n: 40, want: "0-19,40-59"}, {n: 41, want: ""}, {n: 40, want: "20-39,60-79"},
		}},
		{"intel 41", cpusettest.Intel2S20C2T, cpuset.AllocatorOptions{}, []take{
			{n: 41, want: "0-20,40-59"},
		}},
		// Best fit: once socket 0 is partly used, a request that still fits
		// there goes there, leaving socket 1 whole.
		{"intel best fit", cpusettest.Intel2S20C2T, cpuset.AllocatorOptions{}, []take{
			{n: 30, want: "0-14,40-54"}, {n: 10, want: "15-19,55-59"}, {n: 10, want: "20-24,60-64"},
		}},
		{"intel spread", cpusettest.Intel2S20C2T, cpuset.AllocatorOptions{}, []take{
			{n: 4, opts: cpuset.TakeOptions{Spread: true}, want: "0-3"},
			{n: 2, want: "4,44"},
		}},
		{"intel within", cpusettest.Intel2S20C2T, cpuset.AllocatorOptions{}, []take{
			{n: 4, opts: cpuset.TakeOptions{Within: mustParse(t, "20-39,60-79")}, want: "20-21,60-61"},
			{n: 3, opts: cpuset.TakeOptions{Within: mustParse(t, "0-1")}, want: ""},
		}},
		// Reserving CPU 0 leaves core {0,40} half used: 40 is the natural
		// home of a single CPU.
		{"intel reserved", cpusettest.Intel2S20C2T, cpuset.AllocatorOptions{Reserved: mustParse(t, "0")}, []take{
			{n: 1, want: "40"}, {n: 2, want: "1,41"},
		}},
		// One CCX is 8 CPUs; 10 takes a whole CCX plus a core of the next.
		{"epyc nps1", cpusettest.EPYCNPS1, cpuset.AllocatorOptions{}, []take{
			{n: 8, want: "0-3,128-131"}, {n: 10, want: "4-8,132-136"},
		}},
		// A CCX that cannot give whole cores loses to one that can.
		{"epyc nps1 whole cores", cpusettest.EPYCNPS1, cpuset.AllocatorOptions{}, []take{
			{n: 5, want: "0-2,128-129"}, {n: 4, want: "4-5,132-133"}, {n: 1, want: "130"},
		}},
		// NPS4: a node is 32 CPUs; 40 fills node 0 and a CCX of node 1 on
		// the same socket. 64 then spans two nodes either way; socket 0
		// (88 free) is the better fit than socket 1, which stays whole.
		{"epyc nps4", cpusettest.EPYCNPS4, cpuset.AllocatorOptions{}, []take{
			{n: 40, want: "0-19,128-147"}, {n: 64, want: "32-63,160-191"}, {n: 128, want: "64-127,192-255"},
		}},
		// Spanning counts NUMA nodes, not packages: 25 CPUs fit in node 4
		// (15 available) plus node 0 (10), two nodes; taking socket 0 whole
		// (nodes 0 and 1, 20 CPUs) first would need a third node.
		{"epyc nps4 fewest nodes", cpusettest.EPYCNPS4, cpuset.AllocatorOptions{}, []take{
			{n: 25, opts: cpuset.TakeOptions{Within: mustParse(t, "0-4,128-132,16-20,144-148,64-71,192-198,80")},
				want: "0-4,64-71,128-132,192-198"},
		}},
		{"four socket", cpusettest.FourSocket, cpuset.AllocatorOptions{}, []take{
			{n: 48, want: "0-23,96-119"}, {n: 50, want: "24-48,120-144"},
		}},
		// SNC: 28 CPUs = node 0; 30 = node 0 plus one core of node 1 (same
		// socket) rather than anything on socket 1.
		{"snc node", cpusettest.IntelSNC2, cpuset.AllocatorOptions{}, []take{
			{n: 28, want: "0-13,56-69"},
		}},
		{"snc 30", cpusettest.IntelSNC2, cpuset.AllocatorOptions{}, []take{
			{n: 30, want: "0-14,56-70"},
		}},
		// Hybrid: performance cores while they last, then efficiency cores
		// in one L2 cluster; Kind forces the choice.
		{"hybrid", cpusettest.Hybrid, cpuset.AllocatorOptions{}, []take{
			{n: 4, want: "0-3"},
			{n: 4, opts: cpuset.TakeOptions{Kind: cpuset.KindEfficiency}, want: "16-19"},
			{n: 17, want: ""}, {n: 12, want: "4-15"}, {n: 2, want: "20-21"},
		}},
		{"hybrid 20", cpusettest.Hybrid, cpuset.AllocatorOptions{}, []take{
			{n: 20, want: "0-19"},
		}},
		// arm64 big.LITTLE: big cores first; when too few are left, the
		// little cluster; a single CPU goes back to the big cores.
		{"arm big.LITTLE", cpusettest.ARMBigLittle, cpuset.AllocatorOptions{}, []take{
			{n: 2, want: "4-5"}, {n: 3, want: "0-2"}, {n: 1, want: "6"},
			{n: 1, opts: cpuset.TakeOptions{Kind: cpuset.KindEfficiency}, want: "3"},
		}},
		// Offline and isolated CPUs are never handed out by default. Four
		// single-thread cores in CCX 1 are the best fit for 4; a whole core
		// for 2 comes from CCX 0.
		{"offline", cpusettest.OfflineCPUs, cpuset.AllocatorOptions{}, []take{
			{n: 4, want: "4-7"}, {n: 2, want: "0,8"},
			{n: 2, opts: cpuset.TakeOptions{Within: mustParse(t, "2,10")}, want: ""},
			{n: 5, want: ""}, {n: 4, want: "1,3,9,11"},
		}},
		{"offline allow isolated", cpusettest.OfflineCPUs, cpuset.AllocatorOptions{AllowIsolated: true}, []take{
			{n: 2, opts: cpuset.TakeOptions{Within: mustParse(t, "2,10")}, want: "2,10"},
			{n: 11, want: ""}, {n: 10, want: "0-1,3-9,11"},
		}},
		// 60 CPUs exceed a node (56): node 1 whole plus two cores of node 0
		// on the same socket, which is a better fit than socket 1.
		{"big448", cpusettest.Big448, cpuset.AllocatorOptions{}, []take{
			{n: 8, want: "0-3,224-227"}, {n: 60, want: "4-5,28-55,228-229,252-279"},
			{n: 56, want: "56-83,280-307"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newAllocator(t, fixture(t, tc.shape), tc.alloc)
			for i, tk := range tc.takes {
				before := a.Free()
				got, err := a.TakeExclusive(tk.n, tk.opts)
				if tk.want == "" {
					var ie *cpuset.InsufficientCPUsError
					if !errors.Is(err, cpuset.ErrInsufficientCPUs) || !errors.As(err, &ie) || ie.Requested != tk.n {
						t.Fatalf("take %d: TakeExclusive(%d) = %s, %v; want an InsufficientCPUsError", i, tk.n, got, err)
					}
					if !a.Free().Equals(before) {
						t.Fatalf("take %d: failed take changed the free set from %s to %s", i, before, a.Free())
					}
					continue
				}
				if err != nil {
					t.Fatalf("take %d: TakeExclusive(%d): %v", i, tk.n, err)
				}
				if got.String() != tk.want {
					t.Fatalf("take %d: TakeExclusive(%d, %+v) = %s, want %s", i, tk.n, tk.opts, got, tk.want)
				}
			}
		})
	}
}

func TestReleaseRestores(t *testing.T) {
	a := newAllocator(t, fixture(t, cpusettest.Intel2S20C2T), cpuset.AllocatorOptions{})
	x, _ := a.TakeExclusive(6, cpuset.TakeOptions{})
	before := a.Free()
	y, _ := a.TakeExclusive(3, cpuset.TakeOptions{})
	if err := a.Release(y); err != nil {
		t.Fatal(err)
	}
	if !a.Free().Equals(before) {
		t.Errorf("free after release = %s, want %s", a.Free(), before)
	}
	// Releasing CPUs that are not allocated fails and releases nothing.
	if err := a.Release(x.Union(mustParse(t, "70"))); err == nil {
		t.Error("Release of an unallocated CPU succeeded")
	}
	if !a.Allocated().Equals(x) {
		t.Errorf("allocated = %s after a failed release, want %s", a.Allocated(), x)
	}
	if err := a.Release(x); err != nil {
		t.Fatal(err)
	}
	if a.Free().Size() != 80 {
		t.Errorf("free = %s, want all 80 CPUs", a.Free())
	}
}

func TestAllocatorBadInput(t *testing.T) {
	topo := fixture(t, cpusettest.VM2)
	if _, err := cpuset.NewAllocator(topo, cpuset.AllocatorOptions{Reserved: mustParse(t, "1-3")}); err == nil {
		t.Error("NewAllocator accepted reserved CPUs 2-3 that are not online")
	}
	a := newAllocator(t, topo, cpuset.AllocatorOptions{})
	for _, n := range []int{0, -1} {
		if _, err := a.TakeExclusive(n, cpuset.TakeOptions{}); err == nil || errors.Is(err, cpuset.ErrInsufficientCPUs) {
			t.Errorf("TakeExclusive(%d) error = %v, want a count error", n, err)
		}
	}
	if _, err := a.TakeExclusive(1, cpuset.TakeOptions{Kind: "turbo"}); err == nil {
		t.Error("TakeExclusive accepted kind \"turbo\"")
	}
	if _, err := a.TakeExclusive(1, cpuset.TakeOptions{Within: mustParse(t, "4096")}); err == nil {
		t.Error("TakeExclusive accepted Within beyond the topology")
	}
	if a.Allocated().Size() != 0 {
		t.Errorf("bad requests allocated %s", a.Allocated())
	}
}

func TestClaim(t *testing.T) {
	a := newAllocator(t, fixture(t, cpusettest.OfflineCPUs), cpuset.AllocatorOptions{Reserved: mustParse(t, "0")})
	if err := a.Claim(mustParse(t, "1,9")); err != nil {
		t.Fatal(err)
	}
	// Reserved, isolated, offline or already claimed CPUs cannot be
	// claimed, and a failed claim claims nothing.
	for _, bad := range []string{"0", "2", "12", "9", "3,9"} {
		if err := a.Claim(mustParse(t, bad)); err == nil {
			t.Errorf("Claim(%s) succeeded", bad)
		}
	}
	if got := a.Allocated().String(); got != "1,9" {
		t.Errorf("Allocated() = %s, want 1,9", got)
	}
	// The planner works around claimed CPUs: core {3,11} is the only whole
	// core left in CCX 0.
	if got, err := a.TakeExclusive(2, cpuset.TakeOptions{Within: mustParse(t, "0-3,8-11")}); err != nil || got.String() != "3,11" {
		t.Errorf("TakeExclusive(2) = %s, %v; want 3,11", got, err)
	}
}
