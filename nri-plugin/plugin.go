package nriplugin

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"

	"github.com/strata-nri/strata/cgroup"
	strcpuset "github.com/strata-nri/strata/cpuset"
	"github.com/strata-nri/strata/internal/safetext"
	"github.com/strata-nri/strata/isolation"
	"k8s.io/utils/cpuset"
)

// Options configure a Plugin. Zero values pick production defaults.
type Options struct {
	// PluginName and PluginIdx register the plugin with the runtime.
	// Empty: as the NRI stub finds them — the runtime's environment for a
	// pre-installed plugin (/opt/nri/plugins/50-strata), else the binary's
	// name when it is "<idx>-<name>" — else "strata" and "50".
	PluginName string
	PluginIdx  string
	// SocketPath is the runtime's NRI socket (default
	// /var/run/nri/nri.sock).
	SocketPath string
	// Config is the pool configuration. When nil, the configuration the
	// runtime passes at Configure (from /etc/nri/conf.d) is used, or
	// isolation.DefaultConfig().
	Config *isolation.Config
	// SysfsRoot and ProcRoot are the roots of sysfs and procfs ("/sys",
	// "/proc"); Cgroups is the cgroup hierarchy (detected when nil).
	SysfsRoot string
	ProcRoot  string
	Cgroups   *cgroup.Hierarchy
	// Evictor carries out evictions (DryRunEvictor when nil).
	Evictor Evictor
	// BatchCapacity, when set, is handed every plan's batch capacity view
	// (a *CapacityPublisher publishes it on the Node); it must not block.
	BatchCapacity interface{ Observe(isolation.BatchCapacity) }
	// Logger receives structured logs (slog.Default() when nil).
	Logger *slog.Logger
	// ReconnectDelay is the pause before reconnecting after the runtime
	// went away (default 1 s).
	ReconnectDelay time.Duration
	// Now is the clock (time.Now when nil); tests substitute it.
	Now func() time.Time
	// NoSchedProbe keeps the eBPF scheduler probe off: the loop then has
	// no run-queue delay (see pressure.SchedProbe).
	NoSchedProbe bool
	// Controllers carry the pool-level dimensions (block IO, RDT,
	// network) out; see Controller.
	Controllers []Controller
}

// Plugin is Strata's NRI plugin: it admits containers into pools when the
// runtime creates them and keeps adjusting them on the feedback loop.
//
// Locking: mu guards the controller state and the container table. Event
// handlers take it briefly. Nothing that talks to the runtime holds it: the
// loop computes updates under mu, releases it, and hands them to the updater
// goroutine, which calls UpdateContainers. The runtime serialises NRI
// traffic, so an UpdateContainers call waiting behind an event handler that
// waits on a lock the caller holds would deadlock (containerd#13733).
type Plugin struct {
	opts    Options
	log     *slog.Logger
	cg      *cgroup.Hierarchy
	topo    *strcpuset.Topology
	metrics *Metrics

	mu    sync.Mutex
	cfg   *isolation.Config
	state *isolation.State
	ctrs  map[string]*member
	// kubeAnn: the watched annotations of pods as the API server has them
	// (PodAnnotations), by pod UID.
	kubeAnn map[string]map[string]string
	// synced is set once the runtime's Synchronize has been handled on the
	// current connection.
	synced bool

	stub atomic.Pointer[stubHolder]
	// routes is the routing table resolved for the connected runtime.
	routes atomic.Pointer[routing]
	// classes and dimCaps: the pools' classes and what the running
	// dimensions can carry, as refreshClasses last found them.
	classes atomic.Pointer[poolClasses]
	dimCaps atomic.Pointer[dimensionCaps]
	updates chan []isolation.ContainerChange
	// gen counts changes to ctrs, so the loop re-syncs its sampler only
	// when membership changed. Guarded by mu.
	gen uint64
	// sampler is touched only by the loop goroutine.
	sampler   *sampler
	lastPlan  atomic.Pointer[isolation.Plan]
	connected atomic.Bool
	// dims runs the pool-level dimensions' controllers, outside mu.
	dims *controllers
	// writeErrs keeps direct-write errors, to log each once.
	writeErrs writeErrors
	// slots numbers members for drift repair's stagger (guarded by mu);
	// driftRound counts drift passes (the loop goroutine's).
	slots, driftRound uint64
	// driftFiles keeps each started member's setting files open for drift
	// repair (loop goroutine only; see keptFiles). driftByPath makes drift
	// repair open every file by path instead, as it did before: the
	// reference figure of BenchmarkKernelDriftPass.
	driftFiles  map[string]*keptFiles
	driftByPath bool
	// pending counts the changes queued or in flight per container.
	pending pendingUpdates
}

type stubHolder struct{ s stub.Stub }

// The stub derives the events Strata subscribes to from the interfaces it
// implements; these say which it means to.
var (
	_ stub.ConfigureInterface       = (*Plugin)(nil)
	_ stub.SynchronizeInterface     = (*Plugin)(nil)
	_ stub.CreateContainerInterface = (*Plugin)(nil)
	_ stub.StartContainerInterface  = (*Plugin)(nil)
	_ stub.UpdateContainerInterface = (*Plugin)(nil)
	_ stub.StopContainerInterface   = (*Plugin)(nil)
	_ stub.RemoveContainerInterface = (*Plugin)(nil)
)

// member is what the plugin knows of one container besides the
// controller's state.
type member struct {
	id, name, pod, namespace string
	podUID                   string
	podIPs                   []string
	annotations              map[string]string // the pod's
	kubeAnn                  map[string]string // the API server's watched annotations; nil: none seen
	netns                    string            // the pod's network namespace path
	pool                     string
	cgroupsPath              string
	cg                       *cgroup.Cgroup // nil when the path could not be resolved
	// files reads cg's settings back through kept files; set only on
	// drift repair's own copies of members (see Plugin.keptFiles).
	files *cgroup.Files
	// As last sent to the runtime.
	cpus, mems cpuset.CPUSet
	settings   isolation.Settings
	exclusive  bool
	request    int64 // CPU request (millicores) it was admitted with
	// started: the runtime has started the container (StartContainer, or
	// running at Synchronize). Until then runc is still writing the
	// container's cgroup itself, so nobody else may: on v1 a cgroup with
	// cpu.idle set refuses runc's cpu.shares write and the start fails.
	started bool
	// slot staggers the member's slow drift checks over the periods.
	slot uint64
}

// New prepares a plugin: discovers the topology and cgroups and builds the
// controller state. It does not connect to the runtime; Run does.
func New(opts Options) (*Plugin, error) {
	if opts.SysfsRoot == "" {
		opts.SysfsRoot = "/sys"
	}
	if opts.ProcRoot == "" {
		opts.ProcRoot = "/proc"
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ReconnectDelay == 0 {
		opts.ReconnectDelay = time.Second
	}
	if opts.Evictor == nil {
		opts.Evictor = DryRunEvictor{Logger: opts.Logger}
	}
	// The identity as the stub derives it — the runtime's environment for
	// a pre-installed plugin, else the binary's name ("50-strata") — and
	// Strata's own ("50", "strata") when neither gives one.
	envIdx, envName := os.Getenv(api.PluginIdxEnvVar), os.Getenv(api.PluginNameEnvVar)
	if idx, name, err := api.ParsePluginName(filepath.Base(os.Args[0])); err == nil {
		envIdx, envName = cmp.Or(envIdx, idx), cmp.Or(envName, name)
	}
	opts.PluginIdx = cmp.Or(opts.PluginIdx, envIdx, "50")
	opts.PluginName = cmp.Or(opts.PluginName, envName, "strata")
	if err := api.CheckPluginIndex(opts.PluginIdx); err != nil {
		return nil, fmt.Errorf("strata: %w", err)
	}
	if err := api.CheckPluginName(opts.PluginName); err != nil {
		return nil, fmt.Errorf("strata: %w", err)
	}
	p := &Plugin{
		opts:    opts,
		log:     opts.Logger,
		ctrs:    map[string]*member{},
		updates: make(chan []isolation.ContainerChange, 256),
		metrics: NewMetrics(),
		dims:    newControllers(opts.Logger, opts.Controllers),
	}
	var err error
	if p.cg = opts.Cgroups; p.cg == nil {
		if p.cg, err = cgroup.Detect(cgroup.Options{ProcRoot: opts.ProcRoot}); err != nil {
			return nil, fmt.Errorf("strata: %w", err)
		}
	}
	// Until Configure says which runtime this is, assume the oldest.
	p.routes.Store(newRouting(capability{gen: genContainerd17, unified: p.cg.Mode() == cgroup.V2}))
	if p.topo, err = strcpuset.Discover(opts.SysfsRoot); err != nil {
		return nil, fmt.Errorf("strata: CPU topology: %w", err)
	}
	cfg := opts.Config
	if cfg == nil {
		cfg = isolation.DefaultConfig()
	}
	if err := p.reset(cfg); err != nil {
		return nil, err
	}
	p.sampler = newSampler(p.cg, opts.ProcRoot, cfg.Period.Duration)
	return p, nil
}

// reset builds a fresh controller state for cfg. Members are re-admitted by
// the next Synchronize.
func (p *Plugin) reset(cfg *isolation.Config) error {
	st, err := isolation.NewState(p.topo, cfg)
	if err != nil {
		return fmt.Errorf("strata: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cfg, p.state = cfg, st
	p.metrics.zeroPoolSeries(cfg)
	return nil
}

// config is the pool configuration in force.
func (p *Plugin) config() *isolation.Config {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cfg
}

// Run connects to the runtime and serves until ctx ends, reconnecting with
// a fresh stub whenever the runtime goes away (a containerd restart ends the
// stub), and runs the feedback loop and the updater meanwhile.
func (p *Plugin) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	p.dims.start(ctx, ControllerEnv{Logger: p.log, Cgroups: p.cg, SysfsRoot: p.opts.SysfsRoot, ProcRoot: p.opts.ProcRoot,
		Config: p.config}, p.metrics.Registry)
	p.refreshClasses()
	p.startSched()
	defer p.stopSched() // after the loop ended (deferred before wg.Wait)
	defer p.dims.stop() // after the goroutines ended
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); p.updater(ctx) }()
	go func() { defer wg.Done(); p.loop(ctx) }()
	go func() { defer wg.Done(); p.dims.run(ctx) }()
	defer wg.Wait()
	defer cancel() // runs before wg.Wait: a fatal error must end the goroutines too
	for ctx.Err() == nil {
		closed := make(chan struct{})
		var once sync.Once
		opts := []stub.Option{stub.WithOnClose(func() { once.Do(func() { close(closed) }) })}
		// A runtime that launches a pre-installed plugin passes its name
		// and index in the environment; the stub takes them from there and
		// refuses to have the index set twice.
		if os.Getenv(api.PluginNameEnvVar) == "" {
			opts = append(opts, stub.WithPluginName(p.opts.PluginName))
		}
		if os.Getenv(api.PluginIdxEnvVar) == "" {
			opts = append(opts, stub.WithPluginIdx(p.opts.PluginIdx))
		}
		if p.opts.SocketPath != "" {
			opts = append(opts, stub.WithSocketPath(p.opts.SocketPath))
		}
		s, err := stub.New(p, opts...)
		if err != nil {
			return fmt.Errorf("strata: create NRI stub: %w", err)
		}
		p.mu.Lock()
		p.synced = false
		p.mu.Unlock()
		// Stored before Start: Configure, called during Start, reads the
		// runtime's NRI version from it. The updater sends nothing until
		// connected is set.
		p.stub.Store(&stubHolder{s})
		if err := s.Start(ctx); err != nil {
			p.log.Warn("cannot connect to the runtime; retrying", "socket", p.socketPath(), "err", err, "retry", p.opts.ReconnectDelay)
			p.metrics.connects.WithLabelValues("failed").Inc()
			select {
			case <-ctx.Done():
			case <-time.After(p.opts.ReconnectDelay):
			}
			continue
		}
		p.connected.Store(true)
		p.metrics.connects.WithLabelValues("ok").Inc()
		p.log.Info("connected to the runtime", "socket", p.socketPath(), "runtimeNRI", s.RuntimeNRIVersion())
		select {
		case <-closed:
			if launchedByRuntime() {
				// A pre-installed plugin got its connection from the
				// runtime that started it; the runtime starts a new one
				// when it comes back. Staying would leave an orphan.
				p.log.Warn("runtime connection lost; exiting, the runtime relaunches pre-installed plugins")
				p.connected.Store(false)
				p.stub.Store(nil)
				return nil
			}
			p.log.Warn("runtime connection lost; reconnecting", "retry", p.opts.ReconnectDelay)
		case <-ctx.Done():
			s.Stop()
		}
		p.connected.Store(false)
		p.stub.Store(nil)
		select {
		case <-ctx.Done():
		case <-time.After(p.opts.ReconnectDelay):
		}
	}
	return nil
}

// launchedByRuntime reports whether the runtime started this process as a
// pre-installed plugin, handing it a connected socket.
func launchedByRuntime() bool { return os.Getenv(api.PluginSocketEnvVar) != "" }

func (p *Plugin) socketPath() string {
	if p.opts.SocketPath == "" {
		return "/var/run/nri/nri.sock"
	}
	return p.opts.SocketPath
}

// Configure is the runtime's first call. It passes the plugin's
// configuration (from /etc/nri/conf.d for a pre-installed plugin) and the
// runtime's identity; from the runtime's NRI version the plugin learns what
// it may carry through adjustments.
func (p *Plugin) Configure(_ context.Context, config, runtime, version string) (stub.EventMask, error) {
	defer p.timeHandler("Configure", time.Now())
	nriVersion := "unknown"
	if h := p.stub.Load(); h != nil {
		nriVersion = h.s.RuntimeNRIVersion()
	}
	c := capability{gen: detectGen(nriVersion, runtime, version), unified: p.cg.Mode() == cgroup.V2}
	rt := newRouting(p.dimensionCaps().apply(c))
	p.routes.Store(rt)
	p.log.Info("configured by the runtime", "runtime", runtime, "version", version, "runtimeNRI", nriVersion,
		"routes", rt.cap.String(), "cgroup", p.cg.Mode().String())
	for _, u := range rt.unapplied(fieldsAll) {
		p.log.Info("setting cannot be applied on this host", "setting", u)
	}
	if strings.TrimSpace(config) != "" && p.opts.Config == nil {
		cfg, err := isolation.ParseConfig([]byte(config))
		if err != nil {
			return 0, fmt.Errorf("strata: configuration from the runtime: %w", err)
		}
		if err := p.reset(cfg); err != nil {
			return 0, err
		}
	}
	return 0, nil // 0: subscribe to the events our handlers implement
}

func (p *Plugin) timeHandler(event string, start time.Time) {
	p.metrics.handler.WithLabelValues(event).Observe(time.Since(start).Seconds())
}

// Synchronize adopts every existing container. Containers that carry
// Strata's annotations get the pool they had (the plugin restarted);
// containers created while the plugin was away are admitted now and brought
// into line through the returned updates.
func (p *Plugin) Synchronize(_ context.Context, pods []*api.PodSandbox, ctrs []*api.Container) ([]*api.ContainerUpdate, error) {
	defer p.timeHandler("Synchronize", time.Now())
	podByID := make(map[string]*api.PodSandbox, len(pods))
	for _, pod := range pods {
		podByID[pod.GetId()] = pod
	}
	rt := p.routes.Load()
	var updates []*api.ContainerUpdate

	p.mu.Lock()
	defer p.mu.Unlock()
	// Rebuild from scratch: the runtime's list is the truth.
	st, err := isolation.NewState(p.topo, p.cfg)
	if err != nil {
		return nil, err
	}
	p.state = st
	p.ctrs = map[string]*member{}
	p.gen++
	// Restore recorded members first, so that the exclusive CPUs they hold
	// are taken before newcomers are admitted.
	var fresh []*api.Container
	running := map[string]bool{}
	for _, c := range ctrs {
		running[c.GetId()] = c.GetState() == api.ContainerState_CONTAINER_RUNNING
		if c.GetState() != api.ContainerState_CONTAINER_RUNNING && c.GetState() != api.ContainerState_CONTAINER_CREATED {
			continue
		}
		pod := podByID[c.GetPodSandboxId()]
		pool, excl, ok := recorded(c)
		if !ok {
			fresh = append(fresh, c)
			continue
		}
		req := request(pod, c)
		// Rebuild pools around the CPUs containers run on now, so a
		// restart moves nothing (koordinator#2334's stale state).
		if cur, err := strcpuset.ParseList(c.GetLinux().GetResources().GetCpu().GetCpus()); err == nil {
			req.CurrentCPUs = cur
		}
		adm, err := p.state.Restore(req, pool, excl)
		if err != nil {
			p.log.Warn("cannot restore container's recorded pool; re-admitting", "container", c.GetId(), "pool", safetext.Quote(pool), "err", err)
			fresh = append(fresh, c)
			continue
		}
		p.track(pod, c, adm)
	}
	adopted := 0
	for _, c := range fresh {
		pod := podByID[c.GetPodSandboxId()]
		adm, err := p.state.Admit(request(pod, c))
		if err != nil {
			// It runs already; it cannot be refused. Leave it alone.
			p.log.Warn("existing container not admitted; leaving it unmanaged", "container", c.GetId(), "pod", podName(pod), "err", err)
			continue
		}
		p.track(pod, c, adm)
		// It was created without Strata's adjustment: what only a direct
		// write reaches is written by the next period.
		p.state.Unapplied(c.GetId(), rt.direct())
		adopted++
	}
	// Admissions may have moved earlier members' CPUs; what each member
	// holds now is in its record. Bring every one of them into line.
	var cpus setStrings
	for _, m := range p.ctrs {
		ch := m.change(isolation.FieldsAll, "synchronize")
		if u := rt.update(&ch, &cpus); u != nil {
			updates = append(updates, u)
		}
	}
	// Running members exist for the dimensions now; created ones at
	// StartContainer.
	var started []Member
	for _, m := range p.ctrs {
		if running[m.id] {
			m.started = true
			started = append(started, m.info())
		}
	}
	p.dims.resync(started)
	p.synced = true
	p.log.Info("synchronized with the runtime", "containers", len(p.ctrs), "adopted", adopted, "updates", len(updates))
	return updates, nil
}

// track records an admitted container and applies the admission's side
// effects on other members' records. Caller holds mu.
func (p *Plugin) track(pod *api.PodSandbox, c *api.Container, adm isolation.Admission) {
	m := &member{
		id: c.GetId(), name: c.GetName(), pod: pod.GetName(), namespace: pod.GetNamespace(),
		podUID: pod.GetUid(), podIPs: pod.GetIps(), annotations: pod.GetAnnotations(),
		pool: adm.Pool, cgroupsPath: c.GetLinux().GetCgroupsPath(),
		cpus: adm.CPUs, mems: adm.Mems, settings: adm.Settings, exclusive: adm.Exclusive,
		kubeAnn: p.kubeAnn[pod.GetUid()], netns: podNetns(pod),
	}
	r := request(pod, c)
	m.request = r.CPURequest()
	p.slots++
	m.slot = p.slots
	p.applyChangesLocked(adm.Updates)
	if m.cgroupsPath != "" {
		if cg, err := p.cg.Open(m.cgroupsPath); err == nil {
			m.cg = cg
		} else {
			p.log.Warn("container cgroups path not understood; it will not be sampled", "container", m.id, "path", m.cgroupsPath, "err", err)
		}
	}
	p.ctrs[m.id] = m
	p.gen++
}

// applyChangesLocked records planned changes on the members they concern.
// Caller holds mu.
func (p *Plugin) applyChangesLocked(changes []isolation.ContainerChange) {
	for _, ch := range changes {
		m := p.ctrs[ch.ID]
		if m == nil {
			continue
		}
		if ch.Fields&isolation.FieldCPUs != 0 {
			m.cpus = ch.CPUs
		}
		if ch.Fields&isolation.FieldMems != 0 {
			m.mems = ch.Mems
		}
		m.settings = ch.Settings
	}
}

func podName(pod *api.PodSandbox) string {
	if pod.GetNamespace() == "" {
		return pod.GetName()
	}
	return pod.GetNamespace() + "/" + pod.GetName()
}

// CreateContainer admits a new container into its pool and returns its
// adjustment: cpuset, CPU and memory settings, the pool annotation. When
// the admission changed other containers' CPUs (exclusive cores carved
// out of a shared pool, a pool grown by RCF), their updates are queued for
// the updater (see enqueue).
func (p *Plugin) CreateContainer(_ context.Context, pod *api.PodSandbox, c *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	defer p.timeHandler("CreateContainer", time.Now())
	rt := p.routes.Load()
	p.mu.Lock()
	defer p.mu.Unlock()
	adm, err := p.state.Admit(request(pod, c))
	if err != nil {
		p.metrics.admissions.WithLabelValues("", "refused").Inc()
		p.log.Warn("container refused", "container", c.GetName(), "pod", podName(pod), "err", err)
		return nil, nil, fmt.Errorf("strata: container %s of pod %s: %w", safetext.Name(c.GetName()), safetext.Name(podName(pod)), err)
	}
	p.metrics.admissions.WithLabelValues(adm.Pool, "admitted").Inc()
	p.track(pod, c, adm)
	p.enqueue(adm.Updates)
	p.log.Info("container admitted", "container", c.GetName(), "id", c.GetId(), "pod", podName(pod), "pool", adm.Pool,
		"cpus", adm.CPUs.String(), "exclusive", adm.Exclusive, "others", len(adm.Updates))
	return rt.adjustment(adm, p.poolClasses()), nil, nil
}

// enqueue hands other containers' changes to the updater goroutine, which
// sends them unsolicited once the current request is done. Carrying them in
// the handler's reply instead would put building hundreds of updates (a
// pool that grew on a large node) on the runtime's request path, and
// containerd drops reply updates for containers that are themselves still
// being created. A full queue drops them: the loop's drift repair resends.
func (p *Plugin) enqueue(changes []isolation.ContainerChange) {
	if len(changes) == 0 {
		return
	}
	p.pending.add(changes)
	select {
	case p.updates <- changes:
	default:
		p.pending.done(changes)
		p.metrics.updates.WithLabelValues("dropped").Add(float64(len(changes)))
	}
}

// StartContainer writes what the runtime cannot carry at creation (the
// routing table's "direct at start" fields: cpu.idle on cgroup v1,
// oom_score_adj on containerd 1.7, the IO priority before containerd 2.2)
// and what the runtime accepted but dropped (the IO priority under a runc
// older than 1.2). The container's cgroup and processes exist now (runc's
// init waits to exec the program, which inherits what is set on it). A
// failed write is planned again by the next period.
func (p *Plugin) StartContainer(_ context.Context, pod *api.PodSandbox, c *api.Container) error {
	defer p.timeHandler("StartContainer", time.Now())
	p.mu.Lock()
	m := p.ctrs[c.GetId()]
	var snap member
	if m != nil {
		snap = *m // written outside the lock
	}
	p.mu.Unlock()
	if m == nil {
		return nil
	}
	p.mu.Lock()
	if m := p.ctrs[c.GetId()]; m != nil {
		m.started = true
	}
	p.mu.Unlock()
	snap.started = true
	// What the adjustment could not carry, and what the runtime took but
	// may have dropped (and did).
	rt := p.routes.Load()
	if failed, _ := p.write(&snap, rt.atStart()|p.dropped(&snap, rt.verified())); failed != 0 {
		p.mu.Lock()
		p.state.Unapplied(snap.id, failed)
		p.mu.Unlock()
	}
	p.dims.admitted(snap.info())
	return nil
}

// UpdateContainer is called when something else (the kubelet) updates a
// container's resources. Strata keeps its cpuset and pool settings: the
// reply re-asserts them over the incoming values.
func (p *Plugin) UpdateContainer(_ context.Context, pod *api.PodSandbox, c *api.Container, res *api.LinuxResources) ([]*api.ContainerUpdate, error) {
	defer p.timeHandler("UpdateContainer", time.Now())
	rt := p.routes.Load()
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.resizeLocked(pod, c, res)
	if m == nil {
		return nil, nil
	}
	p.memberUpdatedLocked(m, pod)
	ch := m.change(isolation.FieldCPUs|isolation.FieldMems|isolation.FieldCPUShares|isolation.FieldCPUQuota, "re-asserted over an update")
	if u := rt.update(&ch, nil); u != nil {
		return []*api.ContainerUpdate{u}, nil
	}
	return nil, nil
}

// StopContainer frees the container's exclusive CPUs and lets pools
// re-balance; the freed CPUs reach the other members through the updater.
func (p *Plugin) StopContainer(_ context.Context, pod *api.PodSandbox, c *api.Container) ([]*api.ContainerUpdate, error) {
	defer p.timeHandler("StopContainer", time.Now())
	p.mu.Lock()
	defer p.mu.Unlock()
	p.enqueue(p.forgetLocked(c.GetId()))
	return nil, nil
}

// RemoveContainer forgets a container that was removed without stopping
// (or after stopping).
func (p *Plugin) RemoveContainer(_ context.Context, pod *api.PodSandbox, c *api.Container) error {
	defer p.timeHandler("RemoveContainer", time.Now())
	p.mu.Lock()
	defer p.mu.Unlock()
	p.forgetLocked(c.GetId())
	return nil
}

// forgetLocked drops a container; the returned changes hand its exclusive
// CPUs to others. Caller holds mu.
func (p *Plugin) forgetLocked(id string) []isolation.ContainerChange {
	if _, ok := p.ctrs[id]; !ok {
		return nil
	}
	p.dims.removed(id)
	p.writeErrs.forget(id)
	return p.leaveLocked(id)
}

// leaveLocked takes a container out of the controller state and the
// container table only, for a re-admission (resize); forgetLocked also
// tells the dimensions. Caller holds mu.
func (p *Plugin) leaveLocked(id string) []isolation.ContainerChange {
	if _, ok := p.ctrs[id]; !ok {
		return nil
	}
	delete(p.ctrs, id)
	changes := p.state.Remove(id)
	p.applyChangesLocked(changes)
	p.gen++
	return changes
}

// info is what controllers learn of a member.
func (m *member) info() Member {
	cg := m.cg
	return Member{
		ID: m.id, Name: m.name, Pod: joinPod(m.namespace, m.pod), PodUID: m.podUID, Pool: m.pool,
		PodIPs: m.podIPs, Annotations: m.podAnnotations(), Netns: m.netns, CgroupsPath: m.cgroupsPath, Cgroup: cg,
		Pids: func() ([]int, error) {
			if cg == nil {
				return nil, fmt.Errorf("container %s: cgroups path %s not understood", safetext.Name(m.id), safetext.Quote(m.cgroupsPath))
			}
			return cg.Procs()
		},
	}
}

// unapplied tells the state that fields of changes did not reach their
// containers, so the next period plans them again.
func (p *Plugin) unapplied(changes []isolation.ContainerChange, fields isolation.Fields) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ch := range changes {
		p.state.Unapplied(ch.ID, ch.Fields&fields)
	}
}

// updater sends unsolicited updates to the runtime, one batch at a time,
// holding no lock.
func (p *Plugin) updater(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case first := <-p.updates:
			queued := p.drainUpdates(first) // see pendingUpdates
			p.send(ctx, p.current(queued))
			p.pending.done(queued)
		}
	}
}

// send sends changes to the runtime as one batch of unsolicited updates,
// holding no lock.
func (p *Plugin) send(ctx context.Context, changes []isolation.ContainerChange) {
	rt := p.routes.Load()
	batch := rt.updates(changes, "")
	if len(batch) == 0 {
		return
	}
	h := p.stub.Load()
	if h == nil || !p.connected.Load() {
		p.metrics.updates.WithLabelValues("disconnected").Add(float64(len(batch)))
		return // the next Synchronize reconciles everyone
	}
	start := time.Now()
	failed, err := h.s.UpdateContainers(batch)
	p.metrics.updateLatency.Observe(time.Since(start).Seconds())
	if p.log.Enabled(ctx, slog.LevelDebug) {
		sent := make([]string, 0, len(batch))
		for _, u := range batch {
			sent = append(sent, safetext.Name(u.GetContainerId())+" cpus "+u.GetLinux().GetResources().GetCpu().GetCpus())
		}
		p.log.Debug("container updates sent", "took", time.Since(start).Round(time.Millisecond), "updates", strings.Join(sent, ", "))
	}
	if err != nil {
		p.metrics.updates.WithLabelValues("error").Add(float64(len(batch)))
		p.log.Warn("updating containers failed; planned again next period", "count", len(batch), "err", err)
		p.unapplied(changes, rt.running[routeUpdate])
		return
	}
	p.metrics.updates.WithLabelValues("ok").Add(float64(len(batch) - len(failed)))
	for _, f := range failed {
		// IgnoreFailure was set: a container that vanished mid-update is
		// skipped and logged.
		p.metrics.updates.WithLabelValues("failed").Inc()
		p.log.Info("container update skipped (container gone?)", "container", f.GetContainerId())
	}
}
