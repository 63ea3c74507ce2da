// Package cpuset discovers CPU topology from sysfs and allocates CPUs.
//
// Layering: cpuset is a primitive. It knows nothing of pools or NRI.
//
// Status: being built under the cpuset issue.
package cpuset
