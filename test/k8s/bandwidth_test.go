package k8s_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/strata-nri/strata/isolation"
	"github.com/strata-nri/strata/netqos"
	"github.com/strata-nri/strata/test/k8s/harness"
)

// The pod network of the bandwidth test: Debian's ptp CNI plugin gives
// each pod its own network namespace and a veth whose host side holds
// the gateway address, as routed CNIs (Calico, Cilium) do.
const (
	ptpSubnet  = "10.244.77.0/24"
	ptpGateway = "10.244.77.1"
	bwUplink   = "nqk8s0" // a stand-in uplink for the net dimension's tree
)

// ptpNetwork makes the ptp network containerd's default: the plugins go
// into the run's CNI bin dir, the conflist sorts before the harness's
// loopback-only one, and containerd reloads its CNI config when the
// directory changes.
func ptpNetwork(t *testing.T, runDir string) {
	t.Helper()
	for _, p := range []string{"ptp", "host-local"} {
		b, err := os.ReadFile(filepath.Join("/usr/lib/cni", p))
		if err != nil {
			t.Fatalf("CNI plugin %s (apt: containernetworking-plugins): %v", p, err)
		}
		if err := os.WriteFile(filepath.Join(runDir, "cni/bin", p), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := fmt.Sprintf(`{"cniVersion": "1.0.0", "name": "strata-ptp", "plugins": [{"type": "ptp", "ipMasq": false, "mtu": 1500,
  "ipam": {"type": "host-local", "ranges": [[{"subnet": %q, "gateway": %q}]], "dataDir": %q}}]}`,
		ptpSubnet, ptpGateway, filepath.Join(runDir, "cni/ipam"))
	if err := os.WriteFile(filepath.Join(runDir, "cni/conf/05-strata-ptp.conflist"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
}

// sink counts the bytes it receives on every connection.
type sink struct {
	l     net.Listener
	bytes atomic.Int64
}

func newSink(t *testing.T) *sink {
	t.Helper()
	l, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{l: l}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					s.bytes.Add(int64(n))
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return s
}

func (s *sink) port() int { return s.l.Addr().(*net.TCPAddr).Port }

// rate measures the goodput over window, after a second for the queue to
// settle.
func (s *sink) rate(window time.Duration) netqos.Rate {
	time.Sleep(time.Second)
	b0, t0 := s.bytes.Load(), time.Now()
	time.Sleep(window)
	return netqos.Rate(float64(s.bytes.Load()-b0) * 8 / time.Since(t0).Seconds())
}

// expectRate measures until a window lands within ±tol of want, at most
// three windows (a loaded 2-CPU machine may starve one).
func (s *sink) expectRate(t *testing.T, what string, want netqos.Rate, tol float64) netqos.Rate {
	t.Helper()
	var got []string
	for range 3 {
		r := s.rate(3 * time.Second)
		if float64(r) >= float64(want)*(1-tol) && float64(r) <= float64(want)*(1+tol) {
			t.Logf("%s: %s measured, want %s ±%.0f%%", what, r, want, tol*100)
			return r
		}
		got = append(got, r.String())
	}
	t.Fatalf("%s: measured %v in three 3 s windows, want %s ±%.0f%%", what, got, want, tol*100)
	return 0
}

// podEgressTBF is the rate (bits/s) of the TBF the net dimension put on
// the ifb that takes the egress of the pod's host-side veth, read back
// from the kernel; 0 when there is none.
func podEgressTBF(t *testing.T, ifb string) netqos.Rate {
	t.Helper()
	l, err := netlink.LinkByName(ifb)
	if err != nil {
		return 0
	}
	qs, err := netlink.QdiscList(l)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		if tbf, ok := q.(*netlink.Tbf); ok && tbf.Parent == netlink.HANDLE_ROOT {
			return netqos.Rate(tbf.Rate * 8)
		}
	}
	return 0
}

func annotate(t *testing.T, c *harness.Cluster, ns, name, value string) time.Time {
	t.Helper()
	patch := map[string]any{"metadata": map[string]any{"annotations": map[string]string{netqos.EgressBandwidthAnnotation: value}}}
	at := time.Now()
	if err := c.Admin.DoType(context.Background(), http.MethodPatch, fmt.Sprintf("/api/v1/namespaces/%s/pods/%s", ns, name),
		"application/merge-patch+json", patch, nil); err != nil {
		t.Fatalf("annotate pod %s/%s with %s=%q: %v", ns, name, netqos.EgressBandwidthAnnotation, value, err)
	}
	return at
}

// TestE2EK8sBandwidthAnnotation: a pod in its own network namespace (ptp
// CNI) is created with kubernetes.io/egress-bandwidth 10M; Strata shapes
// its egress at 10 Mbit/s, measured on real TCP traffic from the pod to a
// listener on the node. `kubectl annotate` on the running pod (a merge
// patch through the API server, which containerd never relays) reaches
// Strata through its pod watch: the TBF the kernel holds reads 4 Mbit/s
// within 5 s and the measured rate follows (±15 %). A malformed value is
// refused with an error naming it in the log and in status, and the pod
// keeps its 4 Mbit/s.
func TestE2EK8sBandwidthAnnotation(t *testing.T) {
	harness.Require(t)
	// Registered first, so it runs after the cluster's teardown.
	var ifb atomic.Value
	t.Cleanup(func() {
		if name, _ := ifb.Load().(string); name != "" {
			if l, err := netlink.LinkByName(name); err == nil {
				_ = netlink.LinkDel(l)
			}
		}
		if l, err := netlink.LinkByName(bwUplink); err == nil {
			_ = netlink.LinkDel(l)
		}
	})
	if l, err := netlink.LinkByName(bwUplink); err == nil {
		_ = netlink.LinkDel(l) // a killed run's
	}
	// This kernel has no dummy interfaces: a veth pair serves.
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: bwUplink}, PeerName: bwUplink + "p"}); err != nil {
		t.Fatalf("stand-in uplink %s: %v", bwUplink, err)
	}
	if l, err := netlink.LinkByName(bwUplink); err != nil || netlink.LinkSetUp(l) != nil {
		t.Fatalf("stand-in uplink %s up: %v", bwUplink, err)
	}
	cfg := config()
	cfg.Network = isolation.NetworkConfig{Interface: bwUplink, Link: "1G"}
	c := start(t, cfg)
	t.Cleanup(func() { printStatus(t, c) })
	ptpNetwork(t, c.Env.State().Dir)
	snk := newSink(t)

	manifest := fmt.Sprintf(`
metadata:
  name: shaped
  annotations: {%q: "10M"}
spec:
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  enableServiceLinks: false
  containers:
  - name: c
    image: %s
    imagePullPolicy: Never
    command: [sh, -c, "while :; do nc %s %d < /dev/zero; sleep 0.2; done"]
`, netqos.EgressBandwidthAnnotation, harness.Image, ptpGateway, snk.port())
	// containerd reloads the CNI config asynchronously; a sandbox the
	// kubelet created before that fails and is retried.
	ctx := context.Background()
	if _, err := c.CreatePod(ctx, "default", manifest); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitRunning(ctx, "default", "shaped", 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	var ps struct{ Status struct{ PodIP string } }
	if err := c.Admin.Do(ctx, http.MethodGet, "/api/v1/namespaces/default/pods/shaped", nil, &ps); err != nil {
		t.Fatal(err)
	}
	ip, err := netip.ParseAddr(ps.Status.PodIP)
	if err != nil || !netip.MustParsePrefix(ptpSubnet).Contains(ip) {
		t.Fatalf("pod IP %q is not in the ptp network %s", ps.Status.PodIP, ptpSubnet)
	}
	routes, err := netlink.RouteGet(ip.AsSlice())
	if err != nil || len(routes) == 0 {
		t.Fatalf("route to pod %s: %v", ip, err)
	}
	veth, err := netlink.LinkByIndex(routes[0].LinkIndex)
	if err != nil || veth.Type() != "veth" {
		t.Fatalf("the route to pod %s leaves by %v (%v), not its veth", ip, veth, err)
	}
	ifbName := fmt.Sprintf("nqifb%d", veth.Attrs().Index)
	ifb.Store(ifbName)
	t.Logf("pod %s on veth %s, egress shaped on %s", ip, veth.Attrs().Name, ifbName)

	waitFor(t, 10*time.Second, "the creation's 10M on the pod's egress", func() bool { return podEgressTBF(t, ifbName) == 10e6 })
	snk.expectRate(t, "egress at creation (10M)", 10e6, 0.15)

	at := annotate(t, c, "default", "shaped", "4M")
	waitFor(t, 5*time.Second, "the TBF at 4M after the annotation", func() bool { return podEgressTBF(t, ifbName) == 4e6 })
	t.Logf("annotation 10M → 4M in the kernel %s after the API server took it", time.Since(at).Round(time.Millisecond))
	snk.expectRate(t, "egress after annotating 4M", 4e6, 0.15)

	annotate(t, c, "default", "shaped", "10X")
	waitFor(t, 5*time.Second, "the malformed value refused in status", func() bool {
		for _, d := range status(t, c).Dimensions {
			if d.Name == "net" && strings.Contains(d.LastError, `"10X"`) {
				t.Logf("net dimension: %s", d.LastError)
				return true
			}
		}
		return false
	})
	log, _ := c.Env.PluginLog(c.StrataPlugin)
	if !strings.Contains(log, `10X`) {
		t.Errorf("the plugin's log does not name the malformed value 10X")
	}
	if r := podEgressTBF(t, ifbName); r != 4e6 {
		t.Errorf("after a malformed annotation the pod's egress TBF is %s, want the old 4M kept", r)
	}
	annotate(t, c, "default", "shaped", "6M")
	waitFor(t, 5*time.Second, "the TBF at 6M after a good value again", func() bool { return podEgressTBF(t, ifbName) == 6e6 })
}
