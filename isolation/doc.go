// Package isolation is Strata's tiered resource-pool controller.
//
// Layering: isolation composes the primitives (cpuset, pressure, and later
// rdt, iolimit, netqos). It knows nothing of NRI; package nri-plugin wires it
// to containerd.
//
// Status: being built under the isolation issue.
package isolation
