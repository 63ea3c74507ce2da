// Command kubelet is the Kubernetes v1.37.2 kubelet built from the Go module
// proxy for Strata's Kubernetes tier: upstream's main, reproduced.
package main

import (
	"context"
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kubelet/app"
)

func main() {
	os.Exit(cli.Run(app.NewKubeletCommand(context.Background())))
}
