package nriplugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/strata-nri/strata/internal/safetext"
)

// errNotConnected is /healthz's answer while no runtime is connected.
var errNotConnected = errors.New("not connected to the runtime")

// DefaultListen is where the HTTP endpoints bind unless told otherwise:
// loopback only. A "unix:" prefix selects a unix socket instead.
const DefaultListen = "127.0.0.1:9797"

// Listen opens addr: "host:port" for TCP or "unix:/path" for a unix socket.
//
// A unix socket is created with mode 0600 from the start (the umask is
// narrowed around bind, so there is no moment when another user could
// connect), and only a stale socket is replaced: a path that is not a
// socket, or a socket something still answers on, is an error rather than
// something to delete. The endpoints carry no authentication, so a TCP
// address other than loopback is logged as a warning.
func Listen(addr string, log *slog.Logger) (net.Listener, error) {
	if log == nil {
		log = slog.Default()
	}
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		return listenUnix(path)
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("listen address %s: want host:port or unix:/path: %w", safetext.Quote(addr), err)
	}
	if !loopback(host) {
		log.Warn("the HTTP endpoints (/metrics, /healthz, /status) carry no authentication and are reachable beyond this host; "+
			"prefer 127.0.0.1 or a unix: socket", "listen", addr)
	}
	return net.Listen("tcp", addr)
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// umaskMu serialises the umask change of listenUnix: the umask is
// process-wide.
var umaskMu sync.Mutex

func listenUnix(path string) (net.Listener, error) {
	if path == "" {
		return nil, errors.New("unix: socket path is empty")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	l, err := bindUnix(path)
	if err != nil {
		return nil, err
	}
	// The mode is already 0600; Chmod only guards against a umask that
	// was changed by someone else while bind ran.
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// bindUnix creates the socket with mode 0600: bind makes the file with
// 0777 &^ umask, so a Chmod afterwards would leave a moment in which any
// local user could connect.
func bindUnix(path string) (net.Listener, error) {
	umaskMu.Lock()
	defer umaskMu.Unlock()
	old := syscall.Umask(0o177)
	defer syscall.Umask(old)
	return net.Listen("unix", path)
}

// removeStaleSocket removes path when it is a unix socket nobody listens
// on, and refuses anything else that exists there.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket (%s); not replacing it", path, fi.Mode().Type())
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("%s is in use: something answers on it; not replacing it", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("%s: cannot tell whether the socket is stale: %w", path, err)
	}
	return os.Remove(path)
}

// Handler serves /metrics, /healthz and /status.
func (p *Plugin) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(p.metrics.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !p.connected.Load() {
			http.Error(w, errNotConnected.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/status", func(w http.ResponseWriter, _ *http.Request) {
		b, err := json.MarshalIndent(p.Status(), "", "  ")
		if err != nil {
			p.log.Error("status cannot be encoded", "err", err)
			http.Error(w, "status: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(append(b, '\n'))
	})
	return mux
}

// Serve serves Handler on l until ctx ends.
func (p *Plugin) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{Handler: p.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// FetchStatus reads /status from a running plugin at addr (as Listen
// takes it).
func FetchStatus(ctx context.Context, addr string) (*Status, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	url := "http://" + addr + "/status"
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		client.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		}}
		url = "http://strata/status"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("strata status: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("strata status: %s answered %s", addr, resp.Status)
	}
	var st Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, fmt.Errorf("strata status: decode: %w", err)
	}
	return &st, nil
}
