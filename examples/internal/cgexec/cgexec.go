package cgexec

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/strata-nri/strata/cgroup"
)

// Main runs an example command: run gets the arguments after the program
// name and standard output. An error is printed as "name: error" on
// standard error, and the program exits 1.
func Main(name string, run func(args []string, out io.Writer) error) {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

// MaxQuantity bounds Quantity: 1 PiB, beyond any byte count or rate an
// example is given.
const MaxQuantity = 1 << 50

// Quantity parses s, the value of flag, as a non-negative Kubernetes
// quantity ("64Mi", "1Gi") of at most MaxQuantity.
func Quantity(flag, s string) (int64, error) {
	q, err := resource.ParseQuantity(s)
	if err != nil || q.Sign() < 0 || q.Value() > MaxQuantity {
		return 0, fmt.Errorf("%s %q: want a non-negative quantity such as 64Mi or 1Gi", flag, s)
	}
	return q.Value(), nil
}

// Argv is the command to run, the arguments left after fs's flags (after
// "--"); it is an error when there is none.
func Argv(fs *flag.FlagSet) ([]string, error) {
	if fs.NArg() == 0 {
		return nil, errors.New("name a command to run after --")
	}
	return fs.Args(), nil
}

// NewCgroup creates the example's cgroup strata-example/<name>-<pid> in the
// host's hierarchy, which it also returns. The caller removes the cgroup
// (Cgroup.Remove) when done.
func NewCgroup(name string) (*cgroup.Hierarchy, *cgroup.Cgroup, error) {
	h, err := cgroup.Detect(cgroup.Options{})
	if err != nil {
		return nil, nil, err
	}
	cg, err := h.Create(fmt.Sprintf("strata-example/%s-%d", name, os.Getpid()))
	if err != nil {
		return nil, nil, err
	}
	return h, cg, nil
}

// StartCommand starts argv (argv[0] looked up in PATH) inside cg, its
// standard input and error ours and its standard output out, as Start does.
func StartCommand(cg *cgroup.Cgroup, argv []string, out io.Writer) (*exec.Cmd, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, out, os.Stderr
	if err := Start(cg, cmd); err != nil {
		return nil, err
	}
	return cmd, nil
}

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

// ArgError is a bad command line and what its error must say.
type ArgError struct {
	Args []string
	Want string // a part of the error message
}

// CheckArgErrors fails t for each case that f accepts, or refuses with an
// error that does not contain the case's Want.
func CheckArgErrors(t testing.TB, f func(args []string) error, cases []ArgError) {
	t.Helper()
	for _, c := range cases {
		if err := f(c.Args); err == nil || !strings.Contains(err.Error(), c.Want) {
			t.Errorf("%v: error %v, want one saying %q", c.Args, err, c.Want)
		}
	}
}
