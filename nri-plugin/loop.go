package nriplugin

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/isolation"
	"github.com/strata-nri/strata/pressure"
)

// sampler owns the per-container and node samplers. Only the loop
// goroutine uses it.
type sampler struct {
	cgroups *pressure.Sampler
	node    *pressure.NodeSampler
	sched   schedSampler // sample_bpf.go
	gen     uint64       // membership generation last synced from the plugin
	members map[string]*cgroup.Cgroup
	obs     isolation.Observations
	// vanished: members whose cgroup is gone (logged once each).
	vanished map[string]bool
}

func newSampler(h *cgroup.Hierarchy, procRoot string) *sampler {
	s := &sampler{
		cgroups:  pressure.NewSampler(h, pressure.SamplerOptions{PSI: true}),
		members:  map[string]*cgroup.Cgroup{},
		vanished: map[string]bool{},
		obs:      isolation.Observations{Containers: map[string]isolation.ContainerUsage{}},
	}
	if n, err := pressure.NewNodeSampler(pressure.NodeSamplerOptions{ProcRoot: procRoot}); err == nil {
		s.node = n
	}
	return s
}

// loop runs the feedback loop until ctx ends: every period it samples,
// decides, commits and dispatches the plan.
func (p *Plugin) loop(ctx context.Context) {
	for {
		p.mu.Lock()
		period := p.cfg.Period.Duration
		p.mu.Unlock()
		if period <= 0 {
			period = time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(period):
		}
		p.step(ctx)
	}
}

// step is one period of the loop: observe, decide and commit under the
// lock, then — outside it — send the updates, write what only a direct
// write reaches, repair drift and carry out the actions. What fails to
// apply is reported back (State.Unapplied) and planned again.
func (p *Plugin) step(ctx context.Context) {
	start := time.Now()
	p.syncSampler()
	obs := p.observe()
	p.dims.observe(obs)

	rt := p.routes.Load()
	direct := rt.direct()
	p.mu.Lock()
	if !p.synced {
		p.mu.Unlock()
		return // pools are rebuilt at Synchronize; acting before would be on stale state
	}
	plan := isolation.Decide(*obs, p.state, p.opts.Now())
	if err := p.state.Commit(&plan); err != nil {
		p.mu.Unlock()
		p.log.Warn("plan not committed", "err", err)
		return
	}
	p.applyChangesLocked(plan.Changes)
	// Snapshot what the direct writes, drift repair and actions need, then
	// let go of the lock before touching the runtime or the kernel.
	var writes []pendingWrite
	changed := make(map[string]isolation.Fields, len(plan.Changes))
	for _, ch := range plan.Changes {
		changed[ch.ID] |= ch.Fields
		// A container not started yet gets its direct settings at
		// StartContainer, from its record, once runc is done with it.
		if m := p.ctrs[ch.ID]; m != nil && m.started && ch.Fields&direct != 0 {
			writes = append(writes, pendingWrite{*m, ch.Fields & direct})
		}
	}
	targets := map[string]member{}
	for _, a := range plan.Actions {
		if m := p.ctrs[a.Container]; m != nil {
			targets[a.Container] = *m
		}
	}
	var check []member
	for _, m := range p.ctrs {
		if m.cg != nil && m.started {
			check = append(check, *m)
		}
	}
	slowEvery := driftSlowEvery(p.cfg.Period.Duration)
	p.mu.Unlock()

	// Fields the plan changes this period are being applied, not drifted.
	repairs := p.drift(check, rt, changed, slowEvery)
	for i := range repairs {
		if f := repairs[i].Fields & direct; f != 0 {
			writes = append(writes, pendingWrite{check[repairs[i].index], f})
		}
	}
	changes := plan.Changes[:len(plan.Changes):len(plan.Changes)]
	for _, r := range repairs {
		changes = append(changes, r.ContainerChange)
	}
	p.enqueue(changes)
	var failed []isolation.ContainerChange
	for i := range writes {
		if f, _ := p.write(&writes[i].m, writes[i].fields); f != 0 {
			failed = append(failed, isolation.ContainerChange{ID: writes[i].m.id, Fields: f})
		}
	}
	if len(failed) > 0 {
		p.unapplied(failed, isolation.FieldsAll)
	}
	for _, a := range plan.Actions {
		p.act(ctx, a, targets[a.Container])
	}
	p.dims.applyPools(&plan)
	p.refreshClasses()
	p.lastPlan.Store(&plan)
	p.record(&plan)
	p.metrics.loopDuration.Observe(time.Since(start).Seconds())
}

// pendingWrite is a direct write to do outside the lock.
type pendingWrite struct {
	m      member
	fields isolation.Fields
}

// repair is a drift repair: the change, and the index of its member in
// the list drift was given.
type repair struct {
	isolation.ContainerChange
	index int
}

// driftSlowInterval is how often drift repair reads each member's slow
// fields (see setting.slow) back, at the least.
const driftSlowInterval = 2 * time.Second

// driftSlowEvery is the number of periods between two reads of a member's
// slow fields: driftSlowInterval in periods, at least 1.
func driftSlowEvery(period time.Duration) uint64 {
	if period <= 0 {
		period = time.Second
	}
	return max(1, uint64((driftSlowInterval+period-1)/period))
}

// drift returns repairs for members whose cgroup no longer holds what
// Strata gave them, for every field Strata owns (see the routing table).
// Updates can be lost — containerd drops the updates a CreateContainer
// reply carries for containers that are themselves still being created —
// and other agents rewrite cgroup files; reading them back finds and
// repairs that. The CPU placement (cpuset.cpus, cpu shares, cpu idle) is
// read every period, so a change is put back within 2 periods; the slow fields
// of a member every slowEvery periods, staggered over the members (by
// their slot) so each period reads about 1/slowEvery of them: those are
// put back within slowEvery+1 periods (2 s and a period, or 2 periods at
// periods of 1 s and more). On cgroup v1 a period reads about 3 files per
// member at a 200 ms period, 6 at 1 s, instead of 9 (BenchmarkDriftCheck).
func (p *Plugin) drift(members []member, rt *routing, skip map[string]isolation.Fields, slowEvery uint64) []repair {
	p.driftRound++
	var out []repair
	for i := range members {
		m := &members[i]
		if p.pending.has(m.id) {
			continue // its update has not landed yet (see pendingUpdates)
		}
		slow := (p.driftRound+m.slot)%slowEvery == 0
		f, gone := p.drifted(m, rt, slow)
		if gone {
			p.noteVanished(m.id, "drift check")
			continue
		}
		if f &^= skip[m.id]; f == 0 {
			continue
		}
		for j := range settings {
			if s := &settings[j]; f&s.field != 0 {
				p.metrics.drift.WithLabelValues(s.name).Inc()
			}
		}
		p.log.Info("container settings drifted; repairing", "container", m.id, "pool", m.pool, "fields", fieldNames(f))
		out = append(out, repair{m.change(f, "drifted"), i})
	}
	return out
}

// fieldNames names the fields of f, for logs.
func fieldNames(f isolation.Fields) string {
	var names []string
	for i := range settings {
		if f&settings[i].field != 0 {
			names = append(names, settings[i].name)
		}
	}
	return strings.Join(names, ", ")
}

// syncSampler brings the sampler's membership up to date with the plugin's
// container table when it changed.
func (p *Plugin) syncSampler() {
	p.mu.Lock()
	if p.gen == p.sampler.gen {
		p.mu.Unlock()
		return
	}
	want := make(map[string]*cgroup.Cgroup, len(p.ctrs))
	for id, m := range p.ctrs {
		if m.cg != nil {
			want[id] = m.cg
		}
	}
	p.sampler.gen = p.gen
	p.mu.Unlock()
	s := p.sampler
	for id := range s.members {
		if _, ok := want[id]; !ok {
			delete(s.vanished, id)
			s.cgroups.Remove(id)
			s.sched.remove(id)
			delete(s.members, id)
		}
	}
	for id, cg := range want {
		if s.members[id] == cg {
			continue
		}
		if err := s.cgroups.Add(id, cg); err != nil {
			if !errors.Is(err, cgroup.ErrVanished) {
				p.log.Debug("cannot sample container yet", "container", id, "err", err)
			}
			p.mu.Lock()
			p.gen++ // retry next period (the cgroup may not exist before start)
			p.mu.Unlock()
			continue
		}
		s.members[id] = cg
		s.sched.add(p.log, id, cg)
	}
}

// observe samples every member and the node into observations.
func (p *Plugin) observe() *isolation.Observations {
	s := p.sampler
	obs := &s.obs
	clear(obs.Containers)
	clear(obs.Pools)
	pass := s.cgroups.Sample()
	for i := range pass.Samples {
		cs := &pass.Samples[i]
		if !cs.HasRates {
			continue
		}
		u := isolation.ContainerUsage{
			CPU:         cs.CPUCores,
			Throttled:   cs.ThrottledFraction,
			MemoryBytes: int64(cs.Anon + cs.File),
			FileBytes:   int64(cs.File),
		}
		if cs.HasPSI {
			// The container's own PSI; isolation takes each pool's worst.
			u.Pressure = isolation.PoolPressure{CPU: psiAvg10(&cs.CPUPressure), Memory: psiAvg10(&cs.MemoryPressure)}
			u.PressureMeasured = true
		}
		obs.Containers[cs.ID] = u
	}
	for _, id := range pass.Vanished {
		p.noteVanished(id, "sampling")
	}
	if n := len(pass.Vanished) + len(pass.Errors); n > 0 {
		p.metrics.sampleSkipped.Add(float64(n))
		for _, e := range pass.Errors {
			p.log.Debug("sample skipped", "container", e.ID, "err", e.Err)
		}
	}
	s.sched.observe(p.log, obs)
	if s.node != nil {
		if ns, err := s.node.Sample(); err == nil {
			obs.Node = isolation.NodePressure{
				CPU:         psiAvg10(&ns.CPUPressure),
				Memory:      psiAvg10(&ns.MemoryPressure),
				MemoryTotal: int64(ns.MemTotal),
				MemoryUsed:  int64(ns.MemTotal - ns.MemAvailable),
			}
		}
	}
	return obs
}

func psiAvg10(s *pressure.PSIStats) isolation.PSI {
	return isolation.PSI{Some: s.Some.Avg10, Full: s.Full.Avg10}
}

// act carries out one protection action outside any lock.
func (p *Plugin) act(ctx context.Context, a isolation.Action, m member) {
	p.metrics.actions.WithLabelValues(string(a.Kind), a.Pool).Inc()
	log := p.log.With("action", string(a.Kind), "pool", a.Pool, "level", a.Level, "container", a.Container, "reason", a.Reason)
	switch a.Kind {
	case isolation.ActionReclaimPageCache:
		if m.cg == nil {
			return
		}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		// The plan asks for bytes to reclaim; pressure takes the usage to
		// reach.
		usage, err := m.cg.MemoryUsage()
		if errors.Is(err, cgroup.ErrVanished) {
			p.noteVanished(m.id, "page-cache reclaim")
			return
		}
		if err != nil {
			log.Info("page-cache reclaim skipped", "err", err)
			return
		}
		res, err := pressure.ReclaimPageCache(rctx, m.cg, max(usage-a.Bytes, 0), pressure.ReclaimOptions{})
		if err != nil && !errors.Is(err, cgroup.ErrVanished) {
			log.Warn("page-cache reclaim failed", "err", err)
			return
		}
		log.Info("page cache reclaimed", "bytes", res.Reclaimed)
	case isolation.ActionEvict:
		if m.id == "" {
			return
		}
		ectx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		evicted, err := p.opts.Evictor.Evict(ectx, Evictee{ContainerID: m.id, Container: m.name, Pod: m.pod, Namespace: m.namespace, Pool: m.pool, Reason: a.Reason,
			Alternatives: p.evictionAlternatives(m)})
		// The evictor may have taken another candidate, or none.
		p.settleEviction(m.id, evicted)
		if err != nil {
			log.Warn("eviction failed", "err", err)
			return
		}
		if evicted.ContainerID == "" && evicted.Pod == "" {
			return // a dry run: it logged what it would do
		}
		log.Warn("container evicted", "evicted", evicted.ContainerID, "evictedPod", joinPod(evicted.Namespace, evicted.Pod))
	default:
		// release, preempt, CPU downgrade and suspend are carried by the
		// plan's pool and container changes.
		log.Info("protection action")
	}
}

// record exports a plan's figures as metrics.
func (p *Plugin) record(plan *isolation.Plan) {
	p.mu.Lock()
	bands := map[string]isolation.Band{}
	for _, pc := range p.cfg.Pools {
		bands[pc.Name] = pc.Band
	}
	p.mu.Unlock()
	for i := range plan.Pools {
		pp := &plan.Pools[i]
		p.metrics.poolCPUs.WithLabelValues(pp.Name, "shared").Set(float64(pp.Shared.Size()))
		p.metrics.poolCPUs.WithLabelValues(pp.Name, "exclusive").Set(float64(pp.Exclusive.Size()))
		p.metrics.poolLoad.WithLabelValues(pp.Name).Set(pp.Load)
		p.metrics.poolRCF.WithLabelValues(pp.Name).Set(pp.RCF)
		p.metrics.poolMembers.WithLabelValues(pp.Name).Set(float64(pp.Members))
		p.metrics.poolLevel.WithLabelValues(pp.Name).Set(float64(pp.Level))
		p.metrics.poolRunQueue.WithLabelValues(pp.Name, "0.5").Set(pp.RunQueueP50.Seconds())
		p.metrics.poolRunQueue.WithLabelValues(pp.Name, "0.99").Set(pp.RunQueueP99.Seconds())
		if pp.Resized {
			p.metrics.resizes.WithLabelValues(pp.Name).Inc()
		}
		if b, ok := bands[pp.Name]; ok && pp.SharedMembers > 0 {
			if pp.Load < b.Low {
				p.metrics.bandViolations.WithLabelValues(pp.Name, "below").Inc()
			} else if pp.Load > b.High {
				p.metrics.bandViolations.WithLabelValues(pp.Name, "above").Inc()
			}
		}
	}
	p.metrics.batchCapacity.Set(plan.Batch.CPUs)
	if p.opts.BatchCapacity != nil {
		p.opts.BatchCapacity.Observe(plan.Batch)
	}
}

// noteVanished logs, once per container, that a member's cgroup is gone
// while the runtime has not reported it stopped yet (it exited; the
// StopContainer event is on its way). Every path skips it meanwhile: the
// sampler, drift repair, direct writes and actions. Loop goroutine only.
func (p *Plugin) noteVanished(id, during string) {
	if p.sampler.vanished[id] {
		return
	}
	p.sampler.vanished[id] = true
	p.log.Info("container's cgroup vanished; skipped until the runtime reports it gone", "container", id, "during", during)
}
