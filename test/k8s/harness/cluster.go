package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"

	"github.com/strata-nri/strata/cgroup"
	e2e "github.com/strata-nri/strata/test/e2e/harness"
)

// Image is the test image the e2e harness imports (busybox and a pause
// program); pods use it with imagePullPolicy Never.
const Image = e2e.ImageRef

// NodeName is the name the kubelet registers its node under.
const NodeName = "strata-node"

// Options configure a cluster.
type Options struct {
	// Version is the Kubernetes version (DefaultVersion when empty).
	Version string
	// ContainerdVersion is passed to the e2e harness (its default when
	// empty).
	ContainerdVersion string
	// StrataConfig is Strata's pool configuration (YAML). Empty runs no
	// Strata plugin.
	StrataConfig string
	// StrataArgs are appended to `strata run`'s arguments.
	StrataArgs []string
	// KubeletConfig is YAML appended to the generated
	// KubeletConfiguration (fields the generated one does not set).
	KubeletConfig string
	// Logf reports progress; nil is quiet.
	Logf func(format string, args ...any)
}

// Cluster is a single-node Kubernetes: etcd, kube-apiserver,
// kube-controller-manager (service-account, root-CA, disruption and
// node-lifecycle controllers: the last lifts the kubelet's not-ready taint), kube-scheduler and a kubelet on the e2e harness's
// containerd, with Strata as an external NRI plugin.
type Cluster struct {
	Env  *e2e.Env
	Bins Binaries
	// Dir holds the components' data, logs and kubeconfigs: <run dir>/k8s.
	Dir string
	// URL is the API server's address; Admin a client with cluster-admin
	// rights (system:masters).
	URL   string
	Admin *Client
	// CA is the cluster CA's certificate file.
	CA string
	// StrataToken is the token file of Strata's service account
	// (kube-system/strata); the plugin reads it for every request.
	StrataToken string
	// StrataPlugin is the plugin's index in Env (0), when one runs.
	StrataPlugin int

	// remote is the control plane this node joins (RemoteEnv), nil when
	// the cluster runs its own.
	remote *remote

	tb      testing.TB
	logf    func(string, ...any)
	procs   map[string]*exec.Cmd
	done    map[string]chan struct{}
	logs    map[string]string
	sysctls map[string]string
}

// Require skips under -short and when not root, like the e2e harness.
func Require(tb testing.TB) { e2e.Require(tb) }

// Start brings a cluster up for a test and registers its teardown with
// tb.Cleanup (in reverse order: kubelet, scheduler, controller manager, API
// server, etcd, then the e2e harness's containerd, pods and cgroups); on
// failure the components' log tails are printed first.
func Start(tb testing.TB, opts Options) *Cluster {
	tb.Helper()
	Require(tb)
	if opts.Logf == nil {
		opts.Logf = func(format string, args ...any) { tb.Logf("k8s: "+format, args...) }
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	start := time.Now()
	rem, err := loadRemote()
	if err != nil {
		tb.Fatal(err)
	}
	work := tb.TempDir()
	var bins Binaries
	var pki *pki
	if rem != nil {
		bins, pki = rem.binaries(), rem.pki()
		opts.Logf("a node of the control plane at %s (%s=%s)", rem.URL, RemoteEnv, rem.dir)
	} else {
		if bins, err = Build(ctx, BuildOptions{Version: opts.Version, Logf: opts.Logf}); err != nil {
			tb.Fatal(err)
		}
		if pki, err = newPKI(filepath.Join(work, "pki"), NodeName); err != nil {
			tb.Fatal(err)
		}
	}
	ports, err := freePorts(6)
	if err != nil {
		tb.Fatal(err)
	}
	c := &Cluster{Bins: bins, URL: fmt.Sprintf("https://127.0.0.1:%d", ports[0]), CA: pki.CA,
		StrataToken: filepath.Join(work, "strata.token"), StrataPlugin: -1, remote: rem,
		tb: tb, logf: opts.Logf, procs: map[string]*exec.Cmd{}, done: map[string]chan struct{}{}, logs: map[string]string{}}
	if rem != nil {
		c.URL, c.StrataToken = rem.URL, rem.path(remoteToken)
	}

	var plugins []e2e.Plugin
	if opts.StrataConfig != "" {
		bin, err := e2e.GoBuild(ctx, "./nri-plugin/cmd/strata", work)
		if err != nil {
			tb.Fatal(err)
		}
		cfg := filepath.Join(work, "strata.yaml")
		if err := os.WriteFile(cfg, []byte(opts.StrataConfig), 0o644); err != nil {
			tb.Fatal(err)
		}
		args := []string{"run", "--socket-path", "${STRATA_NRI_SOCKET}", "--config", cfg,
			"--listen", "unix:${STRATA_E2E_DIR}/strata-http.sock", "--log-level", "debug",
			"--kube-apiserver", c.URL, "--kube-token-file", c.StrataToken, "--kube-ca-file", pki.CA,
			"--node-name", NodeName}
		plugins = append(plugins, e2e.Plugin{Path: bin, Name: "strata", Args: append(args, opts.StrataArgs...)})
		c.StrataPlugin = 0
	}
	c.Env = e2e.Start(tb, e2e.Options{ContainerdVersion: opts.ContainerdVersion, Plugins: plugins, LogLevel: "info"})
	st := c.Env.State()
	c.Dir = filepath.Join(st.Dir, "k8s")
	tb.Cleanup(c.stop) // runs before the e2e harness's Close
	if err := c.up(ctx, pki, ports, opts); err != nil {
		tb.Fatalf("k8s: %v", err)
	}
	opts.Logf("cluster up in %s (API server %s, node %s, run dir %s)", time.Since(start).Round(100*time.Millisecond), c.URL, NodeName, st.Dir)
	return c
}

func (c *Cluster) up(ctx context.Context, pki *pki, ports []int, opts Options) error {
	st := c.Env.State()
	for _, d := range []string{"kubelet", "kubelet/pki", "pods-logs"} {
		if err := os.MkdirAll(filepath.Join(c.Dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := c.cni(st.Dir); err != nil {
		return err
	}
	kubeletKC := filepath.Join(c.Dir, "kubelet.kubeconfig")
	if err := writeKubeconfig(kubeletKC, c.URL, pki.CA, pki.KubeletCert, pki.KubeletKey); err != nil {
		return err
	}
	if c.remote == nil {
		if err := c.controlPlane(ctx, pki, ports); err != nil {
			return err
		}
	} else if err := c.join(ctx, pki); err != nil {
		return err
	}

	// The kubelet: its cgroups go under the run's cgroup root, so the
	// e2e harness removes them (and kills what is left in them).
	root, err := c.Env.Hierarchy().Create(st.CgroupRoot)
	if err != nil {
		return fmt.Errorf("cgroup root %s: %w", st.CgroupRoot, err)
	}
	// The tests time pool reactions to a burner; on a machine shared with
	// builds, pods get the highest CPU weight against everything outside
	// the run (as testutil.Prioritize does for kernel tests). Inside, the
	// kubelet's own weights apply.
	if err := root.SetCPUShares(262144); err != nil {
		return fmt.Errorf("cgroup root %s: %w", st.CgroupRoot, err)
	}
	// The kubelet wants it in named hierarchies (name=systemd) too, which
	// package cgroup does not list; the e2e harness removes it there.
	mounts, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup"))
	if err != nil {
		return err
	}
	for _, m := range mounts {
		if err := os.MkdirAll(filepath.Join(m.Mountpoint, st.CgroupRoot), 0o755); err != nil {
			return fmt.Errorf("cgroup root %s: %w", st.CgroupRoot, err)
		}
	}
	kcfg := filepath.Join(c.Dir, "kubelet.yaml")
	if err := os.WriteFile(kcfg, []byte(kubeletConfig(st, pki, ports[5], c.Dir)+opts.KubeletConfig), 0o644); err != nil {
		return err
	}
	if err := c.saveSysctls(); err != nil {
		return err
	}
	args := []string{"--config", kcfg, "--kubeconfig", kubeletKC,
		"--hostname-override", NodeName,
		"--root-dir", filepath.Join(c.Dir, "kubelet"), "--cert-dir", filepath.Join(c.Dir, "kubelet/pki"),
		"--v", "2"}
	if c.remote != nil && c.remote.NodeIP != "" {
		args = append(args, "--node-ip", c.remote.NodeIP)
	}
	if err := c.run("kubelet", c.Bins.Kubelet, args...); err != nil {
		return err
	}
	if err := Poll(ctx, Scaled(3*time.Minute), time.Second, func() (bool, string, error) {
		if err := c.exited(); err != nil {
			return false, "", err
		}
		n, err := c.Admin.Node(ctx, NodeName)
		if err != nil {
			return false, err.Error(), nil
		}
		ok, why := n.Ready()
		return ok, why, nil
	}); err != nil {
		return fmt.Errorf("node not ready: %w%s", err, c.tail("kubelet", 40))
	}
	// Pods need the namespace's default service account, which the
	// controller manager creates.
	return Poll(ctx, Scaled(2*time.Minute), 500*time.Millisecond, func() (bool, string, error) {
		err := c.Admin.Do(ctx, http.MethodGet, "/api/v1/namespaces/default/serviceaccounts/default", nil, nil)
		if err != nil {
			return false, err.Error(), nil
		}
		return true, "", nil
	})
}

// controlPlane starts etcd, the API server, the controller manager and the
// scheduler on 127.0.0.1 (ports: API server, etcd client and peer,
// controller manager, scheduler), waits for the API server and creates
// Strata's service account.
func (c *Cluster) controlPlane(ctx context.Context, pki *pki, ports []int) error {
	for _, d := range []string{"etcd", "apiserver"} {
		if err := os.MkdirAll(filepath.Join(c.Dir, d), 0o755); err != nil {
			return err
		}
	}
	adminKC := filepath.Join(c.Dir, "admin.kubeconfig")
	if err := writeKubeconfig(adminKC, c.URL, pki.CA, pki.AdminCert, pki.AdminKey); err != nil {
		return err
	}
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports[2])
	if err := c.run("etcd", c.Bins.Etcd, "--name", "strata", "--data-dir", filepath.Join(c.Dir, "etcd"),
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "strata="+peerURL, "--unsafe-no-fsync", "--log-level", "warn"); err != nil {
		return err
	}
	if err := c.run("kube-apiserver", c.Bins.APIServer,
		"--etcd-servers", etcdURL, "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(ports[0]), "--cert-dir", filepath.Join(c.Dir, "apiserver"),
		"--tls-cert-file", pki.APIServerCert, "--tls-private-key-file", pki.APIServerKey,
		"--client-ca-file", pki.CA,
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file", pki.ServiceAccountPub, "--service-account-signing-key-file", pki.ServiceAccountKey,
		"--service-cluster-ip-range", "10.96.0.0/24", "--authorization-mode", "Node,RBAC",
		"--kubelet-client-certificate", pki.AdminCert, "--kubelet-client-key", pki.AdminKey,
		"--allow-privileged", "--profiling=false", "--enable-priority-and-fairness=false",
		"--endpoint-reconciler-type", "none", "--v", "1"); err != nil {
		return err
	}
	admin, err := NewClient(c.URL, pki.CA, pki.AdminCert, pki.AdminKey, "")
	if err != nil {
		return err
	}
	c.Admin = admin
	if err := Poll(ctx, 3*time.Minute, 500*time.Millisecond, func() (bool, string, error) {
		if err := c.exited(); err != nil {
			return false, "", err
		}
		var s string
		err := admin.Do(ctx, http.MethodGet, "/readyz", nil, nil)
		if err != nil {
			s = err.Error()
		}
		return err == nil, s, nil
	}); err != nil {
		return fmt.Errorf("API server not ready: %w%s", err, c.tail("kube-apiserver", 30))
	}
	if err := c.run("kube-controller-manager", c.Bins.ControllerManager,
		"--kubeconfig", adminKC, "--authentication-kubeconfig", adminKC, "--authorization-kubeconfig", adminKC,
		"--leader-elect=false", "--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(ports[3]),
		"--cert-dir", filepath.Join(c.Dir, "controller-manager"), "--profiling=false",
		"--controllers", "serviceaccount-controller,root-ca-certificate-publisher-controller,disruption-controller,node-lifecycle-controller,daemonset-controller",
		"--root-ca-file", pki.CA, "--use-service-account-credentials=false", "--v", "1"); err != nil {
		return err
	}
	if err := c.run("kube-scheduler", c.Bins.Scheduler,
		"--kubeconfig", adminKC, "--authentication-kubeconfig", adminKC, "--authorization-kubeconfig", adminKC,
		"--leader-elect=false", "--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(ports[4]),
		"--cert-dir", filepath.Join(c.Dir, "scheduler"), "--profiling=false", "--v", "1"); err != nil {
		return err
	}
	return c.strataAccount(ctx)
}

// kubeletConfig is the node's KubeletConfiguration. What matters:
//   - cgroupfs driver under the run's cgroup root, and failCgroupV1: false
//     (recent kubelets refuse cgroup v1 hosts otherwise);
//   - nothing reserved: the 2-CPU test machine offers both CPUs to pods;
//   - eviction thresholds and image GC effectively off, so a busy shared
//     disk or memory never evicts the tests' pods or their image;
//   - the CPU manager's default "none" policy: Strata owns cpusets.
func kubeletConfig(st e2e.State, pki *pki, port int, dir string) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: %q
cgroupsPerQOS: true
enforceNodeAllocatable: [pods]
containerRuntimeEndpoint: %q
address: 127.0.0.1
port: %d
readOnlyPort: 0
healthzPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: %q}
authorization: {mode: AlwaysAllow}
failSwapOn: false
registerNode: true
podLogsDir: %q
resolvConf: /etc/resolv.conf
clusterDomain: cluster.local
clusterDNS: []
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {"memory.available": "1Mi", "nodefs.available": "1%%", "nodefs.inodesFree": "1%%", "imagefs.available": "1%%"}
nodeStatusUpdateFrequency: 2s
nodeStatusReportFrequency: 10s
syncFrequency: 10s
fileCheckFrequency: 5s
localStorageCapacityIsolation: false
`, st.CgroupRoot, "unix://"+st.Socket, port, pki.CA, filepath.Join(dir, "pods-logs"))
}

// cni gives containerd a loopback-only network (Debian's
// containernetworking-plugins), so the runtime reports its network ready
// and the kubelet marks the node Ready. Pods in the tests use the host
// network; none needs more.
func (c *Cluster) cni(runDir string) error {
	src := ""
	if c.remote != nil {
		src = c.remote.path(remoteCNI)
	} else {
		var err error
		if src, err = cniLoopback(); err != nil {
			return err
		}
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(runDir, "cni/bin/loopback"), b, 0o755); err != nil {
		return err
	}
	conf := `{"cniVersion": "1.0.0", "name": "strata-lo", "plugins": [{"type": "loopback"}]}`
	return os.WriteFile(filepath.Join(runDir, "cni/conf/10-strata-lo.conflist"), []byte(conf), 0o644)
}

// cniLoopback finds Debian's CNI loopback plugin.
func cniLoopback() (string, error) {
	for _, d := range []string{"/usr/lib/cni", "/opt/cni/bin"} {
		if _, err := os.Stat(filepath.Join(d, "loopback")); err == nil {
			return filepath.Join(d, "loopback"), nil
		}
	}
	return "", fmt.Errorf("CNI loopback plugin not found in /usr/lib/cni or /opt/cni/bin: install the apt package containernetworking-plugins (see test/k8s/apt-packages.txt)")
}

// strataAccount creates Strata's service account with the rights its
// DaemonSet would have (evict pods, read pods, publish node capacity) and
// writes a token for it to c.StrataToken.
func (c *Cluster) strataAccount(ctx context.Context) error {
	objs := []struct{ path, body string }{
		{"/api/v1/namespaces/kube-system/serviceaccounts", `{"metadata": {"name": "strata"}}`},
		{"/apis/rbac.authorization.k8s.io/v1/clusterroles", `
metadata: {name: strata-node-agent}
rules:
- {apiGroups: [""], resources: [pods], verbs: [get, list, watch]}
- {apiGroups: [""], resources: [pods/eviction], verbs: [create]}
- {apiGroups: [""], resources: [nodes], verbs: [get]}
- {apiGroups: [""], resources: [nodes/status], verbs: [patch]}
`},
		{"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", `
metadata: {name: strata-node-agent}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: strata-node-agent}
subjects: [{kind: ServiceAccount, name: strata, namespace: kube-system}]
`},
	}
	for _, o := range objs {
		if err := c.Admin.Create(ctx, o.path, o.body); err != nil {
			return err
		}
	}
	var tr struct{ Status struct{ Token string } }
	if err := c.Admin.Do(ctx, http.MethodPost, "/api/v1/namespaces/kube-system/serviceaccounts/strata/token",
		`{"spec": {"expirationSeconds": 7200}}`, &tr); err != nil {
		return err
	}
	return os.WriteFile(c.StrataToken, []byte(tr.Status.Token), 0o600)
}

// StrataClient is a client authenticated as Strata's service account.
func (c *Cluster) StrataClient() (*Client, error) {
	tok, err := os.ReadFile(c.StrataToken)
	if err != nil {
		return nil, err
	}
	return NewClient(c.URL, c.CA, "", "", strings.TrimSpace(string(tok)))
}

// The kubelet sets these host sysctls at start (it has no "leave them"
// mode short of refusing to start); Start saves them and the teardown puts
// them back.
var kubeletSysctls = []string{"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops", "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes"}

func (c *Cluster) saveSysctls() error {
	c.sysctls = map[string]string{}
	for _, s := range kubeletSysctls {
		b, err := os.ReadFile("/proc/sys/" + s)
		if err != nil {
			return fmt.Errorf("save sysctl %s: %w", s, err)
		}
		c.sysctls[s] = strings.TrimSpace(string(b))
	}
	return nil
}

func (c *Cluster) restoreSysctls() {
	for s, v := range c.sysctls {
		if err := os.WriteFile("/proc/sys/"+s, []byte(v), 0o644); err != nil {
			c.tb.Errorf("k8s: restore sysctl %s=%s: %v", s, v, err)
		}
	}
}

// run starts a component with its output in <Dir>/<name>.log. It carries
// the e2e harness's run marker, so the harness kills it should this
// process die without tearing down.
func (c *Cluster) run(name, bin string, args ...string) error {
	logPath := filepath.Join(c.Dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.Command(bin, args...)
	cmd.Dir = c.Dir
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if c.Env != nil {
		cmd.Env = append(os.Environ(), e2e.RunEnvVar+"="+c.Env.State().Dir)
	} else {
		// A control plane without a node (StartControlPlane) has no e2e
		// run to be cleaned up with: it dies with the test process.
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	c.procs[name] = cmd
	c.logs[name] = logPath
	c.done[name] = done
	return nil
}

// exited returns an error when a component died.
func (c *Cluster) exited() error {
	for name, done := range c.done {
		select {
		case <-done:
			return fmt.Errorf("%s exited: %s%s", name, c.procs[name].ProcessState, c.tail(name, 30))
		default:
		}
	}
	return nil
}

// Log returns a component's log so far ("kubelet", "kube-apiserver", ...).
func (c *Cluster) Log(name string) string {
	b, _ := os.ReadFile(c.logs[name])
	return string(b)
}

func (c *Cluster) tail(name string, n int) string {
	lines := strings.Split(strings.TrimRight(c.Log(name), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "\n--- " + name + " log (tail) ---\n" + strings.Join(lines, "\n")
}

// stopOrder: the kubelet first, so that it does not restart what the e2e
// harness then removes; etcd last.
var stopOrder = []string{"kubelet", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"}

func (c *Cluster) stop() {
	if c.tb.Failed() {
		for _, name := range stopOrder {
			if _, ok := c.logs[name]; ok {
				c.tb.Logf("k8s: %s", c.tail(name, 25))
			}
		}
		if c.StrataPlugin >= 0 {
			if s, err := c.Env.PluginLog(c.StrataPlugin); err == nil {
				lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
				c.tb.Logf("k8s: --- strata log (tail) ---\n%s", strings.Join(lines[max(0, len(lines)-40):], "\n"))
			}
		}
	}
	for _, name := range stopOrder {
		cmd, ok := c.procs[name]
		if !ok {
			continue
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done[name]:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-c.done[name]
		}
	}
	if c.sysctls != nil {
		c.restoreSysctls()
	}
	if c.remote != nil {
		c.reset()
	}
}

// freePorts returns n distinct free TCP ports on 127.0.0.1.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var out []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

// CreatePod creates a pod from a manifest (YAML) in namespace ns and
// returns its name.
func (c *Cluster) CreatePod(ctx context.Context, ns, manifest string) (string, error) {
	var p Pod
	if err := c.Admin.Do(ctx, http.MethodPost, "/api/v1/namespaces/"+ns+"/pods", manifest, &p); err != nil {
		return "", err
	}
	return p.Metadata.Name, nil
}

// WaitRunning waits until every container of the pod runs and returns the
// pod.
func (c *Cluster) WaitRunning(ctx context.Context, ns, name string, timeout time.Duration) (*Pod, error) {
	var pod *Pod
	err := Poll(ctx, timeout, 250*time.Millisecond, func() (bool, string, error) {
		p, err := c.Admin.Pod(ctx, ns, name)
		if err != nil {
			return false, err.Error(), nil
		}
		pod = p
		if p.Status.Phase != "Running" {
			b, _ := json.Marshal(p.Status)
			return false, "phase " + p.Status.Phase + " " + string(b), nil
		}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.ContainerID == "" {
				return false, "container " + cs.Name + " not started", nil
			}
		}
		return true, "", nil
	})
	if err != nil {
		return nil, fmt.Errorf("pod %s/%s not running: %w", ns, name, err)
	}
	return pod, nil
}

// ContainerCgroup returns the cgroup of a pod's container, as the kubelet
// laid it out.
func (c *Cluster) ContainerCgroup(ctx context.Context, pod *Pod, container string) (*cgroup.Cgroup, error) {
	id := pod.ContainerID(container)
	if id == "" {
		return nil, fmt.Errorf("pod %s/%s: container %s has no ID yet", pod.Metadata.Namespace, pod.Metadata.Name, container)
	}
	return c.Env.Cgroup(ctx, id)
}
