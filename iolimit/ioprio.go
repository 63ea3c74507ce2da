package iolimit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// IOPriorityClass is a task's IO scheduling class (ioprio_set(2)). bfq
// honours it (as cfq did); mq-deadline and none ignore it.
type IOPriorityClass int

// The kernel's IO priority classes.
const (
	IOPriorityNone       IOPriorityClass = 0 // derived from the CPU nice value
	IOPriorityRealtime   IOPriorityClass = 1
	IOPriorityBestEffort IOPriorityClass = 2
	IOPriorityIdle       IOPriorityClass = 3 // served only when no other class wants the disk
)

func (c IOPriorityClass) String() string {
	switch c {
	case IOPriorityNone:
		return "none"
	case IOPriorityRealtime:
		return "realtime"
	case IOPriorityBestEffort:
		return "best-effort"
	case IOPriorityIdle:
		return "idle"
	}
	return fmt.Sprintf("IOPriorityClass(%d)", int(c))
}

const ioprioWhoProcess = 1 // IOPRIO_WHO_PROCESS: one task (thread) id

// SetIOPriority gives every thread of process pid (listed in
// procRoot/<pid>/task) the IO priority class and level (0..7, 0 highest;
// ignored for idle and none). This is what cgroup v1 allows against buffered and
// direct IO of a batch process under bfq: the idle class is served only
// when no other class wants the device. A process that exited is not an
// error (the caller sweeps many); threads that exit meanwhile are skipped.
func SetIOPriority(procRoot string, pid int, class IOPriorityClass, level int) error {
	if class < IOPriorityNone || class > IOPriorityIdle {
		return fmt.Errorf("iolimit: IO priority class %d: want 0..3 (none, realtime, best-effort, idle): %w", int(class), ErrInvalid)
	}
	if level < 0 || level > 7 {
		return fmt.Errorf("iolimit: IO priority level %d: want 0..7: %w", level, ErrInvalid)
	}
	if procRoot == "" {
		procRoot = "/proc"
	}
	if class == IOPriorityIdle || class == IOPriorityNone {
		level = 0 // the kernel refuses a level with class none
	}
	value := int(class)<<13 | level
	// A thread started during the sweep by one not yet set would keep the
	// old class: sweep again until a pass finds no thread it has not set.
	done := map[int]bool{}
	for pass := 0; pass < 8; pass++ {
		tasks, err := os.ReadDir(filepath.Join(procRoot, strconv.Itoa(pid), "task"))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return fmt.Errorf("iolimit: IO priority of process %d: %w", pid, err)
		}
		fresh := 0
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil || done[tid] {
				continue
			}
			if _, _, errno := unix.Syscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, uintptr(tid), uintptr(value)); errno != 0 && errno != unix.ESRCH {
				return fmt.Errorf("iolimit: ioprio_set(thread %d of process %d, %s): %w", tid, pid, class, errno)
			}
			done[tid] = true
			fresh++
		}
		if fresh == 0 {
			return nil
		}
	}
	return nil
}

// IOPriority reads a task's IO priority class and level.
func IOPriority(tid int) (IOPriorityClass, int, error) {
	v, _, errno := unix.Syscall(unix.SYS_IOPRIO_GET, ioprioWhoProcess, uintptr(tid), 0)
	if errno != 0 {
		return 0, 0, fmt.Errorf("iolimit: ioprio_get(%d): %w", tid, errno)
	}
	return IOPriorityClass(v >> 13), int(v & 0x1fff), nil
}
