package cgroup

import (
	"os"
	"path/filepath"
	"testing"
)

// TestSameSharesEitherRuntimeConversion: on v2 a weight written by a
// runtime with the linear conversion (runc before 1.3: 1024 shares → 39)
// and one written with the quadratic conversion (runc 1.3+: → 100) both
// read back as the 1024 shares Strata asked for; any other weight does not.
// On v1 shares compare exactly.
func TestSameSharesEitherRuntimeConversion(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, ControllersFile), []byte("cpu\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	v2, err := NewV2(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		weight, want uint64
		same         bool
	}{
		{39, 1024, true},  // runc 1.1
		{100, 1024, true}, // runc 1.3
		{50, 1024, false}, // someone else's
		{1, 2, true},      // both conversions
		{40, 1024, false}, // off by one
		{10000, 262144, true},
	} {
		if got := v2.SameShares(WeightToShares(tc.weight), tc.want); got != tc.same {
			t.Errorf("v2: cpu.weight %d read back, %d shares wanted: same = %v, want %v", tc.weight, tc.want, got, tc.same)
		}
	}
	if LinearSharesToWeight(1024) != 39 || LinearSharesToWeight(2) != 1 || LinearSharesToWeight(262144) != 10000 {
		t.Errorf("linear conversion: 1024 → %d, 2 → %d, 262144 → %d; want 39, 1, 10000",
			LinearSharesToWeight(1024), LinearSharesToWeight(2), LinearSharesToWeight(262144))
	}
	v1 := NewV1(map[string]string{CPU: root}, "")
	if !v1.SameShares(1024, 1024) || v1.SameShares(1023, 1024) {
		t.Error("v1: shares must compare exactly")
	}
}
