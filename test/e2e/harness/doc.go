// Package harness runs a real containerd with NRI, no Kubernetes, for
// Strata's end-to-end tests and demos.
//
// Start (in tests) or New builds containerd, its runc shim and ctr for one
// version from a tool module under test/e2e/containerd/v<version> (cached in
// /var/cache/strata-e2e or $STRATA_E2E_CACHE, rebuilt only when the module
// changes), packs a local image of a static pause program plus busybox
// (ImageRef), writes a containerd config that keeps root, state, sockets
// and runc state under one run directory /tmp/strata-e2e-<runid>, starts
// containerd with NRI on its own socket, imports the image, and starts the
// given NRI plugin binaries against that socket, waiting until containerd
// reports each one connected and synchronized.
//
// Pods use the host network (no CNI) and cgroupfs parents under
// /strata-e2e-<runid>, so Close can find and remove everything the run
// made: pods through CRI, plugins, containerd, leftover shims, processes
// and cgroups under the run's cgroup root, mounts and the run directory.
// Close also runs on SIGINT/SIGTERM, and a later New removes environments
// whose test process was killed outright.
//
// Tests drive containerd through Env.CRI (package cri), read container
// cgroups through Env.Cgroup (package cgroup), and exercise restarts with
// Env.RestartContainerd and Env.RestartPlugin. Detached environments
// (Options.Detach, used by `go run ./test/e2e/cmd/e2eenv up`) outlive the
// process that made them and are removed with Attach(dir).Close().
package harness
