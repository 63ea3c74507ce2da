// Package e2e holds Strata's end-to-end tests: a real containerd (built from
// the Go module proxy) with NRI, runc and host-network pods, driven through
// CRI by package harness. They need root and skip under -short; see
// README.md in this directory.
package e2e
