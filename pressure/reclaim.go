package pressure

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/strata-nri/strata/cgroup"
)

// ReclaimOptions tunes ReclaimPageCache.
type ReclaimOptions struct {
	// Step is how far each cgroup v1 limit write goes below the previous
	// one; default 32 MiB. Small steps keep each write's synchronous
	// reclaim short, so a cancellation is noticed soon.
	Step int64
	// Headroom is kept above the memory that reclaim cannot free (anon,
	// kernel memory, shmem); default 8 MiB. On v1 the lowered limit
	// applies to the cgroup's own allocations while it is in force: a
	// process that allocates more than Headroom of anon in that moment
	// meets the limit (and reclaim, or the OOM killer if nothing can be
	// reclaimed). Headroom is that margin.
	Headroom int64
}

// ReclaimMethod is how page cache was reclaimed.
type ReclaimMethod string

// Reclaim methods.
const (
	// ProactiveReclaim is cgroup v2's memory.reclaim with swappiness=0,
	// which asks the kernel for page cache only.
	ProactiveReclaim ReclaimMethod = "v2 proactive reclaim (swappiness=0)"
	// ProactiveReclaimDefault is memory.reclaim without swappiness, on
	// kernels before 6.7 that refuse the argument; the kernel may then
	// swap anon pages too if swap is enabled.
	ProactiveReclaimDefault ReclaimMethod = "v2 proactive reclaim (kernel default swappiness)"
	// LimitStepping lowers the v1 hard limit step by step and restores it.
	LimitStepping ReclaimMethod = "v1 limit stepping"
)

// ReclaimResult reports what a reclaim did.
type ReclaimResult struct {
	Method ReclaimMethod
	// Before and After are memory.stat around the reclaim.
	Before, After cgroup.MemoryStat
	// UsageBefore and UsageAfter are the cgroup's charged memory.
	UsageBefore, UsageAfter int64
	// Reclaimed is how much the page cache (MemoryStat.File) shrank, in
	// bytes; 0 if it grew meanwhile.
	Reclaimed int64
	// Goal is the usage aimed at after clamping the target to what can be
	// reclaimed.
	Goal int64
	// Steps is the number of limit writes (v1) or reclaim requests (v2).
	Steps int
	// Stopped says why the reclaim ended.
	Stopped string
}

const (
	defaultReclaimStep     = 32 << 20
	defaultReclaimHeadroom = 8 << 20
)

// ReclaimPageCache shrinks the cgroup's page cache so that its memory usage
// approaches target bytes, never below what page-cache reclaim can reach:
// the goal is at least usage minus reclaimable page cache (file pages other
// than shmem) plus Headroom, so anon memory is never asked for. A target of
// 0 drops as much page cache as the kernel will.
//
//   - cgroup v2: one memory.reclaim request for usage-goal bytes (capped at
//     the reclaimable page cache), with swappiness=0 where the kernel
//     supports it. The kernel answering EAGAIN (it reclaimed less) is not an
//     error: Reclaimed says what happened.
//   - cgroup v1, which has no reclaim file: the hard limit is lowered in
//     Steps from the current usage toward the goal; each write makes the
//     kernel reclaim synchronously. The original limit is always written
//     back and verified byte for byte — after success, after an error and
//     after ctx is cancelled (the restore itself ignores ctx). A write the
//     kernel answers with EBUSY (it could not get below) ends the stepping.
//     If someone else (a runtime resizing the container) changed the limit
//     meanwhile, their value is kept and the error wraps ErrLimitChanged.
//     Two reclaims of one cgroup must not run at once: the second would
//     take the first one's lowered limit for the original.
func ReclaimPageCache(ctx context.Context, cg *cgroup.Cgroup, target int64, opts ReclaimOptions) (res ReclaimResult, err error) {
	if target < 0 {
		return res, fmt.Errorf("pressure: reclaim %s: target %d bytes must be >= 0", cg.Path(), target)
	}
	if opts.Step < 0 || opts.Headroom < 0 {
		return res, fmt.Errorf("pressure: reclaim %s: step %d and headroom %d must be >= 0", cg.Path(), opts.Step, opts.Headroom)
	}
	if opts.Step == 0 {
		opts.Step = defaultReclaimStep
	}
	if opts.Headroom == 0 {
		opts.Headroom = defaultReclaimHeadroom
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if res.Before, res.UsageBefore, err = memoryState(cg); err != nil {
		return res, fmt.Errorf("pressure: reclaim %s: %w", cg.Path(), err)
	}
	defer func() {
		// Report the state after, whatever happened.
		if st, usage, serr := memoryState(cg); serr == nil {
			res.After, res.UsageAfter = st, usage
			if d := int64(res.Before.File) - int64(st.File); d > 0 {
				res.Reclaimed = d
			}
		}
	}()
	if cg.Hierarchy().Mode() == cgroup.V2 {
		return reclaimV2(cg, target, opts, res)
	}
	return reclaimV1(ctx, cg, target, opts, res)
}

func memoryState(cg *cgroup.Cgroup) (cgroup.MemoryStat, int64, error) {
	st, err := cg.MemoryStat()
	if err != nil {
		return st, 0, err
	}
	usage, err := cg.MemoryUsage()
	return st, usage, err
}

// reclaimGoal is the lowest usage page-cache reclaim can reach, plus
// headroom, or target if that is higher.
func reclaimGoal(st cgroup.MemoryStat, usage, target, headroom int64) int64 {
	reclaimable := int64(st.File) - int64(st.Shmem)
	if reclaimable < 0 {
		reclaimable = 0
	}
	floor := usage - reclaimable + headroom
	if floor < 0 {
		floor = 0
	}
	return max(target, floor)
}

func reclaimV2(cg *cgroup.Cgroup, target int64, opts ReclaimOptions, res ReclaimResult) (ReclaimResult, error) {
	res.Goal = reclaimGoal(res.Before, res.UsageBefore, target, opts.Headroom)
	amount := res.UsageBefore - res.Goal
	if amount <= 0 {
		res.Stopped = "usage already at or below the goal"
		return res, nil
	}
	res.Method = ProactiveReclaim
	res.Steps = 1
	err := cg.ReclaimMemory(amount, 0)
	if errors.Is(err, syscall.EINVAL) {
		// Kernels before 6.7 know no swappiness argument.
		res.Method = ProactiveReclaimDefault
		res.Steps++
		err = cg.ReclaimMemory(amount, -1)
	}
	switch {
	case err == nil:
		res.Stopped = "kernel reclaimed the requested amount"
	case errors.Is(err, syscall.EAGAIN):
		res.Stopped = "kernel reclaimed less than requested (EAGAIN)"
	default:
		return res, fmt.Errorf("pressure: reclaim %s: %w", cg.Path(), err)
	}
	return res, nil
}

func reclaimV1(ctx context.Context, cg *cgroup.Cgroup, target int64, opts ReclaimOptions, res ReclaimResult) (_ ReclaimResult, err error) {
	res.Method = LimitStepping
	orig, err := cg.MemoryLimit()
	if err != nil {
		return res, fmt.Errorf("pressure: reclaim %s: %w", cg.Path(), err)
	}
	res.Goal = reclaimGoal(res.Before, res.UsageBefore, target, opts.Headroom)
	if res.Goal >= res.UsageBefore {
		res.Stopped = "usage already at or below the goal"
		return res, nil
	}
	if orig >= 0 && orig <= res.Goal {
		res.Stopped = "limit already at or below the goal"
		return res, nil
	}
	written := int64(0) // the last limit we wrote; 0 = none yet
	defer func() {
		// Always put the limit back, also when ctx was cancelled: a
		// context-bound restore could itself be cancelled.
		if written == 0 {
			return
		}
		if rerr := restoreLimit(cg, orig, written); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}()
	limit := res.UsageBefore
	for {
		if cerr := ctx.Err(); cerr != nil {
			res.Stopped = "context cancelled"
			return res, cerr
		}
		// Recompute the floor each step: anon may grow meanwhile, and we
		// never ask below it.
		st, usage, serr := memoryState(cg)
		if serr != nil {
			return res, fmt.Errorf("pressure: reclaim %s: %w", cg.Path(), serr)
		}
		goal := reclaimGoal(st, usage, target, opts.Headroom)
		res.Goal = goal
		limit = min(limit, usage)
		if limit <= goal {
			res.Stopped = "reached the goal"
			return res, nil
		}
		// Page-aligned, as the kernel stores it, so that the value reads
		// back as written (see restoreLimit); rounded up, never below goal.
		next := alignUp(max(limit-opts.Step, goal), pageSize)
		if next >= limit {
			res.Stopped = "reached the goal"
			return res, nil
		}
		if written > 0 {
			// Between our writes the limit is ours; if it is not what we
			// wrote, a runtime resized the container: keep its value.
			cur, lerr := cg.MemoryLimit()
			if lerr != nil {
				return res, fmt.Errorf("pressure: reclaim %s: %w", cg.Path(), lerr)
			}
			if cur != written {
				res.Stopped = "memory limit changed by someone else"
				w := written
				written = 0 // not ours to restore
				return res, fmt.Errorf("pressure: reclaim %s: limit reads %d, not the %d written by the reclaim, original %d not restored: %w",
					cg.Path(), cur, w, orig, ErrLimitChanged)
			}
		}
		werr := cg.SetMemoryLimit(next)
		res.Steps++
		if errors.Is(werr, syscall.EBUSY) {
			res.Stopped = "kernel could not reclaim below the next step (EBUSY)"
			return res, nil
		}
		if werr != nil {
			// The write may or may not have taken: restore either way.
			written = -2
			return res, fmt.Errorf("pressure: reclaim %s: %w", cg.Path(), werr)
		}
		written = next
		limit = next
	}
}

// ErrLimitChanged reports that a cgroup's memory limit was changed by
// someone else (a runtime resizing the container) while a v1 reclaim had it
// lowered; the reclaim leaves the new value rather than overwrite it with
// the old one.
var ErrLimitChanged = errors.New("memory limit changed by someone else during reclaim")

var pageSize = int64(os.Getpagesize())

func alignUp(v, to int64) int64 { return (v + to - 1) / to * to }

// restoreLimit writes orig back unless the limit no longer holds the value
// the reclaim last wrote (written; -2 when unknown after a failed write),
// then verifies it.
func restoreLimit(cg *cgroup.Cgroup, orig, written int64) error {
	if written > 0 {
		cur, err := cg.MemoryLimit()
		if err != nil {
			return fmt.Errorf("pressure: reclaim %s: read memory limit before restoring %d: %w", cg.Path(), orig, err)
		}
		if cur != written {
			return fmt.Errorf("pressure: reclaim %s: limit reads %d, not the %d written by the reclaim, original %d not restored: %w",
				cg.Path(), cur, written, orig, ErrLimitChanged)
		}
	}
	if err := cg.SetMemoryLimit(orig); err != nil {
		return fmt.Errorf("pressure: reclaim %s: restore memory limit %d: %w", cg.Path(), orig, err)
	}
	got, err := cg.MemoryLimit()
	if err != nil {
		return fmt.Errorf("pressure: reclaim %s: verify restored memory limit: %w", cg.Path(), err)
	}
	if got != orig {
		return fmt.Errorf("pressure: reclaim %s: memory limit reads %d after restoring %d", cg.Path(), got, orig)
	}
	return nil
}
