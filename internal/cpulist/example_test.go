package cpulist_test

import (
	"fmt"

	"github.com/strata-nri/strata/internal/cpulist"
)

// Parse a list as sysfs prints it; a hostile one is an error, not a map of
// billions of CPUs.
func Example() {
	set, err := cpulist.Parse("0-3,8,10-11\n")
	fmt.Println(set, set.Size(), err)
	_ = cpulist.Ranges([]byte("0-1,64"), func(lo, hi int) { fmt.Println("range", lo, hi) })
	_, err = cpulist.Parse("0-4000000000")
	fmt.Println(err != nil)
	// Output:
	// 0-3,8,10-11 7 <nil>
	// range 0 1
	// range 64 64
	// true
}
