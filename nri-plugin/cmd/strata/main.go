// Command strata is Strata's containerd NRI plugin. It only wires parts
// together: configuration, the NRI connection, the pool controller, the
// HTTP endpoints. See package nriplugin.
//
//	strata run    [flags]   connect to the runtime and manage pools
//	strata status [--addr]  print pools and members of a running plugin
//	strata config           print the default configuration
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	// The batch watermark schedule names a time zone; minimal hosts and
	// container images may have no zoneinfo.
	_ "time/tzdata"

	"sigs.k8s.io/yaml"

	"github.com/strata-nri/strata/isolation"
	nriplugin "github.com/strata-nri/strata/nri-plugin"
)

func main() {
	args := os.Args[1:]
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "run":
		err = run(args)
	case "status":
		err = status(args)
	case "config":
		err = printConfig()
	default:
		err = fmt.Errorf("unknown command %q (commands: run, status, config)", cmd)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "strata:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	socket := fs.String("socket-path", "", "runtime's NRI socket (default /var/run/nri/nri.sock)")
	name := fs.String("name", "", "plugin name (default strata, or from the pre-installed file name)")
	idx := fs.String("idx", "", "plugin index (default 50, or from the pre-installed file name)")
	config := fs.String("config", "", "pool configuration file (YAML); default: what the runtime passes, else the built-in default")
	listen := fs.String("listen", nriplugin.DefaultListen, `HTTP endpoints: "host:port" or "unix:/path"; "" disables`)
	evictor := fs.String("evictor", "dry-run", "how to evict: dry-run, cri, kubernetes")
	criEndpoint := fs.String("cri-endpoint", "/run/containerd/containerd.sock", "CRI socket for --evictor=cri")
	sysfs := fs.String("sysfs", "/sys", "sysfs root")
	procfs := fs.String("procfs", "/proc", "procfs root")
	logLevel := fs.String("log-level", "info", "debug, info, warn, error")
	_ = fs.Parse(args)

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", *logLevel)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	// A pre-installed plugin (/opt/nri/plugins/NN-name) learns its index
	// and name from its file name.
	if *name == "" && *idx == "" {
		if base := filepath.Base(os.Args[0]); len(base) > 3 && base[2] == '-' && isDigits(base[:2]) {
			*idx, *name = base[:2], base[3:]
		}
	}
	opts := nriplugin.Options{PluginName: *name, PluginIdx: *idx, SocketPath: *socket, SysfsRoot: *sysfs, ProcRoot: *procfs, Logger: logger}
	if *config != "" {
		cfg, err := isolation.LoadConfig(*config)
		if err != nil {
			return err
		}
		opts.Config = cfg
	}
	switch *evictor {
	case "dry-run":
	case "cri":
		opts.Evictor = nriplugin.CRIEvictor{Endpoint: *criEndpoint}
	case "kubernetes":
		opts.Evictor = nriplugin.KubernetesEvictor{}
	default:
		return fmt.Errorf("--evictor %q: want dry-run, cri or kubernetes", *evictor)
	}
	p, err := nriplugin.New(opts)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *listen != "" {
		l, err := nriplugin.Listen(*listen)
		if err != nil {
			return fmt.Errorf("--listen %s: %w", *listen, err)
		}
		logger.Info("serving /metrics, /healthz, /status", "listen", *listen)
		go func() {
			if err := p.Serve(ctx, l); err != nil {
				logger.Error("HTTP server stopped", "err", err)
			}
		}()
	}
	return p.Run(ctx)
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

func status(args []string) error {
	fs := flag.NewFlagSet("status", flag.ExitOnError)
	addr := fs.String("addr", nriplugin.DefaultListen, `plugin's HTTP address: "host:port" or "unix:/path"`)
	asJSON := fs.Bool("json", false, "print JSON")
	_ = fs.Parse(args)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := nriplugin.FetchStatus(ctx, *addr)
	if err != nil {
		return err
	}
	if *asJSON {
		b, err := yaml.Marshal(st)
		if err != nil {
			return err
		}
		b, err = yaml.YAMLToJSON(b)
		if err != nil {
			return err
		}
		fmt.Println(string(b))
		return nil
	}
	st.Print(os.Stdout)
	return nil
}

func printConfig() error {
	b, err := yaml.Marshal(isolation.DefaultConfig())
	if err != nil {
		return errors.New("marshal default configuration: " + err.Error())
	}
	_, err = os.Stdout.Write(b)
	return err
}
