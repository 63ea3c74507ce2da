package cgroup

import (
	"math"
	"strconv"
)

// v1Unlimited is the smallest value the v1 memory controller reports for
// "no limit" (PAGE_COUNTER_MAX rounded to pages; 9223372036854771712 on
// 4 KiB pages). Anything at or above it reads back as -1.
const v1Unlimited = math.MaxInt64 - 1<<20

func (c *Cgroup) setMemory(v1file, v2file string, bytes int64) error {
	dir, file, err := c.read(Memory, v1file, v2file)
	if err != nil {
		return err
	}
	v := strconv.FormatInt(bytes, 10)
	if bytes < 0 {
		v = "-1"
		if c.h.mode == V2 {
			v = "max"
		}
	}
	return writeString(dir, file, v)
}

func (c *Cgroup) memory(v1file, v2file string) (int64, error) {
	dir, file, err := c.read(Memory, v1file, v2file)
	if err != nil {
		return 0, err
	}
	if c.h.mode == V2 {
		return readMaxInt(dir, file)
	}
	v, err := readInt(dir, file)
	if err == nil && v >= v1Unlimited {
		v = -1
	}
	return v, err
}

// SetMemoryLimit sets the hard memory limit in bytes (v1
// memory.limit_in_bytes, v2 memory.max); -1 removes it.
func (c *Cgroup) SetMemoryLimit(bytes int64) error {
	return c.setMemory("memory.limit_in_bytes", "memory.max", bytes)
}

// MemoryLimit reads the hard memory limit; -1 means unlimited.
func (c *Cgroup) MemoryLimit() (int64, error) {
	return c.memory("memory.limit_in_bytes", "memory.max")
}

// SetMemoryHigh sets the v2 throttling threshold memory.high; v1 has none
// (ErrNotSupported).
func (c *Cgroup) SetMemoryHigh(bytes int64) error { return c.setMemory("", "memory.high", bytes) }

// MemoryHigh reads memory.high (v2).
func (c *Cgroup) MemoryHigh() (int64, error) { return c.memory("", "memory.high") }

// SetMemoryLow sets best-effort protection memory.low (v2 only).
func (c *Cgroup) SetMemoryLow(bytes int64) error { return c.setMemory("", "memory.low", bytes) }

// MemoryLow reads memory.low (v2).
func (c *Cgroup) MemoryLow() (int64, error) { return c.memory("", "memory.low") }

// SetMemoryMin sets hard protection memory.min (v2 only).
func (c *Cgroup) SetMemoryMin(bytes int64) error { return c.setMemory("", "memory.min", bytes) }

// MemoryMin reads memory.min (v2).
func (c *Cgroup) MemoryMin() (int64, error) { return c.memory("", "memory.min") }

// SetMemorySoftLimit sets the reclaim-protection target: v1
// memory.soft_limit_in_bytes, and on v2 memory.low, as runc maps an OCI
// memory reservation.
func (c *Cgroup) SetMemorySoftLimit(bytes int64) error {
	return c.setMemory("memory.soft_limit_in_bytes", "memory.low", bytes)
}

// MemorySoftLimit reads the soft limit (v2: memory.low).
func (c *Cgroup) MemorySoftLimit() (int64, error) {
	return c.memory("memory.soft_limit_in_bytes", "memory.low")
}

func (f *Files) memory(id keptFileID, v1file, v2file string) (int64, error) {
	if f.c.h.mode == V2 {
		return f.readMaxInt(id, Memory, v1file, v2file)
	}
	v, err := f.readInt(id, Memory, v1file, v2file)
	if err == nil && v >= v1Unlimited {
		v = -1
	}
	return v, err
}

// MemoryHigh is Cgroup.MemoryHigh through a kept file.
func (f *Files) MemoryHigh() (int64, error) { return f.memory(keptMemoryHigh, "", "memory.high") }

// MemoryLow is Cgroup.MemoryLow through a kept file.
func (f *Files) MemoryLow() (int64, error) { return f.memory(keptMemoryLow, "", "memory.low") }

// MemoryMin is Cgroup.MemoryMin through a kept file.
func (f *Files) MemoryMin() (int64, error) { return f.memory(keptMemoryMin, "", "memory.min") }

// MemorySoftLimit is Cgroup.MemorySoftLimit through a kept file.
func (f *Files) MemorySoftLimit() (int64, error) {
	return f.memory(keptMemorySoftLimit, "memory.soft_limit_in_bytes", "memory.low")
}
