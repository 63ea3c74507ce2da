package cgroup

import "testing"

// TestSharesToMilliCPURoundTrip: every request the kubelet turns into
// shares above the minimum reads back as itself, so 2001m is never taken
// for the whole-CPU 2000m (which would earn exclusive cores).
func TestSharesToMilliCPURoundTrip(t *testing.T) {
	maxMilli := int64(MaxShares) * 1000 / DefaultShares
	for m := int64(3); m <= maxMilli; m++ {
		if got := SharesToMilliCPU(MilliCPUToShares(m)); got != m {
			t.Fatalf("%dm -> %d shares -> %dm", m, MilliCPUToShares(m), got)
		}
	}
}
