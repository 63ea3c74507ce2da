package harness

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// docs/operating.md tells operators how to enable NRI in containerd 2.x and
// 1.7. The harness starts every containerd of the end-to-end tests with the
// same NRI section (its own paths): the keys and fixed values shown to
// operators are the ones the tests run with, so the instructions cannot
// drift from what works.
func TestOperatingDocNRISectionsMatchHarness(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/operating.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```toml\n(.*?)```").FindAllStringSubmatch(string(doc), -1)
	var v3, v2 string
	for _, b := range blocks {
		switch {
		case strings.Contains(b[1], "[plugins.'io.containerd.nri.v1.nri']"):
			v3 = b[1]
		case strings.Contains(b[1], `[plugins."io.containerd.nri.v1.nri"]`):
			v2 = b[1]
		}
	}
	if v3 == "" || v2 == "" {
		t.Fatalf("docs/operating.md lacks the NRI sections for containerd 2.x and 1.7")
	}
	for _, c := range []struct {
		name, doc, tmpl, header string
	}{
		{"containerd 2.x", v3, configTemplate.Root.String(), "[plugins.'io.containerd.nri.v1.nri']"},
		{"containerd 1.7", v2, configTemplateV2.Root.String(), `[plugins."io.containerd.nri.v1.nri"]`},
	} {
		docKeys, tmplKeys := section(c.doc, c.header), section(c.tmpl, c.header)
		if len(docKeys) == 0 || len(tmplKeys) == 0 {
			t.Fatalf("%s: NRI section missing (doc %d keys, harness %d keys)", c.name, len(docKeys), len(tmplKeys))
		}
		for k, v := range docKeys {
			hv, ok := tmplKeys[k]
			if !ok {
				t.Errorf("%s: docs set %s, the harness does not", c.name, k)
				continue
			}
			// Paths and timeouts are the harness's own; fixed values
			// (disable = false) must be the same.
			if !strings.Contains(hv, "{{") && hv != v {
				t.Errorf("%s: docs say %s = %s, the harness uses %s", c.name, k, v, hv)
			}
		}
		for k := range tmplKeys {
			if _, ok := docKeys[k]; !ok {
				t.Errorf("%s: the harness sets %s, the docs do not show it", c.name, k)
			}
		}
	}
}

// section returns the key = value lines of one TOML table.
func section(toml, header string) map[string]string {
	i := strings.Index(toml, header)
	if i < 0 {
		return nil
	}
	keys := map[string]string{}
	for _, line := range strings.Split(toml[i+len(header):], "\n")[1:] {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			break
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			keys[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return keys
}
