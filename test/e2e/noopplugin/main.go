// Command noopplugin is an NRI plugin that subscribes to the container
// lifecycle events Strata's plugin handles and changes nothing. It is the
// baseline of the benchmark "create+start latency with Strata vs no plugin vs
// a no-op plugin": what any plugin costs, before Strata's own work.
//
// It connects to the NRI socket given by -nri-socket (default
// $STRATA_NRI_SOCKET, else NRI's default), takes its name and index from
// -name/-idx or NRI_PLUGIN_NAME/NRI_PLUGIN_IDX, and reconnects with a fresh
// stub when the runtime goes away (a containerd restart ends a stub), as any
// long-lived plugin must. With -v it logs every event, one line each:
//
//	noopplugin: synchronize: 1 pods, 1 containers
//	noopplugin: create container default/pod1/c1 (<id>)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
)

type plugin struct {
	verbose bool
}

func (p *plugin) logf(format string, args ...any) {
	if p.verbose {
		log.Printf(format, args...)
	}
}

func name(pod *api.PodSandbox, ctr *api.Container) string {
	return fmt.Sprintf("%s/%s/%s (%s)", pod.GetNamespace(), pod.GetName(), ctr.GetName(), ctr.GetId())
}

func (p *plugin) Configure(_ context.Context, _, runtime, version string) (api.EventMask, error) {
	log.Printf("configured by %s %s", runtime, version)
	return 0, nil // 0: subscribe to the events this type implements
}

func (p *plugin) Synchronize(_ context.Context, pods []*api.PodSandbox, ctrs []*api.Container) ([]*api.ContainerUpdate, error) {
	log.Printf("synchronize: %d pods, %d containers", len(pods), len(ctrs))
	return nil, nil
}

func (p *plugin) RunPodSandbox(_ context.Context, pod *api.PodSandbox) error {
	p.logf("run pod %s/%s (%s)", pod.GetNamespace(), pod.GetName(), pod.GetId())
	return nil
}

func (p *plugin) RemovePodSandbox(_ context.Context, pod *api.PodSandbox) error {
	p.logf("remove pod %s/%s (%s)", pod.GetNamespace(), pod.GetName(), pod.GetId())
	return nil
}

func (p *plugin) CreateContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	p.logf("create container %s", name(pod, ctr))
	return nil, nil, nil
}

func (p *plugin) StartContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	p.logf("start container %s", name(pod, ctr))
	return nil
}

func (p *plugin) UpdateContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container, _ *api.LinuxResources) ([]*api.ContainerUpdate, error) {
	p.logf("update container %s", name(pod, ctr))
	return nil, nil
}

func (p *plugin) StopContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) ([]*api.ContainerUpdate, error) {
	p.logf("stop container %s", name(pod, ctr))
	return nil, nil
}

func (p *plugin) RemoveContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	p.logf("remove container %s", name(pod, ctr))
	return nil
}

func (p *plugin) Shutdown(context.Context) {
	log.Printf("runtime shutting down")
}

func main() {
	socket := flag.String("nri-socket", os.Getenv("STRATA_NRI_SOCKET"), "NRI socket path (default $STRATA_NRI_SOCKET, else NRI's default)")
	pluginName := flag.String("name", "", "NRI plugin name (default $NRI_PLUGIN_NAME)")
	idx := flag.String("idx", "", "NRI plugin index, two digits (default $NRI_PLUGIN_IDX)")
	verbose := flag.Bool("v", false, "log every event")
	reconnect := flag.Bool("reconnect", true, "reconnect when the runtime goes away")
	flag.Parse()
	log.SetPrefix("noopplugin: ")
	log.SetFlags(log.Lmicroseconds)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	var opts []stub.Option
	if *socket != "" {
		opts = append(opts, stub.WithSocketPath(*socket))
	}
	if *pluginName != "" {
		opts = append(opts, stub.WithPluginName(*pluginName))
	}
	if *idx != "" {
		opts = append(opts, stub.WithPluginIdx(*idx))
	}
	p := &plugin{verbose: *verbose}
	for {
		// A stub serves one connection; after the runtime closes it
		// (restart, crash) a new stub must register again.
		s, err := stub.New(p, append(opts, stub.WithOnClose(func() { log.Printf("connection closed") }))...)
		if err != nil {
			log.Fatalf("create stub: %v", err)
		}
		err = s.Run(ctx)
		if ctx.Err() != nil {
			return
		}
		log.Printf("stub ended: %v", err)
		if !*reconnect {
			if err == nil {
				err = errors.New("connection closed")
			}
			log.Fatalf("not reconnecting: %v", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}
