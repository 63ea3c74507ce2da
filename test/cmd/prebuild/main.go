// Command prebuild fills the test tiers' build caches side by side: the
// Kubernetes binaries, every containerd version the e2e tier tests (static,
// which the host and the cgroup v2 guest share), the test image, the
// guest's kernel, and the guest's static test binaries (into Go's build
// cache; the VM tier links them again in seconds). On a warm machine every
// step is a cache hit and it returns in seconds.
//
// A lone `go build` leaves part of two CPUs idle (module downloads,
// linking, the package graph's narrow points); three builds at once keep
// them busy, so a cold machine spends about the builds' CPU time divided by
// the CPUs rather than their sum. `make test` starts it in the background
// while lint and the unit tier run, and waits for it before the first
// measured tier: builds beside measured tests would disturb them.
//
//	go run ./test/cmd/prebuild
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sync"
	"time"

	e2e "github.com/strata-nri/strata/test/e2e/harness"
	k8s "github.com/strata-nri/strata/test/k8s/harness"
	"github.com/strata-nri/strata/test/vm"
)

func main() {
	ctx := context.Background()
	start := time.Now()
	logf := func(format string, args ...any) { log.Printf(format, args...) }
	wd, err := os.Getwd()
	if err != nil {
		log.Fatal(err)
	}
	root, err := vm.ModuleRoot(wd)
	if err != nil {
		log.Fatal(err)
	}
	steps := []struct {
		name string
		run  func() error
	}{
		{"Kubernetes", func() error {
			_, err := k8s.Build(ctx, k8s.BuildOptions{Logf: logf})
			return err
		}},
		{"containerd and the test image", func() error {
			versions, err := e2e.Versions()
			if err != nil {
				return err
			}
			for _, v := range versions {
				if _, err := e2e.BuildContainerd(ctx, e2e.BuildOptions{Version: v, Static: true, Logf: logf}); err != nil {
					return err
				}
			}
			_, err = e2e.BuildImage(ctx, "", logf)
			return err
		}},
		{"the cgroup v2 guest", func() error {
			if _, err := vm.FetchKernel(ctx, "", "", logf); err != nil {
				return err
			}
			pkgs, err := vm.KernelTestPackages(ctx, root)
			if err != nil {
				return err
			}
			tmp, err := os.MkdirTemp("", "strata-prebuild-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(tmp)
			for _, p := range pkgs {
				if err := vm.BuildTestBinary(ctx, root, p, filepath.Join(tmp, filepath.Base(p.Rel)+".test")); err != nil {
					return err
				}
			}
			return vm.BuildBinary(ctx, root, "./nri-plugin/cmd/strata", filepath.Join(tmp, "strata"))
		}},
	}
	var wg sync.WaitGroup
	errs := make([]error, len(steps))
	for i, s := range steps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.Now()
			errs[i] = s.run()
			logf("prebuild: %s done in %s (err: %v)", s.name, time.Since(t).Round(time.Second), errs[i])
		}()
	}
	wg.Wait()
	failed := false
	for i, err := range errs {
		if err != nil {
			fmt.Fprintf(os.Stderr, "prebuild: %s: %v\n", steps[i].name, err)
			failed = true
		}
	}
	logf("prebuild: all done in %s", time.Since(start).Round(time.Second))
	if failed {
		os.Exit(1)
	}
}
