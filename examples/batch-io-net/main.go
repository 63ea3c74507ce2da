// Command batch-io-net runs a command as a well-behaved batch job: its
// block IO on one device throttled (iolimit: blkio throttle on cgroup v1,
// io.max on v2) and its egress on one interface held under a ceiling
// (netqos: an HTB class, packets classified by the cgroup id in eBPF).
//
//	sudo go run ./examples/batch-io-net --device /var/lib/data --read 20Mi --write 10Mi \
//	    --iface eth0 --link 10G --egress 1G -- ./etl-job
//
// It creates a cgroup, applies both limits, runs the command in it, prints
// the class's traffic when the command ends, and removes everything it set
// up (the cgroup, the HTB tree and the classifier).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/strata-nri/strata/examples/internal/cgexec"
	"github.com/strata-nri/strata/iolimit"
	"github.com/strata-nri/strata/netqos"
)

func main() { cgexec.Main("batch-io-net", run) }

type options struct {
	device            string
	readBPS, writeBPS uint64
	iface             string
	link, egress      netqos.Rate
	argv              []string
}

func parse(args []string) (options, error) {
	fs := flag.NewFlagSet("batch-io-net", flag.ContinueOnError)
	device := fs.String("device", "", "a path on the filesystem (or the block device) whose disk to throttle; empty: no IO limit")
	read := fs.String("read", "0", "read bytes per second on that disk (quantity: 20Mi; 0: unlimited)")
	write := fs.String("write", "0", "write bytes per second on that disk (0: unlimited)")
	iface := fs.String("iface", "", "interface whose egress to shape; empty: no network limit")
	link := fs.String("link", "1G", "the interface's capacity in bits/s (quantity: 1G, 10G)")
	egress := fs.String("egress", "100M", "the job's egress ceiling on --iface, bits/s")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	o := options{device: *device, iface: *iface}
	var err error
	if o.readBPS, err = bytesPerSecond("--read", *read); err != nil {
		return o, err
	}
	if o.writeBPS, err = bytesPerSecond("--write", *write); err != nil {
		return o, err
	}
	if o.link, err = netqos.ParseRate("--link", *link); err != nil {
		return o, err
	}
	if o.egress, err = netqos.ParseRate("--egress", *egress); err != nil {
		return o, err
	}
	if o.egress > o.link {
		return o, fmt.Errorf("--egress %s exceeds --link %s", o.egress, o.link)
	}
	if o.device == "" && (o.readBPS > 0 || o.writeBPS > 0) {
		return o, errors.New("--read/--write need --device")
	}
	o.argv, err = cgexec.Argv(fs)
	return o, err
}

func bytesPerSecond(flag, s string) (uint64, error) {
	n, err := cgexec.Quantity(flag, s)
	return uint64(n), err
}

func run(args []string, out io.Writer) error {
	o, err := parse(args)
	if err != nil {
		return err
	}
	_, cg, err := cgexec.NewCgroup("batch")
	if err != nil {
		return err
	}
	defer cg.Remove()

	if o.device != "" {
		l := iolimit.New(iolimit.Options{})
		dev, err := l.Resolver().ByPath(o.device)
		if err != nil {
			return err
		}
		if _, err := l.Apply(cg, iolimit.Settings{Limits: []iolimit.Limit{{Device: dev.Num, ReadBPS: o.readBPS, WriteBPS: o.writeBPS}}}); err != nil {
			return err
		}
		fmt.Fprintf(out, "IO on %s (%s): read %d B/s, write %d B/s (0: unlimited)\n", dev.Name, dev.Num, o.readBPS, o.writeBPS)
	}
	var tree *netqos.Tree
	if o.iface != "" {
		const batchClass, otherClass = 20, 30
		tree, err = netqos.NewTree(netqos.TreeConfig{
			Interface: o.iface, Link: o.link, Default: otherClass,
			Classes: []netqos.ClassSpec{
				{ID: batchClass, Rate: min(o.egress, o.link/10), Ceil: o.egress, Prio: 1},
				{ID: otherClass, Rate: o.link - min(o.egress, o.link/10), Ceil: o.link, Prio: 0},
			},
		})
		if err != nil {
			return err
		}
		defer tree.Close()
		id, err := cg.ID()
		if err != nil {
			return err
		}
		if err := tree.ClassifyCgroup(id, batchClass); err != nil {
			return err
		}
		fmt.Fprintf(out, "egress on %s: ceiling %s for cgroup id %d\n", o.iface, o.egress, id)
	}

	cmd, err := cgexec.StartCommand(cg, o.argv, out)
	if err != nil {
		return err
	}
	werr := cmd.Wait()
	if tree != nil {
		if stats, err := tree.Stats(nil); err == nil {
			for _, s := range stats {
				fmt.Fprintf(out, "class %d: %d bytes, %d packets, %d drops\n", s.ID, s.Bytes, s.Packets, s.Drops)
			}
		}
	}
	return werr
}
