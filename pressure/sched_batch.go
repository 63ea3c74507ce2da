package pressure

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// bpfMapBatchAttr is the kernel's union bpf_attr for BPF_MAP_*_BATCH
// commands (include/uapi/linux/bpf.h, "struct used by BPF_MAP_*_BATCH
// commands").
type bpfMapBatchAttr struct {
	inBatch   uint64
	outBatch  uint64
	keys      uint64
	values    uint64
	count     uint32
	mapFd     uint32
	elemFlags uint64
	flags     uint64
}

const bpfMapLookupBatch = 24 // BPF_MAP_LOOKUP_BATCH

// batchReader reads a whole BPF map with BPF_MAP_LOOKUP_BATCH into
// caller-owned buffers, allocating nothing. cilium/ebpf's Map.BatchLookup
// issues the same command but allocates on every pass (a new cursor per
// iteration and a wrapped error at its end), so the hot read of a pass
// uses the command directly; loading, CO-RE, attaching and map updates
// stay with cilium/ebpf.
type batchReader struct {
	cursor [2]uint64 // in and out positions (hash maps use a u32 bucket, arrays a u32 key)
}

// read fills keys (keySize bytes each) and values (valueSize each) with up
// to max entries of map fd, one call per max entries, and returns how many
// it read. keys and values must hold max entries.
func (b *batchReader) read(fd int, keys, values unsafe.Pointer, keySize, valueSize uintptr, max int) (int, error) {
	total := 0
	first := true
	for total < max {
		attr := bpfMapBatchAttr{
			outBatch: uint64(uintptr(unsafe.Pointer(&b.cursor[1]))),
			keys:     uint64(uintptr(keys) + uintptr(total)*keySize),
			values:   uint64(uintptr(values) + uintptr(total)*valueSize),
			count:    uint32(max - total),
			mapFd:    uint32(fd),
		}
		if !first {
			b.cursor[0] = b.cursor[1]
			attr.inBatch = uint64(uintptr(unsafe.Pointer(&b.cursor[0])))
		}
		_, _, errno := unix.Syscall(unix.SYS_BPF, bpfMapLookupBatch, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
		runtime.KeepAlive(b)
		total += int(attr.count)
		switch errno {
		case 0:
		case unix.ENOENT: // the whole map was read
			return total, nil
		case unix.EINTR:
			if attr.count == 0 {
				continue
			}
		default:
			return total, errno
		}
		first = false
		if attr.count == 0 {
			break
		}
	}
	return total, nil
}
