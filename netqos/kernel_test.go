package netqos

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"

	"github.com/strata-nri/strata/internal/testutil"
	"github.com/strata-nri/strata/netqos/netqostest"
)

// Measured tests: run them under `flock /tmp/strata-measure.lock`.
const (
	warmup    = time.Second
	window    = 3 * time.Second
	tolerance = 0.15
)

// pair is a sender namespace and a receiver namespace joined by a veth.
type pair struct {
	snd, rcv     *testNetns
	sndIf, rcvIf string
	sndIP, rcvIP string
}

func newPair(t testing.TB) *pair {
	p := &pair{snd: newTestNetns(t, "snd"), rcv: newTestNetns(t, "rcv"), sndIP: "10.77.0.1", rcvIP: "10.77.0.2"}
	p.sndIf, p.rcvIf = connect(t, p.snd, p.sndIP, p.rcv, p.rcvIP)
	return p
}

var tcxFeature = func(err error) testutil.Feature {
	return testutil.Feature{
		Name:   "TCX",
		Probe:  func() error { return err },
		Absent: func() string { return testutil.KernelOlderThan(6, 6, "TCX") },
	}
}

// newTestTree builds a tree and closes it when the test ends, then checks
// that nothing of it is left on the interface.
func newTestTree(t testing.TB, n *testNetns, cfg TreeConfig) *Tree {
	t.Helper()
	testutil.RequireFeature(t, bpfClassifier)
	cfg.Netns = n.Path
	tr, err := NewTree(cfg)
	if cfg.Attach == AttachTCX && errors.Is(err, ErrNotSupported) {
		testutil.RequireFeature(t, tcxFeature(err))
	}
	if err != nil {
		t.Fatalf("NewTree: %v", err)
	}
	t.Cleanup(func() {
		if err := tr.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		assertClean(t, n, cfg.Interface)
	})
	return tr
}

// assertClean checks that an interface carries no htb, no clsact and no
// netqos program.
func assertClean(t testing.TB, n *testNetns, ifname string) {
	t.Helper()
	l, err := n.NL.LinkByName(ifname)
	if err != nil {
		return // the interface is gone with its namespace
	}
	qs, _ := n.NL.QdiscList(l)
	for _, q := range qs {
		if q.Type() == "htb" || q.Type() == "clsact" {
			t.Errorf("cleanup: %s qdisc %s left on %s", q.Type(), HandleString(q.Attrs().Handle), ifname)
		}
	}
	if c := countTCX(t, n, l.Attrs().Index); c != 0 {
		t.Errorf("cleanup: %d netqos TCX programs left on %s", c, ifname)
	}
}

// countTCX counts netqos classifiers attached with TCX to ifindex.
func countTCX(t testing.TB, n *testNetns, ifindex int) int {
	count := 0
	n.Do(t, func() {
		res, err := link.QueryPrograms(link.QueryOptions{Target: ifindex, Attach: ebpf.AttachTCXEgress})
		if err != nil {
			return
		}
		for _, p := range res.Programs {
			if prog, err := ebpf.NewProgramFromID(p.ID); err == nil {
				if info, err := prog.Info(); err == nil && info.Name == ProgramName {
					count++
				}
				prog.Close()
			}
		}
	})
	return count
}

// countFilters counts netqos cls_bpf filters on ifname's egress hook.
func countFilters(t testing.TB, n *testNetns, ifname string) int {
	l, err := n.NL.LinkByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := n.NL.FilterList(l, netlink.HANDLE_MIN_EGRESS)
	if err != nil {
		return 0
	}
	c := 0
	for _, f := range fs {
		if bf, ok := f.(*netlink.BpfFilter); ok && bf.Name == ProgramName {
			c++
		}
	}
	return c
}

func classStats(t testing.TB, tr *Tree, id uint16) ClassStats {
	t.Helper()
	st, err := tr.Stats(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.ID == id {
			return s
		}
	}
	t.Fatalf("no statistics for class %d in %+v", id, st)
	return ClassStats{}
}

var attachModes = []AttachMode{AttachTCX, AttachNetlink}

// scaler measures what one unshaped flow from n (source src) carries to
// s and returns the function that scales a test's rates so that need
// (what its flows carry together) fits within a quarter of it: the identity
// on a real machine, smaller in an emulated guest (netqostest.Scale).
func scaler(t testing.TB, n *testNetns, s *netqostest.Sink, src string, need Rate) func(Rate) Rate {
	t.Helper()
	f := netqostest.Scale(t, netqostest.Capacity(t, n, s, src), float64(need))
	return func(r Rate) Rate { return Rate(float64(r) * f) }
}

// A 10 Mbit/s class, fed by a sender classified by its source address,
// delivers 10 Mbit/s; the class's own counters agree.
func TestKernelTreeClassRate(t *testing.T) {
	for _, mode := range attachModes {
		t.Run(mode.String(), func(t *testing.T) {
			p := newPair(t)
			s := newSink(t, p.rcv, p.rcvIP)
			sc := scaler(t, p.snd, s, p.sndIP, 10*Mbit)
			tr := newTestTree(t, p.snd, TreeConfig{
				Interface: p.sndIf, Link: sc(100 * Mbit), Default: 20, Attach: mode,
				Classes: []ClassSpec{{ID: 10, Rate: sc(10 * Mbit)}, {ID: 20, Rate: sc(50 * Mbit), Ceil: sc(90 * Mbit)}},
			})
			if tr.Attached() != mode {
				t.Fatalf("attached with %s, asked for %s", tr.Attached(), mode)
			}
			if err := tr.ClassifyAddr(netip.MustParseAddr(p.sndIP), 10); err != nil {
				t.Fatal(err)
			}
			def0 := classStats(t, tr, 20)
			sendFrom(t, p.snd, s.Addr)
			time.Sleep(warmup)
			before := classStats(t, tr, 10)
			t0 := time.Now()
			got := rates(s, window, p.sndIP)[0]
			after := classStats(t, tr, 10)
			within(t, "10 Mbit/s class", got, sc(10*Mbit), tolerance)
			// The class counts frames (headers included): a little above goodput.
			wire := Rate(float64(after.Bytes-before.Bytes) * 8 / time.Since(t0).Seconds())
			within(t, "class 10 byte counter", wire, sc(10*Mbit), tolerance)
			if after.Packets <= before.Packets || after.Overlimits <= before.Overlimits {
				t.Errorf("class 10 counters did not advance while saturated: before %+v after %+v", before, after)
			}
			if def := classStats(t, tr, 20); def.Bytes-def0.Bytes > 1<<20 {
				t.Errorf("default class carried %d bytes; the classified flow leaked into it", def.Bytes-def0.Bytes)
			}
		})
	}
}

// node is a namespace standing in for a node: an uplink to a receiver
// namespace, and a pod namespace behind a veth, routed through the node.
type node struct {
	node, pod, rcv *testNetns
	uplink         string // in node
	podHostIf      string // the pod's host-side veth, in node
	podIf          string // in pod
	nodeIP, rcvIP  string
	podIP, podGW   string
}

func newNode(t testing.TB) *node {
	n := &node{
		node: newTestNetns(t, "node"), pod: newTestNetns(t, "pod"), rcv: newTestNetns(t, "rcv"),
		nodeIP: "10.78.0.1", rcvIP: "10.78.0.2", podIP: "10.78.1.2", podGW: "10.78.1.1",
	}
	n.uplink, _ = connect(t, n.node, n.nodeIP, n.rcv, n.rcvIP)
	n.podHostIf, n.podIf = connect(t, n.node, n.podGW, n.pod, n.podIP)
	n.node.Sysctl(t, "net.ipv4.ip_forward", "1")
	n.pod.Route(t, "10.78.0.0/24", n.podGW)
	n.rcv.Route(t, "10.78.1.0/24", n.nodeIP)
	return n
}

// Two senders on one uplink, one a process in a test cgroup on the node
// (classified by cgroup id), one a pod in its own namespace (classified by
// source address, its socket is gone once forwarded), each get their own
// class's rate.
func TestKernelTreeCgroupAndAddressSenders(t *testing.T) {
	n := newNode(t)
	h, cg := testutil.NewCgroup(t)
	if h.UnifiedRoot() == "" {
		t.Skip("no cgroup2 mount: sockets carry no cgroup id to classify by")
	}
	id, err := cg.ID()
	if err != nil {
		t.Fatal(err)
	}
	s := newSink(t, n.rcv, n.rcvIP)
	sc := scaler(t, n.pod, s, n.podIP, 10*Mbit)
	tr := newTestTree(t, n.node, TreeConfig{
		Interface: n.uplink, Link: sc(100 * Mbit), Default: 30,
		Classes: []ClassSpec{
			{ID: 10, Rate: sc(6 * Mbit), Prio: 0},
			{ID: 20, Rate: sc(3 * Mbit), Prio: 1},
			{ID: 30, Rate: sc(1 * Mbit), Ceil: sc(1 * Mbit), Prio: 2},
		},
	})
	if err := tr.ClassifyCgroup(id, 10); err != nil {
		t.Fatal(err)
	}
	if err := tr.ClassifyAddr(netip.MustParseAddr(n.podIP), 20); err != nil {
		t.Fatal(err)
	}
	sendFromCgroup(t, cg, n.node, s.Addr)
	sendFrom(t, n.pod, s.Addr)
	time.Sleep(warmup)
	got := rates(s, window, n.nodeIP, n.podIP)
	within(t, "cgroup-classified sender (6 Mbit/s class)", got[0], sc(6*Mbit), tolerance)
	within(t, "address-classified pod (3 Mbit/s class)", got[1], sc(3*Mbit), tolerance)
}

// Lowering the batch class's ceiling at run time takes effect in the next
// measurement window; the online class's rate does not move.
func TestKernelTreeLowerCeilingLive(t *testing.T) {
	n := newNode(t)
	const online, batch = 10, 20
	s := newSink(t, n.rcv, n.rcvIP)
	sc := scaler(t, n.pod, s, n.podIP, 10*Mbit)
	tr := newTestTree(t, n.node, TreeConfig{
		Interface: n.uplink, Link: sc(20 * Mbit), Default: batch,
		Classes: []ClassSpec{
			{ID: online, Rate: sc(4 * Mbit), Ceil: sc(4 * Mbit), Prio: 0},
			{ID: batch, Rate: sc(1 * Mbit), Ceil: sc(6 * Mbit), Prio: 1},
		},
	})
	// Online: the pod by address. Batch: the node's own traffic, unclassified.
	if err := tr.ClassifyAddr(netip.MustParseAddr(n.podIP), online); err != nil {
		t.Fatal(err)
	}
	sendFrom(t, n.pod, s.Addr)
	sendFrom(t, n.node, s.Addr)
	time.Sleep(warmup)
	before := rates(s, window, n.podIP, n.nodeIP)
	within(t, "online before", before[0], sc(4*Mbit), tolerance)
	within(t, "batch before (ceil 6 Mbit/s)", before[1], sc(6*Mbit), tolerance)
	if err := tr.SetClass(ClassSpec{ID: batch, Rate: sc(1 * Mbit), Ceil: sc(2 * Mbit), Prio: 1}); err != nil {
		t.Fatal(err)
	}
	after := rates(s, window, n.podIP, n.nodeIP)
	within(t, "online after", after[0], sc(4*Mbit), tolerance)
	within(t, "batch after (ceil 2 Mbit/s)", after[1], sc(2*Mbit), tolerance)
	if c, _ := tr.Class(batch); c.Ceil != sc(2*Mbit) {
		t.Errorf("Class(batch) = %+v after SetClass", c)
	}
}

// Setting the tree up again over a running one (a restarted agent) leaves
// exactly one htb with exactly the new classes and one classifier; when
// the first instance then goes away, the second still works; Close leaves
// nothing.
func TestKernelTreeSetupTwice(t *testing.T) {
	for _, mode := range attachModes {
		t.Run(mode.String(), func(t *testing.T) {
			p := newPair(t)
			s := newSink(t, p.rcv, p.rcvIP)
			sc := scaler(t, p.snd, s, p.sndIP, 10*Mbit)
			cfg := TreeConfig{
				Interface: p.sndIf, Netns: p.snd.Path, Link: sc(100 * Mbit), Default: 20, Attach: mode,
				Classes: []ClassSpec{{ID: 10, Rate: sc(10 * Mbit)}, {ID: 20, Rate: sc(10 * Mbit)}, {ID: 30, Rate: sc(10 * Mbit)}},
			}
			first := newTestTree(t, p.snd, cfg)
			cfg.Classes = cfg.Classes[:2] // the restarted agent has one pool fewer
			second := newTestTree(t, p.snd, cfg)
			l, err := p.snd.NL.LinkByName(p.sndIf)
			if err != nil {
				t.Fatal(err)
			}
			check := func(when string) {
				qs, _ := p.snd.NL.QdiscList(l)
				htbs := 0
				for _, q := range qs {
					if q.Type() == "htb" {
						htbs++
					}
				}
				cs, _ := p.snd.NL.ClassList(l, Handle(1, 0))
				var ids []uint32
				for _, c := range cs {
					ids = append(ids, c.Attrs().Handle&0xffff)
				}
				progs := countTCX(t, p.snd, l.Attrs().Index) + countFilters(t, p.snd, p.sndIf)
				if htbs != 1 || len(ids) != 3 || progs != 1 {
					t.Errorf("%s: %d htb qdiscs, classes %v, %d classifiers; want 1 htb, classes 1 10 20, 1 classifier", when, htbs, ids, progs)
				}
			}
			check("after the second setup")
			first.abandon() // the first agent dies without cleaning up
			check("after the first instance died")
			if err := second.ClassifyAddr(netip.MustParseAddr(p.sndIP), 10); err != nil {
				t.Fatal(err)
			}
			sendFrom(t, p.snd, s.Addr)
			time.Sleep(warmup)
			within(t, "class 10 through the second instance", rates(s, window, p.sndIP)[0], sc(10*Mbit), tolerance)
		})
	}
}

// A pod's egress and ingress limits from its annotations, measured on its
// veth, then changed live.
func TestKernelPodLimits(t *testing.T) {
	n := newNode(t)
	toNode := newSink(t, n.node, n.podGW)
	sc := scaler(t, n.pod, toNode, n.podIP, 6*Mbit)
	lim, err := PodLimitsFromAnnotations(map[string]string{
		EgressBandwidthAnnotation: fmt.Sprint(uint64(sc(6 * Mbit))), IngressBandwidthAnnotation: fmt.Sprint(uint64(sc(5 * Mbit)))})
	if err != nil {
		t.Fatal(err)
	}
	pi := PodInterface{Interface: n.podHostIf, Netns: n.node.Path}
	if err := SetPodLimits(pi, lim); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := RemovePodLimits(pi); err != nil {
			t.Errorf("RemovePodLimits: %v", err)
		}
		l, err := n.node.NL.LinkByName(n.podHostIf)
		if err != nil {
			t.Fatal(err)
		}
		if qs, _ := n.node.NL.QdiscList(l); hasKind(qs, "tbf", "clsact", "ingress") {
			t.Errorf("cleanup: qdiscs left on %s: %v", n.podHostIf, qs)
		}
		if _, err := n.node.NL.LinkByName(ifbName(l)); err == nil {
			t.Errorf("cleanup: %s left", ifbName(l))
		}
	})
	// Pod egress: the pod sends to the node.
	stop := sendFrom(t, n.pod, toNode.Addr)
	time.Sleep(warmup)
	within(t, "pod egress (6M)", rates(toNode, window, n.podIP)[0], sc(6*Mbit), tolerance)
	// Changed live, as an annotation update does.
	lim.Egress = sc(3 * Mbit)
	if err := SetPodLimits(pi, lim); err != nil {
		t.Fatal(err)
	}
	within(t, "pod egress changed live (3M)", rates(toNode, window, n.podIP)[0], sc(3*Mbit), tolerance)
	stop()
	// Pod ingress: the node sends to the pod.
	toPod := newSink(t, n.pod, n.podIP)
	sendFrom(t, n.node, toPod.Addr)
	time.Sleep(warmup)
	within(t, "pod ingress (5M)", rates(toPod, window, n.podGW)[0], sc(5*Mbit), tolerance)
	lim.Ingress = 0 // the annotation was removed
	if err := SetPodLimits(pi, lim); err != nil {
		t.Fatal(err)
	}
	// The limit is gone from the veth, and the flow is faster than it was.
	l, err := n.node.NL.LinkByName(n.podHostIf)
	if err != nil {
		t.Fatal(err)
	}
	if qs, _ := n.node.NL.QdiscList(l); hasKind(qs, "tbf") {
		t.Errorf("ingress limit removed, but a tbf is still on %s: %v", n.podHostIf, qs)
	}
	if got := rates(toPod, window, n.podGW)[0]; got < sc(6*Mbit) {
		t.Errorf("pod ingress after the limit was removed: %s, want above the former %s", got, sc(5*Mbit))
	}
}

func hasKind(qs []netlink.Qdisc, kinds ...string) bool {
	for _, q := range qs {
		for _, k := range kinds {
			if q.Type() == k {
				return true
			}
		}
	}
	return false
}

// Reading class statistics each period allocates nothing.
func TestKernelTreeStatsDoNotAllocate(t *testing.T) {
	p := newPair(t)
	tr := newTestTree(t, p.snd, TreeConfig{
		Interface: p.sndIf, Link: 100 * Mbit, Default: 20,
		Classes: []ClassSpec{{ID: 10, Rate: 10 * Mbit}, {ID: 20, Rate: 10 * Mbit}, {ID: 30, Rate: 10 * Mbit}},
	})
	dst := make([]ClassStats, 0, 8)
	var err error
	allocs := testing.AllocsPerRun(100, func() { dst, err = tr.Stats(dst) })
	if err != nil {
		t.Fatal(err)
	}
	if allocs != 0 {
		t.Errorf("Stats allocates %.1f times per call, want 0", allocs)
	}
	if len(dst) != 4 {
		t.Errorf("Stats returned %d classes, want 4 (root + 3): %+v", len(dst), dst)
	}
}

func BenchmarkTreeStats(b *testing.B) {
	p := newPair(b)
	tr := newTestTree(b, p.snd, TreeConfig{
		Interface: p.sndIf, Link: 100 * Mbit, Default: 20,
		Classes: []ClassSpec{{ID: 10, Rate: 10 * Mbit}, {ID: 20, Rate: 10 * Mbit}, {ID: 30, Rate: 10 * Mbit}},
	})
	dst := make([]ClassStats, 0, 8)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if dst, err = tr.Stats(dst); err != nil {
			b.Fatal(err)
		}
	}
}

// Bad input is refused before anything is installed.
func TestKernelTreeUnknownInterface(t *testing.T) {
	p := newPair(t)
	_, err := NewTree(TreeConfig{Interface: "nq-missing0", Netns: p.snd.Path, Link: 100 * Mbit, Default: 10, Classes: []ClassSpec{{ID: 10, Rate: Mbit}}})
	if !errors.Is(err, ErrNoInterface) {
		t.Fatalf("NewTree on a missing interface: %v, want ErrNoInterface", err)
	}
	t.Log(err)
	err = SetPodLimits(PodInterface{Interface: "nq-missing0", Netns: p.snd.Path}, PodLimits{Egress: Mbit})
	if !errors.Is(err, ErrNoInterface) {
		t.Fatalf("SetPodLimits on a missing interface: %v, want ErrNoInterface", err)
	}
	if err := RemovePodLimits(PodInterface{Interface: "nq-missing0", Netns: p.snd.Path}); err != nil {
		t.Errorf("RemovePodLimits of a vanished pod: %v, want nil", err)
	}
	// A tree whose classifier cannot be attached leaves no htb behind.
	_, err = NewTree(TreeConfig{Interface: p.sndIf, Netns: p.snd.Path, Link: 100 * Mbit, Default: 10, Attach: AttachTCX,
		Classes: []ClassSpec{{ID: 10, Rate: Mbit}}, Classifier: ClassifierOptions{MaxEntries: 1 << 21}})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("NewTree with too large maps: %v, want ErrInvalid", err)
	}
	assertClean(t, p.snd, p.sndIf)
}
