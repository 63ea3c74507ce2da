package strata_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/strata-nri/strata/isolation"
)

// dashboardMetrics returns the metric families the Grafana dashboard
// queries (histogram series reduced to their family).
func dashboardMetrics(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../../deploy/grafana/strata-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	re := regexp.MustCompile(`strata_[a-z0-9_]+`)
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			for _, m := range re.FindAllString(tg.Expr, -1) {
				seen[strings.TrimSuffix(m, "_bucket")] = true
			}
		}
	}
	var out []string
	for m := range seen {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

// Every metric the Grafana dashboard queries is in the running plugin's
// /metrics, with at least one series, right after start: per-pool
// counters exist at 0 before anything happened, so panels show "0", not
// "no data".
func TestE2EDashboardMetrics(t *testing.T) {
	want := dashboardMetrics(t)
	if len(want) < 10 {
		t.Fatalf("dashboard queries only %d metrics: %v", len(want), want)
	}
	cfg := fastConfig()
	e := env(t, "2.4.2", cfg)
	run(t, e, "lc", isolation.PoolLatencyCritical, res(500, 0), "sleep", "60")
	run(t, e, "batch", isolation.PoolBatch, res(0, 0), "sleep", "60")
	sock := filepath.Join(e.State().Dir, "strata.sock")
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
	var missing []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		missing = missing[:0]
		text, err := get(client)
		for _, m := range want {
			if err != nil || !hasSeries(text, m) {
				missing = append(missing, m)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s, dashboard metrics missing from /metrics: %v (last error: %v)", missing, err)
		}
	}
}

func get(c *http.Client) (string, error) {
	resp, err := c.Get("http://strata/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// hasSeries reports whether exposition text has a sample of family m (a
// histogram's _bucket, or the family itself with or without labels).
func hasSeries(text, m string) bool {
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		for _, name := range []string{m, m + "_bucket"} {
			if strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ") {
				return true
			}
		}
	}
	return false
}
