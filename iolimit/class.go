package iolimit

import (
	"errors"
	"fmt"
	"sort"

	"github.com/intel/goresctrl/pkg/blockio"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"

	"github.com/strata-nri/strata/cgroup"
)

// Config is a goresctrl blockio configuration: named classes, each a list of
// DevicesParameters. It is goresctrl's own type, so one file serves both
// Strata and a runtime that resolves blockio classes with goresctrl
// (containerd's blockio_config_file), and a class name Strata hands to the
// runtime through NRI means the same settings there.
type Config = blockio.Config

// DevicesParameters is one entry of a class: Devices patterns (none: the
// entry sets the default Weight) and quantities ("50M", "10k", "1Gi").
type DevicesParameters = blockio.DevicesParameters

// ParseConfig parses a goresctrl blockio configuration (YAML or JSON),
// rejecting unknown fields as goresctrl does.
func ParseConfig(data []byte) (*Config, error) {
	cfg := &Config{}
	if err := yaml.UnmarshalStrict(data, cfg); err != nil {
		return nil, fmt.Errorf("iolimit: blockio config: %w", err)
	}
	return cfg, nil
}

// Classes resolves every class of cfg to Settings for this machine, with
// goresctrl's semantics: an entry without Devices sets the default weight
// (throttling needs devices); entries apply in order, a later entry
// overriding an earlier one for the same device; a device pattern that
// matches nothing here adds nothing. Unlike goresctrl, which logs and skips
// a bad class, every error is returned, naming the class, entry, field and
// value, and no class is returned then.
func (l *Limiter) Classes(cfg *Config) (map[string]Settings, error) {
	out := map[string]Settings{}
	if cfg == nil {
		return out, nil
	}
	var errs []error
	names := make([]string, 0, len(cfg.Classes))
	for name := range cfg.Classes {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		s, err := l.class(name, cfg.Classes[name])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[name] = s
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

func (l *Limiter) class(name string, entries []DevicesParameters) (Settings, error) {
	var s Settings
	var errs []error
	limits := map[cgroup.DevNum]*Limit{}
	weights := map[cgroup.DevNum]uint64{}
	for i, e := range entries {
		field := func(f string) string { return fmt.Sprintf("class %q entry %d %s", name, i, f) }
		weight, err := ParseWeight(field("Weight"), e.Weight)
		errs = append(errs, err)
		var rates [4]uint64
		var set [4]bool
		for j, r := range []struct{ name, v string }{
			{"ThrottleReadBps", e.ThrottleReadBps}, {"ThrottleWriteBps", e.ThrottleWriteBps},
			{"ThrottleReadIOPS", e.ThrottleReadIOPS}, {"ThrottleWriteIOPS", e.ThrottleWriteIOPS},
		} {
			if r.v == "" {
				continue
			}
			rates[j], err = ParseRate(field(r.name), r.v)
			errs = append(errs, err)
			set[j] = err == nil
		}
		if len(e.Devices) == 0 {
			if weight != 0 {
				s.Weight = weight
			}
			if set != [4]bool{} {
				errs = append(errs, fmt.Errorf("iolimit: %s: throttling needs Devices: %w", field("Devices"), ErrInvalid))
			}
			continue
		}
		devs, err := l.res.Glob(e.Devices...)
		if err != nil {
			errs = append(errs, fmt.Errorf("iolimit: %s: %w", field("Devices"), err))
			continue
		}
		for _, d := range devs {
			if weight != 0 {
				weights[d.Num] = weight
			}
			lim := limits[d.Num]
			if lim == nil && set != [4]bool{} {
				lim = &Limit{Device: d.Num}
				limits[d.Num] = lim
			}
			if lim == nil {
				continue
			}
			for j, dst := range []*uint64{&lim.ReadBPS, &lim.WriteBPS, &lim.ReadIOPS, &lim.WriteIOPS} {
				if set[j] {
					*dst = rates[j]
				}
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Settings{}, err
	}
	for d, w := range weights {
		s.DeviceWeights = append(s.DeviceWeights, DeviceWeight{Device: d, Weight: w})
	}
	for _, lim := range limits {
		s.Limits = append(s.Limits, *lim)
	}
	sortSettings(&s)
	return s, nil
}

func sortSettings(s *Settings) {
	less := func(a, b cgroup.DevNum) bool {
		return a.Major < b.Major || a.Major == b.Major && a.Minor < b.Minor
	}
	sort.Slice(s.DeviceWeights, func(i, j int) bool { return less(s.DeviceWeights[i].Device, s.DeviceWeights[j].Device) })
	sort.Slice(s.Limits, func(i, j int) bool { return less(s.Limits[i].Device, s.Limits[j].Device) })
}

// ParseRate parses a limit as goresctrl does ("50M", "1Mi", "10k", "0" for
// none), rejecting negative, fractional-below-one and non-numeric values
// and values above MaxRate; the error names field and value.
func ParseRate(field, v string) (uint64, error) {
	q, err := resource.ParseQuantity(v)
	if err != nil {
		return 0, fmt.Errorf("iolimit: %s: %q is not a quantity (want e.g. 50M, 1Mi, 10k): %w", field, v, ErrInvalid)
	}
	if q.Sign() < 0 {
		return 0, fmt.Errorf("iolimit: %s: %q is negative: %w", field, v, ErrInvalid)
	}
	n := q.Value()
	if n > MaxRate {
		return 0, fmt.Errorf("iolimit: %s: %q above the maximum %d: %w", field, v, int64(MaxRate), ErrInvalid)
	}
	return uint64(n), nil
}

// ParseWeight parses a weight ("" for none) in [MinWeight, MaxWeight].
func ParseWeight(field, v string) (uint64, error) {
	if v == "" {
		return 0, nil
	}
	q, err := resource.ParseQuantity(v)
	if err != nil {
		return 0, fmt.Errorf("iolimit: %s: %q is not a number: %w", field, v, ErrInvalid)
	}
	n := q.Value()
	if n < MinWeight || n > MaxWeight {
		return 0, fmt.Errorf("iolimit: %s: %q out of range [%d, %d]: %w", field, v, MinWeight, MaxWeight, ErrInvalid)
	}
	return uint64(n), nil
}
