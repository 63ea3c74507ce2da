package cpulist

import (
	"strings"
	"testing"

	"k8s.io/utils/cpuset"
)

func parseToSet(s string) (cpuset.CPUSet, error) {
	var ids []int
	err := Ranges([]byte(s), func(lo, hi int) {
		for i := lo; i <= hi; i++ {
			ids = append(ids, i)
		}
	})
	return cpuset.New(ids...), err
}

func TestParseList(t *testing.T) {
	good := map[string]string{
		"":              "",
		"\n":            "",
		"0\n":           "0",
		"0-3,8,10-11\n": "0-3,8,10-11",
		" 5-5 ":         "5",
		"3,1,2":         "1-3",
		"0-1,1-2":       "0-2",
	}
	for in, want := range good {
		got, err := parseToSet(in)
		if err != nil || got.String() != want {
			t.Errorf("Ranges(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"a", "1-", "-1", "3-1", "1,,2", "1,", ",1", "1 2", "0-99999999", "1-2-3", "+1", "0x1"} {
		if _, err := parseToSet(in); err == nil {
			t.Errorf("Ranges(%q) succeeded", in)
		}
	}
}

// FuzzParseList checks the bounded sysfs list parser against
// k8s.io/utils/cpuset.Parse: whatever it accepts, Parse accepts with the
// same result, and every formatted set parses back to itself.
func FuzzParseList(f *testing.F) {
	for _, s := range []string{"", "0", "0-3,8,10-11\n", "1-", "3-1", "0-8191", "0-8192", "0-8191,0-8191", "1,,2", " 7 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseToSet(s)
		if err != nil {
			return
		}
		want, err := cpuset.Parse(strings.TrimSpace(s))
		if err != nil {
			t.Fatalf("parseList accepted %q, cpuset.Parse rejects it: %v", s, err)
		}
		if !got.Equals(want) {
			t.Fatalf("Ranges(%q) = %s, cpuset.Parse = %s", s, got, want)
		}
		back, err := parseToSet(got.String())
		if err != nil || !back.Equals(got) {
			t.Fatalf("round trip of %s gave %s, %v", got, back, err)
		}
	})
}
