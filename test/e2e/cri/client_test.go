package cri_test

import (
	"context"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/strata-nri/strata/test/e2e/cri"
)

func TestRunPodAndCreateContainerRequests(t *testing.T) {
	f := &fakeRuntime{}
	socket, stop := startFake(t.TempDir(), f)
	defer stop()
	ctx := context.Background()
	c, err := cri.Dial(ctx, socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	pod, err := c.RunPod(ctx, cri.PodOptions{
		Name: "web", CgroupParent: "/strata-e2e-1/web",
		Annotations: map[string]string{"strata.io/pool": "0"},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateContainer(ctx, pod, cri.ContainerOptions{
		Name: "c", Image: "img:1", Command: []string{"sleep", "1"}, Env: map[string]string{"A": "b"},
		Resources: &runtimeapi.LinuxContainerResources{CpuShares: 512, CpusetCpus: "1"},
	})
	if err != nil {
		t.Fatal(err)
	}

	p := f.pods[0].Config
	if got := p.Linux.SecurityContext.NamespaceOptions.Network; got != runtimeapi.NamespaceMode_NODE {
		t.Errorf("pod network namespace = %v, want NODE (no CNI)", got)
	}
	if p.Hostname != "" || p.Linux.CgroupParent != "/strata-e2e-1/web" || p.Metadata.Namespace != "default" || p.Metadata.Uid != "default-web" {
		t.Errorf("pod config = hostname %q parent %q meta %v", p.Hostname, p.Linux.CgroupParent, p.Metadata)
	}
	if p.Annotations["strata.io/pool"] != "0" {
		t.Errorf("pod annotations = %v", p.Annotations)
	}
	cr := f.creates[0]
	if cr.PodSandboxId != "pod-1" || cr.SandboxConfig.GetMetadata().GetName() != "web" {
		t.Errorf("CreateContainer not tied to pod-1 and its config")
	}
	if r := cr.Config.Linux.Resources; r.CpuShares != 512 || r.CpusetCpus != "1" {
		t.Errorf("resources = %v", r)
	}
	if len(cr.Config.Envs) != 1 || cr.Config.Envs[0].Key != "A" || string(cr.Config.Envs[0].Value) != "b" {
		t.Errorf("envs = %v", cr.Config.Envs)
	}
}

func TestContainerStatusDecodesVerboseInfo(t *testing.T) {
	f := &fakeRuntime{info: `{"pid": 4242, "runtimeSpec": {"linux": {"cgroupsPath": "/strata-e2e-1/web/ctr-1"}}}`}
	socket, stop := startFake(t.TempDir(), f)
	defer stop()
	ctx := context.Background()
	c, err := cri.Dial(ctx, socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, err := c.ContainerStatus(ctx, "ctr-1")
	if err != nil {
		t.Fatal(err)
	}
	if st.Pid != 4242 || st.CgroupsPath != "/strata-e2e-1/web/ctr-1" || st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("status = pid %d path %q state %v", st.Pid, st.CgroupsPath, st.State)
	}

	f.info = `{"pid": "not a number"}`
	if _, err := c.ContainerStatus(ctx, "ctr-1"); err == nil {
		t.Error("ContainerStatus accepted malformed verbose info")
	}
}

func TestRejectsMissingNames(t *testing.T) {
	f := &fakeRuntime{}
	socket, stop := startFake(t.TempDir(), f)
	defer stop()
	c, err := cri.Dial(context.Background(), socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.RunPod(context.Background(), cri.PodOptions{}); err == nil {
		t.Error("RunPod without a name succeeded")
	}
	if _, err := c.CreateContainer(context.Background(), &cri.Pod{ID: "p", Config: &runtimeapi.PodSandboxConfig{}}, cri.ContainerOptions{Name: "c"}); err == nil {
		t.Error("CreateContainer without an image succeeded")
	}
	if len(f.pods)+len(f.creates) != 0 {
		t.Error("invalid requests reached the runtime")
	}
}

func TestDialFailsWithoutRuntime(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2e9)
	defer cancel()
	if _, err := cri.Dial(ctx, t.TempDir()+"/none.sock"); err == nil {
		t.Error("Dial to a missing socket succeeded")
	}
}
