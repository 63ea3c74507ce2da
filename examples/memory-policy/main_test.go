package main

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/strata-nri/strata/internal/testutil"
)

func TestBadFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--cache-max", "lots", "--", "true"}, `--cache-max "lots"`},
		{[]string{"--cache-max", "-1Mi", "--", "true"}, `--cache-max "-1Mi"`},
		{[]string{"--oom-score-adj", "2000", "--", "true"}, "want -1000..1000"},
		{[]string{"--interval", "1ms", "--", "true"}, "want 100ms..1m"},
		{[]string{}, "name a command"},
	} {
		if _, err := parse(c.args); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
}

// On the real kernel: a command that writes 96 MiB through the page cache
// ends with its cache under the 16 MiB ceiling, and reads its own
// oom_score_adj as set.
func TestKernelMemoryPolicy(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	var out bytes.Buffer
	script := "dd if=/dev/zero of=" + dir + "/f bs=1M count=96 status=none; sleep 1.5; cat /proc/self/oom_score_adj"
	if err := run([]string{"--cache-max", "16Mi", "--oom-score-adj", "900", "--interval", "200ms", "--", "sh", "-c", script}, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	s := out.String()
	if !regexp.MustCompile(`(?m)^900$`).MatchString(s) {
		t.Errorf("the command did not see oom_score_adj 900:\n%s", s)
	}
	m := regexp.MustCompile(`(\d+) reclaims, (\d+) MiB of page cache dropped, (\d+) MiB left`).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no summary:\n%s", s)
	}
	reclaims, _ := strconv.Atoi(m[1])
	left, _ := strconv.Atoi(m[3])
	// 96 MiB went through the page cache; after the command's pause the
	// cgroup holds at most the 16 MiB ceiling (+ 4 MiB for pages still
	// being written back when the last check ran).
	if reclaims == 0 || left > 20 {
		t.Errorf("%d reclaims, %d MiB of page cache left, want ≥ 1 and ≤ 20:\n%s", reclaims, left, s)
	}
}
