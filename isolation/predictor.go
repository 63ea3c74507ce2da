package isolation

import (
	"math"
	"time"
)

// PeakPredictor predicts a peak from a decaying histogram of samples, in the
// manner of the Kubernetes VPA recommender: each sample has weight
// 2^(age-of-reference / half-life), so a sample one half-life older counts
// half as much; the predicted peak is the weighted Percentile of the
// histogram. Buckets grow exponentially (5 % each from 0.05 cores up to 1024
// cores), so the answer is within 5 % of the true percentile at any scale.
//
// It allocates only in NewPeakPredictor; Add and Percentile are O(buckets).
type PeakPredictor struct {
	halfLife time.Duration
	ref      time.Time
	weights  []float64
	total    float64
}

const (
	predFirstBucket = 0.05
	predRatio       = 1.05
	predBuckets     = 210 // 0.05 × 1.05^209 ≈ 1300 cores
	// Renormalise when weights would exceed 2^maxExp, keeping float64 exact enough.
	predMaxExp = 64
)

var predBounds = func() [predBuckets]float64 {
	var b [predBuckets]float64
	v := predFirstBucket
	for i := range b {
		b[i] = v // upper bound of bucket i
		v *= predRatio
	}
	return b
}()

// NewPeakPredictor returns an empty predictor.
func NewPeakPredictor(halfLife time.Duration) *PeakPredictor {
	return &PeakPredictor{halfLife: halfLife, weights: make([]float64, predBuckets)}
}

func bucketOf(v float64) int {
	if v <= predFirstBucket {
		return 0
	}
	i := int(math.Ceil(math.Log(v/predFirstBucket) / math.Log(predRatio)))
	if i >= predBuckets {
		return predBuckets - 1
	}
	// Guard against rounding at a bucket edge.
	for i > 0 && predBounds[i-1] >= v {
		i--
	}
	return i
}

// Add records a sample (cores) observed at t. Samples should come in time
// order; an older one simply counts less.
func (p *PeakPredictor) Add(v float64, t time.Time) {
	if v < 0 || math.IsNaN(v) {
		v = 0
	}
	if p.total == 0 {
		p.ref = t
	}
	exp := float64(t.Sub(p.ref)) / float64(p.halfLife)
	if exp > predMaxExp {
		// Rebase: scale every weight to the new reference.
		scale := math.Exp2(-exp)
		p.total = 0
		for i := range p.weights {
			p.weights[i] *= scale
			p.total += p.weights[i]
		}
		p.ref = t
		exp = 0
	}
	w := math.Exp2(exp)
	p.weights[bucketOf(v)] += w
	p.total += w
}

// Percentile returns the upper bound of the bucket holding the q-th weighted
// percentile (0 < q ≤ 1), or 0 when there are no samples.
func (p *PeakPredictor) Percentile(q float64) float64 {
	if p.total == 0 {
		return 0
	}
	want := q * p.total
	acc := 0.0
	for i, w := range p.weights {
		acc += w
		if acc >= want && w > 0 {
			return predBounds[i]
		}
	}
	for i := len(p.weights) - 1; i >= 0; i-- {
		if p.weights[i] > 0 {
			return predBounds[i]
		}
	}
	return 0
}

// Empty reports whether no sample was added.
func (p *PeakPredictor) Empty() bool { return p.total == 0 }
