package vm

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// TestPackage is a Go package of the module whose tests run in the guest.
type TestPackage struct {
	ImportPath string
	Dir        string // its source directory on the host
	Rel        string // Dir relative to the module root, e.g. "cgroup"
}

// kernelTestFunc finds kernel-tier tests in a test file.
var kernelTestFunc = regexp.MustCompile(`(?m)^func TestKernel\w*\(`)

// KernelTestPackages lists the packages matching patterns (e.g. "./...")
// in the module at root that declare at least one TestKernel… test, so a
// package that adds kernel tests runs in the guest without anyone listing
// it.
func KernelTestPackages(ctx context.Context, root string, patterns ...string) ([]TestPackage, error) {
	if len(patterns) == 0 {
		patterns = []string{"./..."}
	}
	args := append([]string{"list", "-f", `{{.ImportPath}}{{"\t"}}{{.Dir}}{{"\t"}}{{join .TestGoFiles " "}} {{join .XTestGoFiles " "}}`}, patterns...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("vm: go list %v in %s: %w\n%s", patterns, root, err, stderr.String())
	}
	var pkgs []TestPackage
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), "\t", 3)
		if len(f) != 3 {
			continue
		}
		has := false
		for _, name := range strings.Fields(f[2]) {
			b, err := os.ReadFile(filepath.Join(f[1], name))
			if err != nil {
				return nil, fmt.Errorf("vm: %w", err)
			}
			if kernelTestFunc.Match(b) {
				has = true
				break
			}
		}
		if has {
			rel, _ := filepath.Rel(root, f[1])
			pkgs = append(pkgs, TestPackage{ImportPath: f[0], Dir: f[1], Rel: rel})
		}
	}
	return pkgs, sc.Err()
}

// ModuleRoot is the directory of the go.mod above dir.
func ModuleRoot(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if d == filepath.Dir(d) {
			return "", fmt.Errorf("vm: no go.mod above %s", dir)
		}
	}
}

// BuildTestBinary compiles pkg's tests into a static binary (CGO_ENABLED=0)
// at out, which the guest can run without any shared library.
func BuildTestBinary(ctx context.Context, root string, pkg TestPackage, out string) error {
	cmd := exec.CommandContext(ctx, "nice", "-n", "15", "go", "test", "-c", "-o", out, "./"+pkg.Rel)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("vm: go test -c %s: %w\n%s", pkg.ImportPath, err, b)
	}
	return nil
}

// BuildBinary compiles a main package (e.g. "./nri-plugin/cmd/strata")
// statically to out.
func BuildBinary(ctx context.Context, root, pkg, out string) error {
	cmd := exec.CommandContext(ctx, "nice", "-n", "15", "go", "build", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("vm: go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}

// ListTests runs a test binary with -test.list on the host: the names of
// its top-level tests matching run, which the guest must report on. Only
// the names are listed; no test runs.
func ListTests(ctx context.Context, binary, dir, run string) ([]string, error) {
	cmd := exec.CommandContext(ctx, binary, "-test.list", run)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("vm: %s -test.list %s: %w", binary, run, err)
	}
	var tests []string
	for _, l := range strings.Fields(string(out)) {
		if strings.HasPrefix(l, "Test") {
			tests = append(tests, l)
		}
	}
	return tests, nil
}
