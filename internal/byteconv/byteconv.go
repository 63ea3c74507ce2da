package byteconv

import "bytes"

// ParseUint parses a decimal unsigned integer. It rejects empty input, any
// non-digit and overflow.
func ParseUint(b []byte) (uint64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (1<<64-1-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

// ParseDecimal parses "12.34" (digits, an optional '.' and digits). The
// kernel prints PSI averages with two decimals, so float rounding is moot.
func ParseDecimal(b []byte) (float64, bool) {
	intPart, frac, hasDot := bytes.Cut(b, []byte("."))
	i, ok := ParseUint(intPart)
	if !ok {
		return 0, false
	}
	v := float64(i)
	if hasDot {
		f, ok := ParseUint(frac)
		if !ok || len(frac) > 18 {
			return 0, false
		}
		scale := 1.0
		for range frac {
			scale *= 10
		}
		v += float64(f) / scale
	}
	return v, true
}
