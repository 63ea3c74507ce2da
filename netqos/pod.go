package netqos

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// PodInterface names a pod's host-side veth: the interface whose egress
// is the pod's ingress, and whose ingress is the pod's egress.
type PodInterface struct {
	// Interface is the host-side veth of the pod.
	Interface string
	// Netns is the path of the namespace the veth is in; "" is the
	// caller's (the host's).
	Netns string
}

// Shaping constants, as the CNI bandwidth plugin picks them: a queue of
// about 25 ms at the rate, and a burst of 10 ms at the rate but at least a
// few full-size packets so TBF never stalls on a GSO segment.
const (
	podQueueLatencyUs = 25000
	podMinBurst       = 16 << 10
	podTBFMajor       = 1
	podFilterPriority = 0x5372
	ifbPrefix         = "nqifb"
)

func (l PodLimits) validate() error {
	for _, d := range []struct {
		name string
		r    Rate
	}{{"egress", l.Egress}, {"ingress", l.Ingress}} {
		if d.r != 0 && (d.r < MinRate || d.r > MaxRate) {
			return fmt.Errorf("%w: pod %s limit %s outside %s..%s", ErrInvalid, d.name, d.r, Rate(MinRate), Rate(MaxRate))
		}
	}
	return nil
}

// SetPodLimits shapes one pod's traffic to l, replacing whatever limits it
// had: the pod's ingress with a TBF qdisc at the root of its host-side
// veth, its egress with a TBF on an ifb device that the veth's ingress
// redirects to (u32 match-all + mirred), as the CNI bandwidth plugin does.
// A zero rate removes that direction's limit. Calling it again with new
// values changes the limits of the running pod; packets keep flowing.
func SetPodLimits(p PodInterface, l PodLimits) error {
	if err := l.validate(); err != nil {
		return err
	}
	s, err := openScope(p.Netns)
	if err != nil {
		return err
	}
	defer s.close()
	veth, err := s.link(p.Interface)
	if err != nil {
		return err
	}
	if l.Ingress != 0 {
		if err := s.nl.QdiscReplace(tbf(veth.Attrs().Index, l.Ingress)); err != nil {
			return fmt.Errorf("netqos: pod ingress limit %s on %s: %w", l.Ingress, p.Interface, tcErr(err, ErrNoTBF))
		}
	} else if err := removeTBF(s, veth); err != nil {
		return err
	}
	if l.Egress != 0 {
		return setPodEgress(s, veth, l.Egress)
	}
	return removePodEgress(s, veth)
}

// RemovePodLimits removes both of a pod's limits. An interface that no
// longer exists (the pod is gone, and its veth with it) is not an error.
func RemovePodLimits(p PodInterface) error {
	err := SetPodLimits(p, PodLimits{})
	if errors.Is(err, ErrNoInterface) {
		return nil
	}
	return err
}

func tcErr(err error, missing error) error {
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EOPNOTSUPP) {
		return fmt.Errorf("%w: %v", missing, err)
	}
	return err
}

func tbf(ifindex int, r Rate) *netlink.Tbf {
	rate := r.Bytes()
	burst := max(rate/100, podMinBurst)
	limit := rate*podQueueLatencyUs/1e6 + burst
	return &netlink.Tbf{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: ifindex, Handle: Handle(podTBFMajor, 0), Parent: netlink.HANDLE_ROOT},
		Rate:       rate,
		Limit:      uint32(min(limit, 1<<31)),
		Buffer:     netlink.Xmittime(rate, uint32(burst)),
	}
}

// removeTBF deletes the root qdisc when it is our TBF.
func removeTBF(s *scope, l netlink.Link) error {
	qs, err := s.nl.QdiscList(l)
	if err != nil {
		return fmt.Errorf("netqos: list qdiscs of %s: %w", l.Attrs().Name, err)
	}
	for _, q := range qs {
		a := q.Attrs()
		if q.Type() == "tbf" && a.Parent == netlink.HANDLE_ROOT && a.Handle == Handle(podTBFMajor, 0) {
			if err := s.nl.QdiscDel(q); err != nil && !errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("netqos: remove limit from %s: %w", l.Attrs().Name, err)
			}
		}
	}
	return nil
}

func ifbName(veth netlink.Link) string { return fmt.Sprintf("%s%d", ifbPrefix, veth.Attrs().Index) }

func setPodEgress(s *scope, veth netlink.Link, r Rate) error {
	name := ifbName(veth)
	ifb, err := s.nl.LinkByName(name)
	created := false
	if err != nil {
		if err := s.nl.LinkAdd(&netlink.Ifb{LinkAttrs: netlink.LinkAttrs{Name: name, TxQLen: 1000}}); err != nil {
			return fmt.Errorf("netqos: create %s for the egress of %s: %w", name, veth.Attrs().Name, tcErr(err, ErrNoIFB))
		}
		created = true
		if ifb, err = s.nl.LinkByName(name); err != nil {
			return fmt.Errorf("netqos: %s: %w", name, err)
		}
	}
	undo := func(err error) error {
		if created {
			_ = s.nl.LinkDel(ifb)
		}
		return err
	}
	if err := s.nl.LinkSetUp(ifb); err != nil {
		return undo(fmt.Errorf("netqos: set %s up: %w", name, err))
	}
	if err := s.nl.QdiscReplace(tbf(ifb.Attrs().Index, r)); err != nil {
		return undo(fmt.Errorf("netqos: pod egress limit %s on %s: %w", r, name, tcErr(err, ErrNoTBF)))
	}
	parent, err := ingressHook(s, veth)
	if err != nil {
		return undo(err)
	}
	f := &netlink.U32{
		FilterAttrs: netlink.FilterAttrs{LinkIndex: veth.Attrs().Index, Parent: parent, Priority: podFilterPriority, Protocol: unix.ETH_P_ALL},
		Actions: []netlink.Action{&netlink.MirredAction{
			ActionAttrs:  netlink.ActionAttrs{Action: netlink.TC_ACT_STOLEN},
			MirredAction: netlink.TCA_EGRESS_REDIR,
			Ifindex:      ifb.Attrs().Index,
		}},
	}
	if existing := podFilter(s, veth, parent); existing != nil {
		if !created {
			// Already redirecting to this ifb: the TBF change above is all.
			return nil
		}
		_ = s.nl.FilterDel(existing) // it pointed at an ifb that is gone
	}
	if err := s.nl.FilterAdd(f); err != nil {
		return undo(fmt.Errorf("netqos: redirect the ingress of %s to %s: %w", veth.Attrs().Name, name, tcErr(err, ErrNoIFB)))
	}
	return nil
}

// ingressHook returns the parent for ingress filters on l, adding a
// clsact qdisc unless an ingress or clsact qdisc is there already.
func ingressHook(s *scope, l netlink.Link) (uint32, error) {
	qs, err := s.nl.QdiscList(l)
	if err != nil {
		return 0, fmt.Errorf("netqos: list qdiscs of %s: %w", l.Attrs().Name, err)
	}
	for _, q := range qs {
		switch q.Type() {
		case "ingress":
			return netlink.MakeHandle(0xffff, 0), nil
		case "clsact":
			return netlink.HANDLE_MIN_INGRESS, nil
		}
	}
	if err := s.nl.QdiscAdd(clsactFor(l.Attrs().Index)); err != nil && !errors.Is(err, unix.EEXIST) {
		return 0, fmt.Errorf("netqos: add clsact to %s: %w", l.Attrs().Name, tcErr(err, ErrNoClsact))
	}
	return netlink.HANDLE_MIN_INGRESS, nil
}

func podFilter(s *scope, veth netlink.Link, parent uint32) netlink.Filter {
	fs, err := s.nl.FilterList(veth, parent)
	if err != nil {
		return nil
	}
	for _, f := range fs {
		if _, ok := f.(*netlink.U32); ok && f.Attrs().Priority == podFilterPriority {
			return f
		}
	}
	return nil
}

func removePodEgress(s *scope, veth netlink.Link) error {
	qs, err := s.nl.QdiscList(veth)
	if err != nil {
		return fmt.Errorf("netqos: list qdiscs of %s: %w", veth.Attrs().Name, err)
	}
	for _, q := range qs {
		var parent uint32
		switch q.Type() {
		case "ingress":
			parent = netlink.MakeHandle(0xffff, 0)
		case "clsact":
			parent = netlink.HANDLE_MIN_INGRESS
		default:
			continue
		}
		if f := podFilter(s, veth, parent); f != nil {
			if err := s.nl.FilterDel(f); err != nil && !errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("netqos: remove the egress redirect of %s: %w", veth.Attrs().Name, err)
			}
		}
		if q.Type() == "clsact" {
			removeClsactIfEmpty(s, veth.Attrs().Index)
		}
	}
	if ifb, err := s.nl.LinkByName(ifbName(veth)); err == nil {
		if err := s.nl.LinkDel(ifb); err != nil {
			return fmt.Errorf("netqos: remove %s: %w", ifb.Attrs().Name, err)
		}
	}
	return nil
}

// FindPodInterface finds the host-side veth of the pod with address ip:
// the interface the namespace's route to ip leaves by. CNIs that route
// each pod over its own veth (ptp, Calico, Cilium) have one; bridge CNIs
// route to the bridge, and the error (wrapping ErrNotSupported) says so.
func FindPodInterface(netnsPath string, ip netip.Addr) (PodInterface, error) {
	s, err := openScope(netnsPath)
	if err != nil {
		return PodInterface{}, err
	}
	defer s.close()
	routes, err := s.nl.RouteGet(net.IP(ip.AsSlice()))
	if err != nil || len(routes) == 0 {
		return PodInterface{}, fmt.Errorf("netqos: no route to pod address %v in %s: %v", ip, s, err)
	}
	l, err := s.nl.LinkByIndex(routes[0].LinkIndex)
	if err != nil {
		return PodInterface{}, fmt.Errorf("netqos: interface %d of the route to %v in %s: %w", routes[0].LinkIndex, ip, s, err)
	}
	if l.Type() != "veth" {
		return PodInterface{}, fmt.Errorf("%w: the route to pod address %v leaves by %s (%s), not the pod's own veth", ErrNotSupported, ip, l.Attrs().Name, l.Type())
	}
	return PodInterface{Interface: l.Attrs().Name, Netns: netnsPath}, nil
}

// InterfaceWithAddr names the interface that holds address ip in the
// network namespace at netnsPath: seen from inside a pod, its own end of
// its veth, where a Pacer limits what the pod sends.
func InterfaceWithAddr(netnsPath string, ip netip.Addr) (string, error) {
	s, err := openScope(netnsPath)
	if err != nil {
		return "", err
	}
	defer s.close()
	as, err := s.nl.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return "", fmt.Errorf("netqos: addresses in %s: %w", s, err)
	}
	for _, a := range as {
		if got, ok := netip.AddrFromSlice(a.IP); ok && got.Unmap() == ip.Unmap() {
			l, err := s.nl.LinkByIndex(a.LinkIndex)
			if err != nil {
				return "", fmt.Errorf("netqos: interface %d holding %v in %s: %w", a.LinkIndex, ip, s, err)
			}
			return l.Attrs().Name, nil
		}
	}
	return "", fmt.Errorf("%w: no interface holds %v in %s", ErrNoInterface, ip, s)
}
