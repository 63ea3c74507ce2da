package main

import (
	"fmt"
	"strings"
)

// Markdown renders the report as a table with the run's conditions above
// it.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Colocation run %s: %d CPUs, kernel %s, cgroup %s, load average at start %s.\n",
		r.Started.Format("2006-01-02 15:04 UTC"), r.CPUs, r.Kernel, r.CgroupMode, r.LoadAvg)
	fmt.Fprintf(&b, "LC capacity alone %.0f req/s; offered %.0f req/s (%.0f %%), %s per scenario, %d repeats interleaved.\n\n",
		r.CapacityRPS, r.OfferedRPS, 100*r.Options.Load, r.Options.Duration, r.Options.Repeats)
	b.WriteString("| scenario | LC p50 ms | LC p99 ms | LC p99.9 ms | p99 / alone | LC errors | batch CPU ops/s | / alone | batch mem MiB/s | / alone | node CPU |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, x := range r.Results {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.0f %% |\n", x.Scenario,
			num(x.P50, "%.2f"), num(x.P99, "%.2f"), num(x.P999, "%.2f"), num(x.P99Ratio, "%.2f"),
			errs(x), num(x.CPUWork, "%.0f"), num(x.CPUWorkRatio, "%.2f"),
			num(x.MemWork, "%.0f"), num(x.MemWorkRatio, "%.2f"), 100*x.NodeUtil)
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
