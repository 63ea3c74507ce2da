package cri_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/strata-nri/strata/test/e2e/cri"
)

// A host-network pod: network namespace NODE, so no CNI is needed. Here the
// runtime is an in-process stand-in; in the e2e tests it is containerd
// (harness.Env.CRI()).
func ExampleClient_RunPod() {
	dir, _ := os.MkdirTemp("", "cri-example")
	defer os.RemoveAll(dir)
	socket, stop := startFake(dir, &fakeRuntime{})
	defer stop()

	ctx := context.Background()
	c, err := cri.Dial(ctx, socket)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	pod, err := c.RunPod(ctx, cri.PodOptions{Name: "web", CgroupParent: "/strata-e2e-1234/web"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(pod.ID, pod.Config.Linux.SecurityContext.NamespaceOptions.Network, pod.Config.Linux.CgroupParent)
	// Output:
	// pod-1 NODE /strata-e2e-1234/web
}
