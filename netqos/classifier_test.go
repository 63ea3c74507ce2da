package netqos

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/internal/testutil"
)

// bpfClassifier is the feature "this kernel loads the netqos classifier".
var bpfClassifier = testutil.Feature{
	Name: "BPF tc classifier",
	// The probe asks cilium/ebpf about the program type and helpers, not
	// our own program, so a bug in the classifier fails rather than skips.
	Probe: func() error {
		if err := features.HaveProgramType(ebpf.SchedCLS); err != nil {
			return err
		}
		return features.HaveProgramHelper(ebpf.SchedCLS, asm.FnSkbAncestorCgroupId)
	},
	Absent: func() string {
		if r := testutil.KernelOlderThan(4, 19, "bpf_skb_ancestor_cgroup_id"); r != "" {
			return r
		}
		if _, err := os.Stat("/proc/sys/kernel/unprivileged_bpf_disabled"); err != nil {
			return "the kernel has no bpf(2) (CONFIG_BPF_SYSCALL)"
		}
		return ""
	},
}

func newTestClassifier(t *testing.T) *Classifier {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, bpfClassifier)
	c, err := NewClassifier(ClassifierOptions{MaxEntries: 64})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestKernelClassifierBySourceAddress(t *testing.T) {
	c := newTestClassifier(t)
	pod4, other4 := netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("10.1.2.4")
	pod6, other6 := netip.MustParseAddr("fd00::1:2:3"), netip.MustParseAddr("fd00::1:2:4")
	dst4, dst6 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	const class4, class6 = 0x0001000a, 0x00010014
	if err := c.SetAddr(pod4, class4); err != nil {
		t.Fatal(err)
	}
	if err := c.SetAddr(pod6, class6); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		pkt  []byte
		want uint32
	}{
		{"IPv4 known source", ipv4Packet(pod4, dst4), class4},
		{"IPv4 unknown source", ipv4Packet(other4, dst4), 0},
		{"IPv4 destination is the known address", ipv4Packet(dst4, pod4), 0},
		{"IPv6 known source", ipv6Packet(pod6, dst6), class6},
		{"IPv6 unknown source", ipv6Packet(other6, dst6), 0},
		{"IPv4-mapped IPv6 is not IPv4", ipv6Packet(netip.AddrFrom16(pod4.As16()), dst6), 0},
		{"ARP is left alone", arpPacket(), 0},
	}
	for _, tc := range cases {
		prio, ret, err := runClassifier(c.Program(), tc.pkt)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if prio != tc.want {
			t.Errorf("%s: priority %s, want %s", tc.name, HandleString(prio), HandleString(tc.want))
		}
		if ret != tcActUnspec {
			t.Errorf("%s: returned %d, want %d (TC_ACT_UNSPEC/TCX_NEXT)", tc.name, ret, tcActUnspec)
		}
	}
	// Removing the entry sends the pod's traffic back to the default.
	if err := c.DeleteAddr(pod4); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteAddr(pod4); err != nil {
		t.Errorf("deleting a missing entry: %v", err)
	}
	if prio, _, _ := runClassifier(c.Program(), ipv4Packet(pod4, dst4)); prio != 0 {
		t.Errorf("after DeleteAddr: priority %s, want unchanged 0", HandleString(prio))
	}
}

func arpPacket() []byte {
	b := make([]byte, 14+28)
	b[12], b[13] = 0x08, 0x06
	return b
}

// runInCgroup runs the test binary as the classify helper inside cg and
// returns the priorities it printed for pkts.
func runInCgroup(t *testing.T, cg *cgroup.Cgroup, c *Classifier, pkts ...[]byte) []uint32 {
	t.Helper()
	info, err := c.Program().Info()
	if err != nil {
		t.Fatal(err)
	}
	id, _ := info.ID()
	hexes := make([]string, len(pkts))
	for i, p := range pkts {
		hexes[i] = hex.EncodeToString(p)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The shell waits until it has been moved into cg, then execs the
	// helper, so the helper's test-run socket is created inside cg.
	cmd := exec.Command("/bin/sh", "-c", `read _ ; exec "$@"`, "sh", self)
	cmd.Env = append(os.Environ(), helperEnv+"=classify",
		"STRATA_NETQOS_PROG="+strconv.FormatUint(uint64(id), 10),
		"STRATA_NETQOS_PACKETS="+strings.Join(hexes, ","))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := cg.AddProc(cmd.Process.Pid); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("move helper into %s: %v", cg.Path(), err)
	}
	stdin.Write([]byte("go\n"))
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("classify helper: %v: %s", err, errb.String())
	}
	var prios []uint32
	for _, f := range strings.Fields(out.String()) {
		v, err := strconv.ParseUint(f, 10, 32)
		if err != nil {
			t.Fatalf("helper output %q", out.String())
		}
		prios = append(prios, uint32(v))
	}
	if len(prios) != len(pkts) {
		t.Fatalf("helper printed %d results for %d packets: %q", len(prios), len(pkts), out.String())
	}
	return prios
}

// The test run gives the packet a socket owned by the running task, so a
// helper process in a test cgroup sees its own cgroup id, as a container's
// socket does at tc egress.
func TestKernelClassifierByCgroupID(t *testing.T) {
	c := newTestClassifier(t)
	h, pod := testutil.NewCgroup(t)
	if h.UnifiedRoot() == "" {
		testutil.RequireFeature(t, testutil.Feature{Name: "cgroup2 mount", Probe: func() error { return fmt.Errorf("no cgroup2 mount") },
			Absent: func() string { return "the host mounts no cgroup2 hierarchy" }})
	}
	ctr, err := h.Create(pod.Path() + "/ctr")
	if err != nil {
		t.Fatal(err)
	}
	sibling, err := h.Create(pod.Path() + "/sibling")
	if err != nil {
		t.Fatal(err)
	}
	podID, err := pod.ID()
	if err != nil {
		t.Fatal(err)
	}
	ctrID, err := ctr.ID()
	if err != nil {
		t.Fatal(err)
	}
	src, dst := netip.MustParseAddr("10.9.0.2"), netip.MustParseAddr("10.9.0.1")
	pkt4, pkt6 := ipv4Packet(src, dst), ipv6Packet(netip.MustParseAddr("fd00::2"), netip.MustParseAddr("fd00::1"))
	const podClass, ctrClass, addrClass = 0x00010002, 0x00010003, 0x00010004

	// An unknown cgroup id: nothing matches.
	if got := runInCgroup(t, ctr, c, pkt4, pkt6); got[0] != 0 || got[1] != 0 {
		t.Errorf("unknown cgroup: priorities %v, want [0 0]", got)
	}
	// The pod's cgroup matches its container's sockets (ancestor level).
	if err := c.SetCgroup(podID, podClass); err != nil {
		t.Fatal(err)
	}
	if got := runInCgroup(t, ctr, c, pkt4, pkt6); got[0] != podClass || got[1] != podClass {
		t.Errorf("pod cgroup %d known, socket in its child: priorities %v, want %s", podID, got, HandleString(podClass))
	}
	// The container's own entry is more specific and wins.
	if err := c.SetCgroup(ctrID, ctrClass); err != nil {
		t.Fatal(err)
	}
	if got := runInCgroup(t, ctr, c, pkt4); got[0] != ctrClass {
		t.Errorf("container cgroup known: priority %s, want %s", HandleString(got[0]), HandleString(ctrClass))
	}
	// The cgroup wins over the source address: a host-network container
	// shares the node's addresses.
	if err := c.SetAddr(src, addrClass); err != nil {
		t.Fatal(err)
	}
	if got := runInCgroup(t, ctr, c, pkt4); got[0] != ctrClass {
		t.Errorf("cgroup and address known: priority %s, want the cgroup's %s", HandleString(got[0]), HandleString(ctrClass))
	}
	// A sibling container without an entry of its own gets the pod's class.
	// (Not a process in the pod cgroup itself: cgroup v2 keeps processes
	// out of cgroups whose children have controllers.)
	if got := runInCgroup(t, sibling, c, pkt6); got[0] != podClass {
		t.Errorf("socket in a sibling container: priority %s, want the pod's %s", HandleString(got[0]), HandleString(podClass))
	}
	// Forgotten cgroups fall back to the address.
	if err := c.DeleteCgroup(ctrID); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteCgroup(podID); err != nil {
		t.Fatal(err)
	}
	if got := runInCgroup(t, ctr, c, pkt4, pkt6); got[0] != addrClass || got[1] != 0 {
		t.Errorf("cgroups forgotten: priorities %v, want [%d 0] (address, then nothing)", got, addrClass)
	}
}
