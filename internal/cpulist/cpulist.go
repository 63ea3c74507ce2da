package cpulist

import (
	"errors"
	"fmt"

	"k8s.io/utils/cpuset"
)

// MaxCPUs bounds the ids of a list: 0..MaxCPUs-1. The largest NR_CPUS any
// Linux architecture configures is 8192 (x86 with MAXSMP, powerpc); arm64
// tops out at 4096.
const MaxCPUs = 8192

// MaxLen bounds the text of a list: enough for all MaxCPUs ids written out
// one by one ("0,1,2,…,8191" is 38 KiB).
const MaxLen = 64 << 10

var errEmptyItem = errors.New("empty item")

// Ranges parses a list ("0-3,8,10-11\n", or empty) and calls fn for each
// inclusive range in order. It accepts what the kernel's cpulist_parse
// accepts and bitmap_print_to_pagebuf produces: decimal ids, ranges lo-hi
// with lo <= hi, items separated by commas, optional surrounding
// whitespace. Ids are bounded by MaxCPUs, the text by MaxLen, and the ranges
// together by MaxCPUs ids (counting repeats), so fn is called for at most
// MaxCPUs ids in all. Errors do not echo the input; callers name the
// source and quote the value (see internal/safetext).
func Ranges(data []byte, fn func(lo, hi int)) error {
	if len(data) > MaxLen {
		return fmt.Errorf("list of %d bytes, longer than %d", len(data), MaxLen)
	}
	// Trim surrounding whitespace (files end in "\n").
	start, end := 0, len(data)
	for start < end && isSpace(data[start]) {
		start++
	}
	for end > start && isSpace(data[end-1]) {
		end--
	}
	if start == end {
		return nil
	}
	s := data[start:end]
	i, total := 0, 0
	for {
		lo, n, err := parseID(s[i:])
		if err != nil {
			return fmt.Errorf("at offset %d: %w", i, err)
		}
		i += n
		hi := lo
		if i < len(s) && s[i] == '-' {
			i++
			hi, n, err = parseID(s[i:])
			if err != nil {
				return fmt.Errorf("at offset %d: %w", i, err)
			}
			i += n
			if hi < lo {
				return fmt.Errorf("range %d-%d is reversed", lo, hi)
			}
		}
		if total += hi - lo + 1; total > MaxCPUs {
			return fmt.Errorf("names more than %d ids in all (ranges repeated?)", MaxCPUs)
		}
		fn(lo, hi)
		if i == len(s) {
			return nil
		}
		if s[i] != ',' {
			return fmt.Errorf("at offset %d: unexpected %q, want ',' or '-'", i, s[i])
		}
		i++
	}
}

// Parse parses a list into a set (see Ranges for the bounds).
func Parse(s string) (cpuset.CPUSet, error) {
	var ids []int
	err := Ranges([]byte(s), func(lo, hi int) {
		for id := lo; id <= hi; id++ {
			ids = append(ids, id)
		}
	})
	if err != nil {
		return cpuset.New(), err
	}
	return cpuset.New(ids...), nil
}

func parseID(s []byte) (id, n int, err error) {
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		id = id*10 + int(s[n]-'0')
		if id >= MaxCPUs {
			return 0, 0, fmt.Errorf("id beyond %d, more than any machine has", MaxCPUs-1)
		}
		n++
	}
	if n == 0 {
		if len(s) == 0 {
			return 0, 0, errEmptyItem
		}
		if s[0] == '-' {
			return 0, 0, errors.New("negative or missing id before '-'")
		}
		return 0, 0, fmt.Errorf("unexpected %q, want a decimal id", s[0])
	}
	return id, n, nil
}

func isSpace(b byte) bool { return b == ' ' || b == '\n' || b == '\t' || b == '\r' }
