// Command kube-scheduler is the Kubernetes v1.37.2 scheduler built from the
// Go module proxy for Strata's Kubernetes tier: upstream's main, reproduced.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"
)

func main() {
	os.Exit(cli.Run(app.NewSchedulerCommand()))
}
