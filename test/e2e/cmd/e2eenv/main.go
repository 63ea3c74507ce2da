// Command e2eenv starts a containerd with NRI (and optionally NRI plugins)
// the way Strata's end-to-end tests do, and leaves it running, for demos and
// manual experiments; `down` removes it again. It needs root.
//
//	go run ./test/e2e/cmd/e2eenv up [-containerd 2.4.2] [-plugin './nri-plugin/cmd/strata -v'] ...
//	eval "$(go run ./test/e2e/cmd/e2eenv env)"   # CONTAINERD_ADDRESS, STRATA_NRI_SOCKET, ...
//	go run ./test/e2e/cmd/e2eenv run -name web -cpu-shares 512 -- sleep 3600
//	go run ./test/e2e/cmd/e2eenv ps
//	go run ./test/e2e/cmd/e2eenv down          # or: down -all
//
// A -plugin value is a binary path, or a package directory of this module
// ("./...") that is built first, followed by its arguments.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/strata-nri/strata/test/e2e/cri"
	"github.com/strata-nri/strata/test/e2e/harness"
)

const usage = `usage: e2eenv <command> [flags]

commands:
  up      start containerd with NRI (and plugins) and leave it running
  env     print the running environment as shell variables
  run     create and start a pod with one busybox container
  ps      list pods and containers with their cgroups
  down    stop and remove the environment (-all: every one under -base)

run "e2eenv <command> -h" for a command's flags
`

// pointerName is the file in the base directory that names the current
// environment's run directory (not matched by harness.List's glob).
const pointerName = "strata-e2e.current"

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ", ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "up":
		err = up(args)
	case "env":
		err = printEnv(args)
	case "run":
		err = run(args)
	case "ps":
		err = ps(args)
	case "down":
		err = down(args)
	case "-h", "-help", "--help", "help":
		fmt.Print(usage)
		return
	default:
		err = fmt.Errorf("unknown command %q (want up, env, run, ps or down)", cmd)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2eenv:", err)
		os.Exit(1)
	}
}

func baseFlag(fs *flag.FlagSet) *string {
	return fs.String("base", "/tmp", "directory holding run directories")
}

func up(args []string) error {
	fs := flag.NewFlagSet("up", flag.ExitOnError)
	base := baseFlag(fs)
	version := fs.String("containerd", "", "containerd version (default $STRATA_E2E_CONTAINERD or "+harness.DefaultContainerdVersion+")")
	cache := fs.String("cache", "", "build cache (default $STRATA_E2E_CACHE or /var/cache/strata-e2e)")
	var plugins listFlag
	fs.Var(&plugins, "plugin", "NRI plugin: 'PATH-or-./pkg [args...]' (repeatable)")
	_ = fs.Parse(args)

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	if cur, err := currentDir(*base); err == nil {
		return fmt.Errorf("an environment is already up in %s: run e2eenv down first", cur)
	}
	opts := harness.Options{
		ContainerdVersion: *version, CacheDir: *cache, BaseDir: *base, Detach: true,
		Logf: func(f string, a ...any) { fmt.Fprintf(os.Stderr, "e2eenv: "+f+"\n", a...) },
	}
	for _, spec := range plugins {
		fields := strings.Fields(spec)
		if len(fields) == 0 {
			return fmt.Errorf("-plugin %q is empty", spec)
		}
		path := fields[0]
		if strings.HasPrefix(path, "./") {
			if fi, err := os.Stat(path); err == nil && fi.IsDir() {
				dir := filepath.Join(cacheDir(*cache), "plugins")
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return err
				}
				bin, err := harness.GoBuild(ctx, path, dir)
				if err != nil {
					return err
				}
				path = bin
			}
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			return err
		}
		opts.Plugins = append(opts.Plugins, harness.Plugin{Path: abs, Args: fields[1:]})
	}
	env, err := harness.New(ctx, opts)
	if err != nil {
		return err
	}
	st := env.State()
	if err := os.WriteFile(filepath.Join(*base, pointerName), []byte(st.Dir+"\n"), 0o644); err != nil {
		_ = env.Close()
		return err
	}
	return writeEnv(os.Stdout, st)
}

func cacheDir(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	return harness.DefaultCacheDir()
}

func currentDir(base string) (string, error) {
	b, err := os.ReadFile(filepath.Join(base, pointerName))
	if err != nil {
		return "", fmt.Errorf("no environment is up under %s (start one with e2eenv up)", base)
	}
	dir := strings.TrimSpace(string(b))
	if _, err := os.Stat(filepath.Join(dir, "state.json")); err != nil {
		_ = os.Remove(filepath.Join(base, pointerName))
		return "", fmt.Errorf("the environment in %s is gone", dir)
	}
	return dir, nil
}

func attachCurrent(base string) (*harness.Env, error) {
	dir, err := currentDir(base)
	if err != nil {
		return nil, err
	}
	return harness.Attach(dir)
}

func writeEnv(w *os.File, st harness.State) error {
	vars := [][2]string{
		{"STRATA_E2E_DIR", st.Dir},
		{"CONTAINERD_ADDRESS", st.Socket},
		{"CONTAINER_RUNTIME_ENDPOINT", "unix://" + st.Socket},
		{"STRATA_NRI_SOCKET", st.NRISocket},
		{"STRATA_E2E_CGROUP_ROOT", st.CgroupRoot},
		{"STRATA_E2E_IMAGE", st.Image},
		{"STRATA_E2E_CTR", st.Binaries.Ctr},
		{"STRATA_E2E_CONTAINERD_LOG", st.ContainerdLog},
	}
	for i, p := range st.PluginLogs {
		vars = append(vars, [2]string{fmt.Sprintf("STRATA_E2E_PLUGIN%d_LOG", i), p})
	}
	for _, v := range vars {
		if _, err := fmt.Fprintf(w, "export %s=%q\n", v[0], v[1]); err != nil {
			return err
		}
	}
	return nil
}

func printEnv(args []string) error {
	fs := flag.NewFlagSet("env", flag.ExitOnError)
	base := baseFlag(fs)
	_ = fs.Parse(args)
	env, err := attachCurrent(*base)
	if err != nil {
		return err
	}
	return writeEnv(os.Stdout, env.State())
}

func run(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	base := baseFlag(fs)
	name := fs.String("name", "", "pod name (required); the container is named after it")
	namespace := fs.String("namespace", "default", "pod namespace")
	shares := fs.Int64("cpu-shares", 0, "CPU shares")
	quota := fs.Int64("cpu-quota", 0, "CFS quota in µs (with -cpu-period)")
	period := fs.Int64("cpu-period", 0, "CFS period in µs")
	cpus := fs.String("cpuset", "", "CPUs to pin the container to, e.g. 0-1")
	mem := fs.Int64("memory", 0, "memory limit in bytes")
	var annotations, labels listFlag
	fs.Var(&annotations, "annotation", "pod and container annotation key=value (repeatable)")
	fs.Var(&labels, "label", "pod label key=value (repeatable)")
	_ = fs.Parse(args)
	if *name == "" {
		return errors.New("run: -name is required")
	}
	ann, err := keyValues("annotation", annotations)
	if err != nil {
		return err
	}
	lab, err := keyValues("label", labels)
	if err != nil {
		return err
	}
	env, err := attachCurrent(*base)
	if err != nil {
		return err
	}
	if env.CRI() == nil {
		return errors.New("run: containerd of the current environment does not answer")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ctr := cri.ContainerOptions{
		Annotations: ann, Command: fs.Args(),
		Resources: &runtimeapi.LinuxContainerResources{
			CpuShares: *shares, CpuQuota: *quota, CpuPeriod: *period, CpusetCpus: *cpus, MemoryLimitInBytes: *mem,
		},
	}
	if len(ctr.Command) == 0 {
		ctr.Command = nil // harness default: sleep
	}
	start := time.Now()
	w, err := env.RunContainer(ctx, cri.PodOptions{Name: *name, Namespace: *namespace, Labels: lab, Annotations: ann}, ctr)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "e2eenv: pod %s and container started in %s\n", w.Pod.ID, time.Since(start).Round(time.Millisecond))
	fmt.Println(w.ContainerID)
	return nil
}

func keyValues(what string, list []string) (map[string]string, error) {
	if len(list) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("-%s %q: want key=value", what, kv)
		}
		m[k] = v
	}
	return m, nil
}

func ps(args []string) error {
	fs := flag.NewFlagSet("ps", flag.ExitOnError)
	base := baseFlag(fs)
	_ = fs.Parse(args)
	env, err := attachCurrent(*base)
	if err != nil {
		return err
	}
	c := env.CRI()
	if c == nil {
		return errors.New("ps: containerd of the current environment does not answer")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pods, err := c.ListPods(ctx)
	if err != nil {
		return err
	}
	podName := map[string]string{}
	for _, p := range pods {
		podName[p.Id] = p.Metadata.Namespace + "/" + p.Metadata.Name
	}
	ctrs, err := c.ListContainers(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CONTAINER\tPOD\tNAME\tSTATE\tPID\tCGROUP")
	for _, ct := range ctrs {
		st, err := c.ContainerStatus(ctx, ct.Id)
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "%.13s\t%s\t%s\t%s\t%d\t%s\n", ct.Id, podName[ct.PodSandboxId], ct.Metadata.Name,
			strings.TrimPrefix(ct.State.String(), "CONTAINER_"), st.Pid, st.CgroupsPath)
	}
	return tw.Flush()
}

func down(args []string) error {
	fs := flag.NewFlagSet("down", flag.ExitOnError)
	base := baseFlag(fs)
	all := fs.Bool("all", false, "remove every environment under -base, not only the current one")
	_ = fs.Parse(args)
	var dirs []string
	if *all {
		var err error
		if dirs, err = harness.List(*base); err != nil {
			return err
		}
	} else {
		dir, err := currentDir(*base)
		if err != nil {
			return err
		}
		dirs = []string{dir}
	}
	var errs []error
	for _, dir := range dirs {
		env, err := harness.Attach(dir)
		if err == nil {
			err = env.Close()
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(os.Stderr, "e2eenv: removed %s\n", dir)
	}
	if cur, err := os.ReadFile(filepath.Join(*base, pointerName)); err == nil {
		if _, err := os.Stat(strings.TrimSpace(string(cur))); os.IsNotExist(err) {
			_ = os.Remove(filepath.Join(*base, pointerName))
		}
	}
	return errors.Join(errs...)
}
