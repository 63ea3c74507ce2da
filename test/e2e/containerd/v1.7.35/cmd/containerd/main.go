// Command containerd is containerd v1.7.x built from the Go module proxy for
// Strata's end-to-end tests (optional: 1.7 has NRI off by default and reads a
// version 2 config). The builtins import pulls in every plugin.
package main

import (
	"fmt"
	"os"

	"github.com/containerd/containerd/cmd/containerd/command"

	_ "github.com/containerd/containerd/cmd/containerd/builtins"
)

func main() {
	if err := command.App().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "containerd:", err)
		os.Exit(1)
	}
}
