package safetext

import (
	"strconv"
	"unicode/utf8"
)

// MaxLen is how many bytes of a value are shown; the rest is summarised
// by its length.
const MaxLen = 96

// Quote returns s quoted as a Go string literal (control characters, NULs
// and invalid UTF-8 escaped), cut to MaxLen bytes of s with the number of
// bytes left out appended: "aaaa…"(+1000 bytes).
func Quote(s string) string {
	if len(s) <= MaxLen {
		return strconv.Quote(s)
	}
	cut := MaxLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "…(+" + strconv.Itoa(len(s)-cut) + " bytes)"
}

// Name returns s unchanged when it is short and made only of the
// characters names are made of (letters, digits, '.', '-', '_', '/', ':',
// '=', '+', '*', '@'), else Quote(s). Names of pools, pods, namespaces and
// annotation keys read better bare; anything else is quoted.
func Name(s string) string {
	if s == "" || len(s) > MaxLen {
		return Quote(s)
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9':
		case b == '.', b == '-', b == '_', b == '/', b == ':', b == '=', b == '+', b == '*', b == '@':
		default:
			return Quote(s)
		}
	}
	return s
}
