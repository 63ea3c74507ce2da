package netqos

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// AttachMode says how the classifier hooks tc egress.
type AttachMode int

const (
	// AttachAuto uses TCX where the kernel has it (Linux 6.6+) and
	// clsact + cls_bpf otherwise.
	AttachAuto AttachMode = iota
	// AttachTCX uses a TCX link; it fails with ErrNotSupported on older
	// kernels.
	AttachTCX
	// AttachNetlink uses a clsact qdisc and a direct-action cls_bpf filter.
	AttachNetlink
)

func (m AttachMode) String() string {
	switch m {
	case AttachAuto:
		return "auto"
	case AttachTCX:
		return "tcx"
	case AttachNetlink:
		return "clsact"
	}
	return fmt.Sprintf("AttachMode(%d)", int(m))
}

// filterPriority and filterHandle place the cls_bpf filter; a restarted
// tree replaces the filter at the same place.
const (
	filterPriority = 0x5371 // "Sq"
	filterHandle   = 1
)

// hook names a program netqos attaches at tc egress: the name it has in
// the kernel, by which a restart finds and replaces its predecessor, and
// the cls_bpf filter priority it takes under clsact.
type hook struct {
	name string
	prio uint16
}

var (
	classifierHook = hook{name: ProgramName, prio: filterPriority}
	pacerHook      = hook{name: PacerProgramName, prio: filterPriority + 1}
)

// attachment is the classifier's hook on an interface.
type attachment interface {
	mode() AttachMode
	detach() error
}

// attachClassifier hooks prog at the egress of ifindex, first removing any
// netqos classifier a previous run left there (found by ProgramName), so a
// restart replaces rather than stacks.
func attachClassifier(s *scope, ifindex int, prog *ebpf.Program, mode AttachMode) (attachment, error) {
	return attachProgram(s, ifindex, prog, mode, classifierHook)
}

// attachProgram hooks prog at the egress of ifindex as h, first removing
// any program of h's name a previous run left there.
func attachProgram(s *scope, ifindex int, prog *ebpf.Program, mode AttachMode, h hook) (attachment, error) {
	if mode == AttachAuto || mode == AttachTCX {
		a, err := attachTCX(s, ifindex, prog, h)
		if err == nil {
			// A clsact filter a pre-TCX run left would run twice.
			_ = removeStaleFilters(s, ifindex, h, nil)
			return a, nil
		}
		if mode == AttachTCX || !errors.Is(err, ebpf.ErrNotSupported) {
			return nil, err
		}
	}
	a, err := attachNetlink(s, ifindex, prog, h)
	if err != nil {
		return nil, err
	}
	_ = s.do(func() error { return detachStaleTCX(ifindex, h.name) })
	return a, nil
}

type tcxAttachment struct{ l link.Link }

func (a *tcxAttachment) mode() AttachMode { return AttachTCX }

func (a *tcxAttachment) detach() error {
	err := a.l.Close() // the last reference: the kernel detaches the link
	if err != nil {
		return fmt.Errorf("netqos: detach tcx link: %w", err)
	}
	return nil
}

func attachTCX(s *scope, ifindex int, prog *ebpf.Program, h hook) (attachment, error) {
	var l link.Link
	err := s.do(func() error {
		if err := detachStaleTCX(ifindex, h.name); err != nil {
			return err
		}
		var err error
		l, err = link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: prog, Attach: ebpf.AttachTCXEgress})
		return err
	})
	if err != nil {
		if errors.Is(err, ebpf.ErrNotSupported) {
			return nil, fmt.Errorf("%w: tcx: %w", ErrNotSupported, err)
		}
		return nil, fmt.Errorf("netqos: attach %s with tcx to ifindex %d in %s: %w", h.name, ifindex, s, err)
	}
	return &tcxAttachment{l: l}, nil
}

// detachStaleTCX detaches TCX egress links whose program is called name.
// It runs inside the interface's namespace.
func detachStaleTCX(ifindex int, name string) error {
	res, err := link.QueryPrograms(link.QueryOptions{Target: ifindex, Attach: ebpf.AttachTCXEgress})
	if err != nil {
		// A kernel without TCX answers EINVAL here; the attach that
		// follows reports ErrNotSupported properly.
		return nil
	}
	for _, p := range res.Programs {
		prog, err := ebpf.NewProgramFromID(p.ID)
		if err != nil {
			continue // gone meanwhile
		}
		info, err := prog.Info()
		prog.Close()
		if err != nil || info.Name != name {
			continue
		}
		id, ok := p.LinkID()
		if !ok {
			continue
		}
		l, err := link.NewFromID(id)
		if err != nil {
			continue
		}
		derr := l.Detach()
		l.Close()
		if derr != nil && !errors.Is(derr, unix.ENOENT) {
			return fmt.Errorf("netqos: detach stale classifier link %d: %w", id, derr)
		}
	}
	return nil
}

type netlinkAttachment struct {
	s      *scope
	filter *netlink.BpfFilter
}

func (a *netlinkAttachment) mode() AttachMode { return AttachNetlink }

func (a *netlinkAttachment) detach() error {
	err := a.s.nl.FilterDel(a.filter)
	if err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("netqos: delete classifier filter: %w", err)
	}
	removeClsactIfEmpty(a.s, a.filter.LinkIndex)
	return nil
}

func clsactFor(ifindex int) *netlink.GenericQdisc {
	return &netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: ifindex, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT},
		QdiscType:  "clsact",
	}
}

func attachNetlink(s *scope, ifindex int, prog *ebpf.Program, h hook) (attachment, error) {
	if err := s.nl.QdiscAdd(clsactFor(ifindex)); err != nil && !errors.Is(err, unix.EEXIST) {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL) {
			return nil, fmt.Errorf("%w: ifindex %d: %v", ErrNoClsact, ifindex, err)
		}
		return nil, fmt.Errorf("netqos: add clsact qdisc to ifindex %d: %w", ifindex, err)
	}
	f := &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{
			LinkIndex: ifindex,
			Parent:    netlink.HANDLE_MIN_EGRESS,
			Handle:    filterHandle,
			Priority:  h.prio,
			Protocol:  unix.ETH_P_ALL,
		},
		Fd:           prog.FD(),
		Name:         h.name,
		DirectAction: true,
	}
	if err := removeStaleFilters(s, ifindex, h, f); err != nil {
		return nil, err
	}
	if err := s.nl.FilterReplace(f); err != nil {
		removeClsactIfEmpty(s, ifindex)
		return nil, fmt.Errorf("netqos: attach %s filter to ifindex %d in %s: %w", h.name, ifindex, s, err)
	}
	return &netlinkAttachment{s: s, filter: f}, nil
}

// removeStaleFilters deletes h's cls_bpf filters on the egress hook other
// than keep (same priority and handle are replaced in place instead).
func removeStaleFilters(s *scope, ifindex int, h hook, keep *netlink.BpfFilter) error {
	l, err := s.nl.LinkByIndex(ifindex)
	if err != nil {
		return fmt.Errorf("netqos: ifindex %d in %s: %w", ifindex, s, err)
	}
	filters, err := s.nl.FilterList(l, netlink.HANDLE_MIN_EGRESS)
	if err != nil {
		return nil // no clsact: nothing stale
	}
	for _, f := range filters {
		bf, ok := f.(*netlink.BpfFilter)
		if !ok || !strings.HasPrefix(bf.Name, h.name) {
			continue
		}
		if keep != nil && bf.Priority == keep.Priority && bf.Handle == keep.Handle {
			continue
		}
		if err := s.nl.FilterDel(bf); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("netqos: delete stale classifier filter on ifindex %d: %w", ifindex, err)
		}
	}
	if keep == nil {
		removeClsactIfEmpty(s, ifindex)
	}
	return nil
}

// removeClsactIfEmpty deletes the clsact qdisc when no filter is left on
// either of its hooks, so netqos leaves no empty clsact behind and never
// removes one that someone else still uses.
func removeClsactIfEmpty(s *scope, ifindex int) {
	l, err := s.nl.LinkByIndex(ifindex)
	if err != nil {
		return
	}
	for _, parent := range []uint32{netlink.HANDLE_MIN_EGRESS, netlink.HANDLE_MIN_INGRESS} {
		if fs, err := s.nl.FilterList(l, parent); err != nil || len(fs) > 0 {
			return
		}
	}
	qs, err := s.nl.QdiscList(l)
	if err != nil {
		return
	}
	for _, q := range qs {
		if q.Type() == "clsact" {
			_ = s.nl.QdiscDel(clsactFor(ifindex))
		}
	}
}
