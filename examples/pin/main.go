// Command pin gives a command CPUs of its own: whole cores on one NUMA node
// where they fit, with that node's memory, in a cgroup of its own — what
// Strata's latency-critical pool does for a container, done by hand with
// the cpuset and cgroup packages.
//
//	sudo go run ./examples/pin --cpus 2 -- ./my-service --flag
//	go run ./examples/pin --cpus 4 --machine intel-2s-20c-2t   # plan only, on a modelled machine
//
// Without a command it prints the CPUs and memory nodes it would use. With
// one (root), it creates cgroup strata-example/pin-<pid>, sets its cpuset,
// starts the command inside it, waits for it, and removes the cgroup.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	kcpuset "k8s.io/utils/cpuset"

	"github.com/strata-nri/strata/cpuset"
	"github.com/strata-nri/strata/cpuset/cpusettest"
	"github.com/strata-nri/strata/examples/internal/cgexec"
)

func main() { cgexec.Main("pin", run) }

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("pin", flag.ContinueOnError)
	n := fs.Int("cpus", 1, "how many CPUs")
	reserved := fs.String("reserved", "", "CPUs never to use (Linux list, e.g. 0)")
	spread := fs.Bool("spread", false, "one thread per physical core")
	machine := fs.String("machine", "host", `"host" (this machine's /sys) or a named shape to plan on`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 || *n > 8192 {
		return fmt.Errorf("--cpus %d: want 1..8192", *n)
	}
	res, err := kcpuset.Parse(*reserved)
	if err != nil {
		return fmt.Errorf("--reserved %q: %w", *reserved, err)
	}
	sysfs := "/sys"
	if *machine != "host" {
		shape, ok := cpusettest.All()[*machine]
		if !ok {
			names := make([]string, 0)
			for k := range cpusettest.All() {
				names = append(names, k)
			}
			sort.Strings(names)
			return fmt.Errorf("--machine %q: want host or one of %s", *machine, strings.Join(names, ", "))
		}
		if fs.NArg() > 0 {
			return errors.New("a command runs only with --machine host")
		}
		dir, err := os.MkdirTemp("", "pin-sysfs-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if err := cpusettest.WriteSysfs(dir, shape); err != nil {
			return err
		}
		sysfs = dir
	}
	topo, err := cpuset.Discover(sysfs)
	if err != nil {
		return err
	}
	alloc, err := cpuset.NewAllocator(topo, cpuset.AllocatorOptions{Reserved: res})
	if err != nil {
		return err
	}
	cpus, err := alloc.TakeExclusive(*n, cpuset.TakeOptions{Spread: *spread})
	if err != nil {
		return err
	}
	mems := topo.MemsFor(cpus)
	fmt.Fprintf(out, "CPUs %s, memory nodes %s (machine: %d CPUs on %d NUMA nodes)\n", cpus, mems, topo.Online().Size(), len(topo.NUMANodes()))
	if fs.NArg() == 0 {
		return nil
	}

	_, cg, err := cgexec.NewCgroup("pin")
	if err != nil {
		return err
	}
	defer cg.Remove()
	if err := cg.SetCPUSetCPUs(cpus); err != nil {
		return err
	}
	if err := cg.SetCPUSetMems(mems); err != nil {
		return err
	}
	cmd, err := cgexec.StartCommand(cg, fs.Args(), out)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "started %s as pid %d in %s\n", fs.Arg(0), cmd.Process.Pid, cg.Path())
	return cmd.Wait()
}
