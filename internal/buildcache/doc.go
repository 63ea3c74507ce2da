// Package buildcache keeps the heavy tools the test tiers need — a
// containerd built from the Go module proxy, a Kubernetes release, an
// unpacked Debian kernel — in a cache directory outside the work tree, so
// that only the first run on a machine pays for them.
//
// Every cache entry is one directory, filled the same way: an exclusive
// flock on <entry>/.lock (or on its parent) serialises the parallel test
// binaries that want the same entry, the new content is made in a sibling
// "<name>.tmp" and renamed into place, and a stamp says the entry is
// complete. A killed build therefore never leaves a half entry that a
// later run mistakes for a good one.
//
//   - BuildModule builds the main packages of a tool module (a directory
//     with its own go.mod and go.sum, e.g. test/e2e/containerd/v2.4.2) into
//     <entry>/bin, and rebuilds only when the module's files, the Go version
//     or the build flags changed: their hash is kept in
//     <entry>/source.sha256.
//   - Populate fills a directory once by a caller's function (the VM tier's
//     `apt-get download` plus `dpkg-deb -x`) and marks it with a .complete
//     file.
//   - Lock is the flock both use, for callers that serialise other things.
//
// The package knows nothing of containerd, Kubernetes or kernels; the
// harnesses say what to build and where.
package buildcache
