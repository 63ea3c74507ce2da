#!/usr/bin/env bash
# Installs what `make test` needs on a fresh Debian/Ubuntu machine, and only
# what is missing, so it is cheap to run every time. Needs root for apt.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the test tiers use. Other lists (test/e2e/apt-packages.txt
# and test/vm/apt-packages.txt) are merged in so each tier declares its own needs.
pkgs=(iproute2 procps util-linux)
for list in test/e2e/apt-packages.txt test/vm/apt-packages.txt test/k8s/apt-packages.txt; do
	[ -f "$list" ] && mapfile -t -O "${#pkgs[@]}" pkgs < <(grep -v '^\s*#' "$list" | grep -v '^\s*$')
done
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "install-deps: missing Debian packages ${missing[*]}; run as root (sudo make test)" >&2
		exit 1
	fi
	echo "install-deps: apt-get install ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Go tools, pinned, built from the Go module proxy: staticcheck into ./bin,
# helm (for the deployment tests: helm lint / helm template of
# deploy/helm/strata) once per machine outside the work tree, since a cold
# build takes minutes. Both build at once when both are missing: a lone
# `go install` leaves part of two CPUs idle.
mkdir -p bin
STATICCHECK_VERSION=$(sed -n 's/^STATICCHECK_VERSION *:= *//p' Makefile)
want="staticcheck ${STATICCHECK_VERSION}"
HELM_VERSION=$(sed -n 's/^HELM_VERSION *:= *//p' Makefile)
helm_dir=${STRATA_TOOLS_CACHE:-/var/cache/strata-tools}/helm-${HELM_VERSION}
jobs=()
if [ ! -x bin/staticcheck ] || [ "$(cat bin/.staticcheck-version 2>/dev/null)" != "$want" ]; then
	echo "install-deps: building staticcheck ${STATICCHECK_VERSION}"
	( GOBIN="$PWD/bin" go install "honnef.co/go/tools/cmd/staticcheck@${STATICCHECK_VERSION}" && echo "$want" > bin/.staticcheck-version ) &
	jobs+=($!)
fi
if [ ! -x "$helm_dir/helm" ]; then
	echo "install-deps: building helm ${HELM_VERSION} (cached in $helm_dir)"
	mkdir -p "$helm_dir"
	GOBIN="$helm_dir" go install "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}" &
	jobs+=($!)
fi
for j in "${jobs[@]}"; do
	wait "$j" || { echo "install-deps: a Go tool failed to build" >&2; exit 1; }
done
ln -sf "$helm_dir/helm" bin/helm
