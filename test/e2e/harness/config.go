package harness

import (
	"fmt"
	"os"
	"strings"
	"text/template"
)

// configTemplate is a containerd config (version 3, which 2.1 reads natively
// and 2.4 migrates in memory) that keeps everything of one run under its own
// directory: root, state, sockets, runc root, NRI socket and plugin dirs. Only
// the shims' sockets escape it (they land in /run/containerd/s whatever the
// config says).
//
// Choices that matter here:
//   - NRI enabled, external connections on our own socket, and an empty
//     plugin_path so containerd launches no plugin by itself.
//   - overlayfs; the test image is imported locally and pinned as sandbox
//     image, so nothing is pulled (and it is never garbage-collected).
//   - runc with SystemdCgroup=false: pods name cgroupfs parents of our own.
//   - restrict_oom_score_adj: this VM lacks CAP_SYS_RESOURCE, so runc cannot
//     lower the sandbox's oom_score_adj; restricting clamps it to ours.
//   - no CNI config: pods use the host network (namespace mode NODE).
var configTemplate = template.Must(template.New("config").Parse(`version = 3
root = "{{.Dir}}/root"
state = "{{.Dir}}/state"
temp = "{{.Dir}}/tmp"

[grpc]
  address = "{{.Socket}}"
[ttrpc]
  address = "{{.Socket}}.ttrpc"
[debug]
  address = "{{.Dir}}/debug.sock"
  level = "{{.LogLevel}}"
[metrics]
  address = ""

[plugins.'io.containerd.internal.v1.opt']
  path = "{{.Dir}}/opt"

[plugins.'io.containerd.nri.v1.nri']
  disable = false
  socket_path = "{{.NRISocket}}"
  plugin_path = "{{.Dir}}/nri/plugins"
  plugin_config_path = "{{.Dir}}/nri/conf"
  plugin_registration_timeout = "{{.NRIRegistrationTimeout}}"
  plugin_request_timeout = "{{.NRIRequestTimeout}}"

[plugins.'io.containerd.grpc.v1.cri']
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "{{.Image}}"

[plugins.'io.containerd.cri.v1.runtime']
  enable_selinux = false
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "{{.Runc}}"
        Root = "{{.Dir}}/runc"
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["{{.Dir}}/cni/bin"]
    conf_dir = "{{.Dir}}/cni/conf"
{{.Extra}}
`))

// configTemplateV2 is the same for containerd 1.7, which reads version 2
// configs: the CRI plugin is one section, the sandbox image is
// sandbox_image, and NRI (off by default in 1.7) keeps its default timeouts.
var configTemplateV2 = template.Must(template.New("config").Parse(`version = 2
root = "{{.Dir}}/root"
state = "{{.Dir}}/state"
temp = "{{.Dir}}/tmp"

[grpc]
  address = "{{.Socket}}"
[ttrpc]
  address = "{{.Socket}}.ttrpc"
[debug]
  address = "{{.Dir}}/debug.sock"
  level = "{{.LogLevel}}"
[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{{.Dir}}/opt"

[plugins."io.containerd.nri.v1.nri"]
  disable = false
  socket_path = "{{.NRISocket}}"
  plugin_path = "{{.Dir}}/nri/plugins"
  plugin_config_path = "{{.Dir}}/nri/conf"

[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  sandbox_image = "{{.Image}}"
  enable_selinux = false
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "{{.Runc}}"
        Root = "{{.Dir}}/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{{.Dir}}/cni/bin"
    conf_dir = "{{.Dir}}/cni/conf"
{{.Extra}}
`))

type configData struct {
	Dir, Socket, NRISocket, Image, Runc, LogLevel string
	NRIRegistrationTimeout, NRIRequestTimeout     string
	Extra                                         string
	// V2 selects the version 2 config of containerd 1.x.
	V2 bool
}

func writeConfig(path string, d configData) error {
	for name, v := range map[string]string{"Dir": d.Dir, "Runc": d.Runc} {
		if strings.ContainsAny(v, "\"\\\n") {
			return fmt.Errorf("harness: %s %q cannot go into a TOML string", name, v)
		}
	}
	tmpl := configTemplate
	if d.V2 {
		tmpl = configTemplateV2
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, d); err != nil {
		return fmt.Errorf("harness: render containerd config: %w", err)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("harness: write containerd config: %w", err)
	}
	return nil
}
