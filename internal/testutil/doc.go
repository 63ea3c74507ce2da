// Package testutil holds Strata's test tiers' shared helpers.
//
// Kernel tests (named TestKernel…) use the real kernel in cgroups and network
// namespaces of their own. They call RequireRoot and RequireFeature, which
// skip with the exact reason when a feature is truly absent, and — modelled
// on github.com/cilium/ebpf's internal/testutils — turn the skip into a
// failure when STRATA_TEST_REQUIRE_KERNEL=1 and the machine should have the
// feature. "Should have" is decided by independent evidence: a Feature's
// Absent function must show why the machine lacks it (no RDT CPU flag, a
// kernel older than the feature, a pure cgroup v2 host for a v1 controller).
// Without such evidence a failed probe under STRATA_TEST_REQUIRE_KERNEL=1 is
// a bug, not a skip. CI sets the variable, so a skip never hides a bug there.
package testutil
