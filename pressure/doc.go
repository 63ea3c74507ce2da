// Package pressure measures load and pressure and relieves memory.
//
// Layering: pressure is a primitive. It knows nothing of pools or NRI.
//
// Status: being built under the pressure issue.
package pressure
