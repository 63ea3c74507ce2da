package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/procfs"

	"github.com/strata-nri/strata/isolation"
)

// The reaction benchmark traces where a step's time goes, one timestamp
// per stage on the host's wall clock (the plugin is another process):
//
//   - plan: every period's plan, from the plugin child — the time its
//     loop step ended (the hook runs last: the step samples, decides and
//     hands the updates to the plugin's updater goroutine first, so an
//     update can reach the runtime just before its plan's time), the
//     online pools' usage it observed and the batch pool's size it
//     decided (on this node the LC pool holds the rest), through the
//     plugin's BatchCapacity hook;
//   - update: every update the runtime stand-in received for a container,
//     with the cpuset it carried, and the time its cgroup write returned.
//
// The LC cgroup's cpuset as polled (cpusetEvent) is the last stage.

// planTraceEnv, set to "1" in a plugin child's environment, makes it
// print one planTraceRecord a period on its stdout.
const planTraceEnv = "STRATA_COLOCATION_PLAN_TRACE"

// planRecord is one period's plan as the plugin decided it.
type planRecord struct {
	at          time.Time
	onlineUsage float64 // CPUs the online pools' members used last period
	batchCPUs   int     // the batch pool's size after the plan
}

// planTracer is the plugin child's BatchCapacity hook: it hands each
// plan's figures to a writer goroutine and never blocks the loop (a full
// queue drops the record).
type planTracer struct{ ch chan string }

func newPlanTracer(w io.Writer) *planTracer {
	t := &planTracer{ch: make(chan string, 1024)}
	go func() {
		bw := bufio.NewWriter(w)
		for line := range t.ch {
			_, _ = bw.WriteString(line)
			_ = bw.Flush()
		}
	}()
	return t
}

func (t *planTracer) Observe(b isolation.BatchCapacity) {
	line := fmt.Sprintf("plan %d %.4f %d\n", time.Now().UnixNano(), b.OnlineUsage, b.BatchPoolCPUs)
	select {
	case t.ch <- line:
	default:
	}
}

// readPlanTrace parses a plugin child's plan lines from r into rec until
// r ends.
func readPlanTrace(r io.Reader, rec func(planRecord)) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 4 || f[0] != "plan" {
			continue
		}
		ns, err1 := strconv.ParseInt(f[1], 10, 64)
		u, err2 := strconv.ParseFloat(f[2], 64)
		b, err3 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		rec(planRecord{at: time.Unix(0, ns), onlineUsage: u, batchCPUs: b})
	}
}

// updateRecord is one update the runtime stand-in received.
type updateRecord struct {
	id            string
	cpus          int // CPUs in the update's cpuset; 0: none carried
	recv, written time.Time
}

// traceLog collects a reaction run's plan and update records.
type traceLog struct {
	mu      sync.Mutex
	plans   []planRecord
	updates []updateRecord
}

func (l *traceLog) plan(r planRecord) {
	l.mu.Lock()
	l.plans = append(l.plans, r)
	l.mu.Unlock()
}

func (l *traceLog) update(r updateRecord) {
	l.mu.Lock()
	l.updates = append(l.updates, r)
	l.mu.Unlock()
}

// planTraceChild returns the plan tracer of a plugin child whose parent
// asked for the trace (planTraceEnv), nil otherwise.
func planTraceChild() *planTracer {
	if os.Getenv(planTraceEnv) != "1" {
		return nil
	}
	return newPlanTracer(os.Stdout)
}

// schedSample is a process's CPU time and run-queue wait, summed over its
// threads (/proc/PID/task/*/schedstat), at a moment of the run.
type schedSample struct {
	at         time.Duration
	run, delay time.Duration
}

// readSchedstat sums the run time and run-queue wait of pid's threads
// (their /proc/PID/task/TID/schedstat).
func readSchedstat(pid int) (run, delay time.Duration, err error) {
	threads, err := procfs.AllThreads(pid)
	if err != nil {
		return 0, 0, err
	}
	for _, t := range threads {
		st, err := t.Schedstat()
		if err != nil {
			continue // the thread exited
		}
		run += time.Duration(st.RunningNanoseconds)
		delay += time.Duration(st.WaitingNanoseconds)
	}
	return run, delay, nil
}

// schedBetween is the CPUs a process ran on and the CPUs' worth of its
// threads waiting for one (run-queue wait per second) between from and
// to, from samples in time order; ok is false without samples around both.
func schedBetween(s []schedSample, from, to time.Duration) (run, delay float64, ok bool) {
	var a, b *schedSample
	for i := range s {
		if s[i].at <= from {
			a = &s[i]
		}
		if s[i].at >= to && b == nil {
			b = &s[i]
		}
	}
	if a == nil || b == nil || b.at <= a.at {
		return 0, 0, false
	}
	dt := float64(b.at - a.at)
	return float64(b.run-a.run) / dt, float64(b.delay-a.delay) / dt, true
}
