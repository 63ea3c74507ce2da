// Package harness brings up a single-node Kubernetes for Strata's
// Kubernetes tier: etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler and a kubelet, all built from the Go module proxy (tool
// module test/k8s/kubernetes/v<version>, binaries cached under
// /var/cache/strata-k8s), on the containerd of the e2e harness
// (test/e2e/harness) with Strata as an external NRI plugin.
//
// Everything runs on loopback with certificates generated at start; the
// components' data, logs and the kubelet's root live in the e2e run
// directory and their cgroups under the run's cgroup root, so the e2e
// harness's teardown (and its removal of runs whose test process died)
// covers them too.
//
// Tests talk to the API server through Client, a small JSON client: client-go
// would bring Kubernetes' dependency tree into Strata's module.
package harness
