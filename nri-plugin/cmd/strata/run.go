package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/strata-nri/strata/isolation"
	nriplugin "github.com/strata-nri/strata/nri-plugin"
)

func runCmd(args []string, _, stderr io.Writer) error {
	fs := newFlags("run", stderr)
	socket := fs.String("socket-path", "", "runtime's NRI socket (default /var/run/nri/nri.sock)")
	name := fs.String("name", "", "plugin name (default strata; a pre-installed plugin gets it from the runtime)")
	idx := fs.String("idx", "", "plugin index (default 50; a pre-installed plugin gets it from the runtime)")
	config := fs.String("config", "", "pool configuration file (YAML); default: what the runtime passes, else the built-in default")
	listen := fs.String("listen", nriplugin.DefaultListen, `HTTP endpoints: "host:port" or "unix:/path"; "" disables`)
	evictor := fs.String("evictor", "dry-run", "how to evict: dry-run, cri, kubernetes")
	criEndpoint := fs.String("cri-endpoint", "/run/containerd/containerd.sock", "CRI socket for --evictor=cri")
	kubeAPI := fs.String("kube-apiserver", "", "Kubernetes API server URL (default: in-cluster, from KUBERNETES_SERVICE_HOST/PORT)")
	kubeToken := fs.String("kube-token-file", "", "service-account token file (default: the in-cluster one)")
	kubeCA := fs.String("kube-ca-file", "", "API server CA file (default: the in-cluster one)")
	nodeName := fs.String("node-name", os.Getenv("NODE_NAME"), "this node's name in Kubernetes (default $NODE_NAME); enables publishing the batch capacity")
	batchRes := fs.String("batch-resource", nriplugin.DefaultBatchResource, `extended resource the batch capacity is published as on the Node, millicores; "" disables`)
	batchInterval := fs.Duration("batch-resource-interval", 30*time.Second, "least time between two updates of the batch-capacity resource")
	batchMinChange := fs.Int64("batch-resource-min-change", 100, "least change (millicores) worth an update of the batch-capacity resource")
	watchPods := fs.Bool("watch-pods", true, "with --node-name: follow this node's pods on the API server, so bandwidth annotations changed on a running pod are applied")
	sysfs := fs.String("sysfs", "/sys", "sysfs root")
	procfs := fs.String("procfs", "/proc", "procfs root")
	resctrl := fs.String("resctrl", "", "resctrl mount point for the RDT dimension (default: from /proc/mounts, else /sys/fs/resctrl)")
	blockioClasses := fs.String("runtime-blockio-config", "", "the runtime's blockio class file (containerd's blockio_config_file): pools with a class of their name there are created in it")
	logLevel := fs.String("log-level", "info", "debug, info, warn, error")
	logFormat := fs.String("log-format", "text", "text or json")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("run takes no arguments, got %q", fs.Args())
	}
	logger, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		return err
	}
	// The NRI stub and its transport log through their own packages; send
	// them through the same structured logger so one stream has one format.
	nriplugin.RouteNRILogs(logger)

	opts := nriplugin.Options{PluginName: *name, PluginIdx: *idx, SocketPath: *socket, SysfsRoot: *sysfs, ProcRoot: *procfs, Logger: logger}
	opts.Controllers = append(opts.Controllers, nriplugin.NewRDTController(nriplugin.RDTOptions{Root: *resctrl}))
	opts.Controllers = append(opts.Controllers, nriplugin.NewIOController(nriplugin.IOOptions{RuntimeClasses: *blockioClasses}))
	opts.Controllers = append(opts.Controllers, nriplugin.NewNetController())
	if *config != "" {
		cfg, err := isolation.LoadConfig(*config)
		if err != nil {
			return err
		}
		opts.Config = cfg
	}
	kube := &nriplugin.KubeClient{APIServer: *kubeAPI, TokenFile: *kubeToken, CAFile: *kubeCA}
	switch *evictor {
	case "dry-run":
	case "cri":
		opts.Evictor = nriplugin.CRIEvictor{Endpoint: *criEndpoint}
	case "kubernetes":
		opts.Evictor = nriplugin.KubernetesEvictor{Kube: kube, Logger: logger}
	default:
		return fmt.Errorf("--evictor %q: want dry-run, cri or kubernetes", *evictor)
	}
	var publisher *nriplugin.CapacityPublisher
	if *nodeName != "" && *batchRes != "" {
		if *batchInterval < time.Second || *batchMinChange < 1 {
			return fmt.Errorf("--batch-resource-interval %s, --batch-resource-min-change %d: want at least 1s and 1 millicore", *batchInterval, *batchMinChange)
		}
		publisher = &nriplugin.CapacityPublisher{Kube: kube, Node: *nodeName, Resource: *batchRes,
			Interval: *batchInterval, MinChange: *batchMinChange, Logger: logger}
		opts.BatchCapacity = publisher
	}
	p, err := nriplugin.New(opts)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if publisher != nil {
		logger.Info("publishing the batch capacity on the node", "node", *nodeName, "resource", *batchRes, "interval", *batchInterval)
		go publisher.Run(ctx)
	}
	if *nodeName != "" && *watchPods {
		w := &nriplugin.PodWatcher{Kube: kube, Node: *nodeName, Sink: p, Logger: logger}
		go w.Run(ctx)
	}
	if *listen != "" {
		l, err := nriplugin.Listen(*listen, logger)
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

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	o := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, o)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}
