package cpulist_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/strata-nri/strata/internal/cpulist"
	"github.com/strata-nri/strata/internal/testutil"
)

// Each hostile list is refused with a clear error within the budget
// (50 MiB, 100 ms), found before anything is expanded.
func TestHostileListsWithinBudget(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"id beyond any machine", "8192", "beyond 8191"},
		{"range of billions", "0-4000000000", "beyond 8191"},
		{"overflowing digits", "99999999999999999999999999", "beyond 8191"},
		{"negative id", "-1", "negative"},
		{"negative range end", "3--1", "negative"},
		{"list repeated thousands of times", strings.Repeat("0-8191,", 10000) + "0", "longer than"},
		{"repeated within the length bound", strings.Repeat("0-8191,", 8000) + "0", "more than 8192 ids"},
		{"a megabyte of digits", strings.Repeat("1", 1<<20), "longer than"},
		{"repeated singles", strings.Repeat("5,", 9000) + "5", "more than 8192 ids"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var err error
			testutil.WithinBudget(t, c.name, func() { _, err = cpulist.Parse(c.in) })
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Parse = %v, want an error saying %q", err, c.want)
			}
		})
	}
	// The largest legitimate list: every id once.
	var b strings.Builder
	for i := range cpulist.MaxCPUs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(i))
	}
	var n int
	testutil.WithinBudget(t, "all 8192 ids one by one", func() {
		set, err := cpulist.Parse(b.String())
		if err != nil {
			t.Fatal(err)
		}
		n = set.Size()
	})
	if n != cpulist.MaxCPUs {
		t.Errorf("parsed %d ids, want %d", n, cpulist.MaxCPUs)
	}
}

// BenchmarkParseHostile measures refusing a list that names every id
// thousands of times over.
func BenchmarkParseHostile(b *testing.B) {
	in := strings.Repeat("0-8191,", 8000) + "0"
	b.ReportAllocs()
	for b.Loop() {
		_, _ = cpulist.Parse(in)
	}
}
