package harness_test

import (
	"context"
	"testing"
	"time"

	"github.com/strata-nri/strata/test/k8s/harness"
)

// A test brings up a cluster with Strata, creates a pod through the API and
// reads the cgroup the kubelet gave it.
func Example() {
	var t *testing.T // the test's
	c := harness.Start(t, harness.Options{StrataConfig: "period: 500ms\n"})
	ctx := context.Background()
	name, err := c.CreatePod(ctx, "default", `
metadata: {name: web}
spec:
  hostNetwork: true
  automountServiceAccountToken: false
  containers: [{name: c, image: strata.local/e2e/base:1, imagePullPolicy: Never, command: [sleep, "3600"]}]
`)
	if err != nil {
		t.Fatal(err)
	}
	pod, err := c.WaitRunning(ctx, "default", name, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	cg, _ := c.ContainerCgroup(ctx, pod, "c")
	_, _ = cg.CPUSetCPUs()
}
