package vm_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-nri/strata/internal/testutil"
	vm "github.com/strata-nri/strata/test/vm"
)

// watchSlack is how late past its limit the host may kill a hung guest:
// the watchdog looks every 5 s, then asks qemu's monitor for the state and
// the vCPUs (a few monitor commands) and kills qemu.
const watchSlack = 15 * time.Second

// TestVMHangs boots two guests that hang, for real, with an /init that is
// a shell script (no heartbeat): one that never reports its boot, one that
// reports it and then prints nothing. The host must kill each within its
// limit (Options.BootTimeout, Options.Silence) plus watchSlack, not after
// the guest's whole timeout, and say why: qemu's state, where the vCPUs
// are, the console's last lines. The first is booted twice
// (Options.BootRetry), and the second hang reported with the first's.
func TestVMHangs(t *testing.T) {
	if testing.Short() && !testutil.KernelRequired() {
		t.Skip("vm: skipped under -short (boots two qemu guests that hang: about 1 min)")
	}
	requireQemu(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	kernel, err := vm.FetchKernel(ctx, "", "", t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	script := func(t *testing.T, body string) string {
		p := filepath.Join(t.TempDir(), "init")
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\nexec sleep 100000\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	boot := func(t *testing.T, init string, opts vm.Options) (*vm.Report, *timeline) {
		tl := &timeline{}
		opts.Kernel, opts.Init, opts.WorkDir = kernel, init, t.TempDir()
		opts.CPUs, opts.MemoryMiB, opts.ScratchMiB = 1, 512, -1
		opts.Timeout = 5 * time.Minute
		opts.Console = tl
		opts.Logf = tl.logf(t)
		rep, err := vm.Boot(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		tl.mark("returned")
		return rep, tl
	}
	// A diagnosis names qemu's state, each vCPU and the console's tail.
	diagnosed := func(t *testing.T, what, msg, lastLine string) {
		for _, want := range []string{"qemu status: running", "CPU 0: ", "the console's last", lastLine} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: the diagnosis lacks %q:\n%s", what, want, msg)
			}
		}
	}

	t.Run("NoBootEvent", func(t *testing.T) {
		const limit = 15 * time.Second
		rep, tl := boot(t, script(t, "echo strata-vm hang test: no boot event"), vm.Options{BootTimeout: limit, BootRetry: true})
		boots := tl.all(" vCPUs and ")
		kills := tl.all("guest hung before its boot event: no boot event")
		if len(boots) != 2 || len(kills) != 2 {
			t.Fatalf("want two boots, each killed as hung; booted %d times, killed %d:\n%s", len(boots), len(kills), tl)
		}
		for i := range boots {
			took := kills[i].Sub(boots[i])
			t.Logf("boot %d: killed %s after qemu started (limit %s)", i+1, took.Round(100*time.Millisecond), limit)
			if took < limit || took > limit+watchSlack {
				t.Errorf("boot %d killed %s after qemu started, want %s to %s", i+1, took, limit, limit+watchSlack)
			}
		}
		if rep.Boot != nil {
			t.Errorf("a boot event was reported: %v", rep.Boot)
		}
		if rep.Retried == "" {
			t.Fatal("Report.Retried is empty: the first hang's diagnosis is lost")
		}
		diagnosed(t, "first boot", rep.Retried, "no boot event")
		errs := strings.Join(rep.Errors, "\n")
		if !strings.Contains(errs, "hung before its boot event") {
			t.Fatalf("the second hang is not among the report's errors: %q", rep.Errors)
		}
		diagnosed(t, "second boot", errs, "no boot event")
		if !strings.Contains(strings.Join(rep.Check(nil), "\n"), "hung before its boot event") {
			t.Error("Check does not report the hang")
		}
	})

	t.Run("SilentAfterBoot", func(t *testing.T) {
		const limit = 15 * time.Second
		up := vm.FormatEvent(vm.Event{Kind: vm.EventBoot, Info: map[string]string{"kernel": "hang test"}})
		rep, tl := boot(t, script(t, "echo '"+up+"'"), vm.Options{Silence: limit, BootRetry: true})
		if rep.Boot == nil {
			t.Fatalf("the script's boot event was not seen:\n%s", tl)
		}
		if len(tl.all(" vCPUs and ")) != 1 {
			t.Errorf("a guest that hung after its boot event was booted again:\n%s", tl)
		}
		last, end := tl.lastLine(), tl.first("returned")
		took := end.Sub(last)
		t.Logf("killed %s after its last console line (limit %s)", took.Round(100*time.Millisecond), limit)
		if took < limit || took > limit+watchSlack {
			t.Errorf("killed %s after the console's last line, want %s to %s", took, limit, limit+watchSlack)
		}
		errs := strings.Join(rep.Errors, "\n")
		if !strings.Contains(errs, "guest wedged: console silent") {
			t.Fatalf("the report does not say the guest wedged: %q", rep.Errors)
		}
		diagnosed(t, "silent guest", errs, `"kernel":"hang test"`)
	})
}

// timeline records when the guest printed and what the harness logged.
type timeline struct {
	mu     sync.Mutex
	last   time.Time
	events []stamped
}

type stamped struct {
	at  time.Time
	msg string
}

// Write takes the console's lines (Options.Console).
func (tl *timeline) Write(p []byte) (int, error) {
	tl.mu.Lock()
	tl.last = time.Now()
	tl.mu.Unlock()
	return len(p), nil
}

func (tl *timeline) mark(msg string) {
	tl.mu.Lock()
	tl.events = append(tl.events, stamped{time.Now(), msg})
	tl.mu.Unlock()
}

func (tl *timeline) logf(t *testing.T) func(string, ...any) {
	return func(format string, args ...any) {
		t.Logf(format, args...)
		tl.mark(fmt.Sprintf(format, args...))
	}
}

func (tl *timeline) all(sub string) []time.Time {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var at []time.Time
	for _, e := range tl.events {
		if strings.Contains(e.msg, sub) {
			at = append(at, e.at)
		}
	}
	return at
}

func (tl *timeline) first(sub string) time.Time {
	if at := tl.all(sub); len(at) > 0 {
		return at[0]
	}
	return time.Time{}
}

func (tl *timeline) lastLine() time.Time {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return tl.last
}

func (tl *timeline) String() string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var b strings.Builder
	for _, e := range tl.events {
		b.WriteString(e.at.Format("15:04:05.000 ") + e.msg + "\n")
	}
	return b.String()
}
