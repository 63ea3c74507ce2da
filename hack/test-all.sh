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
# The measured tiers' output is kept too: on a failure, their failure
# lines are repeated at the very end, below the log tails that failed
# tests print in their cleanups, where the end of a CI log shows them.
tlog=bin/test-tiers.log
if ! "$MAKE" --no-print-directory test-kernel test-vm test-vm-k8s test-e2e test-k8s 2>&1 | tee "$tlog"; then
	echo "test: failure summary (from $tlog)"
	grep -E -e '--- FAIL' -e '_test\.go:[0-9]+: .*(want|not within|not |fail|timed out|error|got|missing)' "$tlog" |
		grep -v -E 'level=(INFO|DEBUG)' | tail -n 60 | cut -c1-400
	exit 1
fi
