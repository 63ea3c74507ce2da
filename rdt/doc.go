// Package rdt will assign cache (L3 CAT) and memory-bandwidth (MBA) classes to
// groups of tasks through the kernel's resctrl filesystem, using
// github.com/intel/goresctrl where it serves.
//
// Layering: rdt is a primitive. It knows nothing of pools, of the controller
// in package isolation, or of NRI; isolation composes it and nri-plugin wires
// it to containerd. It imports nothing above it.
//
// Status: not implemented yet. This package holds only its documentation
// until the rdt issue reaches it. The resctrl root will be a parameter so that
// fixture trees can stand in on machines without RDT (such as AMD VMs).
package rdt
