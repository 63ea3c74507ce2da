package netqos

import (
	"errors"
	"fmt"
)

var (
	// ErrNotSupported reports a kernel feature netqos needs that the running
	// kernel lacks. Every feature-specific error below wraps it, so callers
	// that only want to know "can this node shape?" test for it alone.
	ErrNotSupported = errors.New("netqos: not supported by this kernel")

	// ErrNoBPF reports that BPF programs or maps cannot be loaded (no
	// CONFIG_BPF_SYSCALL, no CAP_BPF/CAP_SYS_ADMIN, or the tc classifier
	// program type is missing).
	ErrNoBPF = fmt.Errorf("%w: cannot load BPF programs", ErrNotSupported)

	// ErrNoClsact reports that neither TCX nor the clsact qdisc is
	// available, so the classifier has no hook.
	ErrNoClsact = fmt.Errorf("%w: no clsact qdisc (sch_ingress) for the classifier", ErrNotSupported)

	// ErrNoHTB reports that the htb qdisc is missing.
	ErrNoHTB = fmt.Errorf("%w: no htb qdisc (sch_htb)", ErrNotSupported)

	// ErrNoTBF reports that the tbf qdisc is missing (per-pod limits).
	ErrNoTBF = fmt.Errorf("%w: no tbf qdisc (sch_tbf)", ErrNotSupported)

	// ErrNoIFB reports that ifb devices (or the u32 classifier and mirred
	// action that feed them) are missing, so a pod's egress cannot be shaped
	// from its host-side veth.
	ErrNoIFB = fmt.Errorf("%w: no ifb device, cls_u32 or act_mirred for shaping a pod's egress", ErrNotSupported)

	// ErrInvalid reports bad input: a rate, a class, an annotation. The
	// wrapping error names the field and the value.
	ErrInvalid = errors.New("netqos: invalid value")

	// ErrNoInterface reports an interface that does not exist in the
	// network namespace asked for.
	ErrNoInterface = errors.New("netqos: no such interface")

	// ErrUnknownClass reports a class id that the tree does not have.
	ErrUnknownClass = errors.New("netqos: unknown class")
)
