// Package netqostest builds network topologies for kernel tests of
// network shaping: named network namespaces joined by veth pairs, a TCP
// sink measuring goodput per source address, and senders. Everything is
// removed when the test ends, also on failure. Measured tests should run
// under flock /tmp/strata-measure.lock.
package netqostest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/strata-nri/strata/internal/testutil"
)

var nsSeq atomic.Int64

// Netns is a named network namespace that the test removes when it
// ends, also on failure.
type Netns struct {
	Name string         // under /run/netns
	Path string         // /run/netns/<Name>
	NS   netns.NsHandle // open while the test runs
	NL   *netlink.Handle
}

func NewNetns(t testing.TB, role string) *Netns {
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
	n := &Netns{Name: name, Path: "/run/netns/" + name, NS: ns}
	t.Cleanup(func() {
		if n.NL != nil {
			n.NL.Close()
		}
		n.NS.Close()
		if err := netns.DeleteNamed(name); err != nil {
			t.Errorf("cleanup: delete netns %s: %v", name, err)
		}
	})
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatalf("netlink in %s: %v", name, err)
	}
	n.NL = h
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
func (n *Netns) Do(t testing.TB, fn func()) {
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
		if err := netns.Set(n.NS); err != nil {
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
		t.Fatalf("in netns %s: %v", n.Name, err)
	}
}

func (n *Netns) Sysctl(t testing.TB, key, value string) {
	t.Helper()
	var err error
	n.Do(t, func() {
		err = os.WriteFile("/proc/sys/"+strings.ReplaceAll(key, ".", "/"), []byte(value), 0o644)
	})
	if err != nil {
		t.Fatalf("sysctl %s=%s in %s: %v", key, value, n.Name, err)
	}
}

var vethSeq atomic.Int64

// connect makes a veth pair from a (address aAddr) to b (bAddr), both /24,
// and returns the interface names in a and b.
func Connect(t testing.TB, a *Netns, aAddr string, b *Netns, bAddr string) (string, string) {
	t.Helper()
	i := vethSeq.Add(1)
	an, bn := fmt.Sprintf("nqa%d", i), fmt.Sprintf("nqb%d", i)
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: an}, PeerName: bn, PeerNamespace: netlink.NsFd(b.NS)}
	if err := a.NL.LinkAdd(v); err != nil {
		t.Fatalf("veth %s/%s: %v", an, bn, err)
	}
	for _, side := range []struct {
		n    *Netns
		name string
		addr string
	}{{a, an, aAddr}, {b, bn, bAddr}} {
		l, err := side.n.NL.LinkByName(side.name)
		if err != nil {
			t.Fatal(err)
		}
		addr, err := netlink.ParseAddr(side.addr + "/24")
		if err != nil {
			t.Fatal(err)
		}
		if err := side.n.NL.AddrAdd(l, addr); err != nil {
			t.Fatalf("address %s on %s: %v", side.addr, side.name, err)
		}
		if err := side.n.NL.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
	return an, bn
}

func (n *Netns) Route(t testing.TB, dst, via string) {
	t.Helper()
	_, ipnet, err := net.ParseCIDR(dst)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.NL.RouteAdd(&netlink.Route{Dst: ipnet, Gw: net.ParseIP(via)}); err != nil {
		t.Fatalf("route %s via %s in %s: %v", dst, via, n.Name, err)
	}
}

// sink is a TCP receiver in a namespace counting bytes per source IP.
type Sink struct {
	Addr   string
	ln     net.Listener
	mu     sync.Mutex
	counts map[string]*atomic.Int64
}

func NewSink(t testing.TB, n *Netns, ip string) *Sink {
	t.Helper()
	s := &Sink{counts: map[string]*atomic.Int64{}}
	var err error
	n.Do(t, func() { s.ln, err = net.Listen("tcp", net.JoinHostPort(ip, "0")) })
	if err != nil {
		t.Fatalf("listen in %s: %v", n.Name, err)
	}
	s.Addr = s.ln.Addr().String()
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

func (s *Sink) counter(ip string) *atomic.Int64 {
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
func (s *Sink) Rates(window time.Duration, ips ...string) []float64 {
	start := make([]int64, len(ips))
	for i, ip := range ips {
		start[i] = s.counter(ip).Load()
	}
	t0 := time.Now()
	time.Sleep(window)
	el := time.Since(t0).Seconds()
	out := make([]float64, len(ips))
	for i, ip := range ips {
		out[i] = float64(s.counter(ip).Load()-start[i]) * 8 / el
	}
	return out
}

// sendFrom sends to dst from a socket made in namespace n until the test
// ends or stop is called.
func SendFrom(t testing.TB, n *Netns, dst string) (stop func()) {
	t.Helper()
	var c net.Conn
	var err error
	n.Do(t, func() { c, err = net.DialTimeout("tcp", dst, 3*time.Second) })
	if err != nil {
		t.Fatalf("dial %s from %s: %v", dst, n.Name, err)
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

// Within fails the test unless got is within tol (a fraction) of want,
// both in bits per second, and logs the measurement otherwise.
func Within(t testing.TB, what string, got, want float64, tol float64) {
	t.Helper()
	lo, hi := want*(1-tol), want*(1+tol)
	if got < lo || got > hi {
		t.Errorf("%s: measured %.2f Mbit/s, want %.2f ± %.0f%%", what, got/1e6, want/1e6, tol*100)
	} else {
		t.Logf("%s: measured %.2f Mbit/s (want %.2f ± %.0f%%)", what, got/1e6, want/1e6, tol*100)
	}
}

// Capacity measures what one unshaped TCP flow from n (source address src)
// carries to s: the machine's own ceiling for the tests' flows. Measure it
// before shaping, in the same topology.
func Capacity(t testing.TB, n *Netns, s *Sink, src string) float64 {
	t.Helper()
	stop := SendFrom(t, n, s.Addr)
	time.Sleep(300 * time.Millisecond)
	r := s.Rates(time.Second, src)[0]
	stop()
	return r
}

// Scale is the factor by which a measured test multiplies its rates so
// that need, the most its flows may carry together (bit/s), stays within
// a quarter of capacity (see Capacity). It is 1 wherever the CPU carries the
// test's rates with room to spare (any real machine: capacity is in
// Gbit/s); in an emulated guest, whose CPU carries a few Mbit/s, the test
// checks the same shares at rates the guest can push, each still measured
// within the test's tolerance.
func Scale(t testing.TB, capacity, need float64) float64 {
	t.Helper()
	f := min(1, capacity/4/need)
	if f < 1 {
		t.Logf("unshaped flow carries %.1f Mbit/s: rates scaled by %.3f (need %.1f Mbit/s)", capacity/1e6, f, need/1e6)
	}
	return f
}

// FQAbsent says why the running kernel truly has no sch_fq (no module
// file, not built in, not loaded), or "" when it has one: a test that
// found no fq skips with that reason only when it is not "".
func FQAbsent() string {
	var u unix.Utsname
	_ = unix.Uname(&u)
	rel := unix.ByteSliceToString(u.Release[:])
	dir := "/lib/modules/" + rel
	if b, err := os.ReadFile(dir + "/modules.builtin"); err == nil && strings.Contains(string(b), "/sch_fq.ko") {
		return ""
	}
	if ms, _ := filepath.Glob(dir + "/kernel/net/sched/sch_fq.ko*"); len(ms) > 0 {
		return ""
	}
	if _, err := os.Stat("/sys/module/sch_fq"); err == nil {
		return ""
	}
	return "kernel " + rel + " has no sch_fq (no module, not built in)"
}
