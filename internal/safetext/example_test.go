package safetext_test

import (
	"fmt"
	"strings"

	"github.com/strata-nri/strata/internal/safetext"
)

// Values from outside in an error message: names stay bare, anything else
// is quoted, and a long value is cut.
func Example() {
	fmt.Println(safetext.Name("latency-critical"))
	fmt.Println(safetext.Name("two words\n"))
	fmt.Println(safetext.Quote(strings.Repeat("a", 100)))
	// Output:
	// latency-critical
	// "two words\n"
	// "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"…(+4 bytes)
}
