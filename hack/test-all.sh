#!/usr/bin/env bash
# make test: every tier in order, with the cold builds (test/cmd/prebuild:
# Kubernetes, containerd, the guest's kernel and test binaries) running in
# the background while lint, the unit tier and the benchmark smoke run,
# which measure nothing. The measured tiers start only once the builds are
# done. On a warm machine the builds are cache hits and cost seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
MAKE=${MAKE:-make}
mkdir -p bin
log=bin/prebuild.log
# Its own process group, so a failure here stops every build it started.
setsid -w "$GO" run ./test/cmd/prebuild >"$log" 2>&1 &
pb=$!
trap 'kill -- -"$pb" 2>/dev/null || true' EXIT
echo "test: cold builds started in the background (log: $log)"
"$MAKE" --no-print-directory lint test-unit bench-smoke
echo "test: waiting for the cold builds"
s=$(date +%s)
if ! wait "$pb"; then
	cat "$log"
	echo "test: the cold builds failed" >&2
	exit 1
fi
trap - EXIT
tail -n 4 "$log"
echo "test: waited $(($(date +%s) - s)) s for the cold builds"
"$MAKE" --no-print-directory test-kernel test-vm test-vm-k8s test-e2e test-k8s
