package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/strata-nri/strata/isolation"
)

// Environment of the network roles.
const (
	// lcListenEnv is the address the LC service listens on (default
	// 127.0.0.1:0); with -net the host side of the benchmark's veth.
	lcListenEnv = "STRATA_COLOCATION_LC_LISTEN"
	// netSinkEnv is the address the network blaster sends to.
	netSinkEnv = "STRATA_COLOCATION_NET_SINK"
)

// Addresses of the benchmark's own link: a /30 between the host side of
// its veth and the network namespace it creates (nothing else is there).
const (
	netHostIP = "10.79.0.1"
	netPeerIP = "10.79.0.2"
)

// netProgName is the name of netqos's classifier program, as the kernel
// reports it (netqos finds its predecessor by it too).
const netProgName = "strata_netqos"

// benchNet is the -net topology: a network namespace of the benchmark's
// joined to the host by a veth pair. The LC service listens on the host
// side; the load generator's connections are made inside the namespace
// (each dial on an OS thread that entered it; a socket stays in the
// namespace it was made in), so the service's responses leave by the host
// veth's egress. The network blaster (a batch antagonist in the host
// namespace) sends bulk TCP to a sink in the namespace over the same veth.
// The host veth's egress is the bottleneck: capped at the link rate by a
// plain htb (one class, one FIFO) outside Strata's scenarios, shaped by
// Strata's netqos in them.
type benchNet struct {
	nsName, nsPath string
	ns             netns.NsHandle
	host, peer     string // veth names in the host and in the namespace
	ifindex        int    // of host
	linkBits       uint64 // the cap, bits per second
	sink           net.Listener
	sinkAddr       string
	stopSignals    func()
	removeOnce     sync.Once
	removeErr      error
}

// setupNet builds the topology; on an error nothing of it stays. SIGINT
// and SIGTERM, until remove, kill the benchmark's children, run also (the
// run's other clean-ups: its cgroups, its disk), remove the topology and
// exit.
func setupNet(linkBits uint64, also func()) (n *benchNet, err error) {
	if linkBits < 1e6 || linkBits > 100e9 {
		return nil, fmt.Errorf("net link %d bit/s: want 1M..100G", linkBits)
	}
	pid := os.Getpid()
	n = &benchNet{nsName: netnsName(pid), host: fmt.Sprintf("scoh%d", pid%1000000), peer: fmt.Sprintf("scon%d", pid%1000000), linkBits: linkBits}
	n.nsPath = filepath.Join("/run/netns", n.nsName)
	defer func() {
		if err != nil {
			n.remove()
			n = nil
		}
	}()
	errc := make(chan error, 1)
	go func() {
		// NewNamed moves the calling thread into the new namespace; the
		// thread is never unlocked, so the runtime discards it.
		runtime.LockOSThread()
		var err error
		n.ns, err = netns.NewNamed(n.nsName)
		errc <- err
	}()
	if err := <-errc; err != nil {
		return n, fmt.Errorf("create network namespace %s: %w", n.nsName, err)
	}
	hnl, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return n, fmt.Errorf("netlink: %w", err)
	}
	defer hnl.Close()
	pnl, err := netlink.NewHandleAt(n.ns, unix.NETLINK_ROUTE)
	if err != nil {
		return n, fmt.Errorf("netlink in %s: %w", n.nsName, err)
	}
	defer pnl.Close()
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: n.host, TxQLen: 1000}, PeerName: n.peer, PeerNamespace: netlink.NsFd(n.ns)}
	if err := hnl.LinkAdd(v); err != nil {
		return n, fmt.Errorf("veth %s/%s: %w", n.host, n.peer, err)
	}
	for _, side := range []struct {
		nl         *netlink.Handle
		name, addr string
	}{{hnl, n.host, netHostIP}, {pnl, n.peer, netPeerIP}, {pnl, "lo", ""}} {
		l, err := side.nl.LinkByName(side.name)
		if err != nil {
			return n, fmt.Errorf("interface %s: %w", side.name, err)
		}
		if side.addr != "" {
			a, _ := netlink.ParseAddr(side.addr + "/30")
			if err := side.nl.AddrAdd(l, a); err != nil {
				return n, fmt.Errorf("address %s on %s: %w", side.addr, side.name, err)
			}
		}
		if err := side.nl.LinkSetUp(l); err != nil {
			return n, fmt.Errorf("%s up: %w", side.name, err)
		}
		if side.name == n.host {
			n.ifindex = l.Attrs().Index
		}
	}
	if err := n.in(func() (err error) {
		n.sink, err = net.Listen("tcp", net.JoinHostPort(netPeerIP, "0"))
		return err
	}); err != nil {
		return n, fmt.Errorf("sink in %s: %w", n.nsName, err)
	}
	n.sinkAddr = n.sink.Addr().String()
	go n.serveSink()
	n.stopSignals = onInterrupt(func() {
		killChildren()
		if also != nil {
			also()
		}
		n.remove()
	})
	return n, nil
}

// netnsName is the name of the network namespace of the benchmark run pid.
func netnsName(pid int) string { return fmt.Sprintf("strata-colo-%d", pid) }

// in runs f on an OS thread inside the namespace.
func (n *benchNet) in(f func() error) error {
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
		ferr := f()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, err)
			return // the locked thread dies with the goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// dial is the load generator's dialer: connections made in the namespace.
func (n *benchNet) dial(ctx context.Context, network, addr string) (c net.Conn, err error) {
	err = n.in(func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// serveSink reads and discards what the blasters send.
func (n *benchNet) serveSink() {
	for {
		c, err := n.sink.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			buf := make([]byte, 256<<10)
			for {
				if _, err := c.Read(buf); err != nil {
					return
				}
			}
		}()
	}
}

// remove deletes the namespace (and with it the veth pair and every qdisc
// and classifier on it) and closes the sink.
func (n *benchNet) remove() error {
	n.removeOnce.Do(func() {
		if n.stopSignals != nil {
			n.stopSignals()
		}
		var errs []error
		if n.sink != nil {
			n.sink.Close()
		}
		if n.ns.IsOpen() {
			n.ns.Close()
		}
		if h, err := netlink.NewHandle(unix.NETLINK_ROUTE); err == nil {
			if l, err := h.LinkByName(n.host); err == nil {
				if err := h.LinkDel(l); err != nil {
					errs = append(errs, fmt.Errorf("delete veth %s: %w", n.host, err))
				}
			}
			h.Close()
		}
		if err := netns.DeleteNamed(n.nsName); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("delete network namespace %s: %w", n.nsName, err))
		}
		n.removeErr = errors.Join(errs...)
	})
	return n.removeErr
}

// plainRootHandle is the handle of the plain cap's htb (1:), its class
// 1:1 at the link rate and the default for every packet.
var plainRootHandle = netlink.MakeHandle(1, 0)

// shape prepares the host veth's egress for a scenario: without Strata the
// plain cap (htb root, one class at the link rate, its default pfifo of
// txqueuelen packets: a NIC's line rate with one queue); with Strata
// nothing, as netqos builds its tree when the plugin starts. The returned
// undo removes what shape or the plugin left on the veth.
func (n *benchNet) shape(strata bool) (undo func() error, err error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	l, err := h.LinkByIndex(n.ifindex)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("veth %s: %w", n.host, err)
	}
	undo = func() error {
		defer h.Close()
		qs, err := h.QdiscList(l)
		if err != nil {
			return fmt.Errorf("qdiscs on %s: %w", n.host, err)
		}
		for _, q := range qs {
			if q.Attrs().Parent == netlink.HANDLE_ROOT {
				if err := h.QdiscDel(q); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) {
					return fmt.Errorf("remove %s qdisc on %s: %w", q.Type(), n.host, err)
				}
			}
		}
		return nil
	}
	if strata {
		return undo, nil
	}
	q := netlink.NewHtb(netlink.QdiscAttrs{LinkIndex: n.ifindex, Handle: plainRootHandle, Parent: netlink.HANDLE_ROOT})
	q.Defcls = 1
	if err := h.QdiscReplace(q); err != nil {
		undo()
		return nil, fmt.Errorf("htb on %s: %w", n.host, err)
	}
	c := netlink.NewHtbClass(netlink.ClassAttrs{LinkIndex: n.ifindex, Parent: plainRootHandle, Handle: netlink.MakeHandle(1, 1)},
		netlink.HtbClassAttrs{Rate: n.linkBits, Ceil: n.linkBits, Quantum: 200000})
	if err := h.ClassReplace(c); err != nil {
		undo()
		return nil, fmt.Errorf("htb class 1:1 at %d bit/s on %s: %w", n.linkBits, n.host, err)
	}
	return undo, nil
}

// netShape is what is on the host veth's egress during a window.
type netShape struct {
	Root       string // the root qdisc's kind and handle, e.g. "htb 1:"
	Classes    int    // htb classes
	Classifier string // "tcx" or "clsact" when netqos's classifier is attached, else ""
}

func (n *benchNet) inspect() (netShape, error) {
	var s netShape
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return s, err
	}
	defer h.Close()
	l, err := h.LinkByIndex(n.ifindex)
	if err != nil {
		return s, fmt.Errorf("veth %s: %w", n.host, err)
	}
	qs, err := h.QdiscList(l)
	if err != nil {
		return s, err
	}
	for _, q := range qs {
		if q.Attrs().Parent == netlink.HANDLE_ROOT {
			s.Root = fmt.Sprintf("%s %x:", q.Type(), q.Attrs().Handle>>16)
		}
	}
	if cs, err := h.ClassList(l, netlink.HANDLE_NONE); err == nil {
		for _, c := range cs {
			if c.Type() == "htb" {
				s.Classes++
			}
		}
	}
	if res, err := link.QueryPrograms(link.QueryOptions{Target: n.ifindex, Attach: ebpf.AttachTCXEgress}); err == nil {
		for _, p := range res.Programs {
			if prog, err := ebpf.NewProgramFromID(p.ID); err == nil {
				info, err := prog.Info()
				prog.Close()
				if err == nil && info.Name == netProgName {
					s.Classifier = "tcx"
				}
			}
		}
	}
	if fs, err := h.FilterList(l, netlink.HANDLE_MIN_EGRESS); err == nil {
		for _, f := range fs {
			if bf, ok := f.(*netlink.BpfFilter); ok && strings.HasPrefix(bf.Name, netProgName) {
				s.Classifier = "clsact"
			}
		}
	}
	return s, nil
}

// netConfig gives Strata's configuration the benchmark's uplink and the
// pools' network profiles, as docs/netqos.md's example sets them for a
// node whose online traffic must not wait behind batch's: the LC pool
// (latency-critical) a guaranteed 30 % of the link at the first borrowing
// priority; batch 5 % guaranteed, its ceiling the whole link (an idle
// link is batch's to use: a static 40 % ceiling, as in the example, would
// only cost batch throughput the LC service does not need here), and the
// dynamic ceiling with its defaults (watermark 30 %, throttled to 10 %)
// for when the pools above it send a lot.
func netConfig(cfg *isolation.Config, iface string, linkBits uint64) {
	cfg.Network = isolation.NetworkConfig{Interface: iface, Link: strconv.FormatUint(linkBits, 10)}
	for i := range cfg.Pools {
		switch cfg.Pools[i].Priority {
		case 0:
			cfg.Pools[i].Profile.Net = isolation.NetProfile{Rate: "30%"}
		case 2:
			cfg.Pools[i].Profile.Net = isolation.NetProfile{Rate: "5%", Throttle: &isolation.NetThrottle{}}
		}
	}
}

// netBlast is the network antagonist: bulk TCP to the sink, 256 KiB
// writes; one operation is one byte sent (accepted by the kernel: in
// steady state the socket's buffer is full at both ends of a window, so
// the difference is what left).
func netBlast(ops *atomic.Uint64) {
	c, err := net.DialTimeout("tcp", os.Getenv(netSinkEnv), 5*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, "network blaster:", err)
		os.Exit(1)
	}
	buf := make([]byte, 256<<10)
	for {
		k, err := c.Write(buf)
		ops.Add(uint64(k))
		if err != nil {
			fmt.Fprintln(os.Stderr, "network blaster:", err)
			os.Exit(1)
		}
	}
}

// onInterrupt runs f and exits 130 on SIGINT or SIGTERM, until the
// returned stop is called.
func onInterrupt(f func()) (stop func()) {
	c := make(chan os.Signal, 1)
	done := make(chan struct{})
	signal.Notify(c, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		select {
		case sig := <-c:
			fmt.Fprintf(os.Stderr, "colocation: %s: removing the benchmark's network and children\n", sig)
			f()
			os.Exit(130)
		case <-done:
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			signal.Stop(c)
			close(done)
		})
	}
}

// killChildren kills this process's children (the benchmark's roles and
// Strata's plugin), found by their parent pid in /proc.
func killChildren() {
	me := os.Getpid()
	var kids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so cut at the last ')'.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 {
			if ppid, _ := strconv.Atoi(f[1]); ppid == me && pid != me {
				kids = append(kids, pid)
			}
		}
	}
	// SIGTERM first, so the plugin removes what it installed.
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		for _, pid := range kids {
			_ = syscall.Kill(pid, sig)
		}
		time.Sleep(time.Second)
	}
}
