package iolimit

import "errors"

var (
	// ErrNoBlockDevice reports a path whose filesystem has no block
	// device (tmpfs, proc, an overlay), or a device node that is not a
	// block device.
	ErrNoBlockDevice = errors.New("no block device")

	// ErrUnknownDevice reports a device number or name that sysfs does
	// not know (/sys/dev/block, /sys/class/block).
	ErrUnknownDevice = errors.New("unknown block device")

	// ErrInvalid reports a setting out of range or malformed: a negative
	// or non-numeric limit, a weight outside its range, a device listed
	// twice. The error names the field and the value; nothing was
	// written.
	ErrInvalid = errors.New("invalid IO setting")

	// ErrWeightIneffective reports that a weight can be written but the
	// kernel will not act on it for a device, and why (the scheduler is
	// not bfq, iocost is not enabled, the knob is absent).
	ErrWeightIneffective = errors.New("IO weight has no effect")
)
