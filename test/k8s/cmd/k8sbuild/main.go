// Command k8sbuild builds what the Kubernetes tier runs — the Kubernetes
// binaries, containerd and the test image — into their caches, so that
// `make test-k8s` can build first and hold the shared measurement lock only
// while clusters run.
package main

import (
	"context"
	"fmt"
	"log"
	"os"

	e2e "github.com/strata-nri/strata/test/e2e/harness"
	"github.com/strata-nri/strata/test/k8s/harness"
)

func main() {
	ctx := context.Background()
	logf := func(format string, args ...any) { log.Printf(format, args...) }
	bins, err := harness.Build(ctx, harness.BuildOptions{Logf: logf})
	if err == nil {
		_, err = e2e.BuildContainerd(ctx, e2e.BuildOptions{Version: e2e.DefaultContainerdVersion, Static: true, Logf: logf})
	}
	if err == nil {
		_, err = e2e.BuildImage(ctx, "", logf)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "k8sbuild:", err)
		os.Exit(1)
	}
	log.Printf("Kubernetes v%s binaries in %s", bins.Version, bins.Kubelet[:len(bins.Kubelet)-len("/kubelet")])
}
