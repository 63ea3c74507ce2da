package cgroup

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// MemoryStat is the part of memory.stat that memory relief and pressure
// sampling need, in bytes. Both versions report it hierarchically (v1 from
// the total_* keys, v2 always), so a pod-level cgroup includes its
// containers.
//
//	meaning        v1 key                    v2 key
//	Anon           total_rss                 anon
//	File           total_cache               file
//	ActiveFile     total_active_file         active_file
//	InactiveFile   total_inactive_file       inactive_file
//	Shmem          total_shmem               shmem
//
// File includes shmem and tmpfs pages in both versions; they sit in the page
// cache but only leave it when swapped, so reclaim cannot count on them.
type MemoryStat struct {
	Anon         uint64
	File         uint64
	ActiveFile   uint64
	InactiveFile uint64
	Shmem        uint64
}

// memoryStatKeys maps each MemoryStat field to its key per version.
func memoryStatKeys(m Mode) map[string]func(*MemoryStat) *uint64 {
	if m == V2 {
		return map[string]func(*MemoryStat) *uint64{
			"anon":          func(s *MemoryStat) *uint64 { return &s.Anon },
			"file":          func(s *MemoryStat) *uint64 { return &s.File },
			"active_file":   func(s *MemoryStat) *uint64 { return &s.ActiveFile },
			"inactive_file": func(s *MemoryStat) *uint64 { return &s.InactiveFile },
			"shmem":         func(s *MemoryStat) *uint64 { return &s.Shmem },
		}
	}
	return map[string]func(*MemoryStat) *uint64{
		"total_rss":           func(s *MemoryStat) *uint64 { return &s.Anon },
		"total_cache":         func(s *MemoryStat) *uint64 { return &s.File },
		"total_active_file":   func(s *MemoryStat) *uint64 { return &s.ActiveFile },
		"total_inactive_file": func(s *MemoryStat) *uint64 { return &s.InactiveFile },
		"total_shmem":         func(s *MemoryStat) *uint64 { return &s.Shmem },
	}
}

// MemoryStat reads memory.stat. A malformed line is a *FileError naming the
// file and the line number.
func (c *Cgroup) MemoryStat() (MemoryStat, error) {
	var st MemoryStat
	dir, err := c.Dir(Memory)
	if err != nil {
		return st, err
	}
	path := filepath.Join(dir, "memory.stat")
	b, err := os.ReadFile(path)
	if err != nil {
		return st, &FileError{Op: "read", Path: path, Err: classify(dir, path, err)}
	}
	keys := memoryStatKeys(c.h.mode)
	for i, line := range bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n")) {
		key, val, ok := bytes.Cut(line, []byte(" "))
		if !ok {
			return st, &FileError{Op: "parse", Path: path, Value: string(line), Err: fmt.Errorf("line %d: want \"key value\"", i+1)}
		}
		field, wanted := keys[string(key)]
		if !wanted {
			continue
		}
		v, err := strconv.ParseUint(string(val), 10, 64)
		if err != nil {
			return st, &FileError{Op: "parse", Path: path, Value: string(line), Err: fmt.Errorf("line %d: %w", i+1, err)}
		}
		*field(&st) = v
	}
	return st, nil
}

// MemoryUsage reads the cgroup's charged memory in bytes: v1
// memory.usage_in_bytes, v2 memory.current.
func (c *Cgroup) MemoryUsage() (int64, error) {
	dir, file, err := c.read(Memory, "memory.usage_in_bytes", "memory.current")
	if err != nil {
		return 0, err
	}
	return readInt(dir, file)
}

// ReclaimMemory asks the kernel to reclaim bytes from the cgroup through
// cgroup v2 memory.reclaim. A swappiness of 0..200 is passed as the
// "swappiness=" argument (Linux 6.7+; 0 reclaims page cache only); a
// negative swappiness leaves the kernel's default balance. The kernel
// answers EAGAIN when it could not reclaim the whole amount; that is
// returned as a *FileError wrapping syscall.EAGAIN so callers can measure
// what was reclaimed instead. cgroup v1 has no such file: ErrNotSupported.
func (c *Cgroup) ReclaimMemory(bytes int64, swappiness int) error {
	if bytes <= 0 {
		return fmt.Errorf("cgroup %s: reclaim amount %d must be positive", c.path, bytes)
	}
	if swappiness > 200 {
		return fmt.Errorf("cgroup %s: reclaim swappiness %d outside [0, 200]", c.path, swappiness)
	}
	dir, file, err := c.read(Memory, "", "memory.reclaim")
	if err != nil {
		return err
	}
	v := strconv.FormatInt(bytes, 10)
	if swappiness >= 0 {
		v += " swappiness=" + strconv.Itoa(swappiness)
	}
	return writeString(dir, file, v)
}

// SetOOMGroup sets cgroup v2 memory.oom.group: when true the OOM killer
// kills the whole cgroup at once rather than one process of it. cgroup v1
// has no equivalent: ErrNotSupported.
func (c *Cgroup) SetOOMGroup(on bool) error {
	dir, file, err := c.read(Memory, "", "memory.oom.group")
	if err != nil {
		return err
	}
	v := "0"
	if on {
		v = "1"
	}
	return writeString(dir, file, v)
}

// OOMGroup reads cgroup v2 memory.oom.group.
func (c *Cgroup) OOMGroup() (bool, error) {
	dir, file, err := c.read(Memory, "", "memory.oom.group")
	if err != nil {
		return false, err
	}
	v, err := readUint(dir, file)
	return v == 1, err
}
