package netqos

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Limits on a tree's shape.
const (
	// MaxClasses bounds the leaf classes of a tree (a pool each, plus the
	// default class).
	MaxClasses = 64
	// MaxPrio is the lowest htb priority (0 is served first).
	MaxPrio = 7
	// rootMinor is the minor of the root class under which every leaf
	// borrows; leaf ids must differ from it.
	rootMinor = 1
)

// ClassSpec is one leaf class of a tree: a guaranteed rate, a ceiling it
// may borrow up to while the link has room, and a priority for borrowing.
type ClassSpec struct {
	// ID is the class's minor number, 2..0xfffe (1 is the root class).
	ID uint16
	// Rate is the guaranteed rate.
	Rate Rate
	// Ceil is the most the class may use by borrowing; 0 means Rate.
	Ceil Rate
	// Prio orders borrowing between classes, 0 (first) to 7.
	Prio uint32
}

// TreeConfig describes an htb tree on one interface.
type TreeConfig struct {
	// Interface is the interface whose egress is shaped (the node's
	// uplink, or a veth in tests).
	Interface string
	// Netns is the path of the interface's network namespace
	// ("/run/netns/x", "/proc/PID/ns/net"); "" is the caller's.
	Netns string
	// Link is the interface's capacity: the root class's rate and the
	// upper bound of every ceiling.
	Link Rate
	// Classes are the leaf classes.
	Classes []ClassSpec
	// Default is the ID of the class (among Classes) that takes
	// unclassified traffic.
	Default uint16
	// Major is the qdisc's major number; 0 means 1.
	Major uint16
	// Attach chooses TCX or clsact for the classifier.
	Attach AttachMode
	// Classifier sizes the classifier's maps.
	Classifier ClassifierOptions
}

// Tree is an htb qdisc at the root of an interface with one leaf class per
// group of traffic, and a Classifier that puts each packet into its class.
// Methods are safe for concurrent use.
type Tree struct {
	mu      sync.Mutex
	s       *scope
	ifindex int
	name    string
	major   uint16
	link    Rate
	classes map[uint16]ClassSpec
	def     uint16
	cls     *Classifier
	att     attachment
	stats   *statsReader
}

func (c ClassSpec) ceil() Rate {
	if c.Ceil == 0 {
		return c.Rate
	}
	return c.Ceil
}

// validateClass checks one class against the link.
func validateClass(c ClassSpec, link Rate) error {
	switch {
	case c.ID <= rootMinor || c.ID == 0xffff:
		return fmt.Errorf("%w: class id %d: want 2..65534 (1 is the root class)", ErrInvalid, c.ID)
	case c.Rate == 0:
		return fmt.Errorf("%w: class %d: rate 0; want at least %s", ErrInvalid, c.ID, Rate(MinRate))
	case c.Rate < MinRate || c.Rate > MaxRate:
		return fmt.Errorf("%w: class %d: rate %s outside %s..%s", ErrInvalid, c.ID, c.Rate, Rate(MinRate), Rate(MaxRate))
	case c.ceil() < c.Rate:
		return fmt.Errorf("%w: class %d: ceil %s below rate %s", ErrInvalid, c.ID, c.Ceil, c.Rate)
	case c.ceil() > link:
		return fmt.Errorf("%w: class %d: ceil %s above the link %s", ErrInvalid, c.ID, c.ceil(), link)
	case c.Prio > MaxPrio:
		return fmt.Errorf("%w: class %d: prio %d; want 0..%d", ErrInvalid, c.ID, c.Prio, MaxPrio)
	}
	return nil
}

func (cfg *TreeConfig) validate() error {
	if cfg.Interface == "" {
		return fmt.Errorf("%w: interface name is empty", ErrInvalid)
	}
	if cfg.Link < MinRate || cfg.Link > MaxRate {
		return fmt.Errorf("%w: link rate %s outside %s..%s", ErrInvalid, cfg.Link, Rate(MinRate), Rate(MaxRate))
	}
	if len(cfg.Classes) == 0 || len(cfg.Classes) > MaxClasses {
		return fmt.Errorf("%w: %d classes; want 1..%d", ErrInvalid, len(cfg.Classes), MaxClasses)
	}
	if cfg.Major == 0xffff {
		return fmt.Errorf("%w: qdisc major ffff is reserved for ingress", ErrInvalid)
	}
	seen := map[uint16]bool{}
	var sum Rate
	for _, c := range cfg.Classes {
		if err := validateClass(c, cfg.Link); err != nil {
			return err
		}
		if seen[c.ID] {
			return fmt.Errorf("%w: class id %d appears twice", ErrInvalid, c.ID)
		}
		seen[c.ID] = true
		sum += c.Rate
	}
	if sum > cfg.Link {
		return fmt.Errorf("%w: guaranteed rates add up to %s, above the link %s", ErrInvalid, sum, cfg.Link)
	}
	if !seen[cfg.Default] {
		return fmt.Errorf("%w: default class %d is not among the classes", ErrInvalid, cfg.Default)
	}
	switch cfg.Attach {
	case AttachAuto, AttachTCX, AttachNetlink:
	default:
		return fmt.Errorf("%w: attach mode %d; want auto, tcx or clsact", ErrInvalid, cfg.Attach)
	}
	return nil
}

// NewTree installs the tree: it validates cfg completely first, then
// replaces the interface's root qdisc with htb (an htb of the same major
// left by a previous run is updated in place and its extra classes
// removed), loads the classifier and attaches it, replacing a previous
// run's classifier. On any failure everything installed so far is removed.
func NewTree(cfg TreeConfig) (*Tree, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Major == 0 {
		cfg.Major = 1
	}
	s, ifindex, err := openInterface(cfg.Netns, cfg.Interface)
	if err != nil {
		return nil, err
	}
	t := &Tree{
		s: s, ifindex: ifindex, name: cfg.Interface, major: cfg.Major,
		link: cfg.Link, classes: map[uint16]ClassSpec{}, def: cfg.Default,
	}
	if err := t.install(cfg); err != nil {
		t.teardown()
		return nil, err
	}
	return t, nil
}

func (t *Tree) install(cfg TreeConfig) error {
	var err error
	if t.cls, err = NewClassifier(cfg.Classifier); err != nil {
		return err
	}
	q := netlink.NewHtb(netlink.QdiscAttrs{LinkIndex: t.ifindex, Handle: Handle(t.major, 0), Parent: netlink.HANDLE_ROOT})
	q.Defcls = uint32(cfg.Default)
	reuse, err := t.existingHTB(q.Defcls)
	if err != nil {
		return err
	}
	if reuse {
		// A previous run's tree: htb cannot change its options in place
		// (EINVAL), but it need not; its classes are updated below, so
		// traffic stays shaped across the restart.
	} else if err := t.s.nl.QdiscReplace(q); err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EOPNOTSUPP) {
			return fmt.Errorf("%w: %s: %v", ErrNoHTB, t.name, err)
		}
		return fmt.Errorf("netqos: install htb on %s in %s: %w", t.name, t.s, err)
	}
	root := ClassSpec{ID: rootMinor, Rate: cfg.Link, Ceil: cfg.Link}
	if err := t.s.nl.ClassReplace(t.htbClass(root, netlink.MakeHandle(t.major, 0))); err != nil {
		return fmt.Errorf("netqos: root class %s on %s: %w", HandleString(Handle(t.major, rootMinor)), t.name, err)
	}
	for _, c := range cfg.Classes {
		if err := t.s.nl.ClassReplace(t.htbClass(c, Handle(t.major, rootMinor))); err != nil {
			return fmt.Errorf("netqos: class %s (rate %s, ceil %s) on %s: %w", HandleString(Handle(t.major, c.ID)), c.Rate, c.ceil(), t.name, err)
		}
		t.classes[c.ID] = c
	}
	if err := t.removeExtraClasses(); err != nil {
		return err
	}
	if t.att, err = attachClassifier(t.s, t.ifindex, t.cls.Program(), cfg.Attach); err != nil {
		return err
	}
	return t.s.do(func() error {
		var err error
		t.stats, err = newStatsReader(t.ifindex)
		return err
	})
}

// existingHTB reports whether the root qdisc is already an htb with our
// handle and default class. One with another default class is deleted, so
// that the replace that follows can install the new one.
func (t *Tree) existingHTB(defcls uint32) (bool, error) {
	l, err := t.s.nl.LinkByIndex(t.ifindex)
	if err != nil {
		return false, fmt.Errorf("netqos: %s: %w", t.name, err)
	}
	qs, err := t.s.nl.QdiscList(l)
	if err != nil {
		return false, fmt.Errorf("netqos: list qdiscs of %s: %w", t.name, err)
	}
	for _, q := range qs {
		h, ok := q.(*netlink.Htb)
		if !ok || h.Parent != netlink.HANDLE_ROOT || h.Handle != Handle(t.major, 0) {
			continue
		}
		if h.Defcls == defcls {
			return true, nil
		}
		if err := t.s.nl.QdiscDel(h); err != nil {
			return false, fmt.Errorf("netqos: replace htb on %s (default class %d -> %d): %w", t.name, h.Defcls, defcls, err)
		}
	}
	return false, nil
}

// removeExtraClasses deletes leaf classes of our qdisc that cfg does not
// name: they are a previous run's.
func (t *Tree) removeExtraClasses() error {
	l, err := t.s.nl.LinkByIndex(t.ifindex)
	if err != nil {
		return fmt.Errorf("netqos: %s: %w", t.name, err)
	}
	cs, err := t.s.nl.ClassList(l, Handle(t.major, 0))
	if err != nil {
		return fmt.Errorf("netqos: list classes on %s: %w", t.name, err)
	}
	for _, c := range cs {
		h := c.Attrs().Handle
		minor := uint16(h & 0xffff)
		if h>>16 != uint32(t.major) || minor == rootMinor {
			continue
		}
		if _, ok := t.classes[minor]; ok {
			continue
		}
		if err := t.s.nl.ClassDel(c); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("netqos: remove stale class %s on %s: %w", HandleString(h), t.name, err)
		}
	}
	return nil
}

// htbClass builds the netlink class for c. The quantum (bytes a class
// sends per round when borrowing) is rate/10, bounded to one MTU and the
// 200 kB htb warns above, so borrowing shares stay proportional to rates.
func (t *Tree) htbClass(c ClassSpec, parent uint32) *netlink.HtbClass {
	q := c.Rate.Bytes() / 10
	q = max(q, 1514)
	q = min(q, 200000)
	return netlink.NewHtbClass(
		netlink.ClassAttrs{LinkIndex: t.ifindex, Parent: parent, Handle: Handle(t.major, c.ID)},
		netlink.HtbClassAttrs{Rate: uint64(c.Rate), Ceil: uint64(c.ceil()), Prio: c.Prio, Quantum: uint32(q)},
	)
}

// SetClass changes a class's rate, ceiling and priority in place (packets
// queued in it and the other classes are untouched), or adds the class
// when the tree does not have it.
func (t *Tree) SetClass(c ClassSpec) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := validateClass(c, t.link); err != nil {
		return err
	}
	old, exists := t.classes[c.ID]
	var sum Rate
	for id, o := range t.classes {
		if id != c.ID {
			sum += o.Rate
		}
	}
	if sum+c.Rate > t.link {
		return fmt.Errorf("%w: class %d: rate %s would bring the guaranteed rates to %s, above the link %s", ErrInvalid, c.ID, c.Rate, sum+c.Rate, t.link)
	}
	if !exists && len(t.classes) >= MaxClasses {
		return fmt.Errorf("%w: class %d: the tree already has %d classes", ErrInvalid, c.ID, MaxClasses)
	}
	hc := t.htbClass(c, Handle(t.major, rootMinor))
	var err error
	if exists {
		err = t.s.nl.ClassChange(hc)
	} else {
		err = t.s.nl.ClassAdd(hc)
	}
	if err != nil {
		return fmt.Errorf("netqos: set class %s on %s to rate %s ceil %s (was rate %s ceil %s): %w",
			HandleString(Handle(t.major, c.ID)), t.name, c.Rate, c.ceil(), old.Rate, old.ceil(), err)
	}
	t.classes[c.ID] = c
	return nil
}

// Class returns the class with this id as last set.
func (t *Tree) Class(id uint16) (ClassSpec, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.classes[id]
	return c, ok
}

// Classes lists the leaf classes, by id.
func (t *Tree) Classes() []ClassSpec {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]ClassSpec, 0, len(t.classes))
	for _, c := range t.classes {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Link is the tree's link capacity.
func (t *Tree) Link() Rate { return t.link }

// Interface is the shaped interface's name.
func (t *Tree) Interface() string { return t.name }

// Attached reports how the classifier is attached (TCX or clsact).
func (t *Tree) Attached() AttachMode { return t.att.mode() }

// Handle is the full tc handle of class id.
func (t *Tree) Handle(id uint16) uint32 { return Handle(t.major, id) }

func (t *Tree) knownClass(id uint16) error {
	if _, ok := t.classes[id]; !ok {
		return fmt.Errorf("%w: %d on %s", ErrUnknownClass, id, t.name)
	}
	return nil
}

// ClassifyCgroup sends traffic from sockets in cgroup id, or in cgroups
// below it, to class.
func (t *Tree) ClassifyCgroup(id uint64, class uint16) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.knownClass(class); err != nil {
		return err
	}
	return t.cls.SetCgroup(id, Handle(t.major, class))
}

// ForgetCgroup removes cgroup id's entry.
func (t *Tree) ForgetCgroup(id uint64) error { return t.cls.DeleteCgroup(id) }

// ClassifyAddr sends traffic from source address a to class.
func (t *Tree) ClassifyAddr(a netip.Addr, class uint16) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.knownClass(class); err != nil {
		return err
	}
	return t.cls.SetAddr(a, Handle(t.major, class))
}

// ForgetAddr removes a's entry.
func (t *Tree) ForgetAddr(a netip.Addr) error { return t.cls.DeleteAddr(a) }

// Close removes everything the tree installed: the classifier's
// attachment, program and maps, and the htb qdisc (the interface gets its
// default qdisc back).
func (t *Tree) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.teardown()
}

// abandon drops the tree's file descriptors without removing anything
// from the kernel, as a crashing process would (tests of restarts).
func (t *Tree) abandon() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if a, ok := t.att.(*tcxAttachment); ok {
		a.l.Close()
	}
	t.att = nil
	t.cls.Close()
	t.cls = nil
	t.stats.close()
	t.stats = nil
	t.s.close()
	t.s = nil
}

func (t *Tree) teardown() error {
	var errs []error
	if t.att != nil {
		errs = append(errs, t.att.detach())
		t.att = nil
	}
	if t.cls != nil {
		errs = append(errs, t.cls.Close())
		t.cls = nil
	}
	if t.stats != nil {
		errs = append(errs, t.stats.close())
		t.stats = nil
	}
	if t.s != nil {
		q := &netlink.Htb{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: t.ifindex, Handle: Handle(t.major, 0), Parent: netlink.HANDLE_ROOT}}
		if err := t.s.nl.QdiscDel(q); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENODEV) {
			errs = append(errs, fmt.Errorf("netqos: remove htb from %s: %w", t.name, err))
		}
		t.s.close()
		t.s = nil
	}
	return errors.Join(errs...)
}
