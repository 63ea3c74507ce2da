package isolation

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/strata-nri/strata/cgroup"
	strcpuset "github.com/strata-nri/strata/cpuset"
	"github.com/strata-nri/strata/internal/safetext"
)

// ConfigError is one invalid field: Field is its path in the YAML document
// ("pools[1].band.low"), Value what was found, Reason what is allowed.
type ConfigError struct {
	Field  string
	Value  any
	Reason string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("%s: %v: %s", e.Field, e.Value, e.Reason)
}

// Validate checks every field and returns all problems at once, joined;
// each is a *ConfigError naming its field and the allowed values.
func (c *Config) Validate() error {
	v := &validator{}
	c.validate(v)
	if v.dropped > 0 {
		v.errs = append(v.errs, fmt.Errorf("and %d more problems", v.dropped))
	}
	return errors.Join(v.errs...)
}

type validator struct {
	errs    []error
	dropped int
}

// maxErrors bounds the problems reported at once: a document repeating
// one mistake thousands of times gets the first ones and a count.
const maxErrors = 50

func (v *validator) add(field string, value any, format string, args ...any) {
	if len(v.errs) >= maxErrors {
		v.dropped++
		return
	}
	v.errs = append(v.errs, &ConfigError{Field: field, Value: value, Reason: fmt.Sprintf(format, args...)})
}

func (c *Config) validate(v *validator) {
	v.duration("period", c.Period.Duration, MinPeriod, MaxPeriod)
	if _, err := strcpuset.ParseList(c.ReservedCPUs); err != nil {
		v.add("reservedCPUs", safetext.Quote(c.ReservedCPUs), "must be a Linux CPU list such as \"0-1,64\": %v", err)
	}

	names := c.validatePools(v)
	c.Classification.validate(v, c, names)
	c.Resize.validate(v)
	c.Predictor.validate(v)
	c.Protection.validate(v)
	c.Batch.validate(v)
	c.Network.validate(v, c)
	switch c.Colocation.WhenDisabled {
	case "", WhenDisabledSuspend, WhenDisabledEvict:
	default:
		v.add("colocation.whenDisabled", safetext.Quote(c.Colocation.WhenDisabled), "allowed: %q, %q", WhenDisabledSuspend, WhenDisabledEvict)
	}
}

// validatePools checks every pool and returns the set of pool names.
func (c *Config) validatePools(v *validator) map[string]bool {
	names := map[string]bool{}
	if len(c.Pools) < 2 || len(c.Pools) > MaxPools {
		v.add("pools", len(c.Pools), "need 2..%d pools (one or more online pools and the lowest, batch pool)", MaxPools)
	}
	prios := map[int]string{}
	lowest := -1
	for i, p := range c.Pools {
		if lowest < 0 || p.Priority > c.Pools[lowest].Priority {
			lowest = i
		}
	}
	for i, p := range c.Pools {
		f := fmt.Sprintf("pools[%d]", i)
		p.validate(v, f, i == lowest)
		if p.Name != "" && names[p.Name] {
			v.add(f+".name", safetext.Quote(p.Name), "duplicate pool name")
		}
		names[p.Name] = true
		if other, dup := prios[p.Priority]; dup {
			v.add(f+".priority", p.Priority, "already used by pool %q; priorities must be unique", other)
		}
		prios[p.Priority] = p.Name
	}
	if lowest >= 0 && c.Pools[lowest].ExclusiveCores {
		v.add(fmt.Sprintf("pools[%d].exclusiveCores", lowest), true, "the lowest pool %q holds the idle CPUs and cannot pin exclusive cores", c.Pools[lowest].Name)
	}
	return names
}

// validate checks one pool on its own; f is its field path.
func (p PoolConfig) validate(v *validator, f string, lowest bool) {
	if p.Name == "" || strings.ContainsAny(p.Name, " \t/,") {
		v.add(f+".name", safetext.Quote(p.Name), "must be a non-empty name without spaces, '/' or ','")
	} else if p.Name == OnDisallowedRefuse {
		v.add(f+".name", safetext.Quote(p.Name), "%q is reserved for classification.onDisallowed", OnDisallowedRefuse)
	}
	if p.Priority < 0 || p.Priority > MaxPriority {
		v.add(f+".priority", p.Priority, "must be in 0..%d (0 is the highest priority)", MaxPriority)
	}
	if !(p.Band.Low > 0 && p.Band.Low <= 1) {
		v.add(f+".band.low", p.Band.Low, "must be in (0, 1], a fraction of the pool's CPUs")
	}
	if !(p.Band.High > 0 && p.Band.High <= 1) {
		v.add(f+".band.high", p.Band.High, "must be in (0, 1], a fraction of the pool's CPUs")
	}
	if p.Band.Low >= p.Band.High {
		v.add(f+".band", fmt.Sprintf("%g–%g", p.Band.Low, p.Band.High), "band.low must be below band.high")
	}
	// The lowest pool holds the rest: its RCF bounds are not used and
	// may be left out.
	if !lowest || p.RCF != (RCFBounds{}) {
		if !(p.RCF.Min > 0 && p.RCF.Min <= 1) {
			v.add(f+".rcf.min", p.RCF.Min, "must be in (0, 1]")
		}
		if !(p.RCF.Max > 0 && p.RCF.Max <= 1) {
			v.add(f+".rcf.max", p.RCF.Max, "must be in (0, 1]")
		}
		if p.RCF.Min > p.RCF.Max {
			v.add(f+".rcf", fmt.Sprintf("%g–%g", p.RCF.Min, p.RCF.Max), "rcf.min must not exceed rcf.max")
		}
	}
	if p.MinCPUs < 0 || p.MinCPUs > strcpuset.MaxCPUs {
		v.add(f+".minCPUs", p.MinCPUs, "must be in 0..%d (this machine's bound is checked at start)", strcpuset.MaxCPUs)
	}
	v.listLen(f+".allow.namespaces", len(p.Allow.Namespaces))
	v.listLen(f+".allow.labels", len(p.Allow.Labels))
	for j, ns := range p.Allow.Namespaces {
		if !validPattern(ns) {
			v.add(fmt.Sprintf("%s.allow.namespaces[%d]", f, j), safetext.Quote(ns), "must be a namespace or a shell pattern such as \"team-*\"")
		}
	}
	p.Profile.validate(v, f+".profile")
}

// validate checks classification; names are the configured pools.
func (cl ClassificationConfig) validate(v *validator, c *Config, names map[string]bool) {
	allowed := poolList(c.Pools)
	poolRef := func(field, name string, optional bool) {
		if name == "" && optional {
			return
		}
		if !names[name] {
			v.add(field, safetext.Quote(name), "unknown pool; allowed: %s", allowed)
		}
	}
	if cl.Annotation == "" {
		v.add("classification.annotation", `""`, "must name the pod annotation that selects a pool, e.g. strata.io/pool")
	}
	v.listLen("classification.namespaces", len(cl.Namespaces))
	for i, r := range cl.Namespaces {
		f := fmt.Sprintf("classification.namespaces[%d]", i)
		if !validPattern(r.Namespace) {
			v.add(f+".namespace", safetext.Quote(r.Namespace), "must be a namespace or a shell pattern such as \"batch-*\"")
		}
		poolRef(f+".pool", r.Pool, false)
	}
	poolRef("classification.qos.guaranteed", cl.QoS.Guaranteed, true)
	poolRef("classification.qos.burstable", cl.QoS.Burstable, true)
	poolRef("classification.qos.bestEffort", cl.QoS.BestEffort, true)
	poolRef("classification.default", cl.Default, false)
	if cl.OnDisallowed != "" && cl.OnDisallowed != OnDisallowedRefuse {
		if !names[cl.OnDisallowed] {
			v.add("classification.onDisallowed", safetext.Quote(cl.OnDisallowed), "must be %q or a pool name: %s", OnDisallowedRefuse, allowed)
		} else if p := c.pool(cl.OnDisallowed); p != nil && !p.Allow.Empty() {
			v.add("classification.onDisallowed", safetext.Quote(cl.OnDisallowed), "the fallback pool must have an empty allow-list, or the fallback could refuse too")
		}
	}
}

func (r ResizeConfig) validate(v *validator) {
	// Step limits stay within what any machine has, so that step
	// arithmetic (cores × percent) cannot overflow.
	if r.MaxGrowCores < 1 || r.MaxGrowCores > strcpuset.MaxCPUs {
		v.add("resize.maxGrowCores", r.MaxGrowCores, "must be in 1..%d", strcpuset.MaxCPUs)
	}
	if !(r.MaxGrowPercent >= 0 && r.MaxGrowPercent <= 1000) {
		v.add("resize.maxGrowPercent", r.MaxGrowPercent, "must be in [0, 1000] (0: only maxGrowCores applies)")
	}
	if r.MaxShrinkCores < 1 || r.MaxShrinkCores > strcpuset.MaxCPUs {
		v.add("resize.maxShrinkCores", r.MaxShrinkCores, "must be in 1..%d", strcpuset.MaxCPUs)
	}
	v.duration("resize.shrinkInterval", r.ShrinkInterval.Duration, 0, MaxInterval)
	w := r.Waiting
	if !(w.NearTop >= 0 && w.NearTop < 0.5) {
		v.add("resize.waiting.nearTop", w.NearTop, "must be in [0, 0.5): a fraction of the band's width below its top, under half so a pool resized to its band's middle is not near the top")
	}
	if w.RunQueueP99.Duration < 0 || w.RunQueueP99.Duration > 10*time.Second {
		v.add("resize.waiting.runQueueDelayP99", w.RunQueueP99.String(), "must be a duration in [0, 10s] (0: not checked)")
	}
	if !(w.CPUSome >= 0 && w.CPUSome <= 100) {
		v.add("resize.waiting.cpuPSISome", w.CPUSome, "must be in [0, 100] percent (0: not checked)")
	}
}

func (pc PredictorConfig) validate(v *validator) {
	if pc.Disabled {
		return
	}
	v.duration("predictor.halfLife", pc.HalfLife.Duration, time.Second, MaxHalfLife)
	if !(pc.Percentile > 0 && pc.Percentile <= 1) {
		v.add("predictor.percentile", pc.Percentile, "must be in (0, 1], e.g. 0.95")
	}
}

func (pr ProtectionConfig) validate(v *validator) {
	for _, d := range []struct {
		name string
		d    Duration
	}{{"cooldown", pr.Cooldown}, {"reclaimInterval", pr.ReclaimInterval}, {"evictInterval", pr.EvictInterval}} {
		v.duration("protection."+d.name, d.d.Duration, 0, MaxInterval)
	}
	if len(pr.Levels) > MaxLevels {
		v.add("protection.levels", len(pr.Levels), "at most %d levels", MaxLevels)
	}
	last := -1
	levelNames := map[string]bool{}
	for i, l := range pr.Levels {
		f := fmt.Sprintf("protection.levels[%d]", i)
		if l.Name == "" || levelNames[l.Name] {
			v.add(f+".name", safetext.Quote(l.Name), "must be a unique, non-empty level name")
		}
		levelNames[l.Name] = true
		l.When.validate(v, f+".when")
		if len(l.Actions) == 0 {
			v.add(f+".actions", "[]", "need at least one action of %s", actionList())
		}
		for j, a := range l.Actions {
			rank := a.rank()
			af := fmt.Sprintf("%s.actions[%d]", f, j)
			switch {
			case rank < 0:
				v.add(af, safetext.Quote(string(a)), "unknown action; allowed: %s", actionList())
			case rank <= last:
				v.add(af, safetext.Quote(string(a)), "actions must escalate in the order %s, each once", actionList())
			default:
				last = rank
			}
		}
	}
}

func (b BatchConfig) validate(v *validator) {
	if _, err := b.Watermark.parse(); err != nil {
		v.add("batch.watermark", safetext.Quote(string(b.Watermark)), "%v", err)
	}
	if _, err := time.LoadLocation(b.TimeZone); err != nil {
		v.add("batch.timeZone", safetext.Quote(b.TimeZone), "must be an IANA time zone such as \"UTC\" or \"Asia/Shanghai\": %v", err)
	}
	v.listLen("batch.schedule", len(b.Schedule))
	for i, w := range b.Schedule {
		f := fmt.Sprintf("batch.schedule[%d]", i)
		from, err1 := parseClock(w.From)
		if err1 != nil {
			v.add(f+".from", safetext.Quote(w.From), "%v", err1)
		}
		to, err2 := parseClock(w.To)
		if err2 != nil {
			v.add(f+".to", safetext.Quote(w.To), "%v", err2)
		}
		if err1 == nil && err2 == nil && from == to {
			v.add(f, w.From+"–"+w.To, "from and to must differ")
		}
		if _, err := w.Watermark.parse(); err != nil {
			v.add(f+".watermark", safetext.Quote(string(w.Watermark)), "%v", err)
		}
	}
}

// Bounds of configuration values. Durations outside them are mistakes (a
// loop period of a nanosecond would spin the plugin; an interval of years
// would switch a protection off without saying so), and counts beyond them
// would only make validation and Decide slow.
const (
	MinPeriod   = 10 * time.Millisecond
	MaxPeriod   = time.Hour
	MaxInterval = 24 * time.Hour
	MaxHalfLife = 30 * 24 * time.Hour
	MaxPools    = 64
	MaxPriority = 1000
	MaxLevels   = 16
	// MaxListLen bounds each list of the configuration (namespace rules,
	// allow-list entries, schedule windows).
	MaxListLen = 4096
)

// maxPatternLen bounds a namespace pattern: namespaces are DNS labels
// of at most 63 characters; 253 leaves room for any pattern over them.
const maxPatternLen = 253

func validPattern(p string) bool {
	if p == "" || len(p) > maxPatternLen {
		return false
	}
	_, err := path.Match(p, "")
	return err == nil
}

func (v *validator) listLen(field string, n int) {
	if n > MaxListLen {
		v.add(field, n, "at most %d entries", MaxListLen)
	}
}

// duration checks lo ≤ d ≤ hi and names both bounds when it is not.
func (v *validator) duration(field string, d, lo, hi time.Duration) {
	if d < lo || d > hi {
		v.add(field, d, "must be from %v to %v", lo, hi)
	}
}

func (p Profile) validate(v *validator, f string) {
	if s := p.CPU.Shares; s != 0 && (s < cgroup.MinShares || s > cgroup.MaxShares) {
		v.add(f+".cpu.shares", s, "must be 0 (keep the kubelet's) or %d..%d", cgroup.MinShares, cgroup.MaxShares)
	}
	switch p.CPU.Quota {
	case "", QuotaKeep, QuotaUnlimited:
	default:
		v.add(f+".cpu.quota", safetext.Quote(string(p.CPU.Quota)), "allowed: %q, %q", QuotaKeep, QuotaUnlimited)
	}
	if p.OOMScoreAdj != nil && (*p.OOMScoreAdj < -1000 || *p.OOMScoreAdj > 1000) {
		v.add(f+".oomScoreAdj", *p.OOMScoreAdj, "must be in -1000..1000")
	}
	for _, m := range []struct {
		name string
		m    MemoryPolicy
	}{{"min", p.Memory.Min}, {"low", p.Memory.Low}, {"high", p.Memory.High}, {"softLimit", p.Memory.SoftLimit}} {
		if _, _, err := m.m.parse(); err != nil {
			v.add(f+".memory."+m.name, safetext.Quote(string(m.m)), "%v", err)
		}
	}
	p.validateDimensions(v, f)
}

func (t Thresholds) validate(v *validator, f string) {
	if !(t.CPULoad >= 0 && t.CPULoad <= 1.5) {
		v.add(f+".cpuLoad", t.CPULoad, "must be a fraction in [0, 1.5] (0: not checked)")
	}
	if !(t.MemoryUsage >= 0 && t.MemoryUsage <= 1) {
		v.add(f+".memoryUsage", t.MemoryUsage, "must be a fraction in [0, 1] (0: not checked)")
	}
	for _, x := range []struct {
		name string
		v    float64
	}{{"cpuPSISome", t.CPUSome}, {"memoryPSISome", t.MemorySome}, {"memoryPSIFull", t.MemoryFull}} {
		if !(x.v >= 0 && x.v <= 100) {
			v.add(f+"."+x.name, x.v, "must be a PSI avg10 percentage in [0, 100] (0: not checked)")
		}
	}
	if t.RunQueueP99.Duration < 0 || t.RunQueueP99.Duration > 10*time.Second {
		v.add(f+".runQueueDelayP99", t.RunQueueP99.String(), "must be a duration in [0, 10s] (0: not checked)")
	}
	if t == (Thresholds{}) {
		v.add(f, "{}", "need at least one threshold: cpuLoad, memoryUsage, cpuPSISome, memoryPSISome, memoryPSIFull, runQueueDelayP99")
	}
}

func poolList(pools []PoolConfig) string {
	var b strings.Builder
	for i, p := range pools {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(safetext.Quote(p.Name))
	}
	return b.String()
}

func (c *Config) pool(name string) *PoolConfig {
	for i := range c.Pools {
		if c.Pools[i].Name == name {
			return &c.Pools[i]
		}
	}
	return nil
}

// quantity is a parsed Quantity: either a fraction of the node or cores.
type quantity struct {
	fraction float64
	cores    float64
}

func (q quantity) of(total float64) float64 {
	if q.fraction > 0 {
		return q.fraction * total
	}
	return q.cores
}

func (q Quantity) parse() (quantity, error) {
	s := strings.TrimSpace(string(q))
	if s == "" {
		return quantity{}, nil
	}
	if p, ok := strings.CutSuffix(s, "%"); ok {
		f, err := strconv.ParseFloat(p, 64)
		if err != nil || !(f >= 0 && f <= 100) {
			return quantity{}, fmt.Errorf("want a percentage in 0%%..100%% such as \"10%%\", or cores such as \"8\"")
		}
		return quantity{fraction: f / 100}, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !(f >= 0 && f <= strcpuset.MaxCPUs) {
		return quantity{}, fmt.Errorf("want a percentage in 0%%..100%% such as \"10%%\", or cores in 0..%d such as \"8\"", strcpuset.MaxCPUs)
	}
	return quantity{cores: f}, nil
}

// parseClock parses "HH:MM" into minutes after midnight.
func parseClock(s string) (int, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, fmt.Errorf("want a time of day \"HH:MM\" from 00:00 to 23:59")
	}
	return t.Hour()*60 + t.Minute(), nil
}

// memory policy kinds
const (
	memNone = iota
	memRequest
	memLimit
	memPercent
)

func (m MemoryPolicy) parse() (kind int, fraction float64, err error) {
	switch s := string(m); s {
	case "", "none":
		return memNone, 0, nil
	case "request":
		return memRequest, 0, nil
	case "limit":
		return memLimit, 1, nil
	default:
		if p, ok := strings.CutSuffix(s, "%"); ok {
			f, err := strconv.ParseFloat(p, 64)
			if err == nil && f > 0 && f <= 100 {
				return memPercent, f / 100, nil
			}
		}
		return 0, 0, fmt.Errorf(`allowed: "none", "request", "limit", or a percentage of the limit in (0%%, 100%%] such as "90%%"`)
	}
}
