// Package image packs a tiny container image into a tarball that
// `ctr images import` accepts, so Strata's end-to-end tests run without any
// registry: the image holds a static pause program and busybox-static from the
// host, and serves as both the pinned sandbox image and the workload image.
//
// The archive is deterministic (fixed timestamps, sorted entries, one
// uncompressed layer), so the same inputs give the same digests and the
// harness caches it by ContentHash.
package image
