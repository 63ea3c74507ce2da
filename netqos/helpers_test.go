package netqos

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/internal/testutil"
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

var nsSeq atomic.Int64

// testNetns is a named network namespace that the test removes when it
// ends, also on failure.
type testNetns struct {
	name string
	path string
	ns   netns.NsHandle
	nl   *netlink.Handle
}

func newTestNetns(t testing.TB, role string) *testNetns {
	t.Helper()
	testutil.RequireRoot(t)
	name := fmt.Sprintf("nqt-%d-%d-%s", os.Getpid(), nsSeq.Add(1), role)
	var ns netns.NsHandle
	errc := make(chan error, 1)
	go func() {
		// NewNamed moves the calling thread into the new namespace; this
		// thread is never unlocked, so the runtime discards it.
		runtime.LockOSThread()
		var err error
		ns, err = netns.NewNamed(name)
		errc <- err
	}()
	if err := <-errc; err != nil {
		t.Fatalf("create netns %s: %v", name, err)
	}
	n := &testNetns{name: name, path: "/run/netns/" + name, ns: ns}
	t.Cleanup(func() {
		if n.nl != nil {
			n.nl.Close()
		}
		n.ns.Close()
		if err := netns.DeleteNamed(name); err != nil {
			t.Errorf("cleanup: delete netns %s: %v", name, err)
		}
	})
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatalf("netlink in %s: %v", name, err)
	}
	n.nl = h
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatalf("lo up in %s: %v", name, err)
	}
	return n
}

// do runs fn on a thread inside the namespace.
func (n *testNetns) do(t testing.TB, fn func()) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(n.ns); err != nil {
			errc <- err
			return
		}
		fn()
		if err := netns.Set(orig); err != nil {
			errc <- err
			return // the locked thread dies with the goroutine
		}
		runtime.UnlockOSThread()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Fatalf("in netns %s: %v", n.name, err)
	}
}

func (n *testNetns) sysctl(t testing.TB, key, value string) {
	t.Helper()
	var err error
	n.do(t, func() {
		err = os.WriteFile("/proc/sys/"+strings.ReplaceAll(key, ".", "/"), []byte(value), 0o644)
	})
	if err != nil {
		t.Fatalf("sysctl %s=%s in %s: %v", key, value, n.name, err)
	}
}

var vethSeq atomic.Int64

// connect makes a veth pair from a (address aAddr) to b (bAddr), both /24,
// and returns the interface names in a and b.
func connect(t testing.TB, a *testNetns, aAddr string, b *testNetns, bAddr string) (string, string) {
	t.Helper()
	i := vethSeq.Add(1)
	an, bn := fmt.Sprintf("nqa%d", i), fmt.Sprintf("nqb%d", i)
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: an}, PeerName: bn, PeerNamespace: netlink.NsFd(b.ns)}
	if err := a.nl.LinkAdd(v); err != nil {
		t.Fatalf("veth %s/%s: %v", an, bn, err)
	}
	for _, side := range []struct {
		n    *testNetns
		name string
		addr string
	}{{a, an, aAddr}, {b, bn, bAddr}} {
		l, err := side.n.nl.LinkByName(side.name)
		if err != nil {
			t.Fatal(err)
		}
		addr, err := netlink.ParseAddr(side.addr + "/24")
		if err != nil {
			t.Fatal(err)
		}
		if err := side.n.nl.AddrAdd(l, addr); err != nil {
			t.Fatalf("address %s on %s: %v", side.addr, side.name, err)
		}
		if err := side.n.nl.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
	return an, bn
}

func (n *testNetns) route(t testing.TB, dst, via string) {
	t.Helper()
	_, ipnet, err := net.ParseCIDR(dst)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.nl.RouteAdd(&netlink.Route{Dst: ipnet, Gw: net.ParseIP(via)}); err != nil {
		t.Fatalf("route %s via %s in %s: %v", dst, via, n.name, err)
	}
}

// sink is a TCP receiver in a namespace counting bytes per source IP.
type sink struct {
	addr   string
	ln     net.Listener
	mu     sync.Mutex
	counts map[string]*atomic.Int64
}

func newSink(t testing.TB, n *testNetns, ip string) *sink {
	t.Helper()
	s := &sink{counts: map[string]*atomic.Int64{}}
	var err error
	n.do(t, func() { s.ln, err = net.Listen("tcp", net.JoinHostPort(ip, "0")) })
	if err != nil {
		t.Fatalf("listen in %s: %v", n.name, err)
	}
	s.addr = s.ln.Addr().String()
	t.Cleanup(func() { s.ln.Close() })
	go func() {
		for {
			c, err := s.ln.Accept()
			if err != nil {
				return
			}
			host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
			ctr := s.counter(host)
			go func() {
				defer c.Close()
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					ctr.Add(int64(n))
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return s
}

func (s *sink) counter(ip string) *atomic.Int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.counts[ip]
	if !ok {
		c = &atomic.Int64{}
		s.counts[ip] = c
	}
	return c
}

// rates measures the goodput from each source IP over window, in bit/s.
func (s *sink) rates(window time.Duration, ips ...string) []Rate {
	start := make([]int64, len(ips))
	for i, ip := range ips {
		start[i] = s.counter(ip).Load()
	}
	t0 := time.Now()
	time.Sleep(window)
	el := time.Since(t0).Seconds()
	out := make([]Rate, len(ips))
	for i, ip := range ips {
		out[i] = Rate(float64(s.counter(ip).Load()-start[i]) * 8 / el)
	}
	return out
}

// sendFrom sends to dst from a socket made in namespace n until the test
// ends or stop is called.
func sendFrom(t testing.TB, n *testNetns, dst string) (stop func()) {
	t.Helper()
	var c net.Conn
	var err error
	n.do(t, func() { c, err = net.DialTimeout("tcp", dst, 3*time.Second) })
	if err != nil {
		t.Fatalf("dial %s from %s: %v", dst, n.name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for ctx.Err() == nil {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			c.Close()
			<-done
		})
	}
	t.Cleanup(stop)
	return stop
}

// sendFromCgroup starts a helper process in cg that enters n and sends to
// dst until killed.
func sendFromCgroup(t testing.TB, cg *cgroup.Cgroup, n *testNetns, dst string) *exec.Cmd {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := testutil.StartInCgroup(t, cg, "/usr/bin/env", helperEnv+"=send", "STRATA_NETQOS_NETNS="+n.path, "STRATA_NETQOS_DST="+dst, self)
	return cmd
}

// within fails unless got is within tol (a fraction) of want.
func within(t testing.TB, what string, got, want Rate, tol float64) {
	t.Helper()
	lo, hi := float64(want)*(1-tol), float64(want)*(1+tol)
	if float64(got) < lo || float64(got) > hi {
		t.Errorf("%s: measured %s, want %s ± %.0f%%", what, got, want, tol*100)
	} else {
		t.Logf("%s: measured %s (want %s ± %.0f%%)", what, got, want, tol*100)
	}
}
