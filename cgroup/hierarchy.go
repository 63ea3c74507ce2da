package cgroup

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/prometheus/procfs"
)

// Mode is the way cgroups are mounted on a host.
type Mode int

const (
	// Unknown is the zero Mode.
	Unknown Mode = iota
	// V1 is the legacy layout: one hierarchy per controller (or group of
	// co-mounted controllers), no cgroup2 mount.
	V1
	// Hybrid is V1 plus a cgroup2 mount (usually /sys/fs/cgroup/unified)
	// that carries no controllers but gives cgroup ids, PSI and BPF attach
	// points.
	Hybrid
	// V2 is the unified hierarchy: one tree, every controller in it.
	V2
)

func (m Mode) String() string {
	switch m {
	case V1:
		return "v1"
	case Hybrid:
		return "hybrid"
	case V2:
		return "v2"
	}
	return "unknown"
}

// Controller names, as the kernel spells them in cgroup v1 mount options and
// in cgroup v2's cgroup.controllers. Block IO is "blkio" in v1 and "io" in v2;
// callers use the v1 name and the layer maps it.
const (
	CPU     = "cpu"
	CPUAcct = "cpuacct"
	CPUSet  = "cpuset"
	Memory  = "memory"
	BlkIO   = "blkio"
	Pids    = "pids"
)

// v1Controllers are the controller names that may appear among a cgroup v1
// mount's super options; everything else there ("rw", "noprefix",
// "name=systemd", "release_agent=...") is not a controller.
var v1Controllers = map[string]bool{
	"cpu": true, "cpuacct": true, "cpuset": true, "memory": true, "devices": true,
	"freezer": true, "net_cls": true, "net_prio": true, "blkio": true,
	"perf_event": true, "hugetlb": true, "pids": true, "rdma": true, "misc": true,
}

// Options tells Detect where to look. Both fields are roots so that tests can
// point the layer at a fixture tree.
type Options struct {
	// ProcRoot is the procfs mount to read self/mountinfo from. Default
	// "/proc".
	ProcRoot string
	// RootPrefix is prepended to every mount point found in mountinfo, so a
	// fixture's mountinfo can name /sys/fs/cgroup/cpu while the files live
	// in a temporary directory. Default "".
	RootPrefix string
}

// Hierarchy is a host's cgroup mounts: where each controller lives and in
// which mode. It is immutable and safe for concurrent use.
type Hierarchy struct {
	mode        Mode
	controllers map[string]string // v1: controller -> mount dir
	unified     string            // cgroup2 mount dir ("" in pure v1)
	available   map[string]bool   // v2: controllers in the root's cgroup.controllers
}

// Detect reads ProcRoot/self/mountinfo and works out the mode and the mount
// point of every controller.
func Detect(opts Options) (*Hierarchy, error) {
	procRoot := opts.ProcRoot
	if procRoot == "" {
		procRoot = "/proc"
	}
	file := filepath.Join(procRoot, "self", "mountinfo")
	pfs, err := procfs.NewFS(procRoot)
	if err != nil {
		return nil, fmt.Errorf("cgroup: open procfs %s: %w", procRoot, err)
	}
	mounts, err := pfs.GetMounts()
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("cgroup: read %s: %w", file, err)
		}
		return nil, fmt.Errorf("cgroup: %s: %w: %v", file, ErrMalformedMountinfo, err)
	}
	h := &Hierarchy{controllers: map[string]string{}}
	for _, m := range mounts {
		dir := filepath.Join(opts.RootPrefix, m.MountPoint)
		switch m.FSType {
		case "cgroup2":
			if h.unified == "" {
				h.unified = dir
			}
		case "cgroup":
			// Super options list the controllers bound to this hierarchy,
			// e.g. "rw,cpu,cpuacct"; named hierarchies ("name=systemd")
			// carry none.
			for opt := range m.SuperOptions {
				if !v1Controllers[opt] {
					continue
				}
				if _, seen := h.controllers[opt]; !seen {
					h.controllers[opt] = dir
				}
			}
		}
	}
	switch {
	case len(h.controllers) > 0 && h.unified != "":
		h.mode = Hybrid
	case len(h.controllers) > 0:
		h.mode = V1
	case h.unified != "":
		h.mode = V2
	default:
		return nil, fmt.Errorf("cgroup: %s: %w: no cgroup or cgroup2 mount", file, ErrMalformedMountinfo)
	}
	if h.mode == V2 {
		if err := h.loadAvailable(); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// NewV1 builds a cgroup v1 hierarchy from controller mount points, for
// callers that know their layout (and for tests). A non-empty unified dir
// makes it Hybrid.
func NewV1(controllers map[string]string, unified string) *Hierarchy {
	h := &Hierarchy{mode: V1, controllers: map[string]string{}, unified: unified}
	for k, v := range controllers {
		h.controllers[k] = v
	}
	if unified != "" {
		h.mode = Hybrid
	}
	return h
}

// NewV2 builds a unified hierarchy mounted at root.
func NewV2(root string) (*Hierarchy, error) {
	h := &Hierarchy{mode: V2, unified: root}
	if err := h.loadAvailable(); err != nil {
		return nil, err
	}
	return h, nil
}

func (h *Hierarchy) loadAvailable() error {
	s, err := readString(h.unified, ControllersFile)
	if err != nil {
		return fmt.Errorf("cgroup: %w", err)
	}
	h.available = map[string]bool{}
	for _, c := range strings.Fields(s) {
		h.available[c] = true
	}
	return nil
}

// Mode reports how cgroups are mounted.
func (h *Hierarchy) Mode() Mode { return h.mode }

// UnifiedRoot is the cgroup2 mount point, "" in pure v1.
func (h *Hierarchy) UnifiedRoot() string { return h.unified }

// Controllers lists the controllers this hierarchy can act through, sorted.
func (h *Hierarchy) Controllers() []string {
	var out []string
	if h.mode == V2 {
		for c := range h.available {
			out = append(out, v1Name(c))
		}
	} else {
		for c := range h.controllers {
			out = append(out, c)
		}
	}
	sort.Strings(out)
	return out
}

// HasController reports whether controller (v1 spelling) is usable.
func (h *Hierarchy) HasController(controller string) bool {
	if h.mode == V2 {
		return h.available[v2Name(controller)]
	}
	_, ok := h.controllers[controller]
	return ok
}

func v2Name(controller string) string {
	switch controller {
	case BlkIO:
		return "io"
	case CPUAcct:
		return "cpu" // usage lives in cpu.stat
	}
	return controller
}

func v1Name(controller string) string {
	if controller == "io" {
		return BlkIO
	}
	return controller
}

// Open returns the cgroup named by a runtime's cgroups path, without
// touching the filesystem. Two styles are understood:
//
//   - cgroupfs: "/kubepods/burstable/pod<uid>/<id>" (relative paths are
//     taken from the hierarchy root);
//   - systemd: "kubepods-burstable-pod<uid>.slice:cri-containerd:<id>",
//     expanded as systemd does to
//     "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope".
//
// A path with a ".." element is rejected with ErrEscapesRoot.
func (h *Hierarchy) Open(cgroupsPath string) (*Cgroup, error) {
	rel, err := ResolvePath(cgroupsPath)
	if err != nil {
		return nil, err
	}
	return &Cgroup{h: h, path: rel}, nil
}

// ResolvePath turns a runtime's cgroups path into a clean path relative to
// the hierarchy root, beginning with "/". See Hierarchy.Open.
func ResolvePath(cgroupsPath string) (string, error) {
	if cgroupsPath == "" {
		return "", fmt.Errorf("%w: empty", ErrInvalidPath)
	}
	if isSystemdPath(cgroupsPath) {
		return expandSystemd(cgroupsPath)
	}
	for _, el := range strings.Split(cgroupsPath, "/") {
		if el == ".." {
			return "", fmt.Errorf("%w: %q", ErrEscapesRoot, cgroupsPath)
		}
	}
	return path.Clean("/" + cgroupsPath), nil
}

// isSystemdPath reports whether p looks like "slice:prefix:name". A
// cgroupfs path may legitimately contain ':' only in its last element, so the
// test is on the shape of the first element.
func isSystemdPath(p string) bool {
	parts := strings.Split(p, ":")
	return len(parts) == 3 && !strings.Contains(parts[0], "/") && (parts[0] == "" || strings.HasSuffix(parts[0], ".slice"))
}

func expandSystemd(p string) (string, error) {
	parts := strings.SplitN(p, ":", 3)
	slice, prefix, name := parts[0], parts[1], parts[2]
	if slice == "" {
		slice = "system.slice"
	}
	if strings.Contains(name, "/") || strings.Contains(prefix, "/") || name == "" {
		return "", fmt.Errorf("%w: systemd path %q: prefix and name must be non-empty unit name parts", ErrInvalidPath, p)
	}
	if strings.Contains(name, "..") || strings.Contains(prefix, "..") {
		return "", fmt.Errorf("%w: %q", ErrEscapesRoot, p)
	}
	dir, err := ExpandSlice(slice)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %v", ErrInvalidPath, p, err)
	}
	unit := name
	if !strings.HasSuffix(name, ".slice") {
		if prefix != "" {
			unit = prefix + "-" + name + ".scope"
		} else {
			unit = name + ".scope"
		}
	}
	return path.Join(dir, unit), nil
}

// ExpandSlice turns a systemd slice name into its path, the way systemd nests
// slices: "a-b-c.slice" lives at "/a.slice/a-b.slice/a-b-c.slice".
func ExpandSlice(slice string) (string, error) {
	const suffix = ".slice"
	if !strings.HasSuffix(slice, suffix) || len(slice) == len(suffix) {
		return "", fmt.Errorf("slice %q must end in %q", slice, suffix)
	}
	if strings.Contains(slice, "/") {
		return "", fmt.Errorf("slice %q must not contain '/'", slice)
	}
	if slice == "-.slice" {
		return "/", nil
	}
	base := strings.TrimSuffix(slice, suffix)
	if strings.HasPrefix(base, "-") || strings.HasSuffix(base, "-") || strings.Contains(base, "--") || strings.Contains(base, "..") {
		return "", fmt.Errorf("slice %q has an empty component", slice)
	}
	var b strings.Builder
	prefix := ""
	for _, comp := range strings.Split(base, "-") {
		b.WriteString("/")
		b.WriteString(prefix + comp + suffix)
		prefix += comp + "-"
	}
	return b.String(), nil
}

// Create makes the cgroup at relPath (cgroupfs style, relative to the root)
// in every controller hierarchy (and, on hybrid hosts, in the unified
// mount), creating missing parents. On cgroup v1 each
// new cpuset directory inherits its parent's cpus and mems, because the
// kernel leaves them empty and refuses tasks until they are set. On cgroup v2
// the available controllers are enabled in each ancestor's
// cgroup.subtree_control so the new cgroup has their files.
func (h *Hierarchy) Create(relPath string) (*Cgroup, error) {
	c, err := h.Open(relPath)
	if err != nil {
		return nil, err
	}
	if h.mode == V2 {
		return c, h.createV2(c.path)
	}
	for _, ctl := range sortedKeys(h.controllers) {
		if err := h.createV1(ctl, c.path); err != nil {
			return nil, err
		}
	}
	if h.mode == Hybrid {
		// As runc does on hybrid hosts: the cgroup also exists in the
		// unified mount, where its PSI files and BPF attach point live.
		dir := filepath.Join(h.unified, c.path)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("cgroup: create %s: %w", dir, err)
		}
	}
	return c, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// createV1 creates each missing level of rel under one controller's mount.
// Several controllers may share one mount (co-mounted cpu,cpuacct); a level
// that exists is left alone.
func (h *Hierarchy) createV1(ctl, rel string) error {
	root := h.controllers[ctl]
	dir := root
	for _, el := range strings.Split(strings.Trim(rel, "/"), "/") {
		if el == "" {
			continue
		}
		parent := dir
		dir = filepath.Join(dir, el)
		if err := os.Mkdir(dir, 0o755); err != nil {
			if os.IsExist(err) {
				continue
			}
			return fmt.Errorf("cgroup: create %s: %w", dir, err)
		}
		if ctl == CPUSet {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				v, err := readString(dir, f)
				if err == nil && v != "" {
					continue
				}
				pv, err := readString(parent, f)
				if err != nil {
					return fmt.Errorf("cgroup: init %s: %w", filepath.Join(dir, f), err)
				}
				if err := writeString(dir, f, pv); err != nil {
					return fmt.Errorf("cgroup: init new cpuset cgroup: %w", err)
				}
			}
		}
	}
	return nil
}

func (h *Hierarchy) createV2(rel string) error {
	dir := h.unified
	var enable []string
	for _, c := range []string{"cpu", "cpuset", "memory", "io", "pids"} {
		if h.available[c] {
			enable = append(enable, "+"+c)
		}
	}
	for _, el := range strings.Split(strings.Trim(rel, "/"), "/") {
		if el == "" {
			continue
		}
		// The parent must delegate controllers before the child exists
		// for the child to get their interface files.
		for _, e := range enable {
			cur, err := readString(dir, SubtreeControlFile)
			if err != nil {
				return fmt.Errorf("cgroup: %w", err)
			}
			if containsField(cur, e[1:]) {
				continue
			}
			if err := writeString(dir, SubtreeControlFile, e); err != nil {
				return fmt.Errorf("cgroup: enable controller: %w", err)
			}
		}
		dir = filepath.Join(dir, el)
		if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
			return fmt.Errorf("cgroup: create %s: %w", dir, err)
		}
	}
	return nil
}

func containsField(s, f string) bool {
	for _, x := range strings.Fields(s) {
		if x == f {
			return true
		}
	}
	return false
}
