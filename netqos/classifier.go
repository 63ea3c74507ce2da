package netqos

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// ProgramName is the name every netqos classifier carries in the kernel. A
// tree finds its predecessor's classifier by this name on restart and
// replaces it, so restarts never stack classifiers.
const ProgramName = "strata_netqos"

// MaxAncestorLevel is the deepest cgroup ancestor the classifier tries. A
// socket's own cgroup is tried first, then its ancestors from this level up
// to level 1, so a pod's cgroup (at level 2 to 4 under kubepods) matches
// every container below it and the most specific entry wins.
const MaxAncestorLevel = 8

// DefaultMaxEntries bounds each classifier map when ClassifierOptions does
// not say otherwise.
const DefaultMaxEntries = 16384

// __sk_buff offsets the classifier reads and writes (stable UAPI).
const (
	skbProtocol = 16 // __be16 in a u32
	skbPriority = 32 // u32; htb picks a leaf class whose handle equals it
)

// Ethernet + IP header offsets of the source address.
const (
	ethHeaderLen  = 14
	ipv4SrcOffset = ethHeaderLen + 12
	ipv6SrcOffset = ethHeaderLen + 8
)

// tcActUnspec lets the next program (TCX_NEXT) or filter run: the
// classifier only annotates the packet, it never decides its fate.
const tcActUnspec = -1

// ClassifierOptions configures a Classifier.
type ClassifierOptions struct {
	// MaxEntries bounds each map (cgroups, IPv4, IPv6). 0 means
	// DefaultMaxEntries.
	MaxEntries uint32
}

// Classifier is a tc program that sets skb->priority to a tc class handle
// looked up in three maps: by the sending socket's cgroup id (own cgroup,
// then ancestors), else by the IPv4 or IPv6 source address. A packet that
// matches nothing keeps its priority, and the qdisc's default class takes
// it. The classifier is attached at tc egress (TCX or clsact), which runs
// before the root qdisc, so htb classifies by skb->priority without filters
// of its own.
type Classifier struct {
	prog    *ebpf.Program
	cgroups *ebpf.Map // u64 cgroup id -> u32 class handle
	addr4   *ebpf.Map // [4]byte -> u32
	addr6   *ebpf.Map // [16]byte -> u32
}

// NewClassifier loads the program and creates its maps. Errors from a
// kernel without BPF wrap ErrNoBPF.
func NewClassifier(opts ClassifierOptions) (*Classifier, error) {
	n := opts.MaxEntries
	if n == 0 {
		n = DefaultMaxEntries
	}
	if n > 1<<20 {
		return nil, fmt.Errorf("%w: classifier MaxEntries %d above the limit %d", ErrInvalid, n, 1<<20)
	}
	c := &Classifier{}
	var err error
	mk := func(name string, key uint32) *ebpf.Map {
		if err != nil {
			return nil
		}
		var m *ebpf.Map
		m, err = ebpf.NewMap(&ebpf.MapSpec{Name: name, Type: ebpf.Hash, KeySize: key, ValueSize: 4, MaxEntries: n})
		if err != nil {
			err = fmt.Errorf("%w: create map %s: %v", ErrNoBPF, name, err)
		}
		return m
	}
	c.cgroups = mk("nq_cgroup", 8)
	c.addr4 = mk("nq_addr4", 4)
	c.addr6 = mk("nq_addr6", 16)
	if err != nil {
		c.Close()
		return nil, err
	}
	c.prog, err = ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         ProgramName,
		Type:         ebpf.SchedCLS,
		License:      "Dual BSD/GPL",
		Instructions: classifierInstructions(c.cgroups.FD(), c.addr4.FD(), c.addr6.FD()),
	})
	if err != nil {
		c.Close()
		var verr *ebpf.VerifierError
		if errors.As(err, &verr) {
			return nil, fmt.Errorf("netqos: load classifier: %w", err) // our bug, not the kernel's lack
		}
		return nil, fmt.Errorf("%w: load classifier: %v", ErrNoBPF, err)
	}
	return c, nil
}

// htons returns the value a __be16 field holds when read as a native u32.
func htons(v uint16) int32 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return int32(binary.NativeEndian.Uint16(b[:]))
}

func classifierInstructions(cgroups, addr4, addr6 int) asm.Instructions {
	const (
		keyCgroup = -8  // u64 on the stack
		keyAddr   = -24 // 16 bytes on the stack (IPv4 uses the first 4)
	)
	lookup := func(fd int, key int16, found string) asm.Instructions {
		return asm.Instructions{
			asm.LoadMapPtr(asm.R1, fd),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, int32(key)),
			asm.FnMapLookupElem.Call(),
			asm.JNE.Imm(asm.R0, 0, found),
		}
	}
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		// The socket's own cgroup. Forwarded packets have no socket: 0.
		asm.FnSkbCgroupId.Call(),
		asm.JEq.Imm(asm.R0, 0, "addr"),
		asm.StoreMem(asm.RFP, keyCgroup, asm.R0, asm.DWord),
	}
	insns = append(insns, lookup(cgroups, keyCgroup, "found")...)
	// Its ancestors, deepest first; a level deeper than the socket's
	// cgroup yields 0 and is skipped.
	for level := MaxAncestorLevel; level >= 1; level-- {
		next := fmt.Sprintf("level%d", level-1)
		if level == 1 {
			next = "addr"
		}
		insns = append(insns,
			asm.Mov.Reg(asm.R1, asm.R6).WithSymbol(fmt.Sprintf("level%d", level)),
			asm.Mov.Imm(asm.R2, int32(level)),
			asm.FnSkbAncestorCgroupId.Call(),
			asm.JEq.Imm(asm.R0, 0, next),
			asm.StoreMem(asm.RFP, keyCgroup, asm.R0, asm.DWord),
		)
		insns = append(insns, lookup(cgroups, keyCgroup, "found")...)
	}
	// The source address, for traffic whose socket is gone (pods in their
	// own network namespace, forwarded to this interface).
	insns = append(insns,
		asm.LoadMem(asm.R2, asm.R6, skbProtocol, asm.Word).WithSymbol("addr"),
		asm.JEq.Imm(asm.R2, htons(0x0800), "ipv4"),
		asm.JNE.Imm(asm.R2, htons(0x86dd), "out"),
	)
	insns = append(insns, loadSourceAddr("", true, keyAddr, "out")...)
	insns = append(insns, lookup(addr6, keyAddr, "found")...)
	insns = append(insns, asm.Ja.Label("out"))
	insns = append(insns, loadSourceAddr("ipv4", false, keyAddr, "out")...)
	insns = append(insns, lookup(addr4, keyAddr, "found")...)
	insns = append(insns,
		asm.Ja.Label("out"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.Word).WithSymbol("found"),
		asm.StoreMem(asm.R6, skbPriority, asm.R1, asm.Word),
		asm.Mov.Imm(asm.R0, tcActUnspec).WithSymbol("out"),
		asm.Return(),
	)
	return insns
}

// loadSourceAddr copies the packet's IPv4 (4 bytes) or IPv6 (16 bytes)
// source address to the stack at RFP+dst with bpf_skb_load_bytes, which
// also reads a header that is not in the linear part; the skb is in R6.
// It jumps to fail when the packet is too short. label, when not empty,
// names the first instruction.
func loadSourceAddr(label string, ipv6 bool, dst int16, fail string) asm.Instructions {
	off, size := int32(ipv4SrcOffset), int32(4)
	if ipv6 {
		off, size = ipv6SrcOffset, 16
	}
	first := asm.Mov.Reg(asm.R1, asm.R6)
	if label != "" {
		first = first.WithSymbol(label)
	}
	return asm.Instructions{
		first,
		asm.Mov.Imm(asm.R2, off),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, int32(dst)),
		asm.Mov.Imm(asm.R4, size),
		asm.FnSkbLoadBytes.Call(),
		asm.JNE.Imm(asm.R0, 0, fail),
	}
}

// Program is the loaded classifier, for attaching it elsewhere or testing
// it with Program.Run.
func (c *Classifier) Program() *ebpf.Program { return c.prog }

// SetCgroup sends the sockets of cgroup id (and of its descendants, unless
// a descendant has an entry of its own) to class handle.
func (c *Classifier) SetCgroup(id uint64, handle uint32) error {
	if id == 0 {
		return fmt.Errorf("%w: cgroup id 0", ErrInvalid)
	}
	if err := c.cgroups.Put(id, handle); err != nil {
		return fmt.Errorf("netqos: classify cgroup id %d as %s: %w", id, HandleString(handle), err)
	}
	return nil
}

// DeleteCgroup removes cgroup id's entry. A missing entry is not an error.
func (c *Classifier) DeleteCgroup(id uint64) error {
	if err := c.cgroups.Delete(id); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("netqos: forget cgroup id %d: %w", id, err)
	}
	return nil
}

// SetAddr sends packets with source address a to class handle.
func (c *Classifier) SetAddr(a netip.Addr, handle uint32) error {
	var err error
	switch {
	case a.Is4() || a.Is4In6():
		err = c.addr4.Put(a.Unmap().As4(), handle)
	case a.Is6():
		err = c.addr6.Put(a.As16(), handle)
	default:
		return fmt.Errorf("%w: address %v", ErrInvalid, a)
	}
	if err != nil {
		return fmt.Errorf("netqos: classify address %v as %s: %w", a, HandleString(handle), err)
	}
	return nil
}

// DeleteAddr removes a's entry. A missing entry is not an error.
func (c *Classifier) DeleteAddr(a netip.Addr) error {
	var err error
	switch {
	case a.Is4() || a.Is4In6():
		err = c.addr4.Delete(a.Unmap().As4())
	case a.Is6():
		err = c.addr6.Delete(a.As16())
	default:
		return fmt.Errorf("%w: address %v", ErrInvalid, a)
	}
	if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("netqos: forget address %v: %w", a, err)
	}
	return nil
}

// Close unloads the program and frees its maps (the kernel keeps them while
// an attachment still holds the program).
func (c *Classifier) Close() error {
	return closeBPF(c.prog, c.cgroups, c.addr4, c.addr6)
}

// closeBPF closes a program and its maps, any of which may be nil (a load
// that failed half way).
func closeBPF(prog *ebpf.Program, maps ...*ebpf.Map) error {
	var errs []error
	if prog != nil {
		errs = append(errs, prog.Close())
	}
	for _, m := range maps {
		if m != nil {
			errs = append(errs, m.Close())
		}
	}
	return errors.Join(errs...)
}

// Handle builds a tc handle "major:minor".
func Handle(major, minor uint16) uint32 { return uint32(major)<<16 | uint32(minor) }

// HandleString prints a tc handle the way tc does, e.g. "1:10" (hex).
func HandleString(h uint32) string { return fmt.Sprintf("%x:%x", h>>16, h&0xffff) }
