// Command ctr is containerd's CLI (v1.7.x); the end-to-end harness uses it
// only to import the locally built test image into the k8s.io namespace.
package main

import (
	"fmt"
	"os"

	"github.com/containerd/containerd/cmd/ctr/app"
)

func main() {
	if err := app.New().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "ctr:", err)
		os.Exit(1)
	}
}
