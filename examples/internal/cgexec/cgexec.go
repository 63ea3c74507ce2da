// Package cgexec starts a command inside a cgroup, so that its very first
// instruction already runs there: the examples' way of doing what a
// container runtime does between fork and exec.
package cgexec

import (
	"fmt"
	"os"
	"os/exec"

	"github.com/strata-nri/strata/cgroup"
)

// Start starts cmd held at a gate: a shell that waits on a pipe and then
// execs the command in its own place (same pid). The pid is moved into cg
// while it waits, and the gate opens only then. (Go's
// SysProcAttr.UseCgroupFD does this in the kernel, but only on cgroup v2.)
func Start(cg *cgroup.Cgroup, cmd *exec.Cmd) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	defer w.Close()
	cmd.Args = append([]string{"/bin/sh", "-c", `read -r _ <&3 && exec "$0" "$@"`, cmd.Path}, cmd.Args[1:]...)
	cmd.Path = "/bin/sh"
	cmd.ExtraFiles = append(cmd.ExtraFiles, r)
	if err := cmd.Start(); err != nil {
		return err
	}
	if err := cg.AddProc(cmd.Process.Pid); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return fmt.Errorf("move pid %d into %s: %w", cmd.Process.Pid, cg.Path(), err)
	}
	_, err = w.Write([]byte("go\n"))
	return err
}
