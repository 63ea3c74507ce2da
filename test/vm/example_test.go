package vm_test

import (
	"bytes"
	"fmt"

	vm "github.com/strata-nri/strata/test/vm"
)

// An initramfs is built in Go: parents are implied, entries come out
// parents first, and the archive ends with the cpio trailer.
func ExampleInitramfs() {
	fs := vm.NewInitramfs()
	fs.Bytes("strata/manifest.json", []byte(`{"runs":[]}`), 0o644)
	fs.Symlink("bin/sh", "busybox")
	var buf bytes.Buffer
	if _, err := fs.WriteTo(&buf); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(fs.Paths())
	fmt.Println(bytes.HasPrefix(buf.Bytes(), []byte("070701")), bytes.Contains(buf.Bytes(), []byte("TRAILER!!!")))
	// Output:
	// [bin bin/sh strata strata/manifest.json]
	// true true
}

// The guest prints one event per line; the host parses them into a report
// and checks it against the tests each binary listed.
func ExampleReport_Check() {
	rep := vm.NewReport()
	for _, ev := range []vm.Event{
		{Kind: vm.EventBoot, Info: map[string]string{"kernel": "6.1.0-57-cloud-amd64"}},
		{Kind: vm.EventStart, Run: "cgroup"},
		{Kind: vm.EventResult, Run: "cgroup", Test: "TestKernelV2CPUMax", Result: "pass"},
		{Kind: vm.EventExit, Run: "cgroup", Code: 1},
		{Kind: vm.EventDone},
	} {
		rep.AddLine("[    1.0] " + vm.FormatEvent(ev))
	}
	for _, p := range rep.Check(map[string][]string{"cgroup": {"TestKernelV2CPUMax", "TestKernelV2IOMax"}}) {
		fmt.Println(p)
	}
	// Output:
	// cgroup: TestKernelV2IOMax has no result (the binary crashed, exited or timed out during or before it)
	// cgroup: the test binary exited with code 1
}
