package sim

import (
	"math"
	"time"
)

// RunBurst is the CPU burst of a simulated task between waits: the service
// time of the run-queue model.
const RunBurst = 500 * time.Microsecond

// RunQueueDelay models the run-queue delay of tasks sharing cpus CPUs at
// utilisation rho (demand ÷ capacity) as an M/M/c queue with service time
// RunBurst, using Sakasegawa's approximation of the mean wait,
//
//	Wq ≈ burst · ρ^(√(2(c+1)) − 1) / (c · (1 − ρ)),
//
// with ρ capped at 0.99 (demand beyond capacity waits as at 99 %, the
// kernel's time slices bounding the wait). Waits are taken as exponential,
// so p50 = ln 2 · mean and p99 = ln 100 · mean. Deterministic: the policy
// tests depend on nothing but demand and pool size.
func RunQueueDelay(cpus int, rho float64) (mean, p50, p99 time.Duration) {
	if cpus <= 0 || rho <= 0 {
		return 0, 0, 0
	}
	rho = math.Min(rho, 0.99)
	c := float64(cpus)
	w := float64(RunBurst) * math.Pow(rho, math.Sqrt(2*(c+1))-1) / (c * (1 - rho))
	return time.Duration(w), time.Duration(w * math.Ln2), time.Duration(w * math.Log(100))
}

// memberRunQueue is a member's run-queue delay this period: a shared member
// waits with its pool's demand and the outside work (per CPU) on the
// pool's shared CPUs, one with exclusive CPUs with its own demand on them;
// greedy batch members fill their CPUs and are not modelled.
func memberRunQueue(m *member, want float64, demand []float64, sizes []int, outside float64) (mean, p50, p99 time.Duration) {
	switch {
	case m.w.CPU == nil:
		return 0, 0, 0
	case m.excl > 0:
		return RunQueueDelay(m.excl, want/float64(m.excl))
	case sizes[m.pool] == 0:
		return 0, 0, 0
	}
	return RunQueueDelay(sizes[m.pool], demand[m.pool]/float64(sizes[m.pool])+outside)
}
