package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"sigs.k8s.io/yaml"

	nriplugin "github.com/strata-nri/strata/nri-plugin"
)

func statusCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("status", stderr)
	addr := fs.String("addr", nriplugin.DefaultListen, `plugin's HTTP address: "host:port" or "unix:/path"`)
	asJSON := fs.Bool("json", false, "print JSON")
	watch := fs.Bool("watch", false, "refresh in place until interrupted")
	interval := fs.Duration("interval", 2*time.Second, "refresh interval with --watch (100ms..1h)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *interval < 100*time.Millisecond || *interval > time.Hour {
		return fmt.Errorf("--interval %s: want 100ms..1h", *interval)
	}
	if !*watch {
		return printStatus(context.Background(), stdout, *addr, *asJSON)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	tty := isTerminal(stdout)
	for {
		if tty {
			fmt.Fprint(stdout, "\x1b[H\x1b[2J") // home, clear: refresh in place
		}
		if err := printStatus(ctx, stdout, *addr, *asJSON); err != nil {
			fmt.Fprintln(stdout, "strata status:", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(*interval):
		}
		if !tty {
			fmt.Fprintln(stdout)
		}
	}
}

func printStatus(ctx context.Context, w io.Writer, addr string, asJSON bool) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := nriplugin.FetchStatus(ctx, addr)
	if err != nil {
		return err
	}
	if !asJSON {
		st.Print(w)
		return nil
	}
	b, err := yaml.Marshal(st)
	if err == nil {
		b, err = yaml.YAMLToJSON(b)
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
