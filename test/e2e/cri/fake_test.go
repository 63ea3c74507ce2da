package cri_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"sync"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// fakeRuntime answers the few CRI calls these tests make and records the
// requests, so the client's request building and response decoding can be
// checked without containerd (the e2e tests cover it against the real one).
type fakeRuntime struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	mu      sync.Mutex
	pods    []*runtimeapi.RunPodSandboxRequest
	creates []*runtimeapi.CreateContainerRequest
	info    string
}

func (f *fakeRuntime) Version(context.Context, *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{RuntimeName: "fake", RuntimeApiVersion: "v1"}, nil
}

func (f *fakeRuntime) RunPodSandbox(_ context.Context, r *runtimeapi.RunPodSandboxRequest) (*runtimeapi.RunPodSandboxResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pods = append(f.pods, r)
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: "pod-1"}, nil
}

func (f *fakeRuntime) CreateContainer(_ context.Context, r *runtimeapi.CreateContainerRequest) (*runtimeapi.CreateContainerResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.creates = append(f.creates, r)
	return &runtimeapi.CreateContainerResponse{ContainerId: "ctr-1"}, nil
}

func (f *fakeRuntime) ContainerStatus(_ context.Context, r *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	resp := &runtimeapi.ContainerStatusResponse{Status: &runtimeapi.ContainerStatus{Id: r.ContainerId, State: runtimeapi.ContainerState_CONTAINER_RUNNING}}
	if r.Verbose {
		resp.Info = map[string]string{"info": f.info}
	}
	return resp, nil
}

// startFake serves a fakeRuntime on a unix socket in dir until the returned
// stop function is called.
func startFake(dir string, f *fakeRuntime) (socket string, stop func()) {
	socket = filepath.Join(dir, "cri.sock")
	_ = os.Remove(socket)
	l, err := net.Listen("unix", socket)
	if err != nil {
		panic(err)
	}
	srv := grpc.NewServer()
	runtimeapi.RegisterRuntimeServiceServer(srv, f)
	go func() { _ = srv.Serve(l) }()
	return socket, srv.Stop
}
