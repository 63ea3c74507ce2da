package netqos

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Rate is a bandwidth in bits per second.
type Rate uint64

// Units, in bits per second.
const (
	Kbit Rate = 1000
	Mbit      = 1000 * Kbit
	Gbit      = 1000 * Mbit
	Tbit      = 1000 * Gbit
	Pbit      = 1000 * Tbit
)

// MinRate and MaxRate bound every rate netqos accepts. They are the bounds
// Kubernetes applies to the bandwidth annotations (1 kbit/s and 1 Pbit/s):
// smaller rates stall TCP, larger ones are typos.
const (
	MinRate = Kbit
	MaxRate = Pbit
)

// Bytes is the rate in bytes per second, the unit tc speaks.
func (r Rate) Bytes() uint64 { return uint64(r) / 8 }

// String prints the rate with the largest decimal unit that keeps it three
// decimals, e.g. "10Mbit", "1.5Gbit", "800bit".
func (r Rate) String() string {
	units := []struct {
		v    Rate
		name string
	}{{Pbit, "Pbit"}, {Tbit, "Tbit"}, {Gbit, "Gbit"}, {Mbit, "Mbit"}, {Kbit, "Kbit"}}
	for _, u := range units {
		if r >= u.v {
			v := strconv.FormatFloat(float64(r)/float64(u.v), 'f', 3, 64)
			v = strings.TrimRight(strings.TrimRight(v, "0"), ".")
			return v + u.name
		}
	}
	return strconv.FormatUint(uint64(r), 10) + "bit"
}

// ParseRate parses a rate in bits per second written as a Kubernetes
// resource.Quantity ("10M", "1G", "500k", "1Gi", "2e6"), the syntax of the
// kubernetes.io/egress-bandwidth annotations, and checks it lies within
// [MinRate, MaxRate]. field names the value in errors.
func ParseRate(field, s string) (Rate, error) {
	if s == "" {
		return 0, fmt.Errorf("%w: %s is empty; want a rate in bits/s such as \"10M\" or \"1G\"", ErrInvalid, field)
	}
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return 0, fmt.Errorf("%w: %s %q is not a quantity (want e.g. \"10M\", \"1G\", \"500k\"): %v", ErrInvalid, field, s, err)
	}
	if q.Sign() <= 0 {
		return 0, fmt.Errorf("%w: %s %q must be positive", ErrInvalid, field, s)
	}
	v := q.AsDec().UnscaledBig()
	scale := q.AsDec().Scale() // value = v * 10^-scale
	bits := new(big.Int).Set(v)
	if scale > 0 {
		bits.Quo(bits, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil))
	} else if scale < 0 {
		if -scale > 30 {
			return 0, fmt.Errorf("%w: %s %q is above the maximum %s", ErrInvalid, field, s, Rate(MaxRate))
		}
		bits.Mul(bits, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(-scale)), nil))
	}
	if bits.Cmp(new(big.Int).SetUint64(uint64(MaxRate))) > 0 {
		return 0, fmt.Errorf("%w: %s %q is above the maximum %s", ErrInvalid, field, s, Rate(MaxRate))
	}
	r := Rate(bits.Uint64())
	if r < MinRate {
		return 0, fmt.Errorf("%w: %s %q is below the minimum %s", ErrInvalid, field, s, Rate(MinRate))
	}
	return r, nil
}

// The Kubernetes annotations for a pod's bandwidth, as the CNI bandwidth
// plugin reads them: egress is what the pod sends, ingress what it receives.
const (
	EgressBandwidthAnnotation  = "kubernetes.io/egress-bandwidth"
	IngressBandwidthAnnotation = "kubernetes.io/ingress-bandwidth"
)

// PodLimits is the bandwidth of one pod in each direction, from the pod's
// point of view. A zero Rate means unlimited.
type PodLimits struct {
	Egress  Rate // what the pod sends
	Ingress Rate // what the pod receives
}

// PodLimitsFromAnnotations reads the Kubernetes bandwidth annotations. An
// absent annotation leaves its direction unlimited; a present one must
// parse (an empty value is an error, not "unlimited", so a templating bug
// is caught rather than silently unshaped).
func PodLimitsFromAnnotations(annotations map[string]string) (PodLimits, error) {
	var l PodLimits
	for _, a := range []struct {
		key string
		dst *Rate
	}{{EgressBandwidthAnnotation, &l.Egress}, {IngressBandwidthAnnotation, &l.Ingress}} {
		v, ok := annotations[a.key]
		if !ok {
			continue
		}
		r, err := ParseRate("annotation "+a.key, v)
		if err != nil {
			return PodLimits{}, err
		}
		*a.dst = r
	}
	return l, nil
}
