package nriplugin

// Pool classes at creation: a dimension's controller may name, per pool, a
// class the runtime resolves when it creates a container (a blockio class,
// an RDT class), so the container starts in its pool's class instead of
// being moved after it started. The routing table's pool-class rows say
// when a class may travel; these interfaces say which class.

// blockIOClasser is a Controller whose pools may have a blockio class the
// runtime knows.
type blockIOClasser interface {
	// BlockIOClasses maps pools to the blockio class the runtime's
	// blockio configuration (containerd's blockio_config_file) defines
	// for them; nil when the runtime has no such configuration, so no
	// class may be sent.
	BlockIOClasses() map[string]string
}

// rdtClasser is a Controller whose pools may have an RDT class.
type rdtClasser interface {
	// RDTClasses maps pools to their resctrl class (the group name, which
	// the runtime takes as the OCI closID) for the classes that exist now.
	RDTClasses() map[string]string
}

// What each dimension's controller implements.
var (
	_ Controller     = (*IOController)(nil)
	_ Controller     = (*RDTController)(nil)
	_ Controller     = (*NetController)(nil)
	_ blockIOClasser = (*IOController)(nil)
	_ rdtClasser     = (*RDTController)(nil)
)

// dimensionCaps is what the running dimensions add to a capability.
type dimensionCaps struct {
	blockIO, blockIOClasses, rdt bool
}

func (d dimensionCaps) apply(c capability) capability {
	c.blockIO, c.blockIOClasses, c.rdt = d.blockIO, d.blockIOClasses, d.rdt
	return c
}

// classes asks the running controllers for their pools' classes.
func (r *controllers) classes() (poolClasses, dimensionCaps) {
	r.call.Lock()
	defer r.call.Unlock()
	pc := poolClasses{}
	var caps dimensionCaps
	for _, e := range r.running() {
		if b, ok := e.c.(blockIOClasser); ok {
			caps.blockIO = true
			var m map[string]string
			if err := guard(func() error { m = b.BlockIOClasses(); return nil }); err == nil && m != nil {
				caps.blockIOClasses = true
				pc[fieldBlockIOClass] = m
			}
		}
		if rc, ok := e.c.(rdtClasser); ok {
			var m map[string]string
			if err := guard(func() error { m = rc.RDTClasses(); return nil }); err == nil {
				caps.rdt = true
				pc[fieldRDTClass] = m
			}
		}
	}
	return pc, caps
}

// refreshClasses takes the pools' classes from the controllers (outside
// any NRI handler: at Run and after each period's ApplyPools) and, when
// the dimensions running changed, re-resolves the routing table.
func (p *Plugin) refreshClasses() {
	pc, caps := p.dims.classes()
	p.classes.Store(&pc)
	if old := p.dimCaps.Swap(&caps); old == nil || *old != caps {
		rt := p.routes.Load()
		p.routes.Store(newRouting(caps.apply(rt.cap)))
	}
}

// poolClasses is the latest snapshot (nil before the first).
func (p *Plugin) poolClasses() poolClasses {
	if pc := p.classes.Load(); pc != nil {
		return *pc
	}
	return nil
}

// dimensionCaps is the latest snapshot's capabilities.
func (p *Plugin) dimensionCaps() dimensionCaps {
	if d := p.dimCaps.Load(); d != nil {
		return *d
	}
	return dimensionCaps{}
}
