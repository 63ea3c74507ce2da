package cgroup

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// cgroupFileName matches a cgroup interface file name inside a string:
// controller prefix, a dot, a knob. "io." is limited to the io
// controller's knobs, so that "io.containerd…" plugin ids do not match.
var cgroupFileName = regexp.MustCompile(`(^|[^A-Za-z0-9_.])(` +
	`(cgroup\.(procs|threads|controllers|subtree_control|events|type|freeze|kill|max\.[a-z]+|stat|pressure|clone_children|sane_behavior))|` +
	`((cpu|cpuacct|cpuset|memory|blkio|pids|hugetlb|rdma|misc|net_cls|net_prio|freezer|devices)\.[a-z][a-z0-9_]*)|` +
	`(io\.(max|weight|stat|pressure|cost\.[a-z]+|latency|bfq\.[a-z_]+|prio\.[a-z]+)))`)

// notFiles are names the pattern matches that are no cgroup file: the
// kubelet's eviction signal "memory.available" (a kubelet setting the
// Kubernetes test harness writes).
var notFiles = map[string]bool{"memory.available": true}

// TestNoCgroupFileNamesOutsideCgroup scans every non-test Go file of the
// module outside package cgroup for string literals that spell a cgroup
// file name: only this package knows them (it has an accessor per knob,
// and the unified-map keys as constants). Only names that are no cgroup
// file (notFiles) are let through.
func TestNoCgroupFileNamesOutsideCgroup(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	here, _ := filepath.Abs(".")
	files := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch {
			case path == here:
				return filepath.SkipDir
			case path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "vendor"):
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		files++
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			return nil
		}
		tags := map[*ast.BasicLit]bool{}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.Field:
				if n.Tag != nil {
					tags[n.Tag] = true // struct tags name JSON fields, not files
				}
			case *ast.BasicLit:
				if n.Kind == token.STRING && !tags[n] {
					if m := cgroupFileName.FindStringSubmatch(n.Value); m != nil && !notFiles[m[2]] {
						rel, _ := filepath.Rel(root, path)
						t.Errorf("%s:%d: string literal spells cgroup file %q; add an accessor or constant to package cgroup and call it",
							rel, fset.Position(n.Pos()).Line, m[2])
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Fatalf("scanned only %d Go files under %s: the walk is broken", files, root)
	}
}

// The pattern must catch what it is meant to, and only that.
func TestCgroupFileNamePattern(t *testing.T) {
	for _, s := range []string{`"cpu.shares"`, `"memory.high"`, `"cpuset.cpus"`, `"io.max"`, `"blkio.throttle.read_bps_device"`,
		`"cgroup.procs"`, `"%s/cpu.cfs_quota_us"`, `"pids.max"`, `"io.weight"`} {
		if !cgroupFileName.MatchString(s) {
			t.Errorf("%s not matched", s)
		}
	}
	for _, s := range []string{`"io.containerd.runc.v2"`, `"strata.io/pool"`, `"cpuset"`, `"memory"`, `"profile.memory."`, `"cpu"`} {
		if cgroupFileName.MatchString(s) {
			t.Errorf("%s matched", s)
		}
	}
}
