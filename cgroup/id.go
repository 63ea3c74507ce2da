package cgroup

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"
)

// ID is the cgroup's id in the unified (cgroup2) hierarchy: the number
// bpf_skb_cgroup_id and bpf_get_current_cgroup_id return for its tasks and
// sockets. It exists on v2 and on hybrid hosts (the unified mount); on a
// pure v1 host there is no cgroup2 mount and ID returns ErrNotSupported.
//
// The id is read as the kernel exports it, through name_to_handle_at (a
// kernfs directory's file handle, type FILEID_KERNFS, is its 64-bit id), falling back to the
// directory's inode number, which equals the id on 64-bit kernels.
func (c *Cgroup) ID() (uint64, error) {
	const fileIDKernfs = 0xfe // linux/exportfs.h FILEID_KERNFS
	dir, err := c.UnifiedDir()
	if err != nil {
		return 0, err
	}
	h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, dir, 0)
	if err == nil && h.Type() == fileIDKernfs && len(h.Bytes()) == 8 {
		return binary.NativeEndian.Uint64(h.Bytes()), nil
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return 0, &FileError{Op: "read", Path: dir, Err: classify(dir, dir, err)}
	}
	if st.Ino == 0 {
		return 0, fmt.Errorf("%w: %s has no cgroup id", ErrNotSupported, dir)
	}
	return st.Ino, nil
}
