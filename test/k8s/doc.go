// Package k8s holds Strata's Kubernetes tier: TestE2EK8s… tests that run
// the plugin on a real single-node cluster (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler and a kubelet built from the Go
// module proxy by package harness, on the e2e harness's containerd) and
// create pods through the API. See README.md.
package k8s
