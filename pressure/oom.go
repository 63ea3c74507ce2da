package pressure

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/internal/byteconv"
)

// OOM score adjustment bounds (/proc/PID/oom_score_adj).
const (
	MinOOMScoreAdj = -1000
	MaxOOMScoreAdj = 1000
)

func oomPath(procRoot string, pid int) string {
	if procRoot == "" {
		procRoot = "/proc"
	}
	return filepath.Join(procRoot, strconv.Itoa(pid), "oom_score_adj")
}

// processGone reports an error that means the process exited meanwhile.
func processGone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH)
}

func readOOMScoreAdj(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	v, err := strconv.Atoi(string(bytes.TrimSpace(b)))
	if err != nil {
		return 0, fmt.Errorf("parse %s: value %q: %w", path, bytes.TrimSpace(b), err)
	}
	return v, nil
}

func writeOOMScoreAdj(path string, v int) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(strconv.Itoa(v))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// SetOOMScoreAdj sets oom_score_adj to v for every process of cg, through
// the procfs mounted at procRoot ("" means /proc). Processes that exit
// meanwhile are skipped; processes forked later inherit the value from
// their parent. If one write fails, the processes already changed get their
// old value back, so the cgroup is never left half-adjusted. Lowering the
// value below the process's current one needs CAP_SYS_RESOURCE; without it
// the kernel answers EACCES and the error says so.
func SetOOMScoreAdj(cg *cgroup.Cgroup, v int, procRoot string) error {
	if v < MinOOMScoreAdj || v > MaxOOMScoreAdj {
		return fmt.Errorf("pressure: oom_score_adj %d for cgroup %s outside [%d, %d]", v, cg.Path(), MinOOMScoreAdj, MaxOOMScoreAdj)
	}
	pids, err := cg.Procs()
	if err != nil {
		return fmt.Errorf("pressure: set oom_score_adj %d: %w", v, err)
	}
	type done struct {
		path string
		old  int
	}
	var changed []done
	for _, pid := range pids {
		path := oomPath(procRoot, pid)
		old, err := readOOMScoreAdj(path)
		if err == nil {
			err = writeOOMScoreAdj(path, v)
		}
		if err == nil {
			changed = append(changed, done{path, old})
			continue
		}
		if processGone(err) {
			continue
		}
		hint := ""
		if errors.Is(err, fs.ErrPermission) {
			hint = " (lowering oom_score_adj needs CAP_SYS_RESOURCE)"
		}
		err = fmt.Errorf("pressure: cgroup %s: set oom_score_adj %d on pid %d: %w%s", cg.Path(), v, pid, err, hint)
		var rerrs []error
		for i := len(changed) - 1; i >= 0; i-- {
			if rerr := writeOOMScoreAdj(changed[i].path, changed[i].old); rerr != nil && !processGone(rerr) {
				rerrs = append(rerrs, fmt.Errorf("roll back %s to %d: %w", changed[i].path, changed[i].old, rerr))
			}
		}
		return errors.Join(append([]error{err}, rerrs...)...)
	}
	return nil
}

// ProcessOOMScoreAdj reads one process's oom_score_adj; a process that
// exited gives an error for which ProcessGone is true. It is read with
// open, read and close alone (os.ReadFile adds an fstat, a second read and
// the poller's registration): drift repair reads it for every process of
// every member.
func ProcessOOMScoreAdj(procRoot string, pid int) (int, error) {
	path := oomPath(procRoot, pid)
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	for err == syscall.EINTR {
		fd, err = syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	}
	if err != nil {
		return 0, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	var buf [16]byte
	n, err := syscall.Read(fd, buf[:])
	syscall.Close(fd)
	if err != nil {
		return 0, &fs.PathError{Op: "read", Path: path, Err: err}
	}
	b := bytes.TrimSpace(buf[:max(n, 0)])
	neg := len(b) > 0 && b[0] == '-'
	digits := b
	if neg {
		digits = b[1:]
	}
	v, ok := byteconv.ParseUint(digits)
	if !ok || v > -MinOOMScoreAdj {
		return 0, fmt.Errorf("parse %s: value %q: want an integer in [%d, %d]", path, b, MinOOMScoreAdj, MaxOOMScoreAdj)
	}
	if neg {
		return -int(v), nil
	}
	return int(v), nil
}

// ProcessGone reports an error that means the process exited meanwhile.
func ProcessGone(err error) bool { return processGone(err) }

// OOMScoreAdj reads oom_score_adj of every process of cg, by pid. Processes
// that exit meanwhile are left out.
func OOMScoreAdj(cg *cgroup.Cgroup, procRoot string) (map[int]int, error) {
	pids, err := cg.Procs()
	if err != nil {
		return nil, fmt.Errorf("pressure: read oom_score_adj: %w", err)
	}
	out := make(map[int]int, len(pids))
	for _, pid := range pids {
		v, err := readOOMScoreAdj(oomPath(procRoot, pid))
		if err != nil {
			if processGone(err) {
				continue
			}
			return nil, fmt.Errorf("pressure: cgroup %s: %w", cg.Path(), err)
		}
		out[pid] = v
	}
	return out, nil
}

// SetOOMGroup makes the OOM killer treat cg as one unit (cgroup v2
// memory.oom.group): on an OOM it kills every process of the cgroup rather
// than one. cgroup v1 has no equivalent; the error wraps
// cgroup.ErrNotSupported.
func SetOOMGroup(cg *cgroup.Cgroup, on bool) error {
	if err := cg.SetOOMGroup(on); err != nil {
		return fmt.Errorf("pressure: cgroup %s: set OOM group %v: %w", cg.Path(), on, err)
	}
	return nil
}
