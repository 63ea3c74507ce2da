package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-nri/strata/isolation"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = mainWith(args, &o, &e)
	return code, o.String(), e.String()
}

// Each broken file is refused with its field path and what is allowed,
// and the exit code says so.
func TestConfigValidateBrokenFiles(t *testing.T) {
	want := map[string][]string{
		"unknown-field.yaml":        {"pols: unknown field", "allowed: batch, classification"},
		"band-inverted.yaml":        {"pools[0].band", "band.low must be below band.high"},
		"duplicate-name.yaml":       {"pools[1].name", "duplicate pool name"},
		"duplicate-priority.yaml":   {"pools[1].priority", "priorities must be unique"},
		"bad-period.yaml":           {"period: \"fast\"", "want a Go duration"},
		"rcf-inverted.yaml":         {"pools[0].rcf", "rcf.min must not exceed rcf.max"},
		"unknown-default-pool.yaml": {"classification.default: \"gold\"", `allowed: "latency-critical", "online", "batch"`},
		"bad-ondisallowed.yaml":     {"classification.onDisallowed: \"ignore\"", `"refuse" or a pool name`},
		"shares-out-of-range.yaml":  {"pools[0].profile.cpu.shares: 1", "pools[1].profile.cpu.shares: 999999", "2..262144"},
		"bad-memory-policy.yaml":    {"pools[0].profile.memory.min: \"lots\"", "pools[1].profile.memory.high: \"150%\"", `allowed: "none", "request", "limit"`},
		"bad-quota.yaml":            {"pools[0].profile.cpu.quota: \"none\"", `allowed: "keep", "unlimited"`},
		"malformed.yaml":            {"parse:", "line 1"},
		"bad-reserved.yaml":         {"reservedCPUs: \"0-abc\"", "Linux CPU list"},
		"bad-oom.yaml":              {"pools[0].profile.oomScoreAdj: 5000", "-1000..1000"},
	}
	files, err := filepath.Glob("testdata/invalid/*.yaml")
	if err != nil || len(files) < 10 {
		t.Fatalf("want ≥ 10 broken files, got %d (%v)", len(files), err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		subs, ok := want[name]
		if !ok {
			t.Errorf("%s has no expectation", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			code, out, errOut := runCLI(t, "config", "validate", f)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			if !strings.Contains(out, f+": invalid") {
				t.Errorf("output does not name the file:\n%s", out)
			}
			for _, s := range subs {
				if !strings.Contains(out, s) {
					t.Errorf("output lacks %q:\n%s", s, out)
				}
			}
			if !strings.Contains(errOut, "1 of 1 configuration files invalid") {
				t.Errorf("stderr: %q", errOut)
			}
		})
	}
}

func TestConfigValidateDefault(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "strata.yaml")
	code, out, _ := runCLI(t, "config")
	if code != 0 {
		t.Fatalf("strata config exit %d", code)
	}
	if out != string(isolation.DefaultConfigYAML) || !strings.Contains(out, "# Loop period") {
		t.Fatalf("strata config does not print the commented default:\n%.200s", out)
	}
	if err := os.WriteFile(f, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "config", "validate", f)
	if code != 0 || !strings.Contains(out, f+": valid") {
		t.Fatalf("default file: exit %d\n%s%s", code, out, errOut)
	}
}

func TestHelpAndUsage(t *testing.T) {
	code, out, _ := runCLI(t, "help")
	if code != 0 {
		t.Fatalf("help exit %d", code)
	}
	for _, c := range commands {
		if !strings.Contains(out, "  "+c.name) {
			t.Errorf("help lacks command %s:\n%s", c.name, out)
		}
	}
	for _, c := range commands {
		if c.name == "help" {
			continue
		}
		code, _, errOut := runCLI(t, c.name, "--help")
		if code != 0 || !strings.Contains(errOut, "Usage:") || !strings.Contains(errOut, "strata "+c.name) {
			t.Errorf("%s --help: exit %d\n%s", c.name, code, errOut)
		}
	}
	if code, _, errOut := runCLI(t, "frobnicate"); code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d %q", code, errOut)
	}
	if code, _, errOut := runCLI(t, "status", "--bogus"); code != 2 || !strings.Contains(errOut, "bogus") {
		t.Errorf("unknown flag: exit %d %q", code, errOut)
	}
	if code, _, errOut := runCLI(t, "status", "--watch", "--interval", "1ms"); code != 1 || !strings.Contains(errOut, "100ms..1h") {
		t.Errorf("bad interval: exit %d %q", code, errOut)
	}
	if code, _, errOut := runCLI(t, "run", "--log-format", "xml"); code != 1 || !strings.Contains(errOut, "want text or json") {
		t.Errorf("bad log format: exit %d %q", code, errOut)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, "version", "--json")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var v Version
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	// A test binary carries its dependencies' versions in its build info.
	if v.Go == "" || v.Version == "" || !strings.HasPrefix(v.NRI, "v0.") {
		t.Errorf("version %+v", v)
	}
}
