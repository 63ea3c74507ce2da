package nriplugin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/isolation"
	"github.com/strata-nri/strata/netqos"
)

// NetController carries each pool's network section (isolation.NetPlan)
// out through package netqos: an htb tree on the configured uplink with
// one class per pool that has a net profile and a default class for the
// rest, and the eBPF classifier's maps. An admitted container's cgroup id
// goes into the map (its host-network sockets are classified by it), and
// so do its pod's IPs (for pods in their own network namespace, whose
// packets reach the uplink without a socket); addresses local to the node
// are skipped, since a host-network pod reports the node's. Entries are
// removed when the container goes. Each period the classes' counters give
// every pool's traffic to the loop (NetObservation), and ApplyPools
// changes the classes whose rate or ceiling the plan moved.
//
// Without network.interface in the configuration, or on a kernel without
// htb or BPF, Start reports ErrNotSupported and the plugin runs without
// the dimension. Stop removes the tree and the classifier.
type NetController struct {
	now func() time.Time

	log  *slog.Logger
	tree *netqos.Tree

	mu        sync.Mutex        // guards the fields below for Status
	classes   map[string]uint16 // pool -> class id
	applied   map[string]isolation.NetPlan
	members   map[string]*netMember
	seq       uint64
	pods      map[string]*netPod    // by pod, while it has members
	addrOwner map[netip.Addr]string // the pod whose class an address entry holds
	netns     string                // the uplink's namespace: the node's addresses and pods' veths are there
	stats     []netqos.ClassStats
	last      map[uint16]netqos.ClassStats
	lastAt    time.Time
	bps       map[string]float64 // pool -> bits/s last period
	noFQ      error              // set once pacing found no sch_fq: egress limits use tbf

	rate, ceil, sent, drops *prometheus.GaugeVec
}

// netMember is what the controller knows of an admitted container.
type netMember struct {
	pod, name   string
	seq         uint64       // admission order
	class       uint16       // its pool's class; the default class if the pool has none
	cgroupID    uint64       // its own cgroup's id, 0 if unknown
	podCgroupID uint64       // its pod's cgroup's id (see podCgroup), 0 if unknown
	addrs       []netip.Addr // its pod's addresses that are not the node's
}

// netPod is what the controller holds for a pod while it has members: the
// classifier entries it put in and its bandwidth limits on its host-side
// veth.
type netPod struct {
	cgroups map[uint64]uint16 // cgroup id -> class
	addrs   map[netip.Addr]uint16
	limits  netqos.PodLimits
	iface   *netqos.PodInterface // where limits are applied; nil before the pod had any
	// host is the part of limits shaped on the host-side veth (tbf, and
	// an ifb for the egress); the egress is paced instead where pacer is.
	host  netqos.PodLimits
	pacer *netqos.Pacer // EDT pacing of the pod's egress, in its netns
	paced []netip.Addr  // the addresses pacer limits
}

// NewNetController returns the network dimension's controller.
func NewNetController() *NetController {
	pool := []string{"pool"}
	g := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "strata", Name: name, Help: help}, pool)
	}
	return &NetController{now: time.Now,
		rate:  g("net_pool_rate_bits_per_second", "Guaranteed rate of the pool's class on the uplink."),
		ceil:  g("net_pool_ceil_bits_per_second", "Ceiling of the pool's class on the uplink this period."),
		sent:  g("net_pool_sent_bits_per_second", "What the pool's class sent over the last period."),
		drops: g("net_pool_drops", "Packets the pool's class dropped since it was created."),
	}
}

// Name implements Controller.
func (c *NetController) Name() string { return "net" }

// Start builds the tree from the configuration's classes.
func (c *NetController) Start(_ context.Context, env ControllerEnv) error {
	cfg := env.Config()
	nc := cfg.Network
	if nc.Interface == "" {
		return fmt.Errorf("%w: no network.interface configured", ErrNotSupported)
	}
	link, err := cfg.NetworkLink()
	if err != nil {
		return err
	}
	plans, defRate, err := cfg.NetworkClasses()
	if err != nil {
		return err
	}
	tc := netqos.TreeConfig{Interface: nc.Interface, Netns: nc.Netns, Link: link, Default: isolation.NetDefaultClass}
	switch nc.Attach {
	case "tcx":
		tc.Attach = netqos.AttachTCX
	case "clsact":
		tc.Attach = netqos.AttachNetlink
	}
	tc.Classes = append(tc.Classes, netqos.ClassSpec{ID: isolation.NetDefaultClass, Rate: defRate, Ceil: link, Prio: netqos.MaxPrio})
	c.classes, c.applied = map[string]uint16{}, map[string]isolation.NetPlan{}
	names := make([]string, 0, len(plans))
	for pool := range plans {
		names = append(names, pool)
	}
	sort.Strings(names)
	for _, pool := range names {
		p := plans[pool]
		tc.Classes = append(tc.Classes, netqos.ClassSpec{ID: p.Class, Rate: p.Rate, Ceil: p.MaxCeil, Prio: uint32(p.Prio)})
		c.classes[pool] = p.Class
		c.applied[pool] = p
	}
	tree, err := netqos.NewTree(tc)
	if errors.Is(err, netqos.ErrNotSupported) {
		return fmt.Errorf("%w: %w", ErrNotSupported, err)
	}
	if err != nil {
		return err
	}
	c.log, c.tree = env.Logger, tree
	c.members, c.addrOwner, c.pods, c.netns = map[string]*netMember{}, map[netip.Addr]string{}, map[string]*netPod{}, nc.Netns
	c.last, c.bps = map[uint16]netqos.ClassStats{}, map[string]float64{}
	c.stats = make([]netqos.ClassStats, 0, len(tc.Classes)+1)
	c.log.Info("uplink shaped", "interface", nc.Interface, "link", link.String(), "attach", tree.Attached().String(), "classes", len(tc.Classes))
	return nil
}

// Stop removes the tree and the classifier from the uplink, and the
// pods' pacers.
func (c *NetController) Stop() {
	c.mu.Lock()
	for _, p := range c.pods {
		c.stopPacing(p)
	}
	c.mu.Unlock()
	if c.tree != nil {
		if err := c.tree.Close(); err != nil {
			c.log.Warn("removing the uplink's tree", "err", err)
		}
	}
}

// localAddrs are the node's own addresses (in the uplink's namespace); a
// host-network pod reports them as its IPs, and classifying them would
// catch all the node's traffic.
func (c *NetController) localAddrs() map[netip.Addr]bool {
	as, err := netqos.LocalAddrs(c.netns)
	if err != nil {
		c.log.Warn("node addresses unknown; no pod address is classified", "err", err)
	}
	return as
}

// podCgroup is the cgroup of m's pod: the parent of the container's
// cgroup, when that parent is named after the pod's UID as the kubelet
// names it ("pod<uid>" with the cgroupfs driver,
// "kubepods-<qos>-pod<uid, '-' as '_'>.slice" with systemd). runc puts a
// container's processes into the cgroup2 hierarchy at its cgroups path on
// hybrid hosts as on v2, so the pod's cgroup is an ancestor of every
// socket its containers create. nil when the layout is not the kubelet's.
func podCgroup(m Member) *cgroup.Cgroup {
	if m.Cgroup == nil || m.PodUID == "" {
		return nil
	}
	dir := path.Dir(m.Cgroup.Path())
	base := path.Base(dir)
	if dir == "/" || !(strings.Contains(base, "pod"+m.PodUID) || strings.Contains(base, "pod"+strings.ReplaceAll(m.PodUID, "-", "_"))) {
		return nil
	}
	pc, err := m.Cgroup.Hierarchy().Open(dir)
	if err != nil {
		return nil
	}
	return pc
}

// ContainerAdmitted counts the container into its pod and brings the
// pod's classifier entries and bandwidth limits in line (see reconcile).
func (c *NetController) ContainerAdmitted(m Member) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	if _, ok := c.members[m.ID]; ok {
		errs = append(errs, c.forget(m.ID))
	}
	c.seq++
	nm := &netMember{pod: m.Pod, name: m.Name, seq: c.seq}
	if m.Cgroup != nil {
		id, err := m.Cgroup.ID()
		if err != nil {
			errs = append(errs, fmt.Errorf("container %s (%s): cgroup id of %s: %w", m.Name, m.Pod, m.Cgroup.Path(), err))
		}
		nm.cgroupID = id
		if pc := podCgroup(m); pc != nil {
			if nm.podCgroupID, err = pc.ID(); err != nil {
				c.log.Debug("pod cgroup has no id; classifying the container's own", "pod", m.Pod, "cgroup", pc.Path(), "err", err)
			}
		}
	}
	errs = append(errs, c.setMember(nm, m))
	c.members[m.ID] = nm
	p := c.pods[m.Pod]
	if p == nil {
		p = &netPod{cgroups: map[uint64]uint16{}, addrs: map[netip.Addr]uint16{}}
		c.pods[m.Pod] = p
	}
	errs = append(errs, c.setLimits(p, m), c.reconcile(m.Pod))
	return errors.Join(errs...)
}

// ContainerUpdated implements MemberUpdater: a running member's pool, or
// its pod's annotations or IPs, changed. The pod's entries move to the
// new class and its limits to the new values in place: the veth's TBF is
// changed, not removed and added, so the pod is never unshaped meanwhile.
func (c *NetController) ContainerUpdated(old, m Member) error {
	c.mu.Lock()
	nm, ok := c.members[m.ID]
	if !ok || nm.pod != m.Pod {
		c.mu.Unlock()
		return c.ContainerAdmitted(m)
	}
	defer c.mu.Unlock()
	errs := []error{c.setMember(nm, m)}
	errs = append(errs, c.setLimits(c.pods[m.Pod], m), c.reconcile(m.Pod))
	if old.Pool != m.Pool {
		c.log.Info("member moved pools", "container", m.Name, "pod", m.Pod, "pool", m.Pool, "was", old.Pool)
	}
	return errors.Join(errs...)
}

// setMember records m's class and its pod's addresses (those that are not
// the node's) on nm.
func (c *NetController) setMember(nm *netMember, m Member) error {
	nm.class = isolation.NetDefaultClass
	if class, ok := c.classes[m.Pool]; ok {
		nm.class = class
	}
	nm.addrs = nm.addrs[:0]
	local := c.localAddrs()
	var errs []error
	for _, s := range m.PodIPs {
		a, err := netip.ParseAddr(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("container %s (%s): pod IP %q: %w", m.Name, m.Pod, s, err))
			continue
		}
		if a = a.Unmap(); local != nil && !local[a] {
			nm.addrs = append(nm.addrs, a)
		}
	}
	return errors.Join(errs...)
}

// setLimits applies the pod's kubernetes.io/{egress,ingress}-bandwidth
// annotations (as m carries them). The egress is paced by earliest
// departure time where the kernel has sch_fq (see paceEgress); otherwise,
// and the ingress always, they are shaped on the pod's host-side veth,
// found by the route to its first address that is not the node's. A
// malformed value leaves the pod's limits as they were.
func (c *NetController) setLimits(p *netPod, m Member) error {
	lim, err := netqos.PodLimitsFromAnnotations(m.Annotations)
	if err != nil {
		return fmt.Errorf("pod %s (container %s): %w", m.Pod, m.Name, err)
	}
	if lim == p.limits {
		return nil
	}
	host := lim
	if lim.Egress == 0 {
		c.stopPacing(p)
	} else if c.noFQ == nil {
		switch err := c.paceEgress(p, m, lim.Egress); {
		case err == nil:
			host.Egress = 0
		case errors.Is(err, netqos.ErrNoFQ):
			c.noFQ = err
			c.log.Info("no sch_fq for pacing: pod egress limits are shaped with tbf on an ifb", "pod", m.Pod, "err", err)
		case errors.Is(err, errNotPaceable):
			c.log.Debug("pod egress not paceable; shaped with tbf on an ifb", "pod", m.Pod, "err", err)
		default:
			c.log.Warn("pod egress not paced; shaped with tbf on an ifb", "pod", m.Pod, "rate", lim.Egress.String(), "err", err)
		}
	}
	if host != p.host {
		if p.iface == nil {
			pi, err := c.findPodInterface(m)
			if err != nil {
				return fmt.Errorf("pod %s: bandwidth annotations not applied: %w", m.Pod, err)
			}
			p.iface = &pi
		}
		if err := netqos.SetPodLimits(*p.iface, host); err != nil {
			return fmt.Errorf("pod %s: bandwidth %+v on %s: %w", m.Pod, host, p.iface.Interface, err)
		}
		p.host = host
	}
	if p.limits != (netqos.PodLimits{}) {
		c.log.Info("pod bandwidth changed", "pod", m.Pod, "egress", lim.Egress.String(), "ingress", lim.Ingress.String(),
			"was egress", p.limits.Egress.String(), "was ingress", p.limits.Ingress.String())
	}
	p.limits = lim
	return nil
}

// errNotPaceable: the pod has no network namespace or address of its
// own to pace in.
var errNotPaceable = errors.New("no network namespace and address of its own")

// paceEgress limits what the pod sends to rate by earliest departure time
// (netqos.Pacer): fq at the root of the pod's own end of its veth, inside
// its network namespace, and the pacing program keyed by its addresses.
// The pod's TCP sees the departure times (TCP small queues), so there is
// no ifb and no queue per pod on the host. The pacer is created with the
// pod's first limit and changed in place after. Caller holds mu.
func (c *NetController) paceEgress(p *netPod, m Member, rate netqos.Rate) error {
	var addrs []netip.Addr
	for _, nm := range c.members {
		if nm.pod == m.Pod {
			addrs = append(addrs, nm.addrs...)
		}
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	addrs = slices.Compact(addrs)
	if p.pacer == nil {
		if m.Netns == "" || len(addrs) == 0 {
			return errNotPaceable
		}
		ifname, err := netqos.InterfaceWithAddr(m.Netns, addrs[0])
		if err != nil {
			return fmt.Errorf("%w: %w", errNotPaceable, err)
		}
		if p.pacer, err = netqos.NewPacer(netqos.PacerConfig{Interface: ifname, Netns: m.Netns}); err != nil {
			return err
		}
		c.log.Info("pod egress paced by departure time", "pod", m.Pod, "interface", ifname, "netns", m.Netns, "rate", rate.String())
	}
	var errs []error
	for _, a := range p.paced {
		if !slices.Contains(addrs, a) {
			errs = append(errs, p.pacer.Forget(a))
		}
	}
	for _, a := range addrs {
		errs = append(errs, p.pacer.Limit(a, rate))
	}
	p.paced = addrs
	return errors.Join(errs...)
}

// stopPacing removes the pod's pacer (fq, program and map). Caller holds
// mu.
func (c *NetController) stopPacing(p *netPod) {
	if p.pacer == nil {
		return
	}
	if err := p.pacer.Close(); err != nil {
		c.log.Debug("removing a pod's pacer", "err", err)
	}
	p.pacer, p.paced = nil, nil
}

func (c *NetController) findPodInterface(m Member) (netqos.PodInterface, error) {
	local := c.localAddrs()
	for _, s := range m.PodIPs {
		a, err := netip.ParseAddr(s)
		if err != nil || local == nil || local[a.Unmap()] {
			continue
		}
		return netqos.FindPodInterface(c.netns, a.Unmap())
	}
	return netqos.PodInterface{}, errors.New("no pod address of its own (host network?)")
}

// reconcile brings the classifier's entries for a pod in line with its
// members. The pod's class is the class most of its containers' pools
// have (the earliest admitted's on a tie); it goes to the pod's cgroup,
// which covers every socket its containers create, the restarted
// container's included before it is admitted again, and to its addresses.
// A container whose class differs gets an entry for its own cgroup (the
// classifier tries a socket's own cgroup before its ancestors), and so
// does every container when the pod's cgroup is unknown. A pod without
// members loses its entries and its limits. Caller holds mu.
func (c *NetController) reconcile(pod string) error {
	p := c.pods[pod]
	if p == nil {
		return nil
	}
	var ms []*netMember
	for _, nm := range c.members {
		if nm.pod == pod {
			ms = append(ms, nm)
		}
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].seq < ms[j].seq })
	votes := map[uint16]int{}
	for _, nm := range ms {
		votes[nm.class]++
	}
	podClass := uint16(isolation.NetDefaultClass)
	if len(ms) > 0 {
		podClass = ms[0].class
	}
	for _, nm := range ms {
		if votes[nm.class] > votes[podClass] {
			podClass = nm.class
		}
	}
	wantCg, wantAddr := map[uint64]uint16{}, map[netip.Addr]uint16{}
	var podCg uint64
	for _, nm := range ms {
		if nm.podCgroupID != 0 {
			podCg = nm.podCgroupID
		}
	}
	inherited := uint16(isolation.NetDefaultClass) // what a container without an entry gets
	if podCg != 0 && podClass != isolation.NetDefaultClass {
		wantCg[podCg] = podClass
		inherited = podClass
	}
	for _, nm := range ms {
		if nm.cgroupID != 0 && nm.class != inherited {
			wantCg[nm.cgroupID] = nm.class
		}
		if podClass != isolation.NetDefaultClass {
			for _, a := range nm.addrs {
				wantAddr[a] = podClass
			}
		}
	}
	var errs []error
	for id, class := range p.cgroups {
		if _, ok := wantCg[id]; !ok {
			errs = append(errs, c.tree.ForgetCgroup(id))
			delete(p.cgroups, id)
		} else if wantCg[id] == class {
			delete(wantCg, id) // in place already
		}
	}
	for id, class := range wantCg {
		if err := c.tree.ClassifyCgroup(id, class); err != nil {
			errs = append(errs, fmt.Errorf("pod %s: classify cgroup id %d: %w", pod, id, err))
			continue
		}
		p.cgroups[id] = class
	}
	for a := range p.addrs {
		if _, ok := wantAddr[a]; !ok {
			delete(p.addrs, a)
			errs = append(errs, c.releaseAddr(pod, a))
		}
	}
	for a, class := range wantAddr {
		if p.addrs[a] == class && c.addrOwner[a] == pod {
			continue
		}
		if err := c.tree.ClassifyAddr(a, class); err != nil {
			errs = append(errs, fmt.Errorf("pod %s: %w", pod, err))
			continue
		}
		p.addrs[a], c.addrOwner[a] = class, pod
	}
	if len(ms) == 0 {
		if p.iface != nil {
			errs = append(errs, netqos.RemovePodLimits(*p.iface))
		}
		c.stopPacing(p)
		delete(c.pods, pod)
	}
	return errors.Join(errs...)
}

// releaseAddr drops pod's claim on address a: the entry goes, or passes to
// another pod that reports the same address. Caller holds mu.
func (c *NetController) releaseAddr(pod string, a netip.Addr) error {
	if c.addrOwner[a] != pod {
		return nil
	}
	delete(c.addrOwner, a)
	for _, other := range slices.Sorted(maps.Keys(c.pods)) {
		if class, ok := c.pods[other].addrs[a]; ok && other != pod {
			c.addrOwner[a] = other
			return c.tree.ClassifyAddr(a, class)
		}
	}
	return c.tree.ForgetAddr(a)
}

// ContainerRemoved removes the container's entries; the pod's go with its
// last container, and so do its limits.
func (c *NetController) ContainerRemoved(m Member) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.forget(m.ID)
}

// forget drops a member and reconciles its pod. Caller holds mu.
func (c *NetController) forget(id string) error {
	nm, ok := c.members[id]
	if !ok {
		return nil
	}
	delete(c.members, id)
	return c.reconcile(nm.pod)
}

// Observe reads the classes' counters and gives each pool what its class
// sent since the last period.
func (c *NetController) Observe(obs *isolation.Observations) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, err := c.tree.Stats(c.stats)
	if err != nil {
		return err
	}
	c.stats = st
	now := c.now()
	el := now.Sub(c.lastAt).Seconds()
	first := c.lastAt.IsZero()
	for pool, id := range c.classes {
		for _, s := range st {
			if s.ID != id {
				continue
			}
			prev, seen := c.last[id]
			c.last[id] = s
			c.drops.WithLabelValues(pool).Set(float64(s.Drops))
			if first || !seen || el <= 0 || s.Bytes < prev.Bytes {
				continue
			}
			bps := float64(s.Bytes-prev.Bytes) * 8 / el
			c.bps[pool] = bps
			c.sent.WithLabelValues(pool).Set(bps)
			po := obs.Pools[pool]
			po.Net = isolation.NetObservation{Measured: true, BitsPerSecond: bps}
			obs.Pools[pool] = po
		}
	}
	c.lastAt = now
	return nil
}

// ApplyPools changes the classes whose rate, ceiling or priority moved.
func (c *NetController) ApplyPools(plan *isolation.Plan) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for k := range plan.Pools {
		pp := &plan.Pools[k]
		np := pp.Net
		if !np.Enabled {
			continue
		}
		old, ok := c.applied[pp.Name]
		c.rate.WithLabelValues(pp.Name).Set(float64(np.Rate))
		c.ceil.WithLabelValues(pp.Name).Set(float64(np.Ceil))
		if ok && old.Rate == np.Rate && old.Ceil == np.Ceil && old.Prio == np.Prio {
			c.applied[pp.Name] = np // keep the reason and share for Status
			continue
		}
		if err := c.tree.SetClass(netqos.ClassSpec{ID: np.Class, Rate: np.Rate, Ceil: np.Ceil, Prio: uint32(np.Prio)}); err != nil {
			errs = append(errs, fmt.Errorf("pool %s: %w", pp.Name, err))
			continue
		}
		if old.Ceil != np.Ceil {
			c.log.Info("pool ceiling on the uplink", "pool", pp.Name, "ceil", np.Ceil.String(), "was", old.Ceil.String(), "reason", np.Reason)
		}
		c.classes[pp.Name] = np.Class
		c.applied[pp.Name] = np
	}
	return errors.Join(errs...)
}

// Status implements Controller: per pool its class, rate, ceiling,
// traffic and counters.
func (c *NetController) Status() ControllerStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	cgroups, limited, paced := 0, 0, 0
	for _, p := range c.pods {
		cgroups += len(p.cgroups)
		if p.limits != (netqos.PodLimits{}) {
			limited++
		}
		if p.pacer != nil {
			paced++
		}
	}
	pacing := fmt.Sprintf("%d paced by departure time", paced)
	if c.noFQ != nil {
		pacing = "egress by tbf: no sch_fq"
	}
	st := ControllerStatus{
		Summary: fmt.Sprintf("uplink %s, link %s, classifier via %s, %d members, %d cgroup entries, %d pod addresses, %d pods with bandwidth limits (%s)",
			c.tree.Interface(), c.tree.Link(), c.tree.Attached(), len(c.members), cgroups, len(c.addrOwner), limited, pacing),
		Pools: map[string]string{},
	}
	for pool, np := range c.applied {
		var b strings.Builder
		fmt.Fprintf(&b, "class %s rate %s ceil %s", netqos.HandleString(c.tree.Handle(np.Class)), np.Rate, np.Ceil)
		if np.Ceil < np.MaxCeil {
			fmt.Fprintf(&b, " of %s", np.MaxCeil)
		}
		if bps, ok := c.bps[pool]; ok {
			fmt.Fprintf(&b, ", sent %s/s", netqos.Rate(bps))
		}
		if s, ok := c.last[np.Class]; ok {
			fmt.Fprintf(&b, ", %d bytes, %d packets, %d drops, %d overlimits", s.Bytes, s.Packets, s.Drops, s.Overlimits)
		}
		if np.Reason != "" {
			b.WriteString("; " + np.Reason)
		}
		st.Pools[pool] = b.String()
	}
	return st
}

// Collectors implements Controller.
func (c *NetController) Collectors() []prometheus.Collector {
	return []prometheus.Collector{c.rate, c.ceil, c.sent, c.drops}
}

// podNetns is the path of the pod sandbox's own network namespace, ""
// when it has none (host network) or the runtime did not say.
func podNetns(pod *api.PodSandbox) string {
	for _, ns := range pod.GetLinux().GetNamespaces() {
		if ns.GetType() == "network" {
			return ns.GetPath()
		}
	}
	return ""
}
