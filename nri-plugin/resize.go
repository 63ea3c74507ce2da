package nriplugin

import (
	"github.com/containerd/nri/pkg/api"
	"k8s.io/utils/cpuset"

	"github.com/strata-nri/strata/isolation"
)

// resizeLocked handles an update that changes a member's CPU request (the
// kubelet's in-place pod resize): the member leaves its pool and is
// admitted again with the new request, so a latency-critical container
// resized to 2 whole CPUs gets 2 exclusive CPUs and a shared pool's size
// follows its members' requests. When the new request cannot be admitted
// (no exclusive CPUs left) the member is restored as it was and the
// refusal logged: the runtime still applies the kubelet's CPU shares and
// quota, Strata keeps the cpuset. Other members' changes go to the
// updater. It returns the member as it is now (nil: not a member). Caller
// holds mu.
func (p *Plugin) resizeLocked(pod *api.PodSandbox, c *api.Container, res *api.LinuxResources) *member {
	m := p.ctrs[c.GetId()]
	if m == nil || res.GetCpu() == nil {
		return m
	}
	old := request(pod, c)
	req := old
	if cpu := res.GetCpu(); cpu.GetShares() != nil {
		req.CPUShares = cpu.GetShares().GetValue()
		req.CPURequestMilli = 0
	}
	if v := res.GetCpu().GetQuota(); v != nil {
		req.CPUQuota = v.GetValue()
		if req.CPUQuota <= 0 {
			req.CPUQuota = -1
		}
	}
	if v := res.GetCpu().GetPeriod(); v != nil {
		req.CPUPeriod = v.GetValue()
	}
	if mem := res.GetMemory(); mem != nil && mem.GetLimit() != nil {
		req.MemoryLimit = mem.GetLimit().GetValue()
		if req.MemoryLimit <= 0 {
			req.MemoryLimit = -1
		}
	}
	if req.CPURequest() == m.request {
		return m
	}
	was := *m
	// Only the controller state sees the member leave and come back: the
	// container keeps running throughout, so it stays started (drift
	// repair and direct writes go on) and the dimensions are not told it
	// left.
	forgot := p.leaveLocked(m.id)
	adm, err := p.state.Admit(req)
	if err != nil {
		p.log.Warn("resized container cannot get its new request; it keeps its CPUs", "container", m.id, "pod", podName(pod),
			"pool", was.pool, "request", req.CPURequest(), "was", was.request, "err", err)
		excl := cpuset.New()
		if was.exclusive {
			excl = was.cpus
		}
		old.CurrentCPUs = was.cpus
		if adm, err = p.state.Restore(old, was.pool, excl); err != nil {
			p.log.Warn("resized container could not be restored; it is left unmanaged", "container", m.id, "err", err)
			p.dims.removed(m.id)
			p.writeErrs.forget(m.id)
			return nil
		}
		p.track(pod, c, adm)
		p.ctrs[m.id].request = was.request
	} else {
		p.track(pod, c, adm)
		p.ctrs[m.id].request = req.CPURequest()
		p.log.Info("container resized", "container", m.id, "pod", podName(pod), "pool", adm.Pool,
			"request", req.CPURequest(), "was", was.request, "cpus", adm.CPUs.String(), "exclusive", adm.Exclusive)
	}
	now := p.ctrs[m.id]
	now.started, now.slot = was.started, was.slot
	if now.cgroupsPath == was.cgroupsPath {
		now.cg = was.cg // the sampler keeps its baseline
	}
	if now.started && now.pool != was.pool {
		p.dims.admitted(now.info()) // moves it between the dimensions' pools
	}
	p.enqueue(p.settledLocked(append(forgot, adm.Updates...), m.id, "member resized"))
	return now
}

// settledLocked folds changes into one change per container, with what
// each holds now: a resize that ends where it began (restored) moves
// nobody, even for a moment, and a queued update never sends a value older
// than the record. skip (a resized member) gets its values in the reply
// instead; reason, when set, replaces the changes' own. Caller holds mu.
func (p *Plugin) settledLocked(changes []isolation.ContainerChange, skip, reason string) []isolation.ContainerChange {
	fields := map[string]isolation.Fields{}
	reasons := map[string]string{}
	var order []string
	for _, ch := range changes {
		if _, seen := fields[ch.ID]; !seen {
			order = append(order, ch.ID)
			reasons[ch.ID] = ch.Reason
		}
		fields[ch.ID] |= ch.Fields
	}
	var out []isolation.ContainerChange
	for _, id := range order {
		m := p.ctrs[id]
		if id == skip || m == nil {
			continue
		}
		why := reason
		if why == "" {
			why = reasons[id]
		}
		out = append(out, m.change(fields[id], why))
	}
	return out
}
