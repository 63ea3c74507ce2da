# Strata's entry points. `make test` runs every tier; `make demo` runs the
# main job. Both expect a Debian/Ubuntu machine and root for the kernel and
# end-to-end tiers.

GO                  ?= go
STATICCHECK_VERSION := v0.8.2
HELM_VERSION        := v3.22.0
PKGS                := ./...

.PHONY: all build deps prebuild lint test test-unit bench-smoke test-kernel test-vm test-vm-k8s test-e2e test-k8s fuzz bench bench-colocation demo clean

all: build

build:
	$(GO) build $(PKGS)

deps:
	./hack/install-deps.sh

# Formatting, vet and staticcheck over every package.
lint: deps
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	./bin/staticcheck $(PKGS)

# Unit tier: fixture trees, any machine, no root. Kernel and e2e tests are
# left to their tiers.
test-unit:
	$(GO) test -count=1 -skip 'Kernel|E2E|^TestVM' $(PKGS)

# Kernel tier: the real kernel in the tests' own cgroups and namespaces, as
# root. One package at a time so measured tests do not share the CPUs.
test-kernel:
	$(GO) test -count=1 -p 1 -run 'Kernel' $(PKGS)

# cgroup v2 tier: every package's kernel tests again, in a throwaway qemu
# guest booting a Debian kernel with the v2 controllers (test/vm). Needs no
# root; holds /tmp/strata-measure.lock while the guest runs.
test-vm:
	$(GO) test -count=1 -timeout 30m -run '^TestVM' -skip '^TestVMKubernetes$$' -v ./test/vm/

# The Kubernetes tier's node (kubelet, containerd, Strata) in a cgroup v2
# guest, the control plane on the host; as root. Its binaries are built
# first, as for test-k8s. Apart from test-vm so each stays under 10 min warm.
test-vm-k8s:
	$(GO) run ./test/k8s/cmd/k8sbuild
	$(GO) test -count=1 -timeout 30m -run '^TestVMKubernetes$$' -v ./test/vm/

# End-to-end tier: a real containerd (built from the Go module proxy and
# cached) with the plugin.
test-e2e:
	flock /tmp/strata-measure.lock $(GO) test -count=1 -p 1 -timeout 25m -run 'E2E' ./test/e2e/...

# Kubernetes tier: a single-node cluster (etcd, API server, controller
# manager, scheduler, kubelet; built from the Go module proxy and cached)
# with the plugin. Builds first, then holds the shared measurement lock
# only while clusters run.
test-k8s:
	$(GO) run ./test/k8s/cmd/k8sbuild
	flock /tmp/strata-measure.lock $(GO) test -count=1 -p 1 -timeout 30m -run 'E2EK8s' ./test/k8s/...

# Benchmarks run once each, so a change that breaks one is caught by the
# tests rather than by the next person measuring. (pressure's and the e2e
# benchmarks build large fixtures or real containers: run them with make
# bench.)
bench-smoke:
	$(GO) test -count=1 -run '^$$' -bench . -benchtime 1x ./cgroup/... ./cpuset/... ./isolation/... ./nri-plugin/...

# Fuzzing: each native Go fuzz target (func Fuzz… in any _test.go) runs
# for FUZZTIME. Their seed corpora already run in test-unit; this explores
# beyond them. A failure leaves its input under the package's
# testdata/fuzz/ for a regression seed.
FUZZTIME ?= 20s
# Go 1.26's fuzz coordinator can fail a target with a bare "context
# deadline exceeded" at the -fuzztime boundary, with no input at fault
# (go.dev/issue/75804, seen in our CI on FuzzParseConfig). The fix shipped
# in Go 1.27, so fuzzing alone runs on that toolchain, fetched from the
# module proxy; everything else stays on the machine's Go.
FUZZ_GOTOOLCHAIN ?= go1.27.3
fuzz:
	@set -e; for f in $$(grep -l '^func Fuzz' $$(git ls-files '*_test.go')); do \
		dir=./$$(dirname $$f); \
		for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
			echo "fuzz $$dir $$t ($(FUZZTIME))"; \
			GOTOOLCHAIN=$(FUZZ_GOTOOLCHAIN) $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$dir; \
		done; \
	done

# The cold builds of the e2e, Kubernetes and VM tiers, side by side
# (test/cmd/prebuild); make test starts it itself.
prebuild:
	$(GO) run ./test/cmd/prebuild

# Every tier, in this order: lint test-unit bench-smoke, then test-kernel
# test-vm test-vm-k8s test-e2e test-k8s. The cold builds of the later
# tiers run in the background during the first three (hack/test-all.sh).
# CI sets STRATA_TEST_REQUIRE_KERNEL=1 so that a kernel test skipped on a
# machine that has the feature fails instead.
test: deps
	GO=$(GO) MAKE=$(MAKE) ./hack/test-all.sh

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# The colocation benchmark (benchmarks/colocation): an LC service against
# batch antagonists under each isolation scheme, directly on cgroups, as
# root. Holds the shared measurement lock; figures land in COLO_OUT.
COLO_OUT ?= bin/colocation
bench-colocation:
	$(GO) run ./benchmarks/colocation -lock /tmp/strata-measure.lock -out $(COLO_OUT)

demo:
	./examples/demo/demo.sh

clean:
	rm -rf bin
