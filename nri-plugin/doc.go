// Package nriplugin turns Strata into a containerd NRI plugin.
//
// Layering: nri-plugin sits on top. It wires configuration, the pool
// controller in package isolation and the primitives to containerd through
// github.com/containerd/nri. Nothing imports it.
//
// Status: being built under the nri-plugin issue.
package nriplugin
