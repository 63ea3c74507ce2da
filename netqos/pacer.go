package netqos

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// PacerProgramName is the name of the pacer's program in the kernel (see
// ProgramName).
const PacerProgramName = "strata_nq_pace"

// DefaultHorizon is how far ahead a pacer schedules packets before it
// drops instead, so that TCP backs off rather than queueing for seconds
// (Cilium's bandwidth manager uses the same).
const DefaultHorizon = 2 * time.Second

// ErrNoFQ reports that the fq qdisc is missing: earliest departure time
// pacing needs fq, which holds each packet until the departure time the
// pacer wrote into it.
var ErrNoFQ = fmt.Errorf("%w: no fq qdisc (sch_fq) for earliest departure time pacing", ErrNotSupported)

// PacerConfig describes a Pacer.
type PacerConfig struct {
	// Interface and Netns name the interface whose egress is paced (see
	// TreeConfig).
	Interface, Netns string
	// Attach chooses TCX or clsact for the program.
	Attach AttachMode
	// Horizon bounds how far ahead a packet is scheduled; later ones are
	// dropped. 0 means DefaultHorizon; at most 60 s.
	Horizon time.Duration
	// MaxEntries bounds the map of limited sources; 0 means
	// DefaultMaxEntries.
	MaxEntries uint32
}

// Pacer limits the egress of single sources on an interface by earliest
// departure time (EDT), as Cilium's bandwidth manager does for pods: an
// eBPF program at tc egress looks the packet's source address up in a map
// of rates and stamps skb->tstamp with the time the source's rate lets
// it leave, one packet after the other; the fq qdisc at the interface's
// root holds each packet until then. Unlike a TBF per pod there is no
// queue per source and no ifb: the socket's own TCP stack sees the delay
// (TCP small queues) and paces itself. A packet whose time lies beyond
// the horizon is dropped. Sources without an entry pass unpaced.
//
// The fq qdisc replaces the interface's root qdisc: a Pacer and a Tree
// (htb) cannot share an interface.
type Pacer struct {
	s       *scope
	ifindex int
	name    string
	horizon time.Duration
	prog    *ebpf.Program
	limits  *ebpf.Map // [16]byte (IPv4 as ::ffff:a.b.c.d) -> pacerLimit
	att     attachment
}

// pacerLimit is a map value: the source's rate, the departure time of its
// last packet, and the horizon (all the program needs in one lookup).
type pacerLimit struct {
	BytesPerSecond uint64
	LastNS         uint64
	HorizonNS      uint64
}

// __sk_buff offsets the pacer reads and writes (stable UAPI).
const (
	skbLen    = 0
	skbTstamp = 152 // __u64; the departure time at egress (CLOCK_MONOTONIC)
)

const tcActShot = 2

// NewPacer puts fq at the root of the interface and attaches the pacing
// program, replacing a previous run's. A kernel without sch_fq gives
// ErrNoFQ, and nothing is left installed on any failure.
func NewPacer(cfg PacerConfig) (*Pacer, error) {
	if cfg.Horizon == 0 {
		cfg.Horizon = DefaultHorizon
	}
	if cfg.Horizon < time.Millisecond || cfg.Horizon > time.Minute {
		return nil, fmt.Errorf("%w: pacer horizon %s; want 1ms..1m", ErrInvalid, cfg.Horizon)
	}
	n := cfg.MaxEntries
	if n == 0 {
		n = DefaultMaxEntries
	}
	if n > 1<<20 {
		return nil, fmt.Errorf("%w: pacer MaxEntries %d above the limit %d", ErrInvalid, n, 1<<20)
	}
	s, ifindex, err := openInterface(cfg.Netns, cfg.Interface)
	if err != nil {
		return nil, err
	}
	p := &Pacer{s: s, ifindex: ifindex, name: cfg.Interface, horizon: cfg.Horizon}
	if err := p.install(cfg, n); err != nil {
		_ = p.Close()
		return nil, err
	}
	return p, nil
}

func (p *Pacer) install(cfg PacerConfig, n uint32) error {
	fq := netlink.NewFq(netlink.QdiscAttrs{LinkIndex: p.ifindex, Handle: netlink.MakeHandle(0x5370, 0), Parent: netlink.HANDLE_ROOT})
	if err := p.s.nl.QdiscReplace(fq); err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EOPNOTSUPP) {
			return fmt.Errorf("%w: %s: %v", ErrNoFQ, p.name, err)
		}
		return fmt.Errorf("netqos: install fq on %s in %s: %w", p.name, p.s, err)
	}
	var err error
	if p.prog, p.limits, err = loadPacer(n); err != nil {
		return err
	}
	p.att, err = attachProgram(p.s, p.ifindex, p.prog, cfg.Attach, pacerHook)
	return err
}

// loadPacer creates the pacer's map and loads its program.
func loadPacer(n uint32) (*ebpf.Program, *ebpf.Map, error) {
	m, err := ebpf.NewMap(&ebpf.MapSpec{Name: "nq_pace", Type: ebpf.Hash, KeySize: 16, ValueSize: 24, MaxEntries: n})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: create map nq_pace: %v", ErrNoBPF, err)
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: PacerProgramName, Type: ebpf.SchedCLS, License: "Dual BSD/GPL",
		Instructions: pacerInstructions(m.FD()),
	})
	if err != nil {
		m.Close()
		var verr *ebpf.VerifierError
		if errors.As(err, &verr) {
			return nil, nil, fmt.Errorf("netqos: load pacer: %w", err)
		}
		return nil, nil, fmt.Errorf("%w: load pacer: %v", ErrNoBPF, err)
	}
	return prog, m, nil
}

// pacerInstructions: key = the source address (IPv4 mapped into IPv6);
// no entry or rate 0: pass. Otherwise, as Cilium's edt_sched_departure:
//
//	now = ktime_get_ns(); t = max(skb->tstamp, now)
//	next = last + len * 1e9 / rate
//	if next <= t: last = t, pass          (the source is under its rate)
//	if next - now >= horizon: drop
//	last = next; skb->tstamp = next; pass
func pacerInstructions(limits int) asm.Instructions {
	const key = -16 // 16 bytes on the stack
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.LoadMem(asm.R2, asm.R6, skbProtocol, asm.Word),
		asm.JEq.Imm(asm.R2, htons(0x86dd), "ipv6"),
		asm.JNE.Imm(asm.R2, htons(0x0800), "pass"),
		// ::ffff:a.b.c.d
		asm.Mov.Imm(asm.R1, 0),
		asm.StoreMem(asm.RFP, key, asm.R1, asm.DWord),
		asm.Mov.Imm32(asm.R1, int32(htonl(0x0000ffff))),
		asm.StoreMem(asm.RFP, key+8, asm.R1, asm.Word),
	}
	insns = append(insns, loadSourceAddr("", false, key+12, "pass")...)
	insns = append(insns, asm.Ja.Label("lookup"))
	insns = append(insns, loadSourceAddr("ipv6", true, key, "pass")...)
	return append(insns,
		asm.LoadMapPtr(asm.R1, limits).WithSymbol("lookup"),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, key),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "pass"),
		asm.Mov.Reg(asm.R7, asm.R0), // the limit
		asm.LoadMem(asm.R9, asm.R7, 0, asm.DWord),
		asm.JEq.Imm(asm.R9, 0, "pass"),
		asm.FnKtimeGetNs.Call(),
		asm.Mov.Reg(asm.R8, asm.R0), // now
		// delay = len * 1e9 / rate
		asm.LoadMem(asm.R2, asm.R6, skbLen, asm.Word),
		asm.Mul.Imm(asm.R2, 1000000000),
		asm.Div.Reg(asm.R2, asm.R9),
		// next = last + delay
		asm.LoadMem(asm.R3, asm.R7, 8, asm.DWord),
		asm.Add.Reg(asm.R3, asm.R2),
		// t = max(skb->tstamp, now)
		asm.LoadMem(asm.R4, asm.R6, skbTstamp, asm.DWord),
		asm.JGE.Reg(asm.R4, asm.R8, "have_t"),
		asm.Mov.Reg(asm.R4, asm.R8),
		asm.JGT.Reg(asm.R3, asm.R4, "delay").WithSymbol("have_t"),
		asm.StoreMem(asm.R7, 8, asm.R4, asm.DWord),
		asm.Ja.Label("pass"),
		// next - now >= horizon: drop
		asm.Mov.Reg(asm.R5, asm.R3).WithSymbol("delay"),
		asm.Sub.Reg(asm.R5, asm.R8),
		asm.LoadMem(asm.R1, asm.R7, 16, asm.DWord),
		asm.JGE.Reg(asm.R5, asm.R1, "drop"),
		asm.StoreMem(asm.R7, 8, asm.R3, asm.DWord),
		asm.StoreMem(asm.R6, skbTstamp, asm.R3, asm.DWord),
		asm.Mov.Imm(asm.R0, tcActUnspec).WithSymbol("pass"),
		asm.Return(),
		asm.Mov.Imm(asm.R0, tcActShot).WithSymbol("drop"),
		asm.Return(),
	)
}

// htonl returns the value a __be32 field holds when read as a native u32.
func htonl(v uint32) uint32 {
	b := [4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func pacerKey(a netip.Addr) [16]byte { return netip.AddrFrom16(a.As16()).As16() }

// Limit paces the packets with source address a to rate r (at least
// MinRate); calling it again changes the rate at once.
func (p *Pacer) Limit(a netip.Addr, r Rate) error {
	if !a.IsValid() {
		return fmt.Errorf("%w: address %v", ErrInvalid, a)
	}
	if r < MinRate || r > MaxRate {
		return fmt.Errorf("%w: pace %v to %s: outside %s..%s", ErrInvalid, a, r, Rate(MinRate), Rate(MaxRate))
	}
	v := pacerLimit{BytesPerSecond: max(r.Bytes(), 1), HorizonNS: uint64(p.horizon)}
	if err := p.limits.Put(pacerKey(a), v); err != nil {
		return fmt.Errorf("netqos: pace %v to %s on %s: %w", a, r, p.name, err)
	}
	return nil
}

// Forget stops pacing a. A source without a limit is not an error.
func (p *Pacer) Forget(a netip.Addr) error {
	if err := p.limits.Delete(pacerKey(a)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("netqos: stop pacing %v on %s: %w", a, p.name, err)
	}
	return nil
}

// Program is the loaded pacing program (for Program.Run in tests).
func (p *Pacer) Program() *ebpf.Program { return p.prog }

// Close detaches the program, frees it and its map, and gives the
// interface its default root qdisc back.
func (p *Pacer) Close() error {
	var errs []error
	if p.att != nil {
		errs = append(errs, p.att.detach())
		p.att = nil
	}
	errs = append(errs, closeBPF(p.prog, p.limits))
	p.prog, p.limits = nil, nil
	if p.s != nil {
		fq := &netlink.Fq{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: p.ifindex, Handle: netlink.MakeHandle(0x5370, 0), Parent: netlink.HANDLE_ROOT}}
		if err := p.s.nl.QdiscDel(fq); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENODEV) {
			errs = append(errs, fmt.Errorf("netqos: remove fq from %s: %w", p.name, err))
		}
		p.s.close()
		p.s = nil
	}
	return errors.Join(errs...)
}
