// Package isolation is Strata's tiered resource-pool controller, after
// Meituan's LAR: the node's CPUs are split into pools of different
// priority, each pool keeps its CPU load inside a target band, and CPUs
// flow between pools on a fast loop. It decides; it does no I/O. Package
// nri-plugin observes containers (through package pressure), calls Decide
// every period, applies the Plan and calls Commit.
//
// # Model
//
// Pools are ordered by priority (0 highest). The default configuration is
// LAR's: latency-critical (band 30–50 %), online (45–60 %) and batch
// (50–80 %). Reserved CPUs (Config.ReservedCPUs) belong to no pool. Every
// other CPU belongs to exactly one pool: a pool's CPUs are its shared set
// plus the exclusive CPUs of its pinned members. The lowest pool (batch)
// holds every CPU nobody else needs; its band is reported, not enforced —
// batch is meant to fill what it is given.
//
// A member whose pool has exclusiveCores and whose CPU request is a whole
// number of CPUs gets CPUs of its own at admission (chosen by package
// cpuset for locality). They are never moved while it runs and are not part
// of the load control below.
//
// # Admission
//
// Admit classifies a container (annotation within the pool's allow-list,
// else namespace rules, QoS class, default pool), then either pins it — its
// pool has exclusiveCores and its CPU request is whole — or grows its
// pool's shared CPUs to RCF × the pool's requests. Either way CPUs come
// from the lowest pool first, then the next one up, never from a higher
// pool, and each pool keeps its floor and, for online pools, RCF.min × its
// requests. What cannot be honoured is refused with an *AdmissionError
// (ErrNotAllowed, ErrUnknownPool, ErrNoExclusiveCPUs) and changes nothing.
// Restore re-admits a running container into its recorded pool after a
// restart, without classifying it again; given the CPUs it runs on
// (ContainerRequest.CurrentCPUs) it rebuilds the pools around them, so a
// restart moves no cpuset.
//
// A pod writes its own annotations, so an annotation alone never promotes
// it: it may keep the pod in the pool its rules (namespace rules, QoS
// class, default) give it or move it down, but entering a higher pool needs
// that pool's allow-list to name the pod's namespace or labels. A pool with
// no allow-list admits by annotation only pods its rules place at or above
// it; refusals list the pools the pod may ask for.
//
// Every way into a pool passes one admission check (Config.gate): the
// rules hold each pool to its allow-list, and whatever the pod controls —
// its annotation, the onDisallowed fallback that annotation triggers, a
// record read back at Restore — is held to the no-promotion rule as well.
// A pod the rules refuse (say, the default pool has an allow-list that
// does not name it) has no rules pool to compare with: it gets in only
// where an allow-list names it. A fallback pool above the pod's rules pool
// would promote it, so it gets its rules pool instead.
//
// Restore cannot tell Strata's record (the strata.io/assigned-pool and
// strata.io/exclusive-cpus annotations the plugin writes) from the same
// keys written by a pod or a CRI client: the runtime hands both back alike.
// Rather than sign records with a node secret, Restore trusts one no
// further than a fresh admission would go: the recorded pool must pass the
// admission check under today's configuration, and exclusive CPUs are kept
// only in a pool that pins, for a request of exactly that many whole CPUs,
// on CPUs that are free, usable and the ones the container runs on. A
// record that fails is dropped and the container admitted afresh; a forged
// one gains nothing a restart of the pod would not give it.
//
// # Borrowing
//
// A pool with shared members but no CPUs of its own — on a node too small
// for every pool to hold one, or a lowest pool with minCPUs 0 that gave its
// last CPU to a busy higher pool — never hands out an empty cpuset (which a
// runtime reads as "every CPU"). Its members run on the CPUs of the nearest
// lower pool that has some, where their higher priority wins, else of the
// nearest higher one; batch keeps its profile there (idle scheduling,
// minimum weight), so it only takes cycles nobody above wants. When the
// pool gets CPUs again, its members move back.
//
// # Control law
//
// Each period, for every pool p but the lowest, with u its shared members'
// CPU usage (cores), n its shared CPUs during the period, R their CPU
// requests (cores), band [lo, hi], mid = (lo+hi)/2 and keep = (lo+mid)/2:
//
//	load     ℓ = u / n
//	ideal    n* = ⌈u / mid⌉                           (the load a resize aims at)
//	headroom n* = max(n*, min(⌈P / hi⌉, ⌊u / keep⌋))  (P: predicted peak, see below)
//	bounds   max(floor, ⌈RCF.min·R⌉) ≤ target ≤ max(⌊RCF.max·R⌋, floor)
//	target   = n* if ℓ > hi (grow), ℓ < lo (shrink) or n is outside the bounds,
//	           else n (hysteresis: no move inside the band); then clamped to the bounds
//	RCF      = n / R
//
// So RCF — the share of its requests a pool actually holds — rises when
// the load is above the band and falls when below, bounded by the pool's
// RCF bounds. The headroom term lets the predicted peak keep a pool larger,
// but never so large that its load would drop below keep, a quarter band
// above the floor; this is why the predictor cannot push a pool out of its
// band. floor is minCPUs (at least 1) while the pool has shared members;
// for the lowest pool it is minCPUs as configured (0 lets it lend its last
// CPU, see Borrowing).
//
// Step limits keep pools from flapping (katalyst's defaults):
//
//	grow   ≤ max(resize.maxGrowCores, resize.maxGrowPercent % of n) per period
//	shrink ≤ resize.maxShrinkCores per step, and only when resize.shrinkInterval
//	         has passed since the pool's last resize of either direction
//	         (a growth at admission counts from the first period after it)
//
// A pool under protection (below) may bypass them.
//
// # Flows
//
// First every shrinking pool gives its CPUs to the lowest pool. Then the
// growing pools, highest priority first, take: from the lowest pool down to
// its floor (batch.minCPUs), then — only with the preempt action — from the
// next pool up, down to that pool's floor, and so on, never from a pool of
// higher priority than the taker. Which CPUs move is package cpuset's
// choice (Grow keeps the taker compact, Shrink releases the loosest CPUs).
//
// # Protection levels
//
// Each pool's level is the highest configured level any of whose thresholds
// is met: pool CPU load (not for the lowest pool), node memory usage, the
// pool's PSI (CPU PSI is ignored for a throttled pool, since it would
// measure its own quota). A lower level is taken only after
// protection.cooldown.
//
// A pool's PSI is the worst of its members' own (ContainerUsage.Pressure:
// each figure the highest member's; a member throttled by its quota gives
// no CPU figure), unless the caller measured the pool as a whole
// (Observations.Pools); where no member's PSI was measured the node's
// stands in. PoolPlan.PressureFrom says which it was. A level applies its own
// actions and those of every level below; validation makes levels
// escalate in the order:
//
//	release          lower online pools shrink to their targets at once
//	preempt          the pool grows without step limit, taking from lower pools
//	cpuDowngrade     members of lower pools get cpu.shares 2 and cpu.idle
//	reclaimPageCache page cache of reclaimable pools, lowest pool and biggest first,
//	                 until node memory is back under the lowest memoryUsage threshold
//	evict            the lowest-priority member (lowest pool, most memory), one per evictInterval
//
// Each action carries a Reason naming the pool, level, threshold and value.
//
// # Prediction and the batch capacity view
//
// PeakPredictor keeps a decaying histogram of each pool's usage and of the
// online pools' total (half-life predictor.halfLife); its percentile
// (predictor.percentile) is the predicted peak P. The batch capacity view
// follows vivo's differentiated view:
//
//	batch capacity = node CPUs − max(online usage, predicted online peak) − watermark
//
// with the watermark from batch.watermark or the batch.schedule window in
// force (time of day in batch.timeZone), and 0 when colocation is off.
// BatchCapacity.String prints each term, so the figure can be followed.
//
// # Node switch
//
// colocation.disabled gives batch nothing: its members are suspended
// (quota 1 % of a CPU, idle scheduling) or evicted (colocation.whenDisabled).
//
// # Pool-level dimensions
//
// A resource set per pool (block IO, RDT, network) plugs in as a
// dimension: a Profile field of its own type (profile_<dim>.go) validated
// from Profile.validateDimensions; a PoolPlan field of its own type
// (plan_<dim>.go); optionally a PoolObservation field for its per-pool
// measurements; and a decision step (decide_<dim>.go) implementing the
// unexported dimension interface — decide(plan, obs, state), pure, run
// last in Decide; commit(plan), its hysteresis, run by Commit — listed
// once in newDimensions (dimensions.go). Package nri-plugin applies the
// plan field through the dimension's Controller. Pool pressure in
// Observations.Pools counts only when PressureMeasured; otherwise
// protection reads the members' PSI, else the node's.
//
// # State and purity
//
// State holds pools and containers. Admit, Restore and Remove change it at
// once (with the cpuset updates other containers need); Decide reads it and
// the observations and returns a Plan — the same inputs always give the
// same plan — and Commit records the applied plan (advancing predictors,
// levels and dwell timers). Commit refuses a plan made before the state
// last changed (ErrStalePlan). DecideInto reuses a Plan's memory: a steady
// period with 1000 containers allocates nothing.
//
// Layering: isolation composes the primitives (cpuset; observations are
// plain data the plugin fills from package pressure). It knows nothing of
// NRI.
package isolation
