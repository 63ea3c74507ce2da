package pressure

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/internal/testutil"
)

// pingPongEnv makes the test binary a pipe echo process (see init).
const pingPongEnv = "STRATA_PRESSURE_PINGPONG"

func init() {
	switch os.Getenv(pingPongEnv) {
	case "echo":
		// fd 3 reads, fd 4 writes: echo every byte until the pipe closes.
		var c [1]byte
		for {
			if n, err := unix.Read(3, c[:]); n != 1 || err != nil {
				os.Exit(0)
			}
			if _, err := unix.Write(4, c[:]); err != nil {
				os.Exit(0)
			}
		}
	case "drive":
		// Wait for stdin to close (the parent has placed and pinned this
		// process), then print the fastest chunk's ns per round trip.
		var c [1]byte
		_, _ = unix.Read(0, c[:])
		best := time.Duration(1<<63 - 1)
		for chunk := 0; chunk < 10; chunk++ {
			const k = 2000
			start := time.Now()
			for i := 0; i < k; i++ {
				if _, err := unix.Write(3, c[:]); err != nil {
					os.Exit(2)
				}
				if _, err := unix.Read(4, c[:]); err != nil {
					os.Exit(2)
				}
			}
			best = min(best, time.Since(start)/k)
		}
		fmt.Println(best.Nanoseconds())
		os.Exit(0)
	}
}

// BenchmarkSchedSamplePass: one pass of the scheduler probe over 1000 live
// cgroups, each with a task that wakes every 500 ms (GNU tail polling a
// file). Goal: at most 0.5 ms and 0 allocations per pass.
func BenchmarkSchedSamplePass(b *testing.B) {
	requireSchedProbe(b)
	const n = 1000
	p := newSchedProbe(b, SchedProbeOptions{})
	file := filepath.Join(b.TempDir(), "poll")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < n; i++ {
		_, cg := testutil.NewCgroup(b)
		testutil.StartInCgroup(b, cg, "/usr/bin/tail", "---disable-inotify", "-s", "0.5", "-f", file)
		if err := p.Add(fmt.Sprintf("ctr%04d", i), cg); err != nil {
			b.Fatal(err)
		}
	}
	// Wait until (nearly) every task has woken at least once; on a loaded
	// machine starting 1000 processes takes a while.
	woken := 0
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		ps, err := p.Sample()
		if err != nil || len(ps.Samples) != n {
			b.Fatalf("warm-up: %d samples, %v", len(ps.Samples), err)
		}
		woken = 0
		for _, s := range ps.Samples {
			if s.Wakeups > 0 {
				woken++
			}
		}
		if woken >= n*9/10 || time.Now().After(deadline) {
			break
		}
	}
	if woken < n*9/10 {
		b.Fatalf("only %d of %d cgroups saw a wake-up", woken, n)
	}
	b.ReportAllocs()
	cpu0 := processCPUTime()
	for b.Loop() {
		if _, err := p.Sample(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/pass")
	b.ReportMetric(float64((processCPUTime()-cpu0).Microseconds())/float64(b.N)/1000, "cpu-ms/pass")
}

// BenchmarkSchedProbeContextSwitch: the probe's cost per context switch.
// A pipe ping-pong between two child processes, an echo and a driver, both
// pinned to CPU 0 and in cgroups of the highest weight, makes two switches
// per round trip. Both cgroups are registered, so the probe does its full
// work (wake-up, queueing, switch accounting) on every switch. Each
// measurement is the fastest of ten chunks of 2000 round trips (the
// machines are shared: the minimum filters out other tasks); runs without
// and with the probe alternate. Reported: ns per round trip without and
// with the probe, their ratio and the ns added per switch.
func BenchmarkSchedProbeContextSwitch(b *testing.B) {
	requireSchedProbe(b)
	_, echoCg := testutil.NewCgroup(b)
	_, driverCg := testutil.NewCgroup(b)
	testutil.Prioritize(b, echoCg)
	testutil.Prioritize(b, driverCg)
	toEcho, err := pipe()
	if err != nil {
		b.Fatal(err)
	}
	fromEcho, err := pipe()
	if err != nil {
		b.Fatal(err)
	}
	echo := exec.Command(os.Args[0], "-test.run=^$")
	echo.Env = append(os.Environ(), pingPongEnv+"=echo")
	echo.ExtraFiles = []*os.File{toEcho[0], fromEcho[1]}
	if err := echo.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		toEcho[1].Close()
		_ = echo.Process.Kill()
		_ = echo.Wait()
	})
	if err := echoCg.AddProc(echo.Process.Pid); err != nil {
		b.Fatal(err)
	}
	pin(b, echo.Process.Pid, 0)
	drive := func() time.Duration {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), pingPongEnv+"=drive")
		cmd.ExtraFiles = []*os.File{toEcho[1], fromEcho[0]}
		stdin, _ := cmd.StdinPipe()
		var out strings.Builder
		cmd.Stdout = &out
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		if err := driverCg.AddProc(cmd.Process.Pid); err != nil {
			b.Fatal(err)
		}
		pin(b, cmd.Process.Pid, 0)
		stdin.Close() // go
		if err := cmd.Wait(); err != nil {
			b.Fatalf("driver: %v (%s)", err, out.String())
		}
		ns, err := strconv.ParseInt(strings.TrimSpace(out.String()), 10, 64)
		if err != nil {
			b.Fatalf("driver output %q", out.String())
		}
		return time.Duration(ns)
	}
	drive() // warm up
	var without, with time.Duration
	for b.Loop() {
		without += drive()
		p, err := NewSchedProbe(SchedProbeOptions{})
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range []*cgroup.Cgroup{echoCg, driverCg} {
			if err := p.Add(c.Path(), c); err != nil {
				b.Fatal(err)
			}
		}
		with += drive()
		ps, _ := p.Sample()
		p.Close()
		if len(ps.Samples) != 2 || ps.Samples[0].Wakeups+ps.Samples[1].Wakeups < 20000 {
			b.Fatalf("the probe did not see the ping-pong: %+v", ps.Samples)
		}
	}
	runtime.KeepAlive(toEcho) // their finalizers would close fds the children use
	runtime.KeepAlive(fromEcho)
	b.ReportMetric(float64(without.Nanoseconds())/float64(b.N), "ns/roundtrip-without")
	b.ReportMetric(float64(with.Nanoseconds())/float64(b.N), "ns/roundtrip-with")
	b.ReportMetric(float64(with)/float64(without), "ratio")
	b.ReportMetric(float64((with-without).Nanoseconds())/float64(b.N)/2, "ns/switch-added")
}

// pipe returns a blocking pipe (os.Pipe's are non-blocking for the
// poller, which would turn a ping-pong into polling).
func pipe() ([2]*os.File, error) {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		return [2]*os.File{}, err
	}
	return [2]*os.File{os.NewFile(uintptr(fds[0]), "r"), os.NewFile(uintptr(fds[1]), "w")}, nil
}
