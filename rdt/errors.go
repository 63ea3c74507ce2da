package rdt

import (
	"errors"
	"fmt"

	"github.com/strata-nri/strata/internal/safetext"
)

var (
	// ErrNotSupported is matched (errors.Is) by every *NotSupportedError:
	// the host has no resctrl, or not the part of it an operation needs.
	ErrNotSupported = errors.New("rdt: not supported")

	// ErrInvalid is matched by every *InvalidError: a class's schemata
	// that the hardware would refuse.
	ErrInvalid = errors.New("rdt: invalid class configuration")

	// ErrBudget is matched by every *BudgetError: more classes than the
	// hardware has CLOSIDs, or more monitoring groups than it has RMIDs.
	ErrBudget = errors.New("rdt: hardware budget exhausted")

	// ErrNoClass reports a class that does not exist under the prefix.
	ErrNoClass = errors.New("rdt: no such class")
)

// NotSupportedError says why resctrl, or one of its features, cannot be
// used on this host.
type NotSupportedError struct {
	Feature string // "resctrl", "cache allocation", "monitoring", ...
	Reason  string
}

func (e *NotSupportedError) Error() string {
	return fmt.Sprintf("rdt: %s not supported: %s", e.Feature, e.Reason)
}

// Is makes errors.Is(err, ErrNotSupported) true.
func (e *NotSupportedError) Is(target error) bool { return target == ErrNotSupported }

// InvalidError names the class, resource, cache id and value that the
// hardware (or the kernel) would refuse, and why.
type InvalidError struct {
	Class    string   // the class name, "" for the default group
	Resource Resource // "L3", "L3CODE", "MB", ...; "" when not about one
	CacheID  int      // -1 when not about one cache id
	Value    string   // the offending value as written or configured
	Reason   string   // what is wrong and what is allowed
}

func (e *InvalidError) Error() string {
	where := fmt.Sprintf("rdt: class %q", e.Class)
	if e.Resource != "" {
		where += " " + string(e.Resource)
	}
	if e.CacheID >= 0 {
		where += fmt.Sprintf(" cache id %d", e.CacheID)
	}
	if e.Value != "" {
		where += fmt.Sprintf(" value %q", e.Value)
	}
	return where + ": " + e.Reason
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

// BudgetError reports that an operation needs more CLOSIDs or RMIDs than
// the hardware offers. Nothing was created.
type BudgetError struct {
	Class string // the class (or "class/monitoring group") asked for
	Kind  string // "CLOSID" or "RMID"
	InUse int    // how many are in use, by every group in resctrl
	Limit int    // how many the hardware has (num_closids, num_rmids)
}

func (e *BudgetError) Error() string {
	return fmt.Sprintf("rdt: class %q needs one more %s: %d of %d in use (the default group holds one)",
		e.Class, e.Kind, e.InUse, e.Limit)
}

// Is makes errors.Is(err, ErrBudget) true.
func (e *BudgetError) Is(target error) bool { return target == ErrBudget }

// FileError is the error of reading or writing one resctrl file. When the
// kernel explained a refusal in info/last_cmd_status, Status carries it.
type FileError struct {
	Op     string // "read", "write", "mkdir", "rmdir"
	Path   string
	Value  string // what was written, if anything
	Status string // info/last_cmd_status after a failed write
	Err    error
}

func (e *FileError) Error() string {
	s := fmt.Sprintf("rdt: %s %s", e.Op, e.Path)
	if e.Value != "" {
		s += " (" + safetext.Quote(e.Value) + ")"
	}
	s += ": " + e.Err.Error()
	if e.Status != "" && e.Status != "ok" {
		s += " (kernel: " + e.Status + ")"
	}
	return s
}

func (e *FileError) Unwrap() error { return e.Err }
