package harness

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"
)

// TestConfigIsValidTOML renders the containerd config and parses it back,
// checking the settings the harness depends on.
func TestConfigIsValidTOML(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	err := writeConfig(path, configData{
		Dir: dir, Socket: dir + "/c.sock", NRISocket: dir + "/nri.sock", Image: ImageRef, Runc: "/usr/sbin/runc",
		LogLevel: "info", NRIRegistrationTimeout: "5s", NRIRequestTimeout: "2s",
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := toml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("config is not TOML: %v\n%s", err, b)
	}
	get := func(keys ...string) any {
		var v any = cfg
		for _, k := range keys {
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		}
		return v
	}
	for _, c := range []struct {
		keys []string
		want any
	}{
		{[]string{"version"}, int64(3)},
		{[]string{"grpc", "address"}, dir + "/c.sock"},
		{[]string{"plugins", "io.containerd.nri.v1.nri", "disable"}, false},
		{[]string{"plugins", "io.containerd.nri.v1.nri", "socket_path"}, dir + "/nri.sock"},
		{[]string{"plugins", "io.containerd.cri.v1.images", "pinned_images", "sandbox"}, ImageRef},
		{[]string{"plugins", "io.containerd.cri.v1.runtime", "restrict_oom_score_adj"}, true},
		{[]string{"plugins", "io.containerd.cri.v1.runtime", "containerd", "runtimes", "runc", "options", "SystemdCgroup"}, false},
		{[]string{"plugins", "io.containerd.cri.v1.runtime", "containerd", "runtimes", "runc", "options", "Root"}, dir + "/runc"},
	} {
		if got := get(c.keys...); got != c.want {
			t.Errorf("%s = %#v, want %#v", strings.Join(c.keys, "."), got, c.want)
		}
	}
}

func TestConfigRejectsQuotes(t *testing.T) {
	err := writeConfig(filepath.Join(t.TempDir(), "c.toml"), configData{Dir: `/tmp/a"b`, Runc: "/usr/sbin/runc"})
	if err == nil || !strings.Contains(err.Error(), "Dir") {
		t.Errorf("writeConfig with a quote in Dir: err = %v, want one naming Dir", err)
	}
}

func TestListAndRunID(t *testing.T) {
	base := t.TempDir()
	for _, name := range []string{"strata-e2e-0123abcd", "strata-e2e-xyz", "strata-e2e.current", "other"} {
		if err := os.Mkdir(filepath.Join(base, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dirs, err := List(base)
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) != 1 || filepath.Base(dirs[0]) != "strata-e2e-0123abcd" {
		t.Errorf("List = %v, want only strata-e2e-0123abcd", dirs)
	}
	if id, ok := runIDOf("/tmp/strata-e2e-0123abcd"); !ok || id != "0123abcd" {
		t.Errorf("runIDOf = %q, %v", id, ok)
	}
}

func TestBuildContainerdRejectsUnknownVersion(t *testing.T) {
	_, err := BuildContainerd(t.Context(), BuildOptions{Version: "9.9.9", CacheDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), `"9.9.9"`) || !strings.Contains(err.Error(), "2.4.2") {
		t.Errorf("err = %v, want one naming 9.9.9 and the versions there are", err)
	}
}
