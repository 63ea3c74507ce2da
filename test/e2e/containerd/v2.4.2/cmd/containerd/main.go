// Command containerd is containerd v2.4.x built from the Go module proxy for
// Strata's end-to-end tests. It is containerd's own main, reproduced here
// because `go install .../cmd/containerd@v2.x` refuses modules with exclude
// directives; the builtins import pulls in every plugin (CRI, NRI, overlayfs).
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/containerd/containerd/v2/cmd/containerd/command"

	_ "github.com/containerd/containerd/v2/cmd/containerd/builtins"
)

func main() {
	if err := command.App().Run(context.Background(), os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "containerd:", err)
		os.Exit(1)
	}
}
