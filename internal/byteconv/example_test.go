package byteconv_test

import (
	"bytes"
	"fmt"

	"github.com/strata-nri/strata/internal/byteconv"
)

// Read the fields of a PSI line without allocating a string per value.
func Example() {
	line := []byte("some avg10=1.25 avg60=0.50 avg300=0.10 total=123456")
	for _, f := range bytes.Fields(line)[1:] {
		key, val, _ := bytes.Cut(f, []byte("="))
		if string(key) == "total" {
			n, ok := byteconv.ParseUint(val)
			fmt.Println(string(key), n, ok)
			continue
		}
		v, ok := byteconv.ParseDecimal(val)
		fmt.Println(string(key), v, ok)
	}
	_, ok := byteconv.ParseUint([]byte("18446744073709551616")) // 2^64
	fmt.Println("overflow accepted:", ok)
	// Output:
	// avg10 1.25 true
	// avg60 0.5 true
	// avg300 0.1 true
	// total 123456 true
	// overflow accepted: false
}
