package nriplugin

import "github.com/strata-nri/strata/isolation"

// zeroPoolSeries creates every per-pool counter series at 0 for the
// configured pools, so dashboards and alerts see "0 so far" rather than
// no data: rate() over a series that does not exist yet is empty, and a
// first increment would otherwise be lost to it.
func (m *Metrics) zeroPoolSeries(cfg *isolation.Config) {
	kinds := []isolation.ActionKind{isolation.ActionRelease, isolation.ActionPreempt, isolation.ActionCPUDowngrade,
		isolation.ActionReclaimPageCache, isolation.ActionEvict, isolation.ActionSuspend}
	for _, pc := range cfg.Pools {
		m.resizes.WithLabelValues(pc.Name)
		m.bandViolations.WithLabelValues(pc.Name, "below")
		m.bandViolations.WithLabelValues(pc.Name, "above")
		for _, k := range kinds {
			m.actions.WithLabelValues(string(k), pc.Name)
		}
	}
	for _, r := range []string{"ok", "failed", "error", "dropped", "disconnected"} {
		m.updates.WithLabelValues(r)
	}
	for _, r := range []string{"ok", "failed"} {
		m.connects.WithLabelValues(r)
	}
	for i := range settings {
		m.drift.WithLabelValues(settings[i].name)
	}
}
