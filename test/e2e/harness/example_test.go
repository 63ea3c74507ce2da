package harness_test

import (
	"fmt"
	"log"

	"github.com/strata-nri/strata/test/e2e/harness"
)

// The containerd versions the harness can build are the tool modules under
// test/e2e/containerd; a test picks one with Options.ContainerdVersion.
func ExampleVersions() {
	versions, err := harness.Versions()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(versions)
	// Output:
	// [2.4.2 2.1.4 1.7.35]
}
