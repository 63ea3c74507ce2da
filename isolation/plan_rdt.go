package isolation

// RDTPlan is a pool's resctrl class this period (package rdt applies it).
// Ways are counted from the lowest way of the host's L3 mask; the same
// ways and bandwidth apply on every cache id.
type RDTPlan struct {
	// Enabled: the pool has an RDT profile; its class is Class.
	Enabled bool
	Class   string
	// FirstWay and Ways place the pool's L3 ways; Ways 0: no L3
	// allocation (the host has no CAT, or the profile asks for none).
	FirstWay, Ways int
	// MaxWays is the profile's share in ways, before any throttle.
	MaxWays   int
	Exclusive bool
	// MBPercent is the bandwidth ceiling in percent of unthrottled (0: no
	// bandwidth allocation); MaxMBPercent the profile's, before throttle.
	MBPercent, MaxMBPercent int
	// Throttled: the share is below the profile's because of pressure.
	// Pressured: the throttle's trigger held this period. Reason says why.
	Throttled, Pressured bool
	Reason               string
	// calm: consecutive periods without pressure, carried to commit.
	calm int
}

// RDTObservation is what the plugin measured of a pool's class, and what
// the host offers (the same in every pool's entry).
type RDTObservation struct {
	// Ways is the number of L3 ways the host can allocate (0: no cache
	// allocation); MinWays its min_cbm_bits.
	Ways, MinWays int
	// Bandwidth: the host has memory bandwidth allocation.
	Bandwidth bool
	// Measured: the class's monitoring counters were read this period.
	Measured bool
	// OccupancyBytes is the class's L3 occupancy; BandwidthBytes its memory
	// bandwidth over the last period (bytes per second).
	OccupancyBytes uint64
	BandwidthBytes float64
}
