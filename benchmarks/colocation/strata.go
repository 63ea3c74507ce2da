package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/isolation"
	nriplugin "github.com/strata-nri/strata/nri-plugin"
)

// Environment of the "strata" child role.
const (
	socketEnv = "STRATA_COLOCATION_NRI_SOCKET"
	configEnv = "STRATA_COLOCATION_CONFIG" // JSON (a YAML subset)
	// profileEnv, when set in the benchmark's environment, makes every
	// plugin child write a CPU profile to <value>.<pid>.
	profileEnv = "STRATA_COLOCATION_PLUGIN_PROFILE"
)

// Pod namespaces and pool names of the benchmark's containers.
const (
	lcNamespace    = "colocation-lc"
	batchNamespace = "colocation-batch"
)

// benchConfig is Strata's default configuration with the changes a node
// this small needs, and nothing tuned to the benchmark's figures:
//   - the latency-critical pool admits the LC service's namespace (the
//     default has no allow-list, so an annotation alone cannot promote);
//   - it does not pin whole-CPU requests: on 2 CPUs an LC pod requesting
//     the node's CPUs would take them all, exclusively, and leave batch none;
//   - the batch pool's minimum is 0, so batch lends its last CPU to a busy
//     LC pool and borrows it back under idle scheduling (isolation's
//     "Borrowing"); with the default minimum of 1 the pools on 2 CPUs could
//     only ever be 1 + 1, the static-pools scenario.
//
// shrink, when non-zero, replaces resize.shrinkInterval (30 s): the
// reaction benchmark shortens it so 20 steps fit in minutes.
func benchConfig(period, shrink time.Duration) *isolation.Config {
	cfg := isolation.DefaultConfig()
	cfg.Period = isolation.Duration{Duration: period}
	for i := range cfg.Pools {
		switch cfg.Pools[i].Priority {
		case 0:
			cfg.Pools[i].Allow = isolation.AllowList{Namespaces: []string{lcNamespace}}
			cfg.Pools[i].ExclusiveCores = false
		case 2:
			cfg.Pools[i].MinCPUs = 0
		}
	}
	if shrink > 0 {
		cfg.Resize.ShrinkInterval = isolation.Duration{Duration: shrink}
	}
	return cfg
}

// strataConfig is benchConfig for this run: with -net, the network
// dimension on the benchmark's link (netConfig); with the benchmark's disk in
// use, the batch pool also gets block IO isolation — the idle IO priority
// (bfq serves it only when no other class wants the disk) and, from its
// empty weight, the default batch IO weight — all Strata offers on cgroup
// v1 against buffered and direct IO without tuning a limit to the device.
func (e *env) strataConfig(period, shrink time.Duration) *isolation.Config {
	cfg := benchConfig(period, shrink)
	if e.disk != nil {
		for i := range cfg.Pools {
			if cfg.Pools[i].Priority == 2 {
				cfg.Pools[i].Profile.IO.IOPriority = "idle"
			}
		}
	}
	if e.net != nil {
		netConfig(cfg, e.net.host, e.net.linkBits)
	}
	return cfg
}

// poolName returns the name of the pool with the given priority.
func poolName(cfg *isolation.Config, prio int) string {
	for _, p := range cfg.Pools {
		if p.Priority == prio {
			return p.Name
		}
	}
	return ""
}

// runStrata is the "strata" child role: Strata's NRI plugin as the strata
// binary's run command builds it (nri-plugin/cmd/strata), connected to the
// benchmark's runtime socket, until SIGTERM.
func runStrata() error {
	cfg, err := isolation.ParseConfig([]byte(os.Getenv(configEnv)))
	if err != nil {
		return fmt.Errorf("%s: %w", configEnv, err)
	}
	// Errors only: the runtime stand-in counts refused updates itself, and
	// a warning per period would drown the report.
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	nriplugin.RouteNRILogs(logger)
	// As the strata binary registers them: the block IO and RDT
	// dimensions (RDT disables itself without resctrl), and with -net the
	// network dimension on the benchmark's veth (without -net it is left
	// out: its controller would shape the host's uplink).
	opts := nriplugin.Options{SocketPath: os.Getenv(socketEnv), Config: cfg, Logger: logger,
		Controllers: []nriplugin.Controller{nriplugin.NewRDTController(nriplugin.RDTOptions{}), nriplugin.NewIOController(nriplugin.IOOptions{})}}
	if cfg.Network.Interface != "" {
		opts.Controllers = append(opts.Controllers, nriplugin.NewNetController())
	}
	if t := planTraceChild(); t != nil {
		opts.BatchCapacity = t // the reaction benchmark's per-period trace
	}
	p, err := nriplugin.New(opts)
	if err != nil {
		return err
	}
	if path := os.Getenv(profileEnv); path != "" {
		// A CPU profile of the plugin, to see where its overhead goes.
		f, err := os.Create(fmt.Sprintf("%s.%d", path, os.Getpid()))
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return p.Run(ctx)
}

// strataSession is Strata managing the benchmark's containers: the runtime
// stand-in, the plugin child and the containers it admitted.
type strataSession struct {
	cfg    *isolation.Config
	rt     *nriRuntime
	plugin *exec.Cmd
	ids    []string
}

// startStrata starts the runtime and the plugin, and waits until the plugin
// serves. With trace, the plugin reports every period's plan and the
// runtime every update it received into it.
func startStrata(ctx context.Context, cfg *isolation.Config, trace *traceLog) (*strataSession, error) {
	js, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	rt, err := newNRIRuntime(trace)
	if err != nil {
		return nil, fmt.Errorf("nri runtime: %w", err)
	}
	self, err := os.Executable()
	if err != nil {
		rt.stop()
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), roleEnv+"=strata", socketEnv+"="+rt.socket, configEnv+"="+string(js))
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	var planOut io.ReadCloser
	if trace != nil {
		cmd.Env = append(cmd.Env, planTraceEnv+"=1")
		cmd.Stdout = nil
		if planOut, err = cmd.StdoutPipe(); err != nil {
			rt.stop()
			return nil, err
		}
	}
	if err := cmd.Start(); err != nil {
		rt.stop()
		return nil, fmt.Errorf("start strata: %w", err)
	}
	if planOut != nil {
		go readPlanTrace(planOut, trace.plan)
	}
	s := &strataSession{cfg: cfg, rt: rt, plugin: cmd}
	if err := rt.waitPlugin(ctx, 30*time.Second); err != nil {
		s.stop(ctx)
		return nil, err
	}
	return s, nil
}

// create admits a container through the plugin.
func (s *strataSession) create(ctx context.Context, spec containerSpec) error {
	id, err := s.rt.create(ctx, spec)
	if err != nil {
		return err
	}
	s.ids = append(s.ids, id)
	return nil
}

// createPair admits the benchmark's LC service (pool 0, requesting every
// CPU of the node) and its batch container (pool 2, BestEffort).
func (s *strataSession) createPair(ctx context.Context, lc, batch *cgroup.Cgroup, cpus int) error {
	if lc != nil {
		if err := s.create(ctx, containerSpec{name: "lc", namespace: lcNamespace, cg: lc, cpuRequestMilli: int64(cpus) * 1000,
			annotations: map[string]string{s.cfg.Classification.Annotation: poolName(s.cfg, 0)}}); err != nil {
			return err
		}
	}
	if batch != nil {
		if err := s.create(ctx, containerSpec{name: "batch", namespace: batchNamespace, cg: batch,
			annotations: map[string]string{s.cfg.Classification.Annotation: poolName(s.cfg, 2)}}); err != nil {
			return err
		}
	}
	return nil
}

// startAll announces every created container as running.
func (s *strataSession) startAll(ctx context.Context) error {
	for _, id := range s.ids {
		if err := s.rt.start(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// stop removes the containers, stops the plugin and the runtime. What
// the runtime failed to apply is counted, not an error: a node's runc
// refuses the same writes, and the report shows them.
func (s *strataSession) stop(ctx context.Context) error {
	var errs []error
	for _, id := range s.ids {
		errs = append(errs, s.rt.remove(ctx, id))
	}
	if s.plugin.Process != nil {
		_ = s.plugin.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- s.plugin.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				errs = append(errs, fmt.Errorf("strata plugin: %w", err))
			}
		case <-time.After(10 * time.Second):
			_ = s.plugin.Process.Kill()
			<-done
			errs = append(errs, errors.New("strata plugin did not stop within 10 s of SIGTERM"))
		}
	}
	s.rt.stop()
	return errors.Join(errs...)
}
