package cri

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Client talks CRI (runtime.v1) to one containerd over its unix socket.
type Client struct {
	conn    *grpc.ClientConn
	runtime runtimeapi.RuntimeServiceClient
	images  runtimeapi.ImageServiceClient
}

// Dial connects to the CRI service at socketPath (containerd's grpc address)
// and checks that it answers Version, so a Client that is returned works.
func Dial(ctx context.Context, socketPath string) (*Client, error) {
	conn, err := grpc.NewClient("unix://"+socketPath,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		// Container status with verbose info can be large; ExecSync output too.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20)))
	if err != nil {
		return nil, fmt.Errorf("cri: dial %s: %w", socketPath, err)
	}
	c := &Client{
		conn:    conn,
		runtime: runtimeapi.NewRuntimeServiceClient(conn),
		images:  runtimeapi.NewImageServiceClient(conn),
	}
	if _, err := c.runtime.Version(ctx, &runtimeapi.VersionRequest{}); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("cri: version from %s: %w", socketPath, err)
	}
	return c, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Runtime is the raw runtime service, for calls this package does not wrap.
func (c *Client) Runtime() runtimeapi.RuntimeServiceClient { return c.runtime }

// Images is the raw image service.
func (c *Client) Images() runtimeapi.ImageServiceClient { return c.images }

// PodOptions describe a host-network pod sandbox.
type PodOptions struct {
	// Name, Namespace and UID form the pod's metadata; UID defaults to
	// Namespace+"-"+Name, Namespace to "default".
	Name, Namespace, UID string
	// Attempt is the metadata attempt counter.
	Attempt uint32
	// Labels and Annotations are passed to the runtime (and to NRI plugins).
	Labels, Annotations map[string]string
	// CgroupParent is the cgroupfs-style parent, e.g. "/strata-e2e-1a2b/pod1".
	// The sandbox's cgroup is CgroupParent/<sandbox id>.
	CgroupParent string
	// Resources is the pod's overhead/total resources hint (optional).
	Resources *runtimeapi.LinuxContainerResources
}

// Pod is a sandbox that runs: its id and the config it was made with (CRI
// needs the config again for CreateContainer).
type Pod struct {
	ID     string
	Config *runtimeapi.PodSandboxConfig
}

// RunPod creates and starts a pod sandbox in the node's network, IPC-less
// namespace setup: network namespace NODE and no hostname, so no CNI plugin
// is needed.
func (c *Client) RunPod(ctx context.Context, opts PodOptions) (*Pod, error) {
	if opts.Name == "" {
		return nil, fmt.Errorf("cri: RunPod: PodOptions.Name is empty")
	}
	ns := opts.Namespace
	if ns == "" {
		ns = "default"
	}
	uid := opts.UID
	if uid == "" {
		uid = ns + "-" + opts.Name
	}
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata:    &runtimeapi.PodSandboxMetadata{Name: opts.Name, Namespace: ns, Uid: uid, Attempt: opts.Attempt},
		Labels:      opts.Labels,
		Annotations: opts.Annotations,
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: opts.CgroupParent,
			Resources:    opts.Resources,
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{
					Network: runtimeapi.NamespaceMode_NODE,
					Pid:     runtimeapi.NamespaceMode_CONTAINER,
					Ipc:     runtimeapi.NamespaceMode_POD,
				},
			},
		},
	}
	resp, err := c.runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		return nil, fmt.Errorf("cri: RunPodSandbox %s/%s: %w", ns, opts.Name, err)
	}
	return &Pod{ID: resp.PodSandboxId, Config: cfg}, nil
}

// StopPod stops every container of the pod and the sandbox.
func (c *Client) StopPod(ctx context.Context, podID string) error {
	if _, err := c.runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID}); err != nil {
		return fmt.Errorf("cri: StopPodSandbox %s: %w", podID, err)
	}
	return nil
}

// RemovePod removes the pod and its containers (stopping them if needed).
func (c *Client) RemovePod(ctx context.Context, podID string) error {
	if _, err := c.runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
		return fmt.Errorf("cri: RemovePodSandbox %s: %w", podID, err)
	}
	return nil
}

// ContainerOptions describe a container to create in a pod.
type ContainerOptions struct {
	// Name is the container's metadata name (unique in the pod).
	Name string
	// Image is the image reference, e.g. harness.Image.
	Image string
	// Command and Args override the image's entrypoint and cmd.
	Command, Args []string
	// Env is the container's environment.
	Env map[string]string
	// Labels and Annotations are passed to the runtime (and NRI plugins).
	Labels, Annotations map[string]string
	// Resources are the container's Linux resources: CpuShares, CpuQuota,
	// CpuPeriod, CpusetCpus, CpusetMems, MemoryLimitInBytes, ... (zero
	// values mean "not set", as in CRI).
	Resources *runtimeapi.LinuxContainerResources
}

// CreateContainer creates (but does not start) a container in pod.
func (c *Client) CreateContainer(ctx context.Context, pod *Pod, opts ContainerOptions) (string, error) {
	if opts.Name == "" || opts.Image == "" {
		return "", fmt.Errorf("cri: CreateContainer in pod %s: ContainerOptions.Name (%q) and .Image (%q) must be set", pod.ID, opts.Name, opts.Image)
	}
	var envs []*runtimeapi.KeyValue
	for k, v := range opts.Env {
		envs = append(envs, &runtimeapi.KeyValue{Key: k, Value: []byte(v)})
	}
	cfg := &runtimeapi.ContainerConfig{
		Metadata:    &runtimeapi.ContainerMetadata{Name: opts.Name},
		Image:       &runtimeapi.ImageSpec{Image: opts.Image},
		Command:     opts.Command,
		Args:        opts.Args,
		Envs:        envs,
		Labels:      opts.Labels,
		Annotations: opts.Annotations,
		Linux: &runtimeapi.LinuxContainerConfig{
			Resources: opts.Resources,
			SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				NamespaceOptions: pod.Config.GetLinux().GetSecurityContext().GetNamespaceOptions(),
			},
		},
	}
	resp, err := c.runtime.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId:  pod.ID,
		Config:        cfg,
		SandboxConfig: pod.Config,
	})
	if err != nil {
		return "", fmt.Errorf("cri: CreateContainer %s in pod %s: %w", opts.Name, pod.ID, err)
	}
	return resp.ContainerId, nil
}

// StartContainer starts a created container.
func (c *Client) StartContainer(ctx context.Context, id string) error {
	if _, err := c.runtime.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		return fmt.Errorf("cri: StartContainer %s: %w", id, err)
	}
	return nil
}

// StopContainer stops a container, killing it after timeout.
func (c *Client) StopContainer(ctx context.Context, id string, timeout time.Duration) error {
	if _, err := c.runtime.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: int64(timeout / time.Second)}); err != nil {
		return fmt.Errorf("cri: StopContainer %s: %w", id, err)
	}
	return nil
}

// RemoveContainer removes a container (it should be stopped).
func (c *Client) RemoveContainer(ctx context.Context, id string) error {
	if _, err := c.runtime.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
		return fmt.Errorf("cri: RemoveContainer %s: %w", id, err)
	}
	return nil
}

// UpdateContainerResources changes a running container's resources, as the
// kubelet does on an in-place resize.
func (c *Client) UpdateContainerResources(ctx context.Context, id string, res *runtimeapi.LinuxContainerResources) error {
	if _, err := c.runtime.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{ContainerId: id, Linux: res}); err != nil {
		return fmt.Errorf("cri: UpdateContainerResources %s: %w", id, err)
	}
	return nil
}

// ExecResult is the outcome of ExecSync.
type ExecResult struct {
	Stdout, Stderr []byte
	ExitCode       int32
}

// ExecSync runs cmd in a container and waits up to timeout for it.
func (c *Client) ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (ExecResult, error) {
	resp, err := c.runtime.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: int64(timeout / time.Second)})
	if err != nil {
		return ExecResult{}, fmt.Errorf("cri: ExecSync %q in %s: %w", cmd, id, err)
	}
	return ExecResult{Stdout: resp.Stdout, Stderr: resp.Stderr, ExitCode: resp.ExitCode}, nil
}

// ListContainers lists all containers (of every pod, in every state).
func (c *Client) ListContainers(ctx context.Context) ([]*runtimeapi.Container, error) {
	resp, err := c.runtime.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if err != nil {
		return nil, fmt.Errorf("cri: ListContainers: %w", err)
	}
	return resp.Containers, nil
}

// ListPods lists all pod sandboxes.
func (c *Client) ListPods(ctx context.Context) ([]*runtimeapi.PodSandbox, error) {
	resp, err := c.runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return nil, fmt.Errorf("cri: ListPodSandbox: %w", err)
	}
	return resp.Items, nil
}

// ContainerStatus is a container's CRI status plus what containerd's verbose
// info adds: the init process's host PID and the OCI runtime spec.
type ContainerStatus struct {
	*runtimeapi.ContainerStatus
	// Pid is the container's init process as seen from the host (0 when it
	// does not run).
	Pid int
	// CgroupsPath is linux.cgroupsPath of the container's runtime spec,
	// e.g. "/strata-e2e-1a2b/pod1/<id>".
	CgroupsPath string
	// Info is containerd's raw verbose info (JSON).
	Info string
}

// ContainerStatus returns the verbose status of one container.
func (c *Client) ContainerStatus(ctx context.Context, id string) (*ContainerStatus, error) {
	resp, err := c.runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id, Verbose: true})
	if err != nil {
		return nil, fmt.Errorf("cri: ContainerStatus %s: %w", id, err)
	}
	st := &ContainerStatus{ContainerStatus: resp.Status, Info: resp.Info["info"]}
	if st.Info != "" {
		var info struct {
			Pid         int `json:"pid"`
			RuntimeSpec struct {
				Linux struct {
					CgroupsPath string `json:"cgroupsPath"`
				} `json:"linux"`
			} `json:"runtimeSpec"`
		}
		if err := json.Unmarshal([]byte(st.Info), &info); err != nil {
			return nil, fmt.Errorf("cri: ContainerStatus %s: decode verbose info: %w", id, err)
		}
		st.Pid, st.CgroupsPath = info.Pid, info.RuntimeSpec.Linux.CgroupsPath
	}
	return st, nil
}

// PodStatus returns the verbose status of a pod sandbox; Pid is the pause
// process and CgroupsPath the sandbox's cgroup.
func (c *Client) PodStatus(ctx context.Context, id string) (*runtimeapi.PodSandboxStatus, int, error) {
	resp, err := c.runtime.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id, Verbose: true})
	if err != nil {
		return nil, 0, fmt.Errorf("cri: PodSandboxStatus %s: %w", id, err)
	}
	var info struct {
		Pid int `json:"pid"`
	}
	if raw := resp.Info["info"]; raw != "" {
		if err := json.Unmarshal([]byte(raw), &info); err != nil {
			return nil, 0, fmt.Errorf("cri: PodSandboxStatus %s: decode verbose info: %w", id, err)
		}
	}
	return resp.Status, info.Pid, nil
}
