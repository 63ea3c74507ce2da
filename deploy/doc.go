// Package deploy holds Strata's deployment artefacts — the systemd unit,
// the Helm chart, the rendered Kubernetes manifests, the pre-installed NRI
// configuration and the Grafana dashboard — and the tests that keep them
// working: helm lint and helm template with default and non-default
// values, the rendered objects decoded strictly as Kubernetes types, the
// committed manifests equal to the chart's rendering, and the chart's
// configuration accepted by Strata's own validator.
//
// The tests need the helm binary: $STRATA_HELM, else bin/helm (which
// hack/install-deps.sh builds from the Go module proxy). Without it they
// skip, and fail under STRATA_TEST_REQUIRE_KERNEL=1 as CI runs them.
package deploy
