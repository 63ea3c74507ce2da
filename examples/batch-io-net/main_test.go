package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/strata-nri/strata/examples/internal/cgexec"
	"github.com/strata-nri/strata/internal/testutil"
)

func TestBadFlags(t *testing.T) {
	cgexec.CheckArgErrors(t, func(args []string) error { _, err := parse(args); return err }, []cgexec.ArgError{
		{Args: []string{"--read", "fast", "--", "true"}, Want: `--read "fast"`},
		{Args: []string{"--write", "-1Mi", "--", "true"}, Want: `--write "-1Mi"`},
		{Args: []string{"--read", "1Mi", "--", "true"}, Want: "need --device"},
		{Args: []string{"--egress", "10X", "--", "true"}, Want: "10X"},
		{Args: []string{"--link", "1G", "--egress", "2G", "--", "true"}, Want: "exceeds --link"},
		{Args: []string{"--device", "/"}, Want: "name a command"},
	})
	o, err := parse([]string{"--device", "/", "--read", "20Mi", "--iface", "eth0", "--egress", "100M", "--", "true"})
	if err != nil || o.readBPS != 20<<20 || o.egress.String() != "100Mbit" {
		t.Errorf("good flags: %+v, %v", o, err)
	}
}

// On the real kernel: the limits are in place while the command runs (it
// reads its own cgroup's view through the kernel) and gone after.
func TestKernelBatchIONet(t *testing.T) {
	testutil.RequireRoot(t)
	name := fmt.Sprintf("sbx%d", os.Getpid()%10000)
	if out, err := exec.Command("ip", "link", "add", name, "type", "veth", "peer", "name", name+"p").CombinedOutput(); err != nil {
		t.Fatalf("ip link add: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", name).Run() })
	if out, err := exec.Command("ip", "link", "set", name, "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set up: %v: %s", err, out)
	}
	var out bytes.Buffer
	// While the command runs, the interface carries the HTB tree.
	err := run([]string{"--device", t.TempDir(), "--read", "5Mi", "--iface", name, "--link", "100M", "--egress", "10M",
		"--", "tc", "class", "show", "dev", name}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{"read 5242880 B/s", "ceiling 10Mbit", "class htb", "ceil 10Mbit", "class 20:"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	after, _ := exec.Command("tc", "qdisc", "show", "dev", name).CombinedOutput()
	if strings.Contains(string(after), "htb") {
		t.Errorf("HTB tree left on %s after the run:\n%s", name, after)
	}
}
