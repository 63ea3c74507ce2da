package safetext

import (
	"strings"
	"testing"
)

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"":                 `""`,
		"online":           `"online"`,
		"a\nb\x00c":        `"a\nb\x00c"`,
		"\x1b[31mred":      `"\x1b[31mred"`,
		"\xff":             `"\xff"`,
		"pool\r\nInjected": `"pool\r\nInjected"`,
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
	long := strings.Repeat("x", 1<<20)
	got := Quote(long)
	if len(got) > MaxLen+32 || !strings.HasSuffix(got, "…(+1048480 bytes)") {
		t.Errorf("Quote of 1 MiB: %d bytes: %.40s…%s", len(got), got, got[len(got)-20:])
	}
	// A cut never splits a rune.
	if got := Quote(strings.Repeat("é", 100)); strings.Contains(got, `\x`) {
		t.Errorf("cut split a rune: %s", got)
	}
}

func TestName(t *testing.T) {
	for in, want := range map[string]string{
		"latency-critical":                "latency-critical",
		"strata.io/pool=online":           "strata.io/pool=online",
		"team a":                          `"team a"`,
		"x\ny":                            `"x\ny"`,
		"":                                `""`,
		strings.Repeat("n", MaxLen+1)[:3]: "nnn",
	} {
		if got := Name(in); got != want {
			t.Errorf("Name(%q) = %s, want %s", in, got, want)
		}
	}
	if got := Name(strings.Repeat("n", 1000)); !strings.HasPrefix(got, `"nnn`) || len(got) > MaxLen+32 {
		t.Errorf("long name not quoted and cut: %.30s (%d bytes)", got, len(got))
	}
}
