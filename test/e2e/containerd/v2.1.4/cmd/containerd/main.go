// Command containerd is containerd v2.1.x built from the Go module proxy for
// Strata's end-to-end tests (NRI v0.8, the oldest protocol the plugin meets).
// The builtins import pulls in every plugin (CRI, NRI, overlayfs).
package main

import (
	"fmt"
	"os"

	"github.com/containerd/containerd/v2/cmd/containerd/command"

	_ "github.com/containerd/containerd/v2/cmd/containerd/builtins"
)

func main() {
	if err := command.App().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "containerd:", err)
		os.Exit(1)
	}
}
