package cgexec_test

import (
	"flag"
	"fmt"

	"github.com/strata-nri/strata/examples/internal/cgexec"
)

// An example's flags: a quantity and the command after "--".
func Example() {
	fs := flag.NewFlagSet("example", flag.ContinueOnError)
	limit := fs.String("limit", "64Mi", "a byte count")
	_ = fs.Parse([]string{"--limit", "1Gi", "--", "sleep", "1"})
	n, err := cgexec.Quantity("--limit", *limit)
	fmt.Println(n, err)
	argv, err := cgexec.Argv(fs)
	fmt.Println(argv, err)
	_, err = cgexec.Quantity("--limit", "-1Mi")
	fmt.Println(err)
	// Output:
	// 1073741824 <nil>
	// [sleep 1] <nil>
	// --limit "-1Mi": want a non-negative quantity such as 64Mi or 1Gi
}
