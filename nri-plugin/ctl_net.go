package nriplugin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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

	mu      sync.Mutex        // guards the fields below for Status
	classes map[string]uint16 // pool -> class id
	applied map[string]isolation.NetPlan
	members map[string]netMember
	addrs   map[netip.Addr]int // references per classified address
	netns   string             // the uplink's namespace, where pods' veths are
	pods    map[string]*netPod // pod -> its limits, while it has members
	stats   []netqos.ClassStats
	last    map[uint16]netqos.ClassStats
	lastAt  time.Time
	bps     map[string]float64 // pool -> bits/s last period

	rate, ceil, sent, drops *prometheus.GaugeVec
}

type netMember struct {
	cgroupID uint64
	addrs    []netip.Addr
	pod      string
}

// netPod is a pod's bandwidth limits on its host-side veth.
type netPod struct {
	iface   netqos.PodInterface
	limits  netqos.PodLimits
	members int
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
	c.members, c.addrs, c.pods, c.netns = map[string]netMember{}, map[netip.Addr]int{}, map[string]*netPod{}, nc.Netns
	c.last, c.bps = map[uint16]netqos.ClassStats{}, map[string]float64{}
	c.stats = make([]netqos.ClassStats, 0, len(tc.Classes)+1)
	c.log.Info("uplink shaped", "interface", nc.Interface, "link", link.String(), "attach", tree.Attached().String(), "classes", len(tc.Classes))
	return nil
}

// Stop removes the tree and the classifier from the uplink.
func (c *NetController) Stop() {
	if c.tree != nil {
		if err := c.tree.Close(); err != nil {
			c.log.Warn("removing the uplink's tree", "err", err)
		}
	}
}

// localAddrs are the node's own addresses; a host-network pod reports them
// as its IPs, and classifying them would catch all the node's traffic.
func localAddrs() map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	as, _ := net.InterfaceAddrs()
	for _, a := range as {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out[p.Addr().Unmap()] = true
		}
	}
	return out
}

// ContainerAdmitted classifies the container's cgroup and its pod's IPs
// into its pool's class. A pool without a class leaves it to the default
// class.
func (c *NetController) ContainerAdmitted(m Member) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.members[m.ID]; ok {
		c.forget(m.ID)
	}
	var nm netMember
	var errs []error
	if err := c.podLimits(m, &nm); err != nil {
		errs = append(errs, err)
	}
	class, ok := c.classes[m.Pool]
	if !ok {
		c.members[m.ID] = nm
		return errors.Join(errs...)
	}
	if m.Cgroup != nil {
		id, err := m.Cgroup.ID()
		if err == nil {
			err = c.tree.ClassifyCgroup(id, class)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("container %s (%s): classify its cgroup %s: %w", m.Name, m.Pod, m.Cgroup.Path(), err))
		} else {
			nm.cgroupID = id
		}
	}
	local := localAddrs()
	for _, s := range m.PodIPs {
		a, err := netip.ParseAddr(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("container %s (%s): pod IP %q: %w", m.Name, m.Pod, s, err))
			continue
		}
		a = a.Unmap()
		if local[a] {
			continue
		}
		if err := c.tree.ClassifyAddr(a, class); err != nil {
			errs = append(errs, fmt.Errorf("container %s (%s): %w", m.Name, m.Pod, err))
			continue
		}
		c.addrs[a]++
		nm.addrs = append(nm.addrs, a)
	}
	c.members[m.ID] = nm
	return errors.Join(errs...)
}

// podLimits applies the pod's kubernetes.io/{egress,ingress}-bandwidth
// annotations on its host-side veth (found by the route to its first
// address that is not the node's), once per pod, and counts the member.
// A value that changed since the pod's last admitted container is applied
// live.
func (c *NetController) podLimits(m Member, nm *netMember) error {
	lim, err := netqos.PodLimitsFromAnnotations(m.Annotations)
	if err != nil {
		return fmt.Errorf("pod %s (container %s): %w", m.Pod, m.Name, err)
	}
	if p := c.pods[m.Pod]; p != nil {
		p.members++
		nm.pod = m.Pod
		if p.limits == lim {
			return nil
		}
		if err := netqos.SetPodLimits(p.iface, lim); err != nil {
			return fmt.Errorf("pod %s: bandwidth %+v on %s: %w", m.Pod, lim, p.iface.Interface, err)
		}
		p.limits = lim
		return nil
	}
	if lim == (netqos.PodLimits{}) {
		return nil
	}
	local := localAddrs()
	for _, s := range m.PodIPs {
		a, err := netip.ParseAddr(s)
		if err != nil || local[a.Unmap()] {
			continue
		}
		pi, err := netqos.FindPodInterface(c.netns, a.Unmap())
		if err != nil {
			return fmt.Errorf("pod %s: bandwidth annotations not applied: %w", m.Pod, err)
		}
		if err := netqos.SetPodLimits(pi, lim); err != nil {
			return fmt.Errorf("pod %s: bandwidth %+v on %s: %w", m.Pod, lim, pi.Interface, err)
		}
		c.pods[m.Pod] = &netPod{iface: pi, limits: lim, members: 1}
		nm.pod = m.Pod
		return nil
	}
	return fmt.Errorf("pod %s: bandwidth annotations not applied: no pod address of its own (host network?)", m.Pod)
}

// ContainerRemoved removes the container's entries; the pod's addresses
// go when its last container does.
func (c *NetController) ContainerRemoved(m Member) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.forget(m.ID)
}

func (c *NetController) forget(id string) error {
	nm, ok := c.members[id]
	if !ok {
		return nil
	}
	delete(c.members, id)
	var errs []error
	if p := c.pods[nm.pod]; p != nil {
		if p.members--; p.members <= 0 {
			delete(c.pods, nm.pod)
			errs = append(errs, netqos.RemovePodLimits(p.iface))
		}
	}
	if nm.cgroupID != 0 {
		errs = append(errs, c.tree.ForgetCgroup(nm.cgroupID))
	}
	for _, a := range nm.addrs {
		if c.addrs[a]--; c.addrs[a] <= 0 {
			delete(c.addrs, a)
			errs = append(errs, c.tree.ForgetAddr(a))
		}
	}
	return errors.Join(errs...)
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
	st := ControllerStatus{
		Summary: fmt.Sprintf("uplink %s, link %s, classifier via %s, %d members, %d pod addresses, %d pods with bandwidth limits",
			c.tree.Interface(), c.tree.Link(), c.tree.Attached(), len(c.members), len(c.addrs), len(c.pods)),
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
