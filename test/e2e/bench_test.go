package e2e_test

import (
	"context"
	"testing"

	"github.com/strata-nri/strata/test/e2e/harness"
)

// BenchmarkE2ECreateStart is the baseline of "create+start latency with
// Strata vs no plugin vs no-op plugin": pod + container create + start on
// containerd 2.4.2, with no NRI plugin and with the no-op plugin. Strata's
// own case belongs next to these once its plugin exists. Each iteration
// makes a real pod (~0.2 s), so use e.g. -benchtime 20x.
func BenchmarkE2ECreateStart(b *testing.B) {
	// Environments are started here, in the parent, which runs once;
	// b.Run bodies run again for each b.N the framework tries.
	plain := harness.Start(b, harness.Options{LogLevel: "info"})
	b.Run("no-plugin", func(b *testing.B) { harness.BenchCreateStart(b, plain) })
	if err := plain.Close(); err != nil {
		b.Fatal(err)
	}

	bin, err := harness.GoBuild(context.Background(), "./test/e2e/noopplugin", b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	noop := harness.Start(b, harness.Options{LogLevel: "info", Plugins: []harness.Plugin{{Path: bin, Name: "noop"}}})
	b.Run("noop-plugin", func(b *testing.B) { harness.BenchCreateStart(b, noop) })
}
