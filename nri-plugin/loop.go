package nriplugin

import (
	"context"
	"errors"
	"strings"
	"time"

	"k8s.io/utils/cpuset"

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

// sampleMemoryInterval is how often the sampler reads each member's
// memory (memory.stat), at the least: memory sizes move more slowly than
// CPU rates, memory.stat is the costliest file of a pass for the kernel to
// produce (on v1 about half of the sampler's time at 100 containers), and
// memory protection reacts to the node's pressure and available memory,
// which the node sampler reads every period; the members' sizes only pick
// whose page cache to reclaim and whom to evict. CPU, throttling and PSI
// are read every period.
const sampleMemoryInterval = 2 * time.Second

// sampleMemoryEvery is the number of periods between two reads of a
// member's memory: sampleMemoryInterval in periods, at least 1.
func sampleMemoryEvery(period time.Duration) int {
	return int(periodsIn(sampleMemoryInterval, period))
}

// periodsIn is interval in loop periods, rounded up, at least 1 (a period
// of 0 counts as the default 1 s).
func periodsIn(interval, period time.Duration) uint64 {
	if period <= 0 {
		period = time.Second
	}
	return max(1, uint64((interval+period-1)/period))
}

func newSampler(h *cgroup.Hierarchy, procRoot string, period time.Duration) *sampler {
	s := &sampler{
		cgroups:  pressure.NewSampler(h, pressure.SamplerOptions{PSI: true, MemoryEvery: sampleMemoryEvery(period)}),
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
	defer p.closeKeptFiles(true)
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

// driftProcessFactor: drift repair reads a member's process attributes
// (see setting.process) on every driftProcessFactor-th read of its slow
// fields: every 10 s at periods up to 2 s, every 5 periods at longer ones.
const driftProcessFactor = 5

// driftSlowEvery is the number of periods between two reads of a member's
// slow fields: driftSlowInterval in periods, at least 1.
func driftSlowEvery(period time.Duration) uint64 {
	return periodsIn(driftSlowInterval, period)
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
// periods of 1 s and more); the process attributes of a member every
// driftProcessFactor × slowEvery periods (10 s at periods up to 2 s), put
// back within that and a period. On cgroup v1 a period reads about 3 files per
// member at a 200 ms period, 6 at 1 s, instead of 9 (BenchmarkDriftCheck).
//
// Each member's files stay open from one pass to the next (keptFiles): a
// pass is then one pread per file, where opening, reading and closing each
// file by path had cost about four fifths of the plugin's loop time at 100
// containers (BenchmarkKernelDriftPass).
func (p *Plugin) drift(members []member, rt *routing, skip map[string]isolation.Fields, slowEvery uint64) []repair {
	p.driftRound++
	var out []repair
	for i := range members {
		m := &members[i]
		m.files = p.keptFiles(m)
		if p.pending.has(m.id) {
			continue // its update has not landed yet (see pendingUpdates)
		}
		slow := (p.driftRound+m.slot)%slowEvery == 0
		process := (p.driftRound+m.slot)%(slowEvery*driftProcessFactor) == 0
		f, gone := p.drifted(m, rt, slow, process)
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
	p.closeKeptFiles(false)
	return out
}

// keptFiles is a member's open setting files and the drift pass that last
// used them.
type keptFiles struct {
	files *cgroup.Files
	round uint64
}

// keptFiles returns m's kept setting files for this drift pass, opening
// a set for a new member (or one whose cgroup changed); nil under
// driftByPath, so the reads go by path. Loop goroutine only.
func (p *Plugin) keptFiles(m *member) *cgroup.Files {
	if p.driftByPath || m.cg == nil {
		return nil
	}
	k := p.driftFiles[m.id]
	if k == nil || k.files.Cgroup() != m.cg {
		if k != nil {
			_ = k.files.Close()
		}
		if p.driftFiles == nil {
			p.driftFiles = map[string]*keptFiles{}
		}
		k = &keptFiles{files: m.cg.Files()}
		p.driftFiles[m.id] = k
	}
	k.round = p.driftRound
	return k.files
}

// closeKeptFiles closes the kept files of members this drift pass did not
// see (removed, or no longer started), or all of them.
func (p *Plugin) closeKeptFiles(all bool) {
	for id, k := range p.driftFiles {
		if all || k.round != p.driftRound {
			_ = k.files.Close()
			delete(p.driftFiles, id)
		}
	}
}

// settingsReader reads a member's settings back: its kept files during a
// drift pass, else its cgroup by path (*cgroup.Files and *cgroup.Cgroup).
type settingsReader interface {
	CPUSetCPUs() (cpuset.CPUSet, error)
	CPUSetMems() (cpuset.CPUSet, error)
	CPUShares() (uint64, error)
	CPUQuota() (quotaUs int64, periodUs uint64, err error)
	CPUIdle() (bool, error)
	MemoryMin() (int64, error)
	MemoryLow() (int64, error)
	MemoryHigh() (int64, error)
	MemorySoftLimit() (int64, error)
	Procs() ([]int, error)
}

var (
	_ settingsReader = (*cgroup.Files)(nil)
	_ settingsReader = (*cgroup.Cgroup)(nil)
)

// readBack is where m's settings are read back from.
func (m *member) readBack() settingsReader {
	if m.files != nil {
		return m.files
	}
	return m.cg
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
