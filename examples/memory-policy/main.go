// Command memory-policy runs a command in a cgroup of its own with the
// memory policy Strata gives batch members: a high OOM score (the kernel
// kills it first), and its page cache kept under a ceiling by periodic
// reclaim — memory.reclaim on cgroup v2, a briefly lowered limit on v1,
// always restored.
//
//	sudo go run ./examples/memory-policy --cache-max 64Mi --oom-score-adj 1000 -- tar czf /tmp/x.tgz /usr
//
// It prints each reclaim it does and a summary when the command ends.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/strata-nri/strata/examples/internal/cgexec"
	"github.com/strata-nri/strata/pressure"
)

func main() { cgexec.Main("memory-policy", run) }

type options struct {
	cacheMax    int64
	oomScoreAdj int
	interval    time.Duration
	argv        []string
}

func parse(args []string) (options, error) {
	fs := flag.NewFlagSet("memory-policy", flag.ContinueOnError)
	cacheMax := fs.String("cache-max", "64Mi", "page cache ceiling (Kubernetes quantity: 64Mi, 1Gi)")
	oom := fs.Int("oom-score-adj", 1000, "oom_score_adj for the command, -1000..1000 (below 0 needs CAP_SYS_RESOURCE)")
	interval := fs.Duration("interval", time.Second, "how often to check the page cache (100ms..1m)")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	cacheBytes, err := cgexec.Quantity("--cache-max", *cacheMax)
	if err != nil {
		return options{}, err
	}
	if *oom < pressure.MinOOMScoreAdj || *oom > pressure.MaxOOMScoreAdj {
		return options{}, fmt.Errorf("--oom-score-adj %d: want -1000..1000", *oom)
	}
	if *interval < 100*time.Millisecond || *interval > time.Minute {
		return options{}, fmt.Errorf("--interval %s: want 100ms..1m", *interval)
	}
	argv, err := cgexec.Argv(fs)
	if err != nil {
		return options{}, err
	}
	return options{cacheMax: cacheBytes, oomScoreAdj: *oom, interval: *interval, argv: argv}, nil
}

func run(args []string, out io.Writer) error {
	o, err := parse(args)
	if err != nil {
		return err
	}
	h, cg, err := cgexec.NewCgroup("memory")
	if err != nil {
		return err
	}
	defer cg.Remove()

	// The command's output and ours share out: one lock for both.
	out = &lockedWriter{w: out}
	cmd, err := cgexec.StartCommand(cg, o.argv, out)
	if err != nil {
		return err
	}
	// Children forked later inherit the score from the command.
	if err := pressure.SetOOMScoreAdj(cg, o.oomScoreAdj, ""); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return err
	}
	fmt.Fprintf(out, "pid %d in %s (cgroup %s), oom_score_adj %d, page cache kept under %d MiB\n",
		cmd.Process.Pid, cg.Path(), h.Mode(), o.oomScoreAdj, o.cacheMax>>20)

	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(o.interval)
	defer tick.Stop()
	var reclaimed int64
	var reclaims int
	for {
		select {
		case err := <-done:
			var left uint64
			if st, serr := cg.MemoryStat(); serr == nil {
				left = st.File
			}
			fmt.Fprintf(out, "command ended (%v); %d reclaims, %d MiB of page cache dropped, %d MiB left\n", errOrOK(err), reclaims, reclaimed>>20, left>>20)
			return err
		case <-tick.C:
			st, err := cg.MemoryStat()
			if err != nil || int64(st.File) <= o.cacheMax {
				continue
			}
			usage, err := cg.MemoryUsage()
			if err != nil {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			res, err := pressure.ReclaimPageCache(ctx, cg, usage-(int64(st.File)-o.cacheMax), pressure.ReclaimOptions{})
			cancel()
			if err != nil {
				fmt.Fprintf(out, "reclaim: %v\n", err)
				continue
			}
			reclaims++
			reclaimed += res.Reclaimed
			fmt.Fprintf(out, "page cache %d MiB > %d MiB: reclaimed %d MiB\n", st.File>>20, o.cacheMax>>20, res.Reclaimed>>20)
		}
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func errOrOK(err error) string {
	if err == nil {
		return "exit 0"
	}
	return err.Error()
}
