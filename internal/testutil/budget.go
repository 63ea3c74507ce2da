package testutil

import (
	"runtime"
	"syscall"
	"testing"
	"time"
)

// Budgets of a bounded input: what rejecting (or accepting) one hostile
// value may cost at most.
const (
	BudgetBytes = 50 << 20
	BudgetTime  = 100 * time.Millisecond
)

// WithinBudget runs fn a few times and fails the test when the cheapest run
// used BudgetTime of CPU or more, or any run allocated BudgetBytes or more.
// Time is the CPU time of the calling thread (fn runs on it, locked), the
// minimum over runs: a starved or quota-limited CPU stretches wall time,
// not CPU time, so the check does not flake. Allocation is counted by
// runtime.MemStats. (Thread CPU time advances in scheduler ticks, so
// cheap calls read as 0.) It returns the figures for the log.
func WithinBudget(tb testing.TB, name string, fn func()) (bytes uint64, d time.Duration) {
	tb.Helper()
	const runs = 5
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	d = time.Duration(1<<63 - 1)
	var before, after runtime.MemStats
	for range runs {
		runtime.ReadMemStats(&before)
		start := threadCPU()
		fn()
		el := threadCPU() - start
		runtime.ReadMemStats(&after)
		d = min(d, el)
		bytes = max(bytes, after.TotalAlloc-before.TotalAlloc)
	}
	tb.Logf("%s: %d bytes allocated, %v", name, bytes, d)
	if bytes >= BudgetBytes {
		tb.Errorf("%s: allocated %d bytes, budget %d", name, bytes, BudgetBytes)
	}
	if d >= BudgetTime {
		tb.Errorf("%s: took %v of CPU at best of %d runs, budget %v", name, d, runs, BudgetTime)
	}
	return bytes, d
}

// threadCPU is the CPU time (user and system) of the calling OS thread.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
