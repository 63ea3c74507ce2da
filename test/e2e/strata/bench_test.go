package strata_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/strata-nri/strata/test/e2e/cri"
	"github.com/strata-nri/strata/test/e2e/harness"
)

// BenchmarkE2ECreateStartRatios times pod + container create + start on
// containerd 2.4.2 with no NRI plugin, with the no-op plugin and with
// Strata, in one run, and reports Strata's and the no-op plugin's cost as
// ratios to no plugin (strata/none, noop/none), plus each mean in ms. The
// three environments take turns each iteration so drift on a shared
// machine hits them alike. Run with e.g. -benchtime 20x.
func BenchmarkE2ECreateStartRatios(b *testing.B) {
	harness.Require(b)
	ctx := context.Background()
	noop, err := harness.GoBuild(ctx, "./test/e2e/noopplugin", b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	bin, err := harness.GoBuild(ctx, "./nri-plugin/cmd/strata", b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	cfgFile := filepath.Join(b.TempDir(), "strata.yaml")
	y, _ := yaml.Marshal(fastConfig())
	if err := os.WriteFile(cfgFile, y, 0o644); err != nil {
		b.Fatal(err)
	}
	envs := []struct {
		name string
		env  *harness.Env
		sum  time.Duration
	}{
		{name: "none", env: harness.Start(b, harness.Options{LogLevel: "info"})},
		{name: "noop", env: harness.Start(b, harness.Options{LogLevel: "info", Plugins: []harness.Plugin{{Path: noop, Name: "noop"}}})},
		{name: "strata", env: harness.Start(b, harness.Options{LogLevel: "info", Plugins: []harness.Plugin{{Path: bin, Name: "strata", Index: "50",
			Args: []string{"run", "--socket-path", "${STRATA_NRI_SOCKET}", "--config", cfgFile, "--listen", ""}}}})},
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k := range envs {
			e := &envs[k]
			c := e.env.CRI()
			name := fmt.Sprintf("bench-%d", i)
			t0 := time.Now()
			p, err := c.RunPod(ctx, cri.PodOptions{Name: name, Namespace: "demo", CgroupParent: e.env.CgroupParent(name)})
			if err != nil {
				b.Fatal(err)
			}
			id, err := c.CreateContainer(ctx, p, cri.ContainerOptions{Name: "c", Image: harness.ImageRef, Command: []string{"sleep", "3600"}, Resources: res(250, 0)})
			if err != nil {
				b.Fatal(err)
			}
			if err := c.StartContainer(ctx, id); err != nil {
				b.Fatal(err)
			}
			e.sum += time.Since(t0)
			b.StopTimer()
			if err := c.StopPod(ctx, p.ID); err != nil {
				b.Fatal(err)
			}
			if err := c.RemovePod(ctx, p.ID); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	}
	b.StopTimer()
	mean := func(k int) float64 { return float64(envs[k].sum.Microseconds()) / 1000 / float64(b.N) }
	b.ReportMetric(mean(0), "none-ms/op")
	b.ReportMetric(mean(1), "noop-ms/op")
	b.ReportMetric(mean(2), "strata-ms/op")
	b.ReportMetric(mean(1)/mean(0), "noop/none")
	b.ReportMetric(mean(2)/mean(0), "strata/none")
}
