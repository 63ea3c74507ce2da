package harness

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/strata-nri/strata/test/e2e/cri"
)

// BenchCreateStart measures what a plugin adds to container start-up: each
// iteration runs a pod, creates a container in it and starts it, timing
// RunPodSandbox, CreateContainer and StartContainer (reported as pod-ms/op,
// create-ms/op, start-ms/op besides ns/op for the sum). Stopping and
// removing the pod is outside the timer. Run it against environments with
// and without plugins to compare, e.g. -bench E2ECreateStart -benchtime 20x.
func BenchCreateStart(b *testing.B, env *Env) {
	b.Helper()
	ctx := context.Background()
	c := env.CRI()
	var pod, create, start time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		name := fmt.Sprintf("bench-%d", i)
		t0 := time.Now()
		p, err := c.RunPod(ctx, cri.PodOptions{Name: name, CgroupParent: env.CgroupParent(name)})
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		id, err := c.CreateContainer(ctx, p, cri.ContainerOptions{Name: "c", Image: ImageRef, Command: []string{"sleep", "3600"}})
		if err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		if err := c.StartContainer(ctx, id); err != nil {
			b.Fatal(err)
		}
		t3 := time.Now()
		pod, create, start = pod+t1.Sub(t0), create+t2.Sub(t1), start+t3.Sub(t2)

		b.StopTimer()
		if err := c.StopPod(ctx, p.ID); err != nil {
			b.Fatal(err)
		}
		if err := c.RemovePod(ctx, p.ID); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	n := float64(b.N)
	b.ReportMetric(float64(pod.Microseconds())/1000/n, "pod-ms/op")
	b.ReportMetric(float64(create.Microseconds())/1000/n, "create-ms/op")
	b.ReportMetric(float64(start.Microseconds())/1000/n, "start-ms/op")
}
