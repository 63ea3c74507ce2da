package strata_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	runtimespec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/internal/testutil"
	"github.com/strata-nri/strata/iolimit"
	"github.com/strata-nri/strata/isolation"
	"github.com/strata-nri/strata/test/e2e/cri"
)

// ociSpec reads the OCI spec containerd handed runc for a container.
func ociSpec(t *testing.T, dir, id string) *runtimespec.Spec {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "state", "io.containerd.runtime.v2.task", "k8s.io", id, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var spec runtimespec.Spec
	if err := json.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	return &spec
}

// TestE2EPoolClassesAtCreation (containerd 2.4.2, 2.1.4, 1.7.35): a batch
// container starts in its pool's block IO class and IO priority; nothing
// waits for the loop. containerd has a blockio class file (goresctrl's
// format) with a class "batch" throttling reads from a loop device to
// 1 MiB/s, and Strata is told of it; the batch profile says ioPriority
// idle. Read right after StartContainer returned: the container's cgroup
// has the class's limit (runc wrote it from the OCI spec, which shows the
// class's blockIO) and its process the idle IO class (in the OCI spec on
// containerd ≥ 2.2, which this host's runc 1.1.5 does not apply, so
// Strata sets it at start; before 2.2 Strata sets it at start). An online
// container (no class of its name) is created without one. No RDT class
// is ever sent: this host has no resctrl, and containerd would refuse it.
func TestE2EPoolClassesAtCreation(t *testing.T) {
	for _, version := range []string{"2.4.2", "2.1.4", "1.7.35"} {
		t.Run("containerd-"+version, func(t *testing.T) { checkPoolClasses(t, version) })
	}
}

func checkPoolClasses(t *testing.T, version string) {
	loop := testutil.NewLoopDevice(t, 64<<20)
	classes := filepath.Join(t.TempDir(), "blockio.yaml")
	if err := os.WriteFile(classes, []byte(fmt.Sprintf("Classes:\n  batch:\n  - Devices: [%s]\n    ThrottleReadBps: 1Mi\n", loop.Path)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := fastConfig()
	cfg.Pools[len(cfg.Pools)-1].Profile.IO = isolation.IOProfile{IOPriority: "idle",
		Limits: []isolation.IODeviceLimit{{Device: loop.Path, ReadBPS: 1 << 20}}} // the class's, so the controller keeps it
	e := envWith(t, version, cfg, fmt.Sprintf("[plugins.\"io.containerd.service.v1.tasks-service\"]\n  blockio_config_file = %q\n", classes),
		"--runtime-blockio-config", classes)
	batch := run(t, e, "batch", isolation.PoolBatch, res(0, 0))
	online := run(t, e, "online", isolation.PoolOnline, res(100, 0))

	want := fmt.Sprintf("%d:%d %d", loop.Major, loop.Minor, 1<<20)
	if got := read(t, e, batch.ContainerID, cgroup.BlkIO, "blkio.throttle.read_bps_device"); got != want {
		t.Errorf("batch blkio.throttle.read_bps_device right after start = %q, want the class's %q", got, want)
	}
	spec := ociSpec(t, e.State().Dir, batch.ContainerID)
	if bio := spec.Linux.Resources.BlockIO; bio == nil || len(bio.ThrottleReadBpsDevice) != 1 || bio.ThrottleReadBpsDevice[0].Rate != 1<<20 {
		t.Errorf("batch OCI blockIO = %+v, want the class's read limit", bio)
	}
	if spec := ociSpec(t, e.State().Dir, online.ContainerID); spec.Linux.Resources.BlockIO != nil && len(spec.Linux.Resources.BlockIO.ThrottleReadBpsDevice) > 0 {
		t.Errorf("online OCI blockIO = %+v, want none (no class of its name)", spec.Linux.Resources.BlockIO)
	}
	for _, id := range []string{batch.ContainerID, online.ContainerID} {
		if s := ociSpec(t, e.State().Dir, id); s.Linux.IntelRdt != nil {
			t.Errorf("container %s: OCI intelRdt %+v, want none (no resctrl here)", id, s.Linux.IntelRdt)
		}
	}

	if na := strings.Join(statusOf(t, e).NotApplied, "; "); !strings.Contains(na, "rdt class: RDT is not enabled") {
		t.Errorf("status does not say why no RDT class is sent: not applied %q", na)
	}
	st, err := e.CRI().ContainerStatus(context.Background(), batch.ContainerID)
	if err != nil {
		t.Fatal(err)
	}
	if class, _, err := iolimit.IOPriority(st.Pid); err != nil || class != iolimit.IOPriorityIdle {
		t.Errorf("batch process IO priority right after start = %s (%v), want idle", class, err)
	}
	inSpec := spec.Process.IOPriority != nil && spec.Process.IOPriority.Class == runtimespec.IOPRIO_CLASS_IDLE
	if wantInSpec := version >= "2.2"; inSpec != wantInSpec {
		t.Errorf("OCI process.ioPriority %+v: in the spec %v, want %v (NRI carries it from containerd 2.2)", spec.Process.IOPriority, inSpec, wantInSpec)
	}
	ost, err := e.CRI().ContainerStatus(context.Background(), online.ContainerID)
	if err != nil {
		t.Fatal(err)
	}
	if class, _, _ := iolimit.IOPriority(ost.Pid); class == iolimit.IOPriorityIdle {
		t.Error("online process has the idle IO class; its pool has no IO priority")
	}
}

// TestE2EUnknownBlockIOClassRefused shows why Strata sends a blockio class
// only when the runtime has it: told of a class file containerd was not
// given, Strata sends the class, and every containerd version refuses the
// container ("no OCI BlockIO parameters for class" from goresctrl). An
// online container, whose pool has no class, is created as usual.
func TestE2EUnknownBlockIOClassRefused(t *testing.T) {
	classes := filepath.Join(t.TempDir(), "blockio.yaml")
	if err := os.WriteFile(classes, []byte("Classes:\n  batch:\n  - Weight: 100\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, version := range []string{"2.4.2", "2.1.4", "1.7.35"} {
		t.Run("containerd-"+version, func(t *testing.T) {
			e := envWith(t, version, fastConfig(), "", "--runtime-blockio-config", classes)
			_, err := e.RunContainer(context.Background(), cri.PodOptions{Name: "batch", Namespace: "demo",
				Annotations: map[string]string{"strata.io/pool": isolation.PoolBatch}}, cri.ContainerOptions{Resources: res(0, 0)})
			if err == nil || !strings.Contains(err.Error(), "class") {
				t.Fatalf("batch container with a class containerd does not know: err %v, want the creation refused over the class", err)
			}
			t.Logf("containerd %s: %v", version, err)
			run(t, e, "online", isolation.PoolOnline, res(100, 0))
		})
	}
}
