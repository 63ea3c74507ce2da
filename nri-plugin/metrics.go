package nriplugin

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the plugin's Prometheus metrics, in a registry of their own
// so that a library user embedding the plugin decides what to expose.
type Metrics struct {
	Registry *prometheus.Registry

	poolCPUs       *prometheus.GaugeVec
	poolLoad       *prometheus.GaugeVec
	poolRCF        *prometheus.GaugeVec
	poolMembers    *prometheus.GaugeVec
	poolLevel      *prometheus.GaugeVec
	poolRunQueue   *prometheus.GaugeVec // sample_bpf.go
	bandViolations *prometheus.CounterVec
	resizes        *prometheus.CounterVec
	actions        *prometheus.CounterVec
	batchCapacity  prometheus.Gauge
	handler        *prometheus.HistogramVec
	loopDuration   prometheus.Histogram
	updateLatency  prometheus.Histogram
	updates        *prometheus.CounterVec
	admissions     *prometheus.CounterVec
	connects       *prometheus.CounterVec
	sampleSkipped  prometheus.Counter
	drift          *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them with a new registry.
func NewMetrics() *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry()}
	pool := []string{"pool"}
	m.poolCPUs = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "strata", Name: "pool_cpus", Help: "CPUs held by the pool (shared and exclusive)."}, append(pool, "kind"))
	m.poolLoad = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "strata", Name: "pool_load_ratio", Help: "Pool CPU load: usage of shared members over the pool's shared CPUs."}, pool)
	m.poolRCF = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "strata", Name: "pool_rcf_ratio", Help: "Resource configuration factor: pool size over its members' requests."}, pool)
	m.poolMembers = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "strata", Name: "pool_members", Help: "Containers in the pool."}, pool)
	m.poolLevel = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "strata", Name: "pool_protection_level", Help: "Active protection level index (-1: none)."}, pool)
	m.bandViolations = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "strata", Name: "pool_band_violations_total", Help: "Periods in which the pool's load was outside its band."}, append(pool, "side"))
	m.resizes = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "strata", Name: "pool_resizes_total", Help: "Pool cpuset resizes."}, pool)
	m.actions = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "strata", Name: "actions_total", Help: "Protection actions by kind."}, []string{"kind", "pool"})
	m.batchCapacity = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "strata", Name: "batch_capacity_cpus", Help: "Batch capacity view: node CPUs minus online usage minus watermark."})
	m.handler = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "strata", Name: "nri_handler_seconds", Help: "NRI event handler latency.",
		Buckets: []float64{25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 10e-3, 50e-3, 0.25, 1}}, []string{"event"})
	m.loopDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "strata", Name: "loop_duration_seconds", Help: "Feedback loop period: sample, decide, dispatch.",
		Buckets: []float64{100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 100e-3}})
	m.updateLatency = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "strata", Name: "nri_update_seconds", Help: "Latency of unsolicited UpdateContainers calls.",
		Buckets: []float64{1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 1}})
	m.updates = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "strata", Name: "container_updates_total", Help: "Container updates sent to the runtime, by result."}, []string{"result"})
	m.admissions = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "strata", Name: "admissions_total", Help: "Container admissions by pool and result."}, []string{"pool", "result"})
	m.connects = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "strata", Name: "runtime_connects_total", Help: "Connections to the runtime's NRI socket, by result."}, []string{"result"})
	m.sampleSkipped = prometheus.NewCounter(prometheus.CounterOpts{Namespace: "strata", Name: "sample_skipped_total", Help: "Containers skipped by the sampler (cgroup vanished or unreadable)."})
	m.drift = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "strata", Name: "drift_repairs_total", Help: "Settings found changed behind Strata's back in a container's cgroup and re-applied, by setting."}, []string{"setting"})
	m.poolRunQueue = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "strata", Name: "pool_run_queue_delay_seconds", Help: "Worst shared member's run-queue delay this period, by quantile (0.5, 0.99); 0 without the eBPF scheduler probe."}, append(pool, "quantile"))
	m.Registry.MustRegister(m.poolRunQueue)
	m.Registry.MustRegister(m.drift, m.poolCPUs, m.poolLoad, m.poolRCF, m.poolMembers, m.poolLevel, m.bandViolations, m.resizes, m.actions,
		m.batchCapacity, m.handler, m.loopDuration, m.updateLatency, m.updates, m.admissions, m.connects, m.sampleSkipped,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
