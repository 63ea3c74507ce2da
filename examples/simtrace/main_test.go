package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The example runs on its sample trace and reports every pool; the batch
// pool, greedy in the trace, is kept busy on what the online pools leave.
func TestSampleTrace(t *testing.T) {
	var out bytes.Buffer
	err := run([]string{"--trace", "testdata/trace.csv", "--pools", "web=online,db=latency-critical,etl=batch"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{"360 rows, 3 groups", "latency-critical", "online", "batch", "node CPU utilisation"} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q:\n%s", want, s)
		}
	}
	// db requests 2 × its 3.5-core peak = 7 whole CPUs: pool 0 pins them.
	if !strings.Contains(s, "7.0") {
		t.Errorf("latency-critical should hold 7 exclusive CPUs:\n%s", s)
	}
	t.Log("\n" + s)
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	n := 0
	write := func(body string) string {
		n++
		f := filepath.Join(dir, fmt.Sprintf("t%d.csv", n))
		os.WriteFile(f, []byte(body), 0o644)
		return f
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{}, "--trace is required"},
		{[]string{"--trace", write("time,group,cores\n")}, `want timestamp,group,cores`},
		{[]string{"--trace", write("timestamp,group,cores\nsoon,a,1\n")}, `line 2: timestamp "soon"`},
		{[]string{"--trace", write("timestamp,group,cores\n0,a,-1\n")}, `line 2: cores "-1": want a number in 0..4096`},
		{[]string{"--trace", write("timestamp,group,cores\n0,a,NaN\n")}, `cores "NaN"`},
		{[]string{"--trace", write("timestamp,group,cores\n5,a,1\n1,a,1\n")}, "sort the trace by time"},
		{[]string{"--trace", write("timestamp,group,cores\n")}, "no rows"},
		{[]string{"--trace", "testdata/trace.csv", "--pools", "web=gold"}, `pool "gold" is not one of "latency-critical", "online", "batch"`},
		{[]string{"--trace", "testdata/trace.csv", "--machine", "mainframe"}, `--machine "mainframe": want host or one of`},
		{[]string{"--trace", "testdata/trace.csv", "--request-factor", "0.5"}, "want 1..10"},
	} {
		err := run(c.args, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.args, err, c.want)
		}
	}
}
