package netqos

import (
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/internal/testutil"
	"github.com/strata-nri/strata/netqos/netqostest"
)

// The test binary doubles as a helper process (a sender in a test cgroup,
// a classifier run from inside one): STRATA_NETQOS_HELPER selects it.
const helperEnv = "STRATA_NETQOS_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "send":
		helperSend()
	case "classify":
		helperClassify()
	default:
		fmt.Fprintf(os.Stderr, "unknown helper %q\n", os.Getenv(helperEnv))
		os.Exit(2)
	}
}

// helperSend enters the netns at STRATA_NETQOS_NETNS, connects to
// STRATA_NETQOS_DST and sends until killed. The socket is created by this
// process, so it carries the cgroup the process was started in.
func helperSend() {
	runtime.LockOSThread()
	if p := os.Getenv("STRATA_NETQOS_NETNS"); p != "" {
		ns, err := netns.GetFromPath(p)
		if err == nil {
			err = netns.Set(ns)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "enter netns:", err)
			os.Exit(1)
		}
	}
	c, err := net.Dial("tcp", os.Getenv("STRATA_NETQOS_DST"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "dial:", err)
		os.Exit(1)
	}
	buf := make([]byte, 64<<10)
	for {
		if _, err := c.Write(buf); err != nil {
			os.Exit(0)
		}
	}
}

// helperClassify runs the classifier with id STRATA_NETQOS_PROG on each
// hex packet in STRATA_NETQOS_PACKETS (comma separated) and prints the
// resulting skb->priority of each, one a line.
func helperClassify() {
	id, _ := strconv.ParseUint(os.Getenv("STRATA_NETQOS_PROG"), 10, 32)
	prog, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
	if err != nil {
		fmt.Fprintln(os.Stderr, "program:", err)
		os.Exit(1)
	}
	for _, h := range strings.Split(os.Getenv("STRATA_NETQOS_PACKETS"), ",") {
		pkt, err := hex.DecodeString(h)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		prio, _, err := runClassifier(prog, pkt)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(prio)
	}
	os.Exit(0)
}

// skbContext is enough of struct __sk_buff for BPF_PROG_TEST_RUN to pass
// skb->priority in and out (the kernel zero-fills the rest).
type skbContext struct {
	_        [8]uint32 // len .. vlan_proto
	Priority uint32
	_        [39]uint32
}

// runClassifier runs prog on pkt and returns the packet's priority after
// it and the program's return value.
func runClassifier(prog *ebpf.Program, pkt []byte) (prio uint32, ret int32, err error) {
	in, out := skbContext{}, skbContext{}
	r, err := prog.Run(&ebpf.RunOptions{Data: pkt, Context: in, ContextOut: &out})
	return out.Priority, int32(r), err
}

// ipv4Packet and ipv6Packet build an Ethernet frame with a UDP header
// behind an IP header from src to dst; enough for the classifier, which
// reads only the EtherType and the source address.
func ipv4Packet(src, dst netip.Addr) []byte {
	b := make([]byte, 14+20+8)
	b[12], b[13] = 0x08, 0x00
	ip := b[14:]
	ip[0] = 0x45
	ip[3] = byte(len(ip))
	ip[8], ip[9] = 64, unix.IPPROTO_UDP
	s, d := src.As4(), dst.As4()
	copy(ip[12:], s[:])
	copy(ip[16:], d[:])
	return b
}

func ipv6Packet(src, dst netip.Addr) []byte {
	b := make([]byte, 14+40+8)
	b[12], b[13] = 0x86, 0xdd
	ip := b[14:]
	ip[0] = 0x60
	ip[5] = 8
	ip[6], ip[7] = unix.IPPROTO_UDP, 64
	s, d := src.As16(), dst.As16()
	copy(ip[8:], s[:])
	copy(ip[24:], d[:])
	return b
}

// sendFromCgroup starts a helper process in cg that enters n and sends to
// dst until killed.
func sendFromCgroup(t testing.TB, cg *cgroup.Cgroup, n *netqostest.Netns, dst string) *exec.Cmd {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// Through sh rather than env(1), which a minimal guest may lack.
	cmd := testutil.StartInCgroup(t, cg, "/bin/sh", "-c",
		`export `+helperEnv+`=send STRATA_NETQOS_NETNS="$1" STRATA_NETQOS_DST="$2"; exec "$0"`, self, n.Path, dst)
	return cmd
}

// Aliases for the topology helpers, so the tests read short.
type testNetns = netqostest.Netns

func newTestNetns(t testing.TB, role string) *testNetns { return netqostest.NewNetns(t, role) }

func connect(t testing.TB, a *testNetns, aAddr string, b *testNetns, bAddr string) (string, string) {
	return netqostest.Connect(t, a, aAddr, b, bAddr)
}

func newSink(t testing.TB, n *testNetns, ip string) *netqostest.Sink {
	return netqostest.NewSink(t, n, ip)
}

func sendFrom(t testing.TB, n *testNetns, dst string) (stop func()) {
	return netqostest.SendFrom(t, n, dst)
}

// rates measures goodput per source over window.
func rates(s *netqostest.Sink, window time.Duration, ips ...string) []Rate {
	var out []Rate
	for _, r := range s.Rates(window, ips...) {
		out = append(out, Rate(r))
	}
	return out
}

func within(t testing.TB, what string, got, want Rate, tol float64) {
	t.Helper()
	netqostest.Within(t, what, float64(got), float64(want), tol)
}
