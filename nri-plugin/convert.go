package nriplugin

import (
	"strconv"

	"github.com/containerd/nri/pkg/api"
	"k8s.io/utils/cpuset"

	strcpuset "github.com/strata-nri/strata/cpuset"
	"github.com/strata-nri/strata/isolation"
)

// Annotations Strata writes on every container it adjusts. They make pool
// assignments recoverable after the plugin or containerd restarts: the
// runtime reports a container's annotations in Synchronize, and a container
// keeps its pool across restarts.
const (
	AnnotationAssignedPool  = "strata.io/assigned-pool"
	AnnotationExclusiveCPUs = "strata.io/exclusive-cpus"
)

// request turns what NRI tells about a new container into the pool
// controller's request. Pod annotations and labels drive classification;
// the container's OCI resources give its requests.
func request(pod *api.PodSandbox, ctr *api.Container) isolation.ContainerRequest {
	r := isolation.ContainerRequest{
		ID:          ctr.GetId(),
		Name:        ctr.GetName(),
		PodUID:      pod.GetUid(),
		PodName:     pod.GetName(),
		Namespace:   pod.GetNamespace(),
		Annotations: pod.GetAnnotations(),
		Labels:      pod.GetLabels(),
		CgroupsPath: ctr.GetLinux().GetCgroupsPath(),
		CPUQuota:    -1,
		MemoryLimit: -1,
	}
	res := ctr.GetLinux().GetResources()
	if cpu := res.GetCpu(); cpu != nil {
		if v := cpu.GetShares(); v != nil {
			r.CPUShares = v.GetValue()
		}
		if v := cpu.GetQuota(); v != nil && v.GetValue() > 0 {
			r.CPUQuota = v.GetValue()
		}
		if v := cpu.GetPeriod(); v != nil {
			r.CPUPeriod = v.GetValue()
		}
	}
	if mem := res.GetMemory(); mem != nil {
		if v := mem.GetLimit(); v != nil && v.GetValue() > 0 {
			r.MemoryLimit = v.GetValue()
		}
		if v := mem.GetReservation(); v != nil && v.GetValue() > 0 {
			r.MemoryRequest = v.GetValue()
		}
	}
	if v := ctr.GetLinux().GetOomScoreAdj(); v != nil {
		r.OOMScoreAdj = int(v.GetValue())
	}
	return r
}

// recorded reads back the pool and exclusive CPUs recorded on a container,
// from its annotations, or nothing for a container without them or with a
// malformed list.
func recorded(ctr *api.Container) (pool string, exclusive cpuset.CPUSet, ok bool) {
	pool, ok = ctr.GetAnnotations()[AnnotationAssignedPool]
	if !ok {
		return "", cpuset.New(), false
	}
	// Strata writes a well-formed list; anything else is not its record.
	// A record is trusted no further than re-admission (isolation's
	// State.Restore), so a well-formed forgery gains nothing either.
	exclusive, err := strcpuset.ParseList(ctr.GetAnnotations()[AnnotationExclusiveCPUs])
	if err != nil {
		return "", cpuset.New(), false
	}
	return pool, exclusive, true
}

// runtimeCaps says which fields the connected runtime carries through NRI
// at creation. Older runtimes silently drop what they do not know, so the
// plugin writes those directly instead.
type runtimeCaps struct {
	oomScoreAdj bool // NRI >= v0.7 (containerd 2.0)
	unified     bool // cgroup v2 unified map
}

// adjustment builds the CreateContainer adjustment for an admission.
func adjustment(adm isolation.Admission, caps runtimeCaps) *api.ContainerAdjustment {
	a := &api.ContainerAdjustment{}
	a.AddAnnotation(AnnotationAssignedPool, adm.Pool)
	if adm.Exclusive {
		a.AddAnnotation(AnnotationExclusiveCPUs, adm.CPUs.String())
	}
	if adm.CPUs.Size() > 0 {
		a.SetLinuxCPUSetCPUs(adm.CPUs.String())
	}
	if adm.Mems.Size() > 0 {
		a.SetLinuxCPUSetMems(adm.Mems.String())
	}
	s := adm.Settings
	if s.CPUShares > 0 {
		a.SetLinuxCPUShares(s.CPUShares)
	}
	if s.CPUPeriod > 0 {
		a.SetLinuxCPUPeriod(int64(s.CPUPeriod))
	}
	if s.CPUQuota != 0 {
		a.SetLinuxCPUQuota(s.CPUQuota)
	}
	if s.MemoryLimit > 0 {
		a.SetLinuxMemoryLimit(s.MemoryLimit)
	}
	if s.MemorySoftLimit > 0 {
		a.SetLinuxMemoryReservation(s.MemorySoftLimit)
	}
	if caps.unified {
		for k, v := range unifiedMemory(s) {
			a.AddLinuxUnified(k, v)
		}
		if s.CPUIdle {
			a.AddLinuxUnified("cpu.idle", "1")
		}
	}
	if caps.oomScoreAdj {
		v := s.OOMScoreAdj
		a.SetLinuxOomScoreAdj(&v)
	}
	return a
}

// unifiedMemory maps cgroup v2-only memory protection to the OCI unified
// map, which runc writes verbatim.
func unifiedMemory(s isolation.Settings) map[string]string {
	m := map[string]string{}
	if s.MemoryMin > 0 {
		m["memory.min"] = strconv.FormatInt(s.MemoryMin, 10)
	}
	if s.MemoryLow > 0 {
		m["memory.low"] = strconv.FormatInt(s.MemoryLow, 10)
	}
	if s.MemoryHigh > 0 {
		m["memory.high"] = strconv.FormatInt(s.MemoryHigh, 10)
	}
	return m
}

// update builds the NRI update for a planned change. Only what a running
// container's CRI update can carry goes here (cpuset, CPU shares/quota,
// memory limit, unified); the rest is written directly by the applier.
func update(ch isolation.ContainerChange, caps runtimeCaps) *api.ContainerUpdate {
	return updateWith(ch, caps, nil)
}

// setStrings memoizes CPUSet.String within one batch of updates: every
// member of a resized pool gets the same set, and formatting it (a sort)
// dominated the CreateContainer handler on large nodes. Changes of several
// pools interleave, so it keeps a few sets; Equals returns early on sets of
// different sizes, which different pools usually have.
type setStrings struct {
	sets []cpuset.CPUSet
	strs []string
}

func (m *setStrings) of(set cpuset.CPUSet) string {
	if m == nil {
		return set.String()
	}
	for i := range m.sets {
		if m.sets[i].Equals(set) {
			return m.strs[i]
		}
	}
	str := set.String()
	if len(m.sets) < 8 {
		m.sets, m.strs = append(m.sets, set), append(m.strs, str)
	}
	return str
}

func updateWith(ch isolation.ContainerChange, caps runtimeCaps, cpus *setStrings) *api.ContainerUpdate {
	u := &api.ContainerUpdate{}
	u.SetContainerId(ch.ID)
	// A container that exits between planning and applying must not fail
	// the whole batch.
	u.IgnoreFailure = true
	if ch.Fields&isolation.FieldCPUs != 0 && ch.CPUs.Size() > 0 {
		u.SetLinuxCPUSetCPUs(cpus.of(ch.CPUs))
	}
	if ch.Fields&isolation.FieldMems != 0 && ch.Mems.Size() > 0 {
		u.SetLinuxCPUSetMems(ch.Mems.String())
	}
	s := ch.Settings
	if ch.Fields&isolation.FieldCPUShares != 0 && s.CPUShares > 0 {
		u.SetLinuxCPUShares(s.CPUShares)
	}
	if ch.Fields&isolation.FieldCPUQuota != 0 {
		if s.CPUPeriod > 0 {
			u.SetLinuxCPUPeriod(int64(s.CPUPeriod))
		}
		u.SetLinuxCPUQuota(s.CPUQuota)
	}
	if ch.Fields&isolation.FieldMemoryLimit != 0 && s.MemoryLimit > 0 {
		u.SetLinuxMemoryLimit(s.MemoryLimit)
	}
	if caps.unified && ch.Fields&(isolation.FieldMemoryMin|isolation.FieldMemoryLow|isolation.FieldMemoryHigh) != 0 {
		for k, v := range unifiedMemory(s) {
			u.AddLinuxUnified(k, v)
		}
	}
	return u
}

// nriCarries reports whether an update for ch has anything for the
// runtime (an empty update is not sent).
func nriCarries(ch isolation.ContainerChange, caps runtimeCaps) bool {
	f := isolation.FieldCPUs | isolation.FieldMems | isolation.FieldCPUShares | isolation.FieldCPUQuota | isolation.FieldMemoryLimit
	if caps.unified {
		f |= isolation.FieldMemoryMin | isolation.FieldMemoryLow | isolation.FieldMemoryHigh
	}
	return ch.Fields&f != 0
}
