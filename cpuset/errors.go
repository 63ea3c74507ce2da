package cpuset

import (
	"errors"
	"fmt"
)

// ErrInsufficientCPUs is matched (errors.Is) by every InsufficientCPUsError.
var ErrInsufficientCPUs = errors.New("insufficient CPUs")

// InsufficientCPUsError reports a request for more CPUs than are available
// to it. Nothing was allocated. For a Spread request, Available counts the
// physical cores with a free thread.
type InsufficientCPUsError struct {
	Requested, Available int
}

func (e *InsufficientCPUsError) Error() string {
	return fmt.Sprintf("cpuset: requested %d CPUs, only %d available", e.Requested, e.Available)
}

// Is makes errors.Is(err, ErrInsufficientCPUs) true.
func (e *InsufficientCPUsError) Is(target error) bool { return target == ErrInsufficientCPUs }
