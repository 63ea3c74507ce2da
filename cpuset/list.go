package cpuset

import (
	"errors"
	"fmt"
)

// maxListID bounds the ids accepted from sysfs lists. The kernel's NR_CPUS
// tops out at 8192 on x86 and 4096 on arm64; 65535 leaves room for any
// future kernel while keeping a corrupt file such as "0-4000000000" from
// turning into billions of set entries.
const maxListID = 1<<16 - 1

var errEmptyItem = errors.New("empty item")

// parseList parses a kernel list file ("0-3,8,10-11\n", or empty) and calls
// fn for each inclusive range in file order. It accepts exactly what the
// kernel's bitmap_print_to_pagebuf/cpulist_parse produce and accept:
// decimal ids, ranges lo-hi with lo <= hi, items separated by commas,
// optional surrounding whitespace. The result is the same set
// k8s.io/utils/cpuset.Parse returns; this bounded version exists because
// discovery reads hundreds of these files and must not build a map for
// each, and because a corrupt file must not exhaust memory.
func parseList(data []byte, fn func(lo, hi int)) error {
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
	i := 0
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

func parseID(s []byte) (id, n int, err error) {
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		id = id*10 + int(s[n]-'0')
		if id > maxListID {
			return 0, 0, fmt.Errorf("CPU id beyond %d", maxListID)
		}
		n++
	}
	if n == 0 {
		if len(s) == 0 {
			return 0, 0, errEmptyItem
		}
		return 0, 0, fmt.Errorf("unexpected %q, want a decimal id", s[0])
	}
	return id, n, nil
}

func isSpace(b byte) bool { return b == ' ' || b == '\n' || b == '\t' || b == '\r' }
