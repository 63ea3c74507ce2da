#!/usr/bin/env bash
# make demo: containerd (built from the Go module proxy) with NRI and Strata,
# three pods, and `strata status` as pool sizes follow the load. Root only.
# Everything it starts is removed on exit, also on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "make demo needs root (it runs containerd and writes cgroups)" >&2; exit 1; }
./hack/install-deps.sh

mkdir -p bin
echo "== building strata and the containerd environment tool"
go build -o bin/strata ./nri-plugin/cmd/strata
go build -o bin/e2eenv ./test/e2e/cmd/e2eenv

bin/e2eenv down >/dev/null 2>&1 || true
cleanup() { echo "== cleaning up"; bin/e2eenv down || true; }
trap cleanup EXIT INT TERM

echo "== starting containerd with NRI and strata (first run builds containerd: a few minutes)"
bin/e2eenv up -plugin "$PWD/bin/strata run --socket-path \${STRATA_NRI_SOCKET} --config $PWD/examples/demo/strata.yaml --listen unix:\${STRATA_E2E_DIR}/strata.sock"
eval "$(bin/e2eenv env)"
status() { bin/strata status --addr "unix:$STRATA_E2E_DIR/strata.sock"; }

# Kubernetes-style requests: shares = millicores x 1024 / 1000. The
# latency-critical pod asks for 2.5 CPUs (not whole: it shares pool 0's
# CPUs), so pool 0 may hold 2 CPUs when busy (a pool holds at most its
# members' requests). On a 2-CPU machine three populated pools sit at one
# CPU each, so the online pod arrives after the burst.
echo "== t=0: latency-critical pod (idles 8 s, then burns a CPU for 16 s) and a batch pod that always burns"
bin/e2eenv run -name lc -namespace demo -annotation strata.io/pool=latency-critical -cpu-shares 2560 -cpu-period 100000 -- \
	sh -c 'sleep 8; end=$(( $(date +%s) + 16 )); while [ "$(date +%s)" -lt "$end" ]; do :; done; exec sleep 3600'
bin/e2eenv run -name crunch -namespace demo -annotation strata.io/pool=batch -cpu-shares 2 -- sh -c 'while :; do :; done'

for i in $(seq 1 22); do
	if [ "$i" = 17 ]; then
		echo
		echo "== t=$((i * 2))s: an online pod arrives and takes a CPU from batch"
		bin/e2eenv run -name web -namespace demo -annotation strata.io/pool=online -cpu-shares 512 -- sleep 3600
	fi
	echo
	echo "== t=$((i * 2))s"
	status
	sleep 2
done
echo
bin/e2eenv ps
