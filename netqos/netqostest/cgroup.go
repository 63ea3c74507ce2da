package netqostest

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/internal/testutil"
)

// senderEnv makes a test binary that imports this package a sender (see
// SendFromCgroup) instead of running its tests.
const senderEnv = "STRATA_NETQOSTEST_SEND"

func init() {
	if os.Getenv(senderEnv) == "" {
		return
	}
	if err := send(os.Getenv("STRATA_NETQOSTEST_NETNS"), os.Getenv("STRATA_NETQOSTEST_SRC"), os.Getenv("STRATA_NETQOSTEST_DST")); err != nil {
		fmt.Fprintln(os.Stderr, "netqostest sender:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// send enters the namespace at nsPath, connects from src to dst and
// sends until the connection breaks.
func send(nsPath, src, dst string) error {
	runtime.LockOSThread()
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return err
	}
	if err := netns.Set(ns); err != nil {
		return err
	}
	d := net.Dialer{Timeout: 3 * time.Second}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	c, err := d.Dial("tcp", dst)
	if err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	for {
		if _, err := c.Write(buf); err != nil {
			return nil
		}
	}
}

// SendFromCgroup starts a process in cg (its sockets carry cg's cgroup
// id, as a host-network container's do) that enters n, connects from
// local address src ("" lets the kernel choose; see AddAddr) to dst and
// sends until the test ends or stop is called. The process is the test
// binary itself, which turns into the sender on start.
func SendFromCgroup(t testing.TB, cg *cgroup.Cgroup, n *Netns, src, dst string) (stop func()) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// Through sh rather than env(1), which a minimal guest may lack.
	cmd := testutil.StartInCgroup(t, cg, "/bin/sh", "-c",
		`export `+senderEnv+`=1 STRATA_NETQOSTEST_NETNS="$1" STRATA_NETQOSTEST_SRC="$2" STRATA_NETQOSTEST_DST="$3"; exec "$0"`,
		self, n.Path, src, dst)
	return func() { _ = cmd.Process.Kill() }
}

// AddAddr adds address addr (/32) to interface ifname in n, so that
// senders sharing the namespace can be told apart by source address.
func (n *Netns) AddAddr(t testing.TB, ifname, addr string) {
	t.Helper()
	l, err := n.NL.LinkByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	a, err := netlink.ParseAddr(addr + "/32")
	if err != nil {
		t.Fatal(err)
	}
	if err := n.NL.AddrAdd(l, a); err != nil {
		t.Fatalf("address %s on %s in %s: %v", addr, ifname, n.Name, err)
	}
}
