package main

import (
	"os"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestProcCPU checks that the overhead benchmark's CPU clock reads a
// process's CPU time: a busy loop of 150 ms of this thread's CPU time
// (its own thread clock, the goroutine locked to its thread) moves the process clock by at least that, and by
// no more than the ticks of /proc/PID/stat say the process used, give or
// take their 10 ms granularity.
func TestProcCPU(t *testing.T) {
	// The thread clock is one OS thread's: a goroutine moved to another
	// thread mid-loop read a clock that had run longer and left early.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	pid := os.Getpid()
	c0, err := procCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	s0, err := procStatCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	thread := func() time.Duration {
		var ts unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ts.Nano())
	}
	const busy = 150 * time.Millisecond
	for t0 := thread(); thread()-t0 < busy; {
	}
	c1, err := procCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	s1, err := procStatCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	dc, ds := c1-c0, s1-s0
	t.Logf("process CPU clock moved %v, /proc/%d/stat %v, for %v of busy loop", dc, pid, ds, busy)
	if dc < busy {
		t.Errorf("process CPU clock moved %v, less than the %v the busy loop used", dc, busy)
	}
	if slack := 20 * time.Millisecond; dc > ds+slack || dc < ds-slack {
		t.Errorf("process CPU clock moved %v, /proc/%d/stat %v: want within %v of each other", dc, pid, ds, slack)
	}
}
