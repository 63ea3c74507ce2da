package cpuset

import (
	"k8s.io/utils/cpuset"

	"github.com/strata-nri/strata/internal/cpulist"
)

// MaxCPUs bounds CPU ids in lists: 0..MaxCPUs-1, the largest NR_CPUS any
// Linux architecture configures.
const MaxCPUs = cpulist.MaxCPUs

// ParseList parses a Linux CPU list ("0-3,8,10-11") like
// k8s.io/utils/cpuset.Parse, but bounded: ids beyond MaxCPUs-1, lists
// longer than 64 KiB and ranges that name more than MaxCPUs ids in all
// (repeats counted) are errors, found before anything is expanded. Use it
// for every list that comes from outside the program — configuration,
// annotations, files.
func ParseList(s string) (cpuset.CPUSet, error) { return cpulist.Parse(s) }
