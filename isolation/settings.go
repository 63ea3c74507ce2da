package isolation

import "github.com/strata-nri/strata/cgroup"

// A member's settings follow from its request and its pool's profile
// (baseSettings); protection and the node switch then override parts of
// them for a while (downgradedSettings, suspendedSettings,
// ioProtectedSettings). Every
// profile → settings rule is in this file.

// baseSettings derives a member's settings from its request and its pool's
// profile.
func (s *State) baseSettings(p *poolState, r *ContainerRequest) Settings {
	prof := &p.cfg.Profile
	st := Settings{
		CPUShares:       r.CPUShares,
		CPUQuota:        r.CPUQuota,
		CPUPeriod:       r.CPUPeriod,
		CPUIdle:         prof.CPU.Idle,
		MemoryLimit:     r.MemoryLimit,
		MemoryHigh:      -1,
		MemorySoftLimit: -1,
		OOMScoreAdj:     r.OOMScoreAdj,
		IOPriority:      prof.IO.IOPriority,
	}
	if st.IOPriority == "" && prof.IO.Protect != nil && prof.IO.Protect.IOPriority != "" {
		// The protection switches the class, so the pool owns it: class
		// none (the kernel's default) while it is not engaged, which is
		// also what lifting it writes.
		st.IOPriority = IOPriorityNone
	}
	if st.CPUShares == 0 {
		st.CPUShares = cgroup.MilliCPUToShares(r.CPURequest())
	}
	if prof.CPU.Shares != 0 {
		st.CPUShares = prof.CPU.Shares
	}
	if st.CPUQuota <= 0 || prof.CPU.Quota == QuotaUnlimited {
		st.CPUQuota = -1
	}
	if st.CPUPeriod == 0 {
		st.CPUPeriod = cgroup.DefaultCPUPeriodUs
	}
	if st.MemoryLimit <= 0 {
		st.MemoryLimit = -1
	}
	if prof.OOMScoreAdj != nil {
		st.OOMScoreAdj = *prof.OOMScoreAdj
	}
	st.MemoryMin = memValue(prof.Memory.Min, r, 0)
	st.MemoryLow = memValue(prof.Memory.Low, r, 0)
	st.MemoryHigh = memValue(prof.Memory.High, r, -1)
	st.MemorySoftLimit = memValue(prof.Memory.SoftLimit, r, -1)
	return st
}

func memValue(m MemoryPolicy, r *ContainerRequest, none int64) int64 {
	kind, frac, _ := m.parse()
	switch kind {
	case memRequest:
		if r.MemoryRequest > 0 {
			return r.MemoryRequest
		}
	case memLimit, memPercent:
		if r.MemoryLimit > 0 {
			return int64(frac * float64(r.MemoryLimit))
		}
	}
	return none
}

// suspendedSettings: what a batch member gets while colocation is off —
// 1 % of a CPU under idle scheduling (NRI cannot freeze a container).
func suspendedSettings(s Settings) Settings {
	s.CPUShares, s.CPUIdle = 2, true
	s.CPUQuota, s.CPUPeriod = 1000, 100000
	return s
}

// downgradedSettings: what a member of a pool below one in cpuDowngrade
// gets — minimum CPU weight under idle scheduling.
func downgradedSettings(s Settings) Settings {
	s.CPUShares, s.CPUIdle = 2, true
	return s
}

// ioProtectedSettings: what a member of a pool whose IO protection is
// engaged gets — the protection's IO priority class (IOPlan.IOPriority).
func ioProtectedSettings(s Settings, io *IOPlan) Settings {
	if io.Throttled && io.IOPriority != "" {
		s.IOPriority = io.IOPriority
	}
	return s
}
