// Package cri is a small CRI (k8s.io/cri-api runtime.v1) client for Strata's
// end-to-end tests, standing in for crictl, which cannot be installed here.
//
// It wraps what the tests need — host-network pods (network namespace NODE,
// so no CNI), containers with Linux resources and annotations, start, stop,
// remove, UpdateContainerResources, ExecSync, list, and verbose status with
// the container's host PID and cgroups path — and exposes the raw runtime
// service for anything else.
package cri
