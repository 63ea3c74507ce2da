package nriplugin

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/isolation"
	"github.com/strata-nri/strata/pressure"
)

// loadSchedProbe starts the scheduler probe; tests replace it to make the
// kernel refuse the load.
var loadSchedProbe = func() (*pressure.SchedProbe, error) {
	return pressure.NewSchedProbe(pressure.SchedProbeOptions{MaxCgroups: pressure.DefaultSchedMaxCgroups})
}

// schedSampler adds the eBPF scheduler probe to the file sampler: each
// member's run-queue delay per period. Without the probe (no BPF, no BTF,
// not allowed) the file sampler runs alone and why is said once.
type schedSampler struct {
	probe *pressure.SchedProbe // used by the loop goroutine only

	mu     sync.Mutex // guards reason, running and last, read by Status
	reason string     // why the probe is not running
	on     bool
	last   map[string]runQueueFigures
}

type runQueueFigures struct{ mean, p50, p99 time.Duration }

// startSched loads the probe, or logs why the file sampler runs alone.
// It runs before the loop starts, so the loop owns the probe afterwards.
func (p *Plugin) startSched() {
	s := &p.sampler.sched
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.opts.NoSchedProbe {
		s.reason = "disabled by option"
		p.log.Info("scheduler probe off; sampling cgroup files only", "reason", s.reason)
		return
	}
	probe, err := loadSchedProbe()
	if err != nil {
		s.reason = err.Error()
		p.log.Warn("eBPF scheduler probe unavailable; sampling cgroup files only, without run-queue delay", "err", err,
			"notSupported", errors.Is(err, pressure.ErrSchedNotSupported))
		return
	}
	s.probe, s.reason, s.on = probe, "", true
	s.last = map[string]runQueueFigures{}
	for id, cg := range p.sampler.members {
		s.add(p.log, id, cg)
	}
	p.log.Info("eBPF scheduler probe running: run-queue delay per container")
}

// stopSched detaches the probe (Run's end).
func (p *Plugin) stopSched() {
	s := &p.sampler.sched
	if s.probe != nil {
		if err := s.probe.Close(); err != nil {
			p.log.Warn("closing the scheduler probe", "err", err)
		}
		s.probe = nil
		s.mu.Lock()
		s.reason, s.on = "stopped", false
		s.mu.Unlock()
	}
}

func (s *schedSampler) add(log *slog.Logger, id string, cg *cgroup.Cgroup) {
	if s.probe == nil {
		return
	}
	if err := s.probe.Add(id, cg); err != nil {
		log.Debug("scheduler probe cannot measure container", "container", id, "err", err)
	}
}

func (s *schedSampler) remove(id string) {
	if s.probe == nil {
		return
	}
	s.probe.Remove(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.last, id)
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// observe adds this period's run-queue delay to the members' usage.
func (s *schedSampler) observe(log *slog.Logger, obs *isolation.Observations) {
	if s.probe == nil {
		return
	}
	pass, err := s.probe.Sample()
	if err != nil {
		log.Warn("scheduler probe read failed", "err", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range pass.Samples {
		ss := &pass.Samples[i]
		if !ss.HasRates {
			continue
		}
		f := runQueueFigures{ss.DelayMean, ss.DelayP50, ss.DelayP99}
		s.last[ss.ID] = f
		u, ok := obs.Containers[ss.ID]
		if !ok {
			continue // no file sample this period: the container is not observed
		}
		u.RunQueueMean, u.RunQueueP50, u.RunQueueP99 = f.mean, f.p50, f.p99
		obs.Containers[ss.ID] = u
	}
}

// figures returns a container's last run-queue delay, for Status.
func (s *schedSampler) figures(id string) (runQueueFigures, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.last[id]
	return f, ok
}

// state says which sampler runs, for Status.
func (s *schedSampler) state() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.on {
		return "ebpf"
	}
	if s.reason == "" {
		return "files"
	}
	return "files (" + s.reason + ")"
}
