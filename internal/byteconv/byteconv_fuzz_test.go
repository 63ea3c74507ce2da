package byteconv

import (
	"math"
	"strconv"
	"testing"
)

// FuzzParseDecimal checks ParseDecimal against strconv.ParseFloat on the
// inputs it accepts: never NaN or infinity, and within float rounding of
// strconv's value.
func FuzzParseDecimal(f *testing.F) {
	for _, s := range []string{"0.00", "12.34", "100.00", "1.", ".5", "NaN", "Inf", "1e5", "1.2.3", "99999999999999999999.1"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := ParseDecimal(b)
		if !ok {
			return
		}
		if math.IsNaN(got) || math.IsInf(got, 0) || got < 0 {
			t.Fatalf("ParseDecimal(%q) = %v", b, got)
		}
		want, err := strconv.ParseFloat(string(b), 64)
		if err != nil {
			t.Fatalf("ParseDecimal accepted %q, strconv refuses it: %v", b, err)
		}
		if math.Abs(got-want) > 1e-9*math.Max(1, want) {
			t.Fatalf("ParseDecimal(%q) = %v, strconv %v", b, got, want)
		}
	})
}
