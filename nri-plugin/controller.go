package nriplugin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"sync"

	"github.com/containerd/nri/pkg/api"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/isolation"
)

// ErrNotSupported is what a Controller's Start wraps when the host cannot
// carry its dimension (no resctrl, no block device, no clsact): the
// dimension is disabled with the reason, logged once and shown in status,
// and the rest of the plugin runs. Errors wrapping cgroup.ErrNotSupported
// count the same.
var ErrNotSupported = errors.New("not supported on this host")

// Controller carries one pool-level dimension (block IO, RDT, network) out
// on the node, after nri-plugins' resource controllers: isolation decides
// each pool's section of the dimension (a field of isolation.PoolPlan),
// the controller applies it through its primitive.
//
// The registry calls a controller's hooks one at a time, never two at
// once and never from inside an NRI event handler, holding none of the
// plugin's locks; Collectors' metrics are collected concurrently (the
// client_golang types are safe for that). A hook's error is logged and
// shown in status; it stops neither the other controllers nor the loop.
// Hooks run on the loop's path: keep them short.
type Controller interface {
	// Name is the dimension's name in logs, status and metrics ("blockio").
	Name() string
	// Start prepares the dimension. An error wrapping ErrNotSupported
	// disables it for the plugin's life with that reason; any other error
	// disables it as failed.
	Start(ctx context.Context, env ControllerEnv) error
	// Stop releases what Start set up (at plugin exit).
	Stop()
	// ContainerAdmitted: the container runs in m.Pool (after it started,
	// or at Synchronize for a running one), so its cgroup and processes
	// exist. Called once per admission; ContainerRemoved follows when it
	// stops. A change of a running member's pool, pod annotations or IPs
	// (an update, a resize, a restore after a reconnection) is delivered
	// as ContainerUpdated (MemberUpdater) or, for a pool change, as a
	// removal and an admission.
	ContainerAdmitted(m Member) error
	// ContainerRemoved: the container stopped or was removed.
	ContainerRemoved(m Member) error
	// Observe adds this period's per-pool measurements to
	// obs.Pools[pool] (its own field) before Decide. obs.Pools is not nil.
	Observe(obs *isolation.Observations) error
	// ApplyPools carries out each pool's section of the committed plan
	// (plan.Pools[k].<Dimension>). The plan is shared: read it only.
	ApplyPools(plan *isolation.Plan) error
	// Status describes what the dimension does now, for /status and
	// `strata status`.
	Status() ControllerStatus
	// Collectors are registered with the plugin's metrics once Start
	// succeeded.
	Collectors() []prometheus.Collector
}

// MemberUpdater is implemented by a Controller that follows a running
// member's changes in place: its pool (an in-place resize, a restored
// member whose recorded pool differs), its pod's annotations or IPs as the
// runtime reports them on an update. old is the member as the controller
// last learnt it. A Controller without it is told of a pool change by
// ContainerRemoved(old) and ContainerAdmitted(m), and of nothing else.
type MemberUpdater interface {
	ContainerUpdated(old, m Member) error
}

// ControllerEnv is what a controller gets at Start.
type ControllerEnv struct {
	// Logger carries the attribute dimension=<Name>.
	Logger *slog.Logger
	// Cgroups is the node's cgroup hierarchy; SysfsRoot and ProcRoot the
	// roots of sysfs and procfs.
	Cgroups   *cgroup.Hierarchy
	SysfsRoot string
	ProcRoot  string
	// Config returns the pool configuration in force (the runtime may
	// replace it at Configure).
	Config func() *isolation.Config
}

// Member is what a controller learns of a container.
type Member struct {
	ID, Name    string
	Pod         string // namespace/name
	PodUID      string
	Pool        string
	PodIPs      []string
	Annotations map[string]string // the pod's
	// Netns is the path of the pod's own network namespace; "" for a
	// host-network pod or when the runtime did not say.
	Netns       string
	CgroupsPath string
	Cgroup      *cgroup.Cgroup // nil when the path could not be resolved
	// Pids lists the container's processes now (from its cgroup).
	Pids func() ([]int, error)
}

// ControllerStatus is a controller's own account of itself.
type ControllerStatus struct {
	// Summary is one line, such as "3 pools limited on /dev/sda".
	Summary string `json:"summary,omitempty"`
	// Pools says per pool what is applied ("read 50 MiB/s").
	Pools map[string]string `json:"pools,omitempty"`
}

// DimensionStatus is one pool-level dimension in Status.
type DimensionStatus struct {
	Name string `json:"name"`
	// State: "running", "not supported" or "failed" (at Start).
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
	// LastError is the last hook error, until a hook succeeds again.
	LastError string `json:"lastError,omitempty"`
	ControllerStatus
}

// Dimension states.
const (
	dimRunning      = "running"
	dimNotSupported = "not supported"
	dimFailed       = "failed"
)

// controllers runs every registered Controller at each hook. Admission
// events come from NRI handlers, which must not wait: they are queued
// (never dropped) and delivered by the dispatcher goroutine, or by the
// loop before it observes.
type controllers struct {
	log *slog.Logger

	// call serialises every call into a controller and guards the fields
	// below it.
	call    sync.Mutex
	entries []*controllerEntry
	members map[string]Member // admitted, as the controllers know them

	qmu    sync.Mutex
	queue  []memberEvent
	signal chan struct{}
}

type controllerEntry struct {
	c       Controller
	state   string
	reason  string
	lastErr map[string]string // by hook
}

type memberEvent struct {
	admit  *Member
	remove string
	// resync, when set, replaces the whole membership (Synchronize).
	resync []Member
	isSync bool
}

func newControllers(log *slog.Logger, cs []Controller) *controllers {
	r := &controllers{log: log, members: map[string]Member{}, signal: make(chan struct{}, 1)}
	for _, c := range cs {
		r.entries = append(r.entries, &controllerEntry{c: c, state: dimFailed, reason: "not started", lastErr: map[string]string{}})
	}
	return r
}

// start starts every controller and registers the metrics of those that
// run.
func (r *controllers) start(ctx context.Context, env ControllerEnv, reg prometheus.Registerer) {
	r.call.Lock()
	defer r.call.Unlock()
	for _, e := range r.entries {
		name := e.c.Name()
		cenv := env
		cenv.Logger = env.Logger.With("dimension", name)
		err := guard(func() error { return e.c.Start(ctx, cenv) })
		switch {
		case err == nil:
			e.state, e.reason = dimRunning, ""
			for _, col := range e.c.Collectors() {
				if rerr := reg.Register(col); rerr != nil {
					r.log.Warn("dimension metrics not registered", "dimension", name, "err", rerr)
				}
			}
			r.log.Info("dimension started", "dimension", name)
		case errors.Is(err, ErrNotSupported) || errors.Is(err, cgroup.ErrNotSupported):
			e.state, e.reason = dimNotSupported, err.Error()
			r.log.Warn("dimension not supported on this host; disabled", "dimension", name, "reason", err)
		default:
			e.state, e.reason = dimFailed, err.Error()
			r.log.Error("dimension failed to start; disabled", "dimension", name, "err", err)
		}
	}
}

// stop stops the running controllers.
func (r *controllers) stop() {
	r.call.Lock()
	defer r.call.Unlock()
	for _, e := range r.running() {
		_ = guard(func() error { e.c.Stop(); return nil })
		e.state, e.reason = dimFailed, "stopped"
	}
}

// running lists the entries whose controller runs. Caller holds call.
func (r *controllers) running() []*controllerEntry {
	var out []*controllerEntry
	for _, e := range r.entries {
		if e.state == dimRunning {
			out = append(out, e)
		}
	}
	return out
}

// enqueue queues a membership event without blocking.
func (r *controllers) enqueue(ev memberEvent) {
	if len(r.entries) == 0 {
		return
	}
	r.qmu.Lock()
	r.queue = append(r.queue, ev)
	r.qmu.Unlock()
	select {
	case r.signal <- struct{}{}:
	default:
	}
}

func (r *controllers) admitted(m Member) { r.enqueue(memberEvent{admit: &m}) }
func (r *controllers) removed(id string) { r.enqueue(memberEvent{remove: id}) }
func (r *controllers) resync(ms []Member) {
	r.enqueue(memberEvent{resync: ms, isSync: true})
}

// memberUpdatedLocked tells the dimensions what an update of a running
// member brought: its pod's annotations and IPs as the runtime reports
// them now. The registry delivers only what changed (a resize's pool move
// is delivered by resizeLocked). Caller holds mu.
func (p *Plugin) memberUpdatedLocked(m *member, pod *api.PodSandbox) {
	m.annotations, m.podIPs = pod.GetAnnotations(), pod.GetIps()
	if m.started {
		p.dims.admitted(m.info())
	}
}

// run delivers queued events until ctx ends.
func (r *controllers) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.signal:
			r.flush()
		}
	}
}

// flush delivers every queued event now, in order.
func (r *controllers) flush() {
	r.call.Lock()
	defer r.call.Unlock()
	r.qmu.Lock()
	q := r.queue
	r.queue = nil
	r.qmu.Unlock()
	for _, ev := range q {
		switch {
		case ev.isSync:
			want := make(map[string]Member, len(ev.resync))
			for _, m := range ev.resync {
				want[m.ID] = m
			}
			for _, id := range sortedIDs(r.members) {
				if m, ok := want[id]; !ok {
					r.deliverRemove(id)
				} else if memberChanged(r.members[id], m) {
					r.deliverUpdate(r.members[id], m)
				}
			}
			for _, id := range sortedIDs(want) {
				if _, ok := r.members[id]; !ok {
					r.deliverAdmit(want[id])
				}
			}
		case ev.admit != nil:
			if old, ok := r.members[ev.admit.ID]; ok {
				if memberChanged(old, *ev.admit) {
					r.deliverUpdate(old, *ev.admit)
				}
				continue
			}
			r.deliverAdmit(*ev.admit)
		default:
			r.deliverRemove(ev.remove)
		}
	}
}

// Caller holds call.
func (r *controllers) deliverAdmit(m Member) {
	r.members[m.ID] = m
	for _, e := range r.running() {
		r.note(e, "admit", guard(func() error { return e.c.ContainerAdmitted(m) }))
	}
}

// memberChanged reports whether a running member changed in what
// controllers act on.
func memberChanged(old, m Member) bool {
	return old.Pool != m.Pool || !maps.Equal(old.Annotations, m.Annotations) || !slices.Equal(old.PodIPs, m.PodIPs)
}

// deliverUpdate tells every controller that a known member changed: in
// place where it implements MemberUpdater, as a removal and an admission
// where the pool moved and it does not. Caller holds call.
func (r *controllers) deliverUpdate(old, m Member) {
	r.members[m.ID] = m
	for _, e := range r.running() {
		if u, ok := e.c.(MemberUpdater); ok {
			r.note(e, "update", guard(func() error { return u.ContainerUpdated(old, m) }))
		} else if old.Pool != m.Pool {
			r.note(e, "remove", guard(func() error { return e.c.ContainerRemoved(old) }))
			r.note(e, "admit", guard(func() error { return e.c.ContainerAdmitted(m) }))
		}
	}
}

// Caller holds call.
func (r *controllers) deliverRemove(id string) {
	m, ok := r.members[id]
	if !ok {
		return
	}
	delete(r.members, id)
	for _, e := range r.running() {
		r.note(e, "remove", guard(func() error { return e.c.ContainerRemoved(m) }))
	}
}

// observe lets every controller add its measurements to obs.
func (r *controllers) observe(obs *isolation.Observations) {
	if len(r.entries) == 0 {
		return
	}
	r.flush()
	r.call.Lock()
	defer r.call.Unlock()
	if obs.Pools == nil {
		obs.Pools = map[string]isolation.PoolObservation{}
	}
	for _, e := range r.running() {
		r.note(e, "observe", guard(func() error { return e.c.Observe(obs) }))
	}
}

// applyPools hands the committed plan to every controller.
func (r *controllers) applyPools(plan *isolation.Plan) {
	if len(r.entries) == 0 {
		return
	}
	r.call.Lock()
	defer r.call.Unlock()
	for _, e := range r.running() {
		r.note(e, "apply", guard(func() error { return e.c.ApplyPools(plan) }))
	}
}

// note logs a hook's error when it differs from the last one of that hook
// (a dimension failing every period logs once, and once when it recovers).
// Caller holds call.
func (r *controllers) note(e *controllerEntry, hook string, err error) {
	prev := e.lastErr[hook]
	switch {
	case err == nil && prev != "":
		delete(e.lastErr, hook)
		r.log.Info("dimension recovered", "dimension", e.c.Name(), "hook", hook)
	case err != nil && err.Error() != prev:
		e.lastErr[hook] = err.Error()
		r.log.Warn("dimension hook failed", "dimension", e.c.Name(), "hook", hook, "err", err)
	}
}

// status reports every dimension.
func (r *controllers) status() []DimensionStatus {
	r.call.Lock()
	defer r.call.Unlock()
	var out []DimensionStatus
	for _, e := range r.entries {
		ds := DimensionStatus{Name: e.c.Name(), State: e.state, Reason: e.reason}
		for _, hook := range []string{"admit", "update", "remove", "observe", "apply"} {
			if s := e.lastErr[hook]; s != "" {
				ds.LastError = hook + ": " + s
			}
		}
		if e.state == dimRunning {
			var cs ControllerStatus
			if err := guard(func() error { cs = e.c.Status(); return nil }); err != nil {
				ds.LastError = "status: " + err.Error()
			}
			ds.ControllerStatus = cs
		}
		out = append(out, ds)
	}
	return out
}

// guard runs f, turning a panic into an error so one controller cannot
// take the plugin down.
func guard(f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v", v)
		}
	}()
	return f()
}

func sortedIDs(m map[string]Member) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
