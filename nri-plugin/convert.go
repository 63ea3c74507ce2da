package nriplugin

import (
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
