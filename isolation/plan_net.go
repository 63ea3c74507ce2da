package isolation

import "github.com/strata-nri/strata/netqos"

// NetPlan is a pool's class on the uplink this period (package netqos
// applies it through the plugin's network controller).
type NetPlan struct {
	// Enabled: the pool has a class, Class (minor id on the uplink's htb).
	Enabled bool
	Class   uint16
	// Rate is guaranteed; Ceil is the ceiling this period, MaxCeil the
	// profile's, ThrottledCeil the one the throttle imposes (0: none).
	Rate, Ceil, MaxCeil, ThrottledCeil netqos.Rate
	Prio                               int
	// Throttled: the ceiling is lowered because the higher pools' traffic
	// passed the watermark (or has not stayed calm long enough since).
	// HigherShare is the higher pools' share of the link last period,
	// percent; Reason says why the ceiling is where it is; Calm counts calm
	// periods towards the release.
	Throttled   bool
	HigherShare float64
	Reason      string
	Calm        int
}

// NetObservation is a pool's traffic on the uplink over the last period.
type NetObservation struct {
	// Measured: the pool's class counters were read.
	Measured bool
	// BitsPerSecond the pool's class sent.
	BitsPerSecond float64
}
