package vm

import (
	"context"
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/strata-nri/strata/internal/buildcache"
)

// DefaultKernelPackage is the Debian meta package whose current kernel the
// guest boots: the cloud flavour is small (27 MB) and still carries, as
// modules, everything the tests load (loop, brd, bfq, sch_htb, cls_bpf,
// veth, overlay).
const DefaultKernelPackage = "linux-image-cloud-amd64"

// KernelEnv names a kernel package to boot instead of the meta package's
// current one, e.g. linux-image-6.1.0-57-cloud-amd64.
const KernelEnv = "STRATA_VM_KERNEL"

// DefaultCacheDir is $STRATA_VM_CACHE or /var/cache/strata-vm.
func DefaultCacheDir() string {
	if d := os.Getenv("STRATA_VM_CACHE"); d != "" {
		return d
	}
	return "/var/cache/strata-vm"
}

// Kernel is an unpacked Debian linux-image package.
type Kernel struct {
	Package string // e.g. linux-image-6.1.0-57-cloud-amd64
	Release string // uname -r, e.g. 6.1.0-57-cloud-amd64
	Image   string // path of vmlinuz
	Root    string // the unpacked tree (boot/, lib/modules/<release>/)
}

// ModulesDir is lib/modules/<release> in the unpacked tree.
func (k *Kernel) ModulesDir() string { return filepath.Join(k.Root, "lib", "modules", k.Release) }

// FetchKernel returns the kernel package pkg (default $STRATA_VM_KERNEL,
// else the current dependency of DefaultKernelPackage) unpacked under
// cacheDir/kernel/<pkg>, downloading it with `apt-get download` and
// unpacking it with `dpkg-deb -x` (it is never installed) the first time.
func FetchKernel(ctx context.Context, cacheDir, pkg string, logf func(string, ...any)) (*Kernel, error) {
	if cacheDir == "" {
		cacheDir = DefaultCacheDir()
	}
	if pkg == "" {
		pkg = os.Getenv(KernelEnv)
	}
	base := filepath.Join(cacheDir, "kernel")
	if err := os.MkdirAll(base, 0o755); err != nil {
		return nil, fmt.Errorf("vm: kernel cache: %w", err)
	}
	unlock, err := buildcache.Lock(filepath.Join(base, ".lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()
	if pkg == "" {
		pkg, err = resolveKernelPackage(ctx, DefaultKernelPackage)
		if err != nil {
			// Offline, or no apt lists: boot the newest kernel already unpacked.
			if cached := newestCached(base); cached != "" {
				logf2(logf, "%v; using the cached %s", err, cached)
				pkg = cached
			} else {
				return nil, err
			}
		}
	}
	dir := filepath.Join(base, pkg)
	if err := downloadKernel(ctx, pkg, dir, logf); err != nil {
		return nil, err
	}
	images, _ := filepath.Glob(filepath.Join(dir, "boot", "vmlinuz-*"))
	if len(images) != 1 {
		return nil, fmt.Errorf("vm: %s: want one boot/vmlinuz-*, found %v", dir, images)
	}
	release := strings.TrimPrefix(filepath.Base(images[0]), "vmlinuz-")
	return &Kernel{Package: pkg, Release: release, Image: images[0], Root: dir}, nil
}

// resolveKernelPackage reads which linux-image-<abi> package meta depends on.
func resolveKernelPackage(ctx context.Context, meta string) (string, error) {
	out, err := exec.CommandContext(ctx, "apt-cache", "depends", "--important", meta).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("vm: apt-cache depends %s: %w: %s", meta, err, strings.TrimSpace(string(out)))
	}
	for _, line := range strings.Split(string(out), "\n") {
		if dep, ok := strings.CutPrefix(strings.TrimSpace(line), "Depends: "); ok && strings.HasPrefix(dep, "linux-image-") {
			return strings.TrimSpace(dep), nil
		}
	}
	return "", fmt.Errorf("vm: apt-cache depends %s names no linux-image package (run apt-get update?):\n%s", meta, out)
}

func newestCached(base string) string {
	dirs, _ := filepath.Glob(filepath.Join(base, "linux-image-*", ".complete"))
	sort.Strings(dirs)
	if len(dirs) == 0 {
		return ""
	}
	return filepath.Base(filepath.Dir(dirs[len(dirs)-1]))
}

func downloadKernel(ctx context.Context, pkg, dir string, logf func(string, ...any)) error {
	_, err := buildcache.Populate(dir, func(tmp string) (string, error) {
		logf2(logf, "downloading and unpacking %s into %s", pkg, dir)
		cmd := exec.CommandContext(ctx, "apt-get", "download", pkg)
		cmd.Dir = tmp
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("vm: apt-get download %s: %w\n%s", pkg, err, out)
		}
		debs, _ := filepath.Glob(filepath.Join(tmp, pkg+"_*.deb"))
		if len(debs) != 1 {
			return "", fmt.Errorf("vm: apt-get download %s left %v in %s", pkg, debs, tmp)
		}
		if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", debs[0], tmp).CombinedOutput(); err != nil {
			return "", fmt.Errorf("vm: dpkg-deb -x %s: %w\n%s", debs[0], err, out)
		}
		if err := os.Remove(debs[0]); err != nil {
			return "", fmt.Errorf("vm: %w", err)
		}
		return filepath.Base(debs[0]), nil
	})
	return err
}

// GuestModules are the modules the guest loads at boot, with parameters:
// virtio-blk for the disk-backed scratch directory (page cache on tmpfs is
// shmem, which reclaim cannot drop, and io limits need a block device) and
// the disk of Options.DiskFiles, virtio-net for Options.Network, loop devices for io.max and iolimit, bfq for io weights, qdiscs and
// classifiers for netqos, veth for network namespaces, overlay for
// containerd's snapshotter.
var GuestModules = []Module{
	{Path: "virtio_pci"},
	{Path: "virtio_blk"},
	{Path: "virtio_net"}, // Options.Network
	{Path: "loop", Params: "max_loop=8"},
	{Path: "bfq"},
	{Path: "sch_htb"},
	{Path: "sch_tbf"},
	{Path: "sch_fq"}, // netqos: earliest departure time pacing
	{Path: "sch_ingress"},
	{Path: "cls_bpf"},
	{Path: "cls_u32"},    // netqos: a pod's egress redirect
	{Path: "act_mirred"}, // to its ifb
	{Path: "ifb"},
	{Path: "veth"},
	{Path: "overlay"},
}

// ResolveModules maps module names to their files in k, adding the
// modules they depend on before them. A package's tree has no modules.dep
// (depmod writes it at install time), so dependencies are read from each
// module's own .modinfo section. Paths in the result are relative to
// k.ModulesDir(); modules built into the kernel are left out.
func (k *Kernel) ResolveModules(want []Module) ([]Module, error) {
	byName := map[string]string{} // name -> file relative to ModulesDir
	err := filepath.WalkDir(filepath.Join(k.ModulesDir(), "kernel"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".ko") {
			rel, _ := filepath.Rel(k.ModulesDir(), p)
			byName[moduleName(p)] = rel
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("vm: modules of %s: %w", k.Release, err)
	}
	builtin, _ := os.ReadFile(filepath.Join(k.ModulesDir(), "modules.builtin"))
	isBuiltin := map[string]bool{}
	for _, l := range strings.Fields(string(builtin)) {
		isBuiltin[moduleName(l)] = true
	}
	var out []Module
	seen := map[string]bool{}
	var visit func(name, params string) error
	visit = func(name, params string) error {
		if seen[name] || isBuiltin[name] {
			return nil
		}
		seen[name] = true
		file, ok := byName[name]
		if !ok {
			return fmt.Errorf("vm: kernel %s has no module %q", k.Release, name)
		}
		deps, err := moduleDepends(filepath.Join(k.ModulesDir(), file))
		if err != nil {
			return err
		}
		for _, d := range deps {
			if err := visit(d, ""); err != nil {
				return fmt.Errorf("%w (needed by %s)", err, name)
			}
		}
		out = append(out, Module{Path: file, Params: params})
		return nil
	}
	for _, m := range want {
		if err := visit(strings.ReplaceAll(m.Path, "-", "_"), m.Params); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// moduleDepends reads "depends=" from a module's .modinfo section.
func moduleDepends(file string) ([]string, error) {
	f, err := elf.Open(file)
	if err != nil {
		return nil, fmt.Errorf("vm: module %s: %w", file, err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("vm: module %s has no .modinfo section", file)
	}
	b, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("vm: module %s: %w", file, err)
	}
	for _, kv := range strings.Split(string(b), "\x00") {
		if v, ok := strings.CutPrefix(kv, "depends="); ok {
			var deps []string
			for _, d := range strings.Split(v, ",") {
				if d != "" {
					deps = append(deps, strings.ReplaceAll(d, "-", "_"))
				}
			}
			return deps, nil
		}
	}
	return nil, nil
}

func moduleName(file string) string {
	n := filepath.Base(file)
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		n = strings.TrimSuffix(n, ext)
	}
	return strings.ReplaceAll(strings.TrimSuffix(n, ".ko"), "-", "_")
}

func logf2(f func(string, ...any), format string, args ...any) {
	if f != nil {
		f(format, args...)
	}
}
