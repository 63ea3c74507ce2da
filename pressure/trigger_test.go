package pressure

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-nri/strata/cgroup"
)

func TestTriggerValidate(t *testing.T) {
	for _, tc := range []struct {
		trig Trigger
		want string // "" = valid
	}{
		{Trigger{Some, 150 * time.Millisecond, 2 * time.Second}, ""},
		{Trigger{Full, 10 * time.Second, 10 * time.Second}, ""},
		{Trigger{"most", time.Millisecond, time.Second}, `kind "most"`},
		{Trigger{Some, time.Millisecond, 11 * time.Second}, "window 11s outside"},
		{Trigger{Some, time.Millisecond, 0}, "window 0s outside"},
		{Trigger{Some, 3 * time.Second, 2 * time.Second}, "stall 3s outside"},
		{Trigger{Some, 0, 2 * time.Second}, "stall 0s outside"},
		{Trigger{Some, time.Nanosecond, 2 * time.Second}, "whole microseconds"},
	} {
		err := tc.trig.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.trig, err, tc.want)
		}
	}
	if got := (Trigger{Some, 150 * time.Millisecond, 2 * time.Second}).String(); got != "some 150000 2000000" {
		t.Errorf("String() = %q, want the kernel's \"some 150000 2000000\"", got)
	}
}

func writePSI(t *testing.T, path string, someUs, fullUs string) {
	t.Helper()
	content := "some avg10=0.00 avg60=0.00 avg300=0.00 total=" + someUs + "\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=" + fullUs + "\n"
	// Write and rename, so the polling watch never reads a half-written
	// file (the kernel's files are generated whole on each read).
	if err := os.WriteFile(path+".tmp", []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// TestWatchPSIPollingFixture: a fixture file cannot signal POLLPRI, so the
// watch polls and applies the kernel's rule itself: an event when the stall
// grows by at least Stall within Window, then none again within a window.
func TestWatchPSIPollingFixture(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.pressure")
	writePSI(t, path, "1000000", "0")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, rule, err := WatchPSI(ctx, path, Trigger{Some, 200 * time.Millisecond, time.Second}, WatchOptions{PollInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if rule.Delivery != Polling || rule.Interval != 10*time.Millisecond || !strings.Contains(rule.Reason, "cannot signal POLLPRI") {
		t.Errorf("rule = %v, want polling because a fixture cannot signal", rule)
	}
	// Below the threshold: 150 ms of stall.
	writePSI(t, path, "1150000", "0")
	select {
	case ev := <-events:
		t.Fatalf("event for 150 ms of stall with a 200 ms threshold: %+v", ev)
	case <-time.After(300 * time.Millisecond):
	}
	// Crossing it: 250 ms of stall in total within the window.
	writePSI(t, path, "1250000", "0")
	select {
	case ev := <-events:
		if ev.Err != nil || ev.Stats.Some.Total != 1250*time.Millisecond {
			t.Errorf("event = %+v", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event after the stall crossed the threshold")
	}
	// The file goes away: one final event with the error, then close.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	var last Event
	for ev := range events {
		last = ev
	}
	if !errors.Is(last.Err, cgroup.ErrVanished) {
		t.Errorf("last event = %+v, want ErrVanished", last)
	}
}

func TestWatchPSICancel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "memory.pressure")
	writePSI(t, path, "0", "0")
	ctx, cancel := context.WithCancel(context.Background())
	events, _, err := WatchPSI(ctx, path, Trigger{Full, 100 * time.Millisecond, 2 * time.Second}, WatchOptions{PollInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case _, open := <-events:
		if open {
			t.Error("event after cancel")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("channel not closed after cancel")
	}
}

func TestWatchPSIBadInput(t *testing.T) {
	dir := t.TempDir()
	someOnly := filepath.Join(dir, "cpu")
	if err := os.WriteFile(someOnly, []byte("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(garbage, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		path string
		trig Trigger
		want string
	}{
		{filepath.Join(dir, "missing"), Trigger{Some, time.Millisecond, 2 * time.Second}, "no such file"},
		{someOnly, Trigger{Full, time.Millisecond, 2 * time.Second}, `no "full" line`},
		{garbage, Trigger{Some, time.Millisecond, 2 * time.Second}, `garbage: malformed PSI line: no "some" line`},
		{someOnly, Trigger{Some, time.Second, 20 * time.Second}, "window 20s outside"},
	} {
		_, _, err := WatchPSI(ctx, tc.path, tc.trig, WatchOptions{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("WatchPSI(%s, %v) = %v, want %q", filepath.Base(tc.path), tc.trig, err, tc.want)
		}
	}
	if _, _, err := WatchNodePSI(ctx, dir, "irq", Trigger{Some, time.Millisecond, 2 * time.Second}, WatchOptions{}); err == nil {
		t.Error("WatchNodePSI accepted resource irq")
	}
}
