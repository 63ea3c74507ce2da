// Package iolimit will set block IO weight and throttling for cgroups, on
// cgroup v1 (blkio.bfq.weight, blkio.throttle.*) and v2 (io.weight,
// io.bfq.weight, io.max), through the shared cgroup layer in package cgroup.
//
// Layering: iolimit is a primitive. It knows nothing of pools or NRI.
//
// Status: not implemented yet. This package holds only its documentation
// until the iolimit issue reaches it.
package iolimit
