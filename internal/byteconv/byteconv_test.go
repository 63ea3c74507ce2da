package byteconv

import (
	"strconv"
	"testing"
)

func TestParseUint(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"0", 0, true}, {"42", 42, true}, {"18446744073709551615", 1<<64 - 1, true},
		{"18446744073709551616", 0, false}, {"", 0, false}, {"-1", 0, false}, {"1 ", 0, false}, {"1.5", 0, false},
	} {
		got, ok := ParseUint([]byte(tc.in))
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseUint(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseDecimal(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want float64
		ok   bool
	}{
		{"0.00", 0, true}, {"12.34", 12.34, true}, {"100", 100, true}, {"1.", 0, false}, {".5", 0, false}, {"1.2.3", 0, false}, {"", 0, false},
	} {
		got, ok := ParseDecimal([]byte(tc.in))
		if ok != tc.ok || ok && got != tc.want {
			t.Errorf("ParseDecimal(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzParseUint checks the parser against strconv.
func FuzzParseUint(f *testing.F) {
	for _, s := range []string{"0", "123", "18446744073709551615", "18446744073709551616", "", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := ParseUint([]byte(s))
		want, err := strconv.ParseUint(s, 10, 64)
		// strconv accepts a leading '+' and underscores only with base 0.
		if ok != (err == nil) || ok && got != want {
			t.Fatalf("ParseUint(%q) = %d, %v; strconv says %d, %v", s, got, ok, want, err)
		}
	})
}
