// Package rdttest writes resctrl trees that mirror real machines' layouts
// (info/ files, the root group's schemata, mon_data) together with the
// procfs files detection reads (mounts, filesystems, cpuinfo), so code built
// on package rdt runs against an Intel or AMD server's resctrl on a machine
// that has none.
//
// A fixture is not the kernel: mkdir of a group makes an empty directory
// (the kernel fills it with schemata, tasks, mode, mon_data ...), a file
// reads back what was last written (the kernel's schemata lists every
// resource and cache id, whatever was written), tasks files collect the
// PIDs written to them, and nothing refuses a write. Package rdt validates
// before it writes, so the fixture shows exactly what the kernel would be
// asked to accept.
package rdttest
