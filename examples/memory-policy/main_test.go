package main

import (
	"bytes"
	"regexp"
	"strconv"
	"testing"

	"github.com/strata-nri/strata/examples/internal/cgexec"
	"github.com/strata-nri/strata/internal/testutil"
)

func TestBadFlags(t *testing.T) {
	cgexec.CheckArgErrors(t, func(args []string) error { _, err := parse(args); return err }, []cgexec.ArgError{
		{Args: []string{"--cache-max", "lots", "--", "true"}, Want: `--cache-max "lots"`},
		{Args: []string{"--cache-max", "-1Mi", "--", "true"}, Want: `--cache-max "-1Mi"`},
		{Args: []string{"--oom-score-adj", "2000", "--", "true"}, Want: "want -1000..1000"},
		{Args: []string{"--interval", "1ms", "--", "true"}, Want: "want 100ms..1m"},
		{Args: []string{}, Want: "name a command"},
	})
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
