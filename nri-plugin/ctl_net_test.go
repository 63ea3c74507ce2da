package nriplugin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	strcpuset "github.com/strata-nri/strata/cpuset"
	"github.com/strata-nri/strata/cpuset/cpusettest"
	"github.com/strata-nri/strata/internal/testutil"
	"github.com/strata-nri/strata/isolation"
	"github.com/strata-nri/strata/netqos"
	"github.com/strata-nri/strata/netqos/netqostest"
)

func TestNetControllerNotConfigured(t *testing.T) {
	cfg := isolation.DefaultConfig()
	err := NewNetController().Start(context.Background(), ControllerEnv{Logger: slog.Default(), Config: func() *isolation.Config { return cfg }})
	if !errors.Is(err, ErrNotSupported) || !strings.Contains(err.Error(), "network.interface") {
		t.Errorf("Start without network config: %v, want ErrNotSupported naming network.interface", err)
	}
}

// The dynamic ceiling end to end in namespaces: a node namespace whose
// uplink (50 Mbit/s) leads to a receiver, two pods behind it in their own
// namespaces, classified by their pod IPs through the controller. Each
// period the controller's counters feed the real decision step and its
// plan is applied. Batch saturates the link alone at its 40 Mbit/s
// ceiling; the online pod starts and within 2 periods batch's ceiling is
// 5 Mbit/s (10 %), batch is held to it and online gets at least its
// guaranteed 20 Mbit/s (and the rest of the link);
// online stops and after the calm periods batch has its 40 Mbit/s back.
func TestKernelNetControllerDynamicCeiling(t *testing.T) {
	testutil.RequireRoot(t)
	node, rcv := netqostest.NewNetns(t, "node"), netqostest.NewNetns(t, "rcv")
	onNS, batchNS := netqostest.NewNetns(t, "online"), netqostest.NewNetns(t, "batch")
	uplink, _ := netqostest.Connect(t, node, "10.79.0.1", rcv, "10.79.0.2")
	onVeth, _ := netqostest.Connect(t, node, "10.79.1.1", onNS, "10.79.1.2")
	batchVeth, _ := netqostest.Connect(t, node, "10.79.2.1", batchNS, "10.79.2.2")
	node.Sysctl(t, "net.ipv4.ip_forward", "1")
	onNS.Route(t, "10.79.0.0/24", "10.79.1.1")
	batchNS.Route(t, "10.79.0.0/24", "10.79.2.1")
	rcv.Route(t, "10.79.1.0/24", "10.79.0.1")
	rcv.Route(t, "10.79.2.0/24", "10.79.0.1")

	cfg := isolation.DefaultConfig()
	cfg.Network = isolation.NetworkConfig{Interface: uplink, Netns: node.Path, Link: "50M"}
	const calm = 2
	sharedPrio := 1 // the online pool's priority
	for i := range cfg.Pools {
		switch cfg.Pools[i].Name {
		case isolation.PoolOnline:
			cfg.Pools[i].Profile.Net = isolation.NetProfile{Rate: "40%"}
		case isolation.PoolBatch:
			// Batch borrows at online's priority, so only its ceiling
			// keeps it from taking a share of what online could use.
			cfg.Pools[i].Profile.Net = isolation.NetProfile{Rate: "5%", Ceil: "80%", Prio: &sharedPrio,
				Throttle: &isolation.NetThrottle{Watermark: 20, Release: 10, Ceil: "10%", CalmPeriods: calm}}
		}
	}
	topo, err := strcpuset.Discover(cpusettest.Root(t, cpusettest.Intel2S20C2T))
	if err != nil {
		t.Fatal(err)
	}
	st, err := isolation.NewState(topo, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctl := NewNetController()
	if err := ctl.Start(context.Background(), ControllerEnv{Logger: slog.Default(), Config: func() *isolation.Config { return cfg }}); err != nil {
		if errors.Is(err, netqos.ErrNotSupported) {
			testutil.RequireFeature(t, testutil.Feature{Name: "htb and BPF", Probe: func() error { return err }})
		}
		t.Fatal(err)
	}
	t.Cleanup(ctl.Stop)
	// The pods' bandwidth annotations land on their host-side veths.
	online := Member{ID: "web-1", Name: "web", Pod: "web/web-0", Pool: isolation.PoolOnline, PodIPs: []string{"10.79.1.2"},
		Annotations: map[string]string{netqos.EgressBandwidthAnnotation: "30M"}}
	batch := Member{ID: "backup-1", Name: "backup", Pod: "jobs/backup-0", Pool: isolation.PoolBatch, PodIPs: []string{"10.79.2.2", "fd00:79::2"},
		Annotations: map[string]string{netqos.IngressBandwidthAnnotation: "7M"}}
	for _, m := range []Member{online, batch} {
		if err := ctl.ContainerAdmitted(m); err != nil {
			t.Fatal(err)
		}
	}
	tbfRate := func(ifname string) uint64 {
		l, err := node.NL.LinkByName(ifname)
		if err != nil {
			return 0
		}
		qs, _ := node.NL.QdiscList(l)
		for _, q := range qs {
			if tb, ok := q.(*netlink.Tbf); ok {
				return tb.Rate * 8
			}
		}
		return 0
	}
	onLink, err := node.NL.LinkByName(onVeth)
	if err != nil {
		t.Fatal(err)
	}
	onIFB := fmt.Sprintf("nqifb%d", onLink.Attrs().Index)
	if r := tbfRate(onIFB); r != 30e6 {
		t.Errorf("online pod's egress limit on %s: %d bit/s, want 30M", onIFB, r)
	}
	if r := tbfRate(batchVeth); r != 7e6 {
		t.Errorf("batch pod's ingress limit on %s: %d bit/s, want 7M", batchVeth, r)
	}
	bad := Member{ID: "bad-1", Name: "bad", Pod: "jobs/bad-0", Pool: isolation.PoolBatch, PodIPs: []string{"10.79.2.2"},
		Annotations: map[string]string{netqos.EgressBandwidthAnnotation: "10X"}}
	if err := ctl.ContainerAdmitted(bad); err == nil || !strings.Contains(err.Error(), `"10X"`) || !strings.Contains(err.Error(), "jobs/bad-0") {
		t.Errorf("malformed annotation: %v, want an error naming the pod and the value", err)
	}
	if err := ctl.ContainerRemoved(bad); err != nil {
		t.Fatal(err)
	}

	sink := netqostest.NewSink(t, rcv, "10.79.0.2")
	var plan isolation.Plan
	period := time.Second
	// step measures one period's goodput, then runs the loop's period:
	// Observe, Decide, Commit, ApplyPools. It returns batch's plan.
	step := func() (onBPS, batchBPS float64, np isolation.NetPlan) {
		r := sink.Rates(period, "10.79.1.2", "10.79.2.2")
		obs := isolation.Observations{Pools: map[string]isolation.PoolObservation{}}
		if err := ctl.Observe(&obs); err != nil {
			t.Fatal(err)
		}
		isolation.DecideInto(&plan, &obs, st, time.Now())
		if err := st.Commit(&plan); err != nil {
			t.Fatal(err)
		}
		if err := ctl.ApplyPools(&plan); err != nil {
			t.Fatal(err)
		}
		for k := range plan.Pools {
			if plan.Pools[k].Name == isolation.PoolBatch {
				np = plan.Pools[k].Net
			}
		}
		t.Logf("online %5.1f Mbit/s, batch %5.1f Mbit/s -> batch ceil %s %s", r[0]/1e6, r[1]/1e6, np.Ceil, np.Reason)
		return r[0], r[1], np
	}

	netqostest.SendFrom(t, batchNS, sink.Addr)
	var b float64
	for i := 0; i < 3; i++ {
		_, b, _ = step()
	}
	netqostest.Within(t, "batch alone (ceil 40 Mbit/s)", b, 40e6, 0.15)

	stopOnline := netqostest.SendFrom(t, onNS, sink.Addr)
	dropped := -1
	for i := 1; i <= 2; i++ {
		if _, _, np := step(); np.Throttled && np.Ceil == 5*netqos.Mbit {
			dropped = i
			break
		}
	}
	if dropped < 0 {
		t.Fatalf("batch's ceiling did not drop within 2 periods of online starting")
	}
	o, b, _ := step()
	o2, b2, _ := step()
	if min(o, o2) < 20e6*0.85 {
		t.Errorf("online got %.1f and %.1f Mbit/s with batch throttled, want ≥ its guaranteed 20 Mbit/s (-15%%)", o/1e6, o2/1e6)
	}
	// Held between its guaranteed 2.5 and its ceiling 5 Mbit/s: where in
	// between, htb's borrowing rounds (by quantum) decide.
	if avg := (b + b2) / 2; avg > 5e6*1.15 || avg < 2.5e6*0.85 {
		t.Errorf("batch throttled: %.2f Mbit/s, want between its rate 2.5 and its ceiling 5 Mbit/s (±15%%)", avg/1e6)
	}
	if s := ctl.Status(); !strings.Contains(s.Pools[isolation.PoolBatch], "ceil 5Mbit of 40Mbit") {
		t.Errorf("status of batch: %q", s.Pools[isolation.PoolBatch])
	}

	stopOnline()
	restored := -1
	for i := 1; i <= calm+3; i++ {
		if _, _, np := step(); !np.Throttled {
			restored = i
			break
		}
	}
	if restored < 0 {
		t.Fatalf("batch's ceiling did not return within %d periods of online stopping", calm+3)
	}
	_, b, _ = step()
	netqostest.Within(t, "batch after online stopped (ceil 40 Mbit/s)", b, 40e6, 0.15)

	for _, m := range []Member{online, batch} {
		if err := ctl.ContainerRemoved(m); err != nil {
			t.Fatal(err)
		}
	}
	if s := ctl.Status(); !strings.Contains(s.Summary, "0 members, 0 pod addresses, 0 pods with bandwidth limits") {
		t.Errorf("status after removal: %q", s.Summary)
	}
	if tbfRate(onIFB) != 0 || tbfRate(batchVeth) != 0 {
		t.Errorf("pod limits left after the pods' containers were removed")
	}
}
