package isolation

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"sigs.k8s.io/yaml"
)

// Config is the controller's whole configuration. It is read from YAML
// (LoadConfig, ParseConfig) and checked by Validate; DefaultConfig returns
// LAR's three-pool layout.
type Config struct {
	// Period is the loop period: how often the plugin observes and calls
	// Decide. Durations in this configuration (ShrinkInterval, cooldowns,
	// predictor half-life) are wall-clock times, independent of Period.
	Period Duration `json:"period"`
	// ReservedCPUs are kept for the system (kubelet, containerd, the
	// plugin) and are never part of any pool. Linux list format: "0-1,64".
	ReservedCPUs string `json:"reservedCPUs,omitempty"`
	// Pools, in any order; Priority orders them (0 is the highest).
	Pools []PoolConfig `json:"pools"`
	// Classification chooses each new container's pool.
	Classification ClassificationConfig `json:"classification"`
	// Resize limits how fast pools grow and shrink.
	Resize ResizeConfig `json:"resize"`
	// Predictor predicts each pool's peak usage from its history.
	Predictor PredictorConfig `json:"predictor"`
	// Protection holds the escalating protection levels.
	Protection ProtectionConfig `json:"protection"`
	// Batch configures the batch capacity view and its watermark.
	Batch BatchConfig `json:"batch"`
	// Colocation is the node switch that turns batch work off.
	Colocation ColocationConfig `json:"colocation"`
	// Network shapes the uplink per pool (netqos); empty: off.
	Network NetworkConfig `json:"network,omitempty"`
}

// PoolConfig describes one pool.
type PoolConfig struct {
	// Name identifies the pool in annotations, rules, logs and metrics.
	Name string `json:"name"`
	// Priority: 0 is the highest. Unique per pool. The pool with the largest
	// number is the lowest pool: it holds every CPU nobody else needs.
	Priority int `json:"priority"`
	// Band is the target CPU load (usage ÷ pool CPUs) as fractions in (0, 1].
	Band Band `json:"band"`
	// RCF bounds the pool's size relative to its members' CPU requests:
	// RCF.Min × requests ≤ shared CPUs ≤ RCF.Max × requests. Ignored for the
	// lowest pool, whose size is whatever is left.
	RCF RCFBounds `json:"rcf"`
	// ExclusiveCores lets members whose CPU request is a whole number of
	// CPUs have CPUs of their own (taken out of the shared set, never moved
	// while the container runs).
	ExclusiveCores bool `json:"exclusiveCores,omitempty"`
	// MinCPUs is a floor for the pool's shared CPUs while it has members;
	// 0 means 1 CPU. For the lowest (batch) pool it is the batch minimum,
	// kept while colocation is on, members or not; 0 lets batch lend its
	// last CPU to a busy higher pool, its members then borrowing (see the
	// package documentation).
	MinCPUs int `json:"minCPUs,omitempty"`
	// Allow is the admission allow-list. An empty list admits the pods
	// that classification rules place here, and annotations that do not
	// promote a pod above the pool its rules give it (see Classify).
	Allow AllowList `json:"allow,omitempty"`
	// Profile holds the per-dimension isolation settings of members.
	Profile Profile `json:"profile"`
}

// Band is a target load band, fractions of the pool's CPUs.
type Band struct {
	// Low: below it the pool releases CPUs (fraction, 0 < low < high).
	Low float64 `json:"low"`
	// High: above it the pool grows (fraction, at most 1).
	High float64 `json:"high"`
}

// Mid is the band's centre, the load a resize aims at.
func (b Band) Mid() float64 { return (b.Low + b.High) / 2 }

// RCFBounds bound the Resource Configuration Factor.
type RCFBounds struct {
	// Min: the least share of requests the pool keeps, in (0, max].
	Min float64 `json:"min"`
	// Max: the most share of requests the pool may hold, in [min, 1].
	Max float64 `json:"max"`
}

// AllowList admits a pod to a pool when its namespace matches one of
// Namespaces (exact or shell pattern; empty: any namespace) and its labels
// contain every entry of Labels (empty: no label needed). Both empty:
// everyone is admitted.
type AllowList struct {
	// Namespaces admitted: exact names or shell patterns ("pay-*").
	Namespaces []string `json:"namespaces,omitempty"`
	// Labels every admitted pod must carry, with these values.
	Labels map[string]string `json:"labels,omitempty"`
}

// Empty reports whether the list names no namespace or label: the pool then
// admits by rules, and by annotation only without promotion.
func (a AllowList) Empty() bool { return len(a.Namespaces) == 0 && len(a.Labels) == 0 }

// Profile is the isolation profile of a pool's members, one field per
// dimension. Pool-level dimensions (RDT, block IO, network) add further
// fields of their own types, each validated from validateDimensions (see
// dimensions.go), so none of the existing ones change.
type Profile struct {
	// CPU sets the members' CPU weight, quota and idle scheduling.
	CPU CPUProfile `json:"cpu"`
	// OOMScoreAdj, when set, overrides the container's oom_score_adj
	// (-1000..1000).
	OOMScoreAdj *int `json:"oomScoreAdj,omitempty"`
	// Memory sets the members' memory protection and thresholds.
	Memory MemoryProfile `json:"memory"`
	// PageCache is the members' page-cache policy.
	PageCache PageCacheProfile `json:"pageCache"`
	// RDT is the pool's L3 cache and memory bandwidth share (resctrl).
	RDT RDTProfile `json:"rdt,omitempty"`
	// IO is the pool's block IO weight, limits and protection (iolimit).
	IO IOProfile `json:"io,omitempty"`
	// Net is the pool's class on the uplink (netqos).
	Net NetProfile `json:"net,omitempty"`
}

// CPUProfile: everything CPU except the cpuset, which the controller owns.
type CPUProfile struct {
	// Shares: 0 keeps the kubelet's value (derived from the request);
	// otherwise a fixed cpu.shares value, 2..262144.
	Shares uint64 `json:"shares,omitempty"`
	// Quota: "keep" (default) keeps the container's limit, "unlimited"
	// removes CFS quota — inside a pool the cpuset already bounds it.
	Quota QuotaPolicy `json:"quota,omitempty"`
	// Idle puts members under SCHED_IDLE-like cgroup idle scheduling
	// (cpu.idle), so they only run when nothing else wants the CPU.
	Idle bool `json:"idle,omitempty"`
}

// QuotaPolicy is CPUProfile.Quota.
type QuotaPolicy string

// Quota policies.
const (
	QuotaKeep      QuotaPolicy = "keep"
	QuotaUnlimited QuotaPolicy = "unlimited"
)

// MemoryProfile sets memory protection. Each field is a MemoryPolicy.
type MemoryProfile struct {
	// Min (v2 memory.min): hard protection from reclaim.
	Min MemoryPolicy `json:"min,omitempty"`
	// Low (v2 memory.low): best-effort protection from reclaim.
	Low MemoryPolicy `json:"low,omitempty"`
	// High (v2 memory.high): throttle-and-reclaim threshold.
	High MemoryPolicy `json:"high,omitempty"`
	// SoftLimit (v1 memory.soft_limit_in_bytes).
	SoftLimit MemoryPolicy `json:"softLimit,omitempty"`
}

// MemoryPolicy says where a memory value comes from: "none" (default: no
// protection / no threshold), "request" (the container's memory request),
// "limit" (its limit), or a percentage of the limit such as "90%".
type MemoryPolicy string

// PageCacheProfile is the page-cache policy of members.
type PageCacheProfile struct {
	// Reclaimable allows protection levels to reclaim members' page cache
	// when a pool is under memory pressure. Pool 0 usually says false.
	Reclaimable bool `json:"reclaimable,omitempty"`
}

// ClassificationConfig chooses a pool for a new container. In order: the
// pool annotation, namespace rules, the Kubernetes QoS class, the default.
type ClassificationConfig struct {
	// Annotation is the pod annotation naming a pool, e.g. strata.io/pool.
	Annotation string `json:"annotation"`
	// Namespaces: rules sending the pods of a namespace to a pool; the
	// first matching rule applies.
	Namespaces []NamespaceRule `json:"namespaces,omitempty"`
	// QoS maps Kubernetes QoS classes to pools; empty entries fall through.
	QoS QoSRules `json:"qos,omitempty"`
	// Default pool when nothing else matched.
	Default string `json:"default"`
	// OnDisallowed: what happens when the annotation names a pool whose
	// allow-list does not admit the pod: "refuse" (default; "" also
	// refuses) refuses the container, or the name of a fallback pool to
	// place it in.
	OnDisallowed string `json:"onDisallowed"`
}

// NamespaceRule sends pods of a namespace to a pool. Namespace may be a
// shell pattern (path.Match), e.g. "batch-*".
type NamespaceRule struct {
	// Namespace name or shell pattern.
	Namespace string `json:"namespace"`
	// Pool its pods go to.
	Pool string `json:"pool"`
}

// QoSRules map Kubernetes QoS classes to pool names.
type QoSRules struct {
	// Guaranteed: pool for pods of QoS class Guaranteed.
	Guaranteed string `json:"guaranteed,omitempty"`
	// Burstable: pool for pods of QoS class Burstable.
	Burstable string `json:"burstable,omitempty"`
	// BestEffort: pool for pods of QoS class BestEffort.
	BestEffort string `json:"bestEffort,omitempty"`
}

// ResizeConfig limits how fast pools change, so they do not flap.
type ResizeConfig struct {
	// A pool grows by at most max(MaxGrowCores, MaxGrowPercent % of its
	// shared CPUs) per period (katalyst: 10 cores).
	MaxGrowCores int `json:"maxGrowCores"`
	// MaxGrowPercent: the growth limit as a percentage of the pool's
	// shared CPUs (see MaxGrowCores).
	MaxGrowPercent float64 `json:"maxGrowPercent"`
	// A pool shrinks by at most MaxShrinkCores per step (katalyst: 2) ...
	MaxShrinkCores int `json:"maxShrinkCores"`
	// ... and only when ShrinkInterval has passed since its last resize of
	// either direction (katalyst: 30 s between ramp-downs).
	ShrinkInterval Duration `json:"shrinkInterval"`
	// Waiting grows a pool whose members wait for a CPU while its load is
	// near its band's top as if the load were above the band.
	Waiting WaitingGrowth `json:"waiting"`
}

// WaitingGrowth is the control law's second growth signal. Usage is the
// first, but a pool that shares its CPUs with work outside it (a load
// generator or system daemons in the root cgroup, other tenants' builds)
// cannot show usage above its band while its members queue for a CPU:
// its usage is capped by its share of the CPUs, and starved reads as
// idle. A pool whose load is in the top NearTop of its band and whose
// members wait (RunQueueP99 or CPUSome met) this period therefore grows
// as a pool above its band does: towards its band's middle, by at least
// one CPU, within the same RCF bounds and step limits, taking only from
// lower pools. Not applied to the lowest pool, whose members are meant
// to wait.
type WaitingGrowth struct {
	// Disabled turns the rule off: pools grow only on load above the band.
	Disabled bool `json:"disabled,omitempty"`
	// NearTop: how near its band's top a pool's load must be, as a
	// fraction of the band's width below the top, in [0, 0.5): 0.25 is
	// the band's top quarter (30–50 %: load ≥ 45 %). Below half, so that
	// a pool just resized to its band's middle is not near the top.
	NearTop float64 `json:"nearTop"`
	// RunQueueP99: the worst shared member's run-queue delay p99 this
	// period at which the pool counts as waiting, in [0, 10s]; 0: not
	// checked. Needs the scheduler probe (pressure.SchedProbe). (Never
	// omitted when written out: an absent value means the default.)
	RunQueueP99 Duration `json:"runQueueDelayP99"`
	// CPUSome: the pool's CPU PSI some avg10 (percent, 0..100) at which it
	// counts as waiting; 0: not checked. Off by default: avg10 lags a
	// step by seconds, and on cgroup v1 a pool's PSI is the node's, which
	// any waiting task raises. Ignored for a throttled pool, as in the
	// protection levels.
	CPUSome float64 `json:"cpuPSISome,omitempty"`
}

// PredictorConfig configures the peak predictor: a decaying histogram of
// each pool's usage whose Percentile is the predicted peak.
type PredictorConfig struct {
	// Disabled turns the predictor off: pools size by current usage only.
	Disabled bool `json:"disabled,omitempty"`
	// HalfLife: how fast old samples lose weight (koordlet: 12 h).
	HalfLife Duration `json:"halfLife"`
	// Percentile of the decayed usage histogram taken as the peak, (0, 1].
	Percentile float64 `json:"percentile"`
}

// ProtectionConfig holds the protection levels, lowest first.
type ProtectionConfig struct {
	// Levels, lowest first; each adds actions to those below it.
	Levels []ProtectionLevel `json:"levels"`
	// Cooldown: a pool leaves a level only after its thresholds have not
	// been met for this long.
	Cooldown Duration `json:"cooldown"`
	// ReclaimInterval: at most one page-cache reclaim per container per
	// interval. EvictInterval: at most one eviction per node per interval,
	// so each eviction's effect is seen before the next.
	ReclaimInterval Duration `json:"reclaimInterval"`
	// EvictInterval: see ReclaimInterval.
	EvictInterval Duration `json:"evictInterval"`
}

// ProtectionLevel is reached when any of its thresholds is met; it takes
// its own actions and those of every lower level.
type ProtectionLevel struct {
	// Name of the level, shown in status, logs and metrics.
	Name string `json:"name"`
	// When: the thresholds, any of which reaches the level.
	When Thresholds `json:"when"`
	// Actions the level adds, in escalation order: release, preempt,
	// cpuDowngrade, reclaimPageCache, evict.
	Actions []ActionKind `json:"actions"`
}

// Thresholds; a zero threshold is not checked.
type Thresholds struct {
	// CPULoad: pool usage ÷ pool CPUs, fraction (e.g. 0.8). Not checked
	// for the lowest pool, whose members are meant to fill its CPUs.
	CPULoad float64 `json:"cpuLoad,omitempty"`
	// MemoryUsage: node memory in use ÷ node memory, fraction.
	MemoryUsage float64 `json:"memoryUsage,omitempty"`
	// PSI avg10 values in percent (0..100), of the pool: the worst of its
	// members' own PSI, or the node's where no member has PSI of its own
	// (pure cgroup v1). CPU PSI is ignored for members and pools that are
	// throttled (it would measure their quota, not interference).
	CPUSome float64 `json:"cpuPSISome,omitempty"`
	// MemorySome: memory PSI "some" avg10, percent.
	MemorySome float64 `json:"memoryPSISome,omitempty"`
	// MemoryFull: memory PSI "full" avg10, percent.
	MemoryFull float64 `json:"memoryPSIFull,omitempty"`
	// RunQueueP99: the 99th percentile of the time the pool's members'
	// tasks waited for a CPU after becoming runnable, worst shared member,
	// this period (needs the scheduler probe, pressure.SchedProbe; without
	// it nothing is measured and the threshold is never met). Not checked
	// for the lowest pool, whose members are meant to wait.
	RunQueueP99 Duration `json:"runQueueDelayP99,omitzero"`
}

// BatchConfig configures the batch capacity view.
type BatchConfig struct {
	// Watermark is the safety margin kept off the batch capacity, as a
	// percentage of the node's pool CPUs ("10%") or cores ("8").
	Watermark Quantity `json:"watermark"`
	// Schedule overrides Watermark during times of day; where windows
	// overlap, the first one listed applies. A listed schedule replaces
	// the default night window; an empty one ([] or null) leaves none, so
	// Watermark applies all day. (Never omitted when written out: an
	// absent schedule means the default one.)
	Schedule []WatermarkWindow `json:"schedule"`
	// TimeZone of the schedule (IANA name); default UTC ("" is UTC too).
	TimeZone string `json:"timeZone"`
}

// WatermarkWindow applies Watermark from From (inclusive) to To (exclusive),
// "HH:MM" each; a window may wrap midnight ("22:00" → "06:00").
type WatermarkWindow struct {
	// From: start of the window, "HH:MM", inclusive.
	From string `json:"from"`
	// To: end of the window, "HH:MM", exclusive.
	To string `json:"to"`
	// Watermark in force during the window ("5%" or cores).
	Watermark Quantity `json:"watermark"`
}

// Quantity is a CPU amount: "10%" of the node's pool CPUs or "8"/"2.5" cores.
type Quantity string

// ColocationConfig is the node switch.
type ColocationConfig struct {
	// Disabled turns colocation off: the batch pool gets nothing.
	Disabled bool `json:"disabled,omitempty"`
	// WhenDisabled: "suspend" (default; "" suspends too) or "evict" batch
	// members.
	WhenDisabled string `json:"whenDisabled"`
}

// Duration is a time.Duration written as "1s", "500ms", "1h30m" in YAML.
type Duration struct{ time.Duration }

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads "1s"-style strings.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"1s\" or \"500ms\", got %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: want a Go duration such as \"1s\", \"500ms\", \"1h30m\"", s)
	}
	d.Duration = v
	return nil
}

func ptr[T any](v T) *T { return &v }

// Default pool names of DefaultConfig.
const (
	PoolLatencyCritical = "latency-critical"
	PoolOnline          = "online"
	PoolBatch           = "batch"
)

// DefaultConfig returns LAR's layout: three pools with bands 30–50 %,
// 45–60 % and 50–80 %; katalyst's step limits; koordinator-like protection
// thresholds; a 10 % batch watermark (5 % at night).
func DefaultConfig() *Config {
	return &Config{
		Period: Duration{time.Second},
		Pools: []PoolConfig{
			{
				Name: PoolLatencyCritical, Priority: 0,
				Band:           Band{Low: 0.30, High: 0.50},
				RCF:            RCFBounds{Min: 0.2, Max: 1.0},
				ExclusiveCores: true,
				Profile: Profile{
					CPU:    CPUProfile{Quota: QuotaKeep},
					Memory: MemoryProfile{Min: "request"},
				},
			},
			{
				Name: PoolOnline, Priority: 1,
				Band: Band{Low: 0.45, High: 0.60},
				RCF:  RCFBounds{Min: 0.1, Max: 1.0},
				Profile: Profile{
					CPU:       CPUProfile{Quota: QuotaKeep},
					Memory:    MemoryProfile{Low: "request", SoftLimit: "request"},
					PageCache: PageCacheProfile{Reclaimable: true},
				},
			},
			{
				Name: PoolBatch, Priority: 2,
				Band:    Band{Low: 0.50, High: 0.80},
				RCF:     RCFBounds{Min: 0.1, Max: 1.0},
				MinCPUs: 1,
				Profile: Profile{
					CPU:         CPUProfile{Shares: 2, Quota: QuotaKeep, Idle: true},
					OOMScoreAdj: ptr(1000),
					Memory:      MemoryProfile{High: "90%"},
					PageCache:   PageCacheProfile{Reclaimable: true},
				},
			},
		},
		Classification: ClassificationConfig{
			Annotation: "strata.io/pool",
			QoS: QoSRules{
				Guaranteed: PoolOnline,
				Burstable:  PoolOnline,
				BestEffort: PoolBatch,
			},
			Default:      PoolOnline,
			OnDisallowed: OnDisallowedRefuse,
		},
		Resize: ResizeConfig{
			MaxGrowCores: 10, MaxGrowPercent: 100,
			MaxShrinkCores: 2, ShrinkInterval: Duration{30 * time.Second},
			Waiting: WaitingGrowth{NearTop: 0.25, RunQueueP99: Duration{time.Millisecond}},
		},
		Predictor: PredictorConfig{HalfLife: Duration{time.Hour}, Percentile: 0.95},
		Protection: ProtectionConfig{
			Cooldown:        Duration{10 * time.Second},
			ReclaimInterval: Duration{10 * time.Second},
			EvictInterval:   Duration{30 * time.Second},
			Levels: []ProtectionLevel{
				{Name: "elevated", When: Thresholds{CPULoad: 0.8, MemoryUsage: 0.80, RunQueueP99: Duration{time.Millisecond}}, Actions: []ActionKind{ActionRelease, ActionPreempt}},
				{Name: "high", When: Thresholds{CPULoad: 0.95, MemoryUsage: 0.88, MemoryFull: 10, RunQueueP99: Duration{4 * time.Millisecond}}, Actions: []ActionKind{ActionCPUDowngrade, ActionReclaimPageCache}},
				{Name: "critical", When: Thresholds{MemoryUsage: 0.95, MemoryFull: 40}, Actions: []ActionKind{ActionEvict}},
			},
		},
		Batch: BatchConfig{
			Watermark: "10%",
			Schedule:  []WatermarkWindow{{From: "22:00", To: "06:00", Watermark: "5%"}},
			TimeZone:  "UTC",
		},
		Colocation: ColocationConfig{WhenDisabled: WhenDisabledSuspend},
	}
}

// OnDisallowedRefuse is ClassificationConfig.OnDisallowed's refusing value.
const OnDisallowedRefuse = "refuse"

// ColocationConfig.WhenDisabled values.
const (
	WhenDisabledSuspend = "suspend"
	WhenDisabledEvict   = "evict"
)

// LoadConfig reads and validates a YAML configuration file. Fields left out
// keep DefaultConfig's values, except lists (pools, protection levels, the
// watermark schedule), which replace the defaults as a whole when given. A
// file that lists pools must also give classification.default (and any QoS
// rules), since the default ones name the default pools.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("isolation config: %w", err)
	}
	cfg, err := ParseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("isolation config %s: %w", path, err)
	}
	return cfg, nil
}

// MaxConfigBytes bounds a configuration document. The commented default is
// a few KiB; YAML decoding costs about 150 bytes of memory per byte of
// input, so 64 KiB keeps parsing far under 50 MiB.
const MaxConfigBytes = 64 << 10

// ParseConfig parses YAML over DefaultConfig, rejects unknown fields and
// validates the result.
func ParseConfig(data []byte) (*Config, error) {
	if len(data) > MaxConfigBytes {
		return nil, fmt.Errorf("parse: configuration of %d bytes, larger than %d", len(data), MaxConfigBytes)
	}
	cfg := DefaultConfig()
	// A listed protection.levels or pools replaces the defaults rather than
	// merging element by element, which JSON decoding into a non-empty
	// slice would do.
	var probe struct {
		Pools      json.RawMessage `json:"pools"`
		Protection struct {
			Levels json.RawMessage `json:"levels"`
		} `json:"protection"`
		Batch struct {
			Schedule json.RawMessage `json:"schedule"`
		} `json:"batch"`
	}
	if err := yaml.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	if probe.Pools != nil {
		// The default classification names the default pools: start from
		// none, so a file with its own pools states its own rules.
		cfg.Pools = nil
		cfg.Classification.QoS = QoSRules{}
		cfg.Classification.Default = ""
	}
	if probe.Protection.Levels != nil {
		cfg.Protection.Levels = nil
	}
	if probe.Batch.Schedule != nil {
		cfg.Batch.Schedule = nil
	}
	if err := yaml.UnmarshalStrict(data, cfg); err != nil {
		if located := locateDecodeError(data); located != nil {
			return nil, located
		}
		return nil, fmt.Errorf("parse: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}
