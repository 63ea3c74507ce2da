package nriplugin

import (
	"fmt"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
)

// docs/metrics.md lists every metric the plugin registers, with its help
// text and labels, and nothing else. STRATA_UPDATE_DOCS=1 rewrites it.
func TestMetricsReference(t *testing.T) {
	want := metricsReference(t)
	const path = "../docs/metrics.md"
	if os.Getenv("STRATA_UPDATE_DOCS") == "1" {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != want {
		t.Fatalf("docs/metrics.md is stale (%v): run STRATA_UPDATE_DOCS=1 go test -run TestMetricsReference ./nri-plugin/ and commit it", err)
	}
}

var descRE = regexp.MustCompile(`fqName: "([^"]+)", help: "((?:[^"\\]|\\.)*)", (?:unit: "[^"]*", )?constLabels: \{[^}]*\}, variableLabels: \{([^}]*)\}`)

// metricsReference describes every collector held in a Metrics field (the
// plugin's own) and those of the dimension controllers, and renders the
// reference; Go runtime and process
// collectors are named in the text, not listed.
func metricsReference(t *testing.T) string {
	m := NewMetrics()
	v := reflect.ValueOf(m).Elem()
	type row struct{ name, typ, labels, help string }
	var rows []row
	add := func(c prometheus.Collector) {
		typ := strings.TrimPrefix(strings.TrimPrefix(fmt.Sprintf("%T", c), "*prometheus."), "prometheus.")
		typ = strings.ToLower(strings.TrimSuffix(typ, "Vec"))
		ch := make(chan *prometheus.Desc, 4)
		c.Describe(ch)
		close(ch)
		for d := range ch {
			mm := descRE.FindStringSubmatch(d.String())
			if mm == nil {
				t.Fatalf("cannot read descriptor %s", d)
			}
			rows = append(rows, row{mm[1], typ, strings.ReplaceAll(mm[3], ",", ", "), strings.ReplaceAll(mm[2], `\"`, `"`)})
		}
	}
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		// The fields are unexported; the test reads them in place.
		c, ok := reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Interface().(prometheus.Collector)
		if !ok || v.Type().Field(i).Name == "Registry" {
			continue
		}
		add(c)
	}
	// The pool-level dimensions' controllers register theirs when they
	// start; strata run registers these three.
	for _, ctl := range []Controller{NewRDTController(RDTOptions{}), NewIOController(IOOptions{}), NewNetController()} {
		for _, c := range ctl.Collectors() {
			add(c)
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].name < rows[j].name })
	var b strings.Builder
	b.WriteString(`# Metrics reference

<!-- Generated from nriplugin.NewMetrics by TestMetricsReference
(STRATA_UPDATE_DOCS=1 go test -run TestMetricsReference ./nri-plugin/);
a test fails when this file and the code disagree. -->

The plugin serves these on ` + "`/metrics`" + ` (the ` + "`--listen`" + ` address; a unix
socket by default), in a registry of its own, next to the Go runtime and
process collectors (` + "`go_*`, `process_*`" + `). The ` + "`strata_rdt_*`, `strata_io_*` and\n`strata_net_*`" + ` families come from the dimension controllers and exist only
where the dimension is supported and configured. Per-pool counters exist at 0
for every configured pool from the start, so ` + "`rate()`" + ` works before the
first event. The Grafana dashboard in
[deploy/grafana/strata-dashboard.json](../deploy/grafana/strata-dashboard.json)
queries them; an end-to-end test checks that every metric it queries is
served.

| metric | type | labels | meaning |
|---|---|---|---|
`)
	for _, r := range rows {
		labels := r.labels
		if labels == "" {
			labels = "—"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", r.name, r.typ, labels, strings.ReplaceAll(r.help, "|", `\|`))
	}
	return b.String()
}
