package pressure

import (
	"fmt"
	"testing"
	"time"

	"github.com/strata-nri/strata/cgroup"
)

// TestHistQuantile: quantiles fall in the right bucket and interpolate
// linearly inside it.
func TestHistQuantile(t *testing.T) {
	var h [SchedHistSlots]uint64
	if got := HistQuantile(&h, 0.99); got != 0 {
		t.Errorf("empty: %v", got)
	}
	// 100 waits in [512, 1024) µs (slot 10), 1 in [4096, 8192) µs (slot 13).
	h[10], h[13] = 99, 1
	if got := HistQuantile(&h, 0.5); got < 512*time.Microsecond || got >= 1024*time.Microsecond {
		t.Errorf("p50 = %v, want in [512µs, 1024µs)", got)
	}
	frac := 50.0 / 99
	if got, want := HistQuantile(&h, 0.5), time.Duration(512e3+512e3*frac); got != want {
		t.Errorf("p50 = %v, want %v (linear in the bucket)", got, want)
	}
	if got := HistQuantile(&h, 0.995); got < 4096*time.Microsecond || got >= 8192*time.Microsecond {
		t.Errorf("p99.5 = %v, want in [4096µs, 8192µs)", got)
	}
	h = [SchedHistSlots]uint64{}
	h[0] = 10
	if got := HistQuantile(&h, 0.99); got >= time.Microsecond {
		t.Errorf("sub-µs waits: p99 %v", got)
	}
	h[SchedHistSlots-1] = 1000
	if got := HistQuantile(&h, 0.99); got < 500*time.Millisecond {
		t.Errorf("overflow bucket: p99 %v", got)
	}
}

// TestSchedProbeOptionsBounds: MaxCgroups outside its range is refused
// before anything is loaded.
func TestSchedProbeOptionsBounds(t *testing.T) {
	for _, n := range []int{-1, MaxSchedMaxCgroups + 1} {
		if _, err := NewSchedProbe(SchedProbeOptions{MaxCgroups: n}); err == nil {
			t.Errorf("MaxCgroups %d accepted", n)
		}
	}
}

// A probe measures containers' run-queue delay; where the kernel cannot run
// it, the file Sampler is the fallback.
func ExampleSchedProbe() {
	p, err := NewSchedProbe(SchedProbeOptions{})
	if err != nil {
		fmt.Println("falling back to the file sampler:", err)
		return
	}
	defer p.Close()
	h, _ := cgroup.Detect(cgroup.Options{})
	cg, _ := h.Open("/kubepods/pod1/ctr1")
	_ = p.Add("ctr1", cg)
	time.Sleep(100 * time.Millisecond)
	ps, _ := p.Sample()
	for _, s := range ps.Samples {
		fmt.Println(s.ID, s.CPUCores, s.DelayP99)
	}
}
