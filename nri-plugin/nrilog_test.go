package nriplugin

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	clog "github.com/containerd/log"
	nrilog "github.com/containerd/nri/pkg/log"
)

// Messages of the NRI stub and of containerd/log (ttrpc) come out as JSON
// records of the one logger, with their level, not as a second format.
func TestRouteNRILogs(t *testing.T) {
	var buf bytes.Buffer
	RouteNRILogs(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	nrilog.Infof(context.Background(), "plugin %s registered", "strata")
	nrilog.Debugf(context.Background(), "hidden at info level")
	clog.L.WithField("conn", 7).Warn("ttrpc: connection reset")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 JSON lines (debug filtered), got %d:\n%s", len(lines), buf.String())
	}
	for _, want := range []string{`"level":"INFO"`, `"msg":"plugin strata registered"`, `"component":"nri"`} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("NRI record %s lacks %s", lines[0], want)
		}
	}
	for _, want := range []string{`"level":"WARN"`, `"msg":"ttrpc: connection reset"`, `"conn":7`} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("logrus record %s lacks %s", lines[1], want)
		}
	}
}
