package harness

import (
	"context"

	"testing"
	"time"

	"github.com/strata-nri/strata/internal/testutil"
)

// Require skips an e2e test under -short (unless
// STRATA_TEST_REQUIRE_KERNEL=1) and when not root (failing it instead under
// STRATA_TEST_REQUIRE_KERNEL=1). Start calls it; call it first in a test
// that does expensive set-up, such as building a plugin, before Start.
func Require(tb testing.TB) {
	tb.Helper()
	if testing.Short() && !testutil.KernelRequired() {
		tb.Skip("e2e: skipped under -short (starts a real containerd; the first run builds it, ~2 min per version)")
	}
	testutil.RequireRoot(tb)
}

// Start is New for tests: it skips the test when not root (fails instead
// under STRATA_TEST_REQUIRE_KERNEL=1) and when -short is given (building
// containerd takes minutes), fails it when the environment cannot be
// started, and registers a t.Cleanup that closes the environment, logging
// the tails of containerd's and the plugins' logs first if the test failed.
func Start(tb testing.TB, opts Options) *Env {
	tb.Helper()
	Require(tb)
	if opts.Logf == nil {
		opts.Logf = func(format string, args ...any) { tb.Logf("e2e: "+format, args...) }
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	env, err := New(ctx, opts)
	if err != nil {
		tb.Fatalf("e2e: %v", err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			st := env.State()
			tb.Logf("e2e: test failed; logs follow%s", env.logTail(st.ContainerdLog, 40))
			for _, p := range st.PluginLogs {
				tb.Logf("%s", env.logTail(p, 20))
			}
		}
		if err := env.Close(); err != nil {
			tb.Errorf("e2e: %v", err)
		}
	})
	return env
}
