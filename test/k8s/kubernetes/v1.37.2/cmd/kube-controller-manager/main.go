// Command kube-controller-manager is the Kubernetes v1.37.2 controller
// manager built from the Go module proxy for Strata's Kubernetes tier
// (the tests run its disruption controller, which computes
// PodDisruptionBudget status): upstream's main, reproduced.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	os.Exit(cli.Run(app.NewControllerManagerCommand()))
}
