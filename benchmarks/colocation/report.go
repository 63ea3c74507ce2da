package main

import (
	"fmt"
	"strings"
)

// Markdown renders the report as tables, one per load level, with the
// run's conditions above them.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Colocation run %s: %d CPUs, kernel %s, cgroup %s; load average at start %s, at end %s.\n",
		r.Started.Format("2006-01-02 15:04 UTC"), r.CPUs, r.Kernel, r.CgroupMode, r.LoadAvg, r.LoadAvgEnd)
	if r.CapacityRPS > 0 {
		fmt.Fprintf(&b, "LC capacity alone %.0f req/s; %s measured per scenario after a %s warm-up under the same load, %d repeats interleaved. "+
			"The load generator runs in the benchmark's own process, outside every scenario's cgroups, on the same CPUs.\n",
			r.CapacityRPS, r.Options.Duration, r.Options.Warmup, r.Options.Repeats)
	}
	if r.Options.Net {
		fmt.Fprintf(&b, "Network (-net): the load generator connects from a network namespace of the benchmark's over a veth to the LC service on the host side; "+
			"a network blaster in batch sends bulk TCP from the host to a sink in the namespace over the same veth, whose host-side egress is capped at %.0f Mbit/s "+
			"(a plain htb with one class and one FIFO outside Strata, Strata's netqos in its scenarios).\n", float64(r.Options.NetLink)/1e6)
	}
	var levels []string
	seen := map[string]bool{}
	for _, x := range r.Results {
		if !seen[x.Level] {
			seen[x.Level] = true
			levels = append(levels, x.Level)
		}
	}
	for _, lv := range levels {
		if lv == "–" {
			fmt.Fprintf(&b, "\nBatch alone (no LC service):\n\n")
		} else {
			fmt.Fprintf(&b, "\nLC load %s of capacity:\n\n", lv)
		}
		b.WriteString("| scenario | LC req/s | LC p50 ms | LC p99 ms | p99 range over repeats | LC p99.9 ms | p99 / alone | LC errors | batch CPU ops/s | / alone | batch mem MiB/s | / alone | batch disk MiB/s | / alone | batch net Mbit/s | / alone | LC cpuset CPUs | LC cores | batch cores | node CPU | updates refused |\n")
		b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, x := range r.Results {
			if x.Level != lv {
				continue
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.0f %% | %s |\n", x.Scenario,
				num(x.OfferedRPS, "%.0f"), num(x.P50, "%.2f"), num(x.P99, "%.2f"), rng(x), num(x.P999, "%.2f"), num(x.P99Ratio, "%.2f"),
				errs(x), num(x.CPUWork, "%.0f"), num(x.CPUWorkRatio, "%.2f"),
				num(x.MemWork, "%.0f"), num(x.MemWorkRatio, "%.2f"), num(x.DiskWork, "%.0f"), num(x.DiskWorkRatio, "%.2f"),
				num(x.NetWork, "%.1f"), num(x.NetWorkRatio, "%.2f"), num(x.LCCPUs, "%.2f"),
				num(x.LCUsage, "%.2f"), num(x.BatchUsage, "%.2f"), 100*x.NodeUtil, refused(x))
		}
	}
	if len(r.Notes) > 0 {
		b.WriteString("\nUpdates the runtime stand-in refused (writing as runc does):\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	if len(r.Reaction) > 0 {
		b.WriteString("\n" + reactionMarkdown(r.Reaction))
	}
	if len(r.Overhead) > 0 {
		b.WriteString("\n" + overheadMarkdown(r.Overhead))
	}
	return b.String()
}

func num(v float64, f string) string {
	if v == 0 {
		return "–"
	}
	return fmt.Sprintf(f, v)
}

func errs(x Result) string {
	if x.Sent == 0 {
		return "–"
	}
	return fmt.Sprintf("%d / %d", x.Errors, x.Sent)
}

func refused(x Result) string {
	if scenarioByName(x.Scenario) == nil || scenarioByName(x.Scenario).Strata == 0 {
		return "–"
	}
	return fmt.Sprint(x.UpdateFailures)
}

func rng(x Result) string {
	if x.P99Max == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f–%.1f", x.P99Min, x.P99Max)
}
