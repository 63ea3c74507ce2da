package harness

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPrebuilt: with STRATA_E2E_PREBUILT set, the build functions return
// the directory's binaries in PackPrebuilt's layout and build nothing; a
// version the directory lacks is an error naming it and what is there.
func TestPrebuilt(t *testing.T) {
	host := t.TempDir()
	touch := func(name string) string {
		p := filepath.Join(host, name)
		if err := os.WriteFile(p, []byte(name), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bins := Binaries{Version: "9.9.9", Containerd: touch("containerd"), Shim: touch("containerd-shim-runc-v2"), Ctr: touch("ctr")}
	files := PackPrebuilt([]Binaries{bins}, touch("base-0123.tar"), touch("strata"))
	dir := t.TempDir()
	for rel, src := range files {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv(PrebuiltEnv, dir)
	ctx := context.Background()
	got, err := BuildContainerd(ctx, BuildOptions{Version: "v9.9.9"})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "containerd", "9.9.9", "containerd-shim-runc-v2"); got.Shim != want || got.Version != "9.9.9" {
		t.Errorf("BuildContainerd = %+v, want the shim at %s", got, want)
	}
	if _, err := BuildContainerd(ctx, BuildOptions{Version: "1.0.0"}); err == nil || !strings.Contains(err.Error(), "no containerd v1.0.0") || !strings.Contains(err.Error(), "9.9.9") {
		t.Errorf("missing version: %v, want an error naming v1.0.0 and what the directory has", err)
	}
	if img, err := BuildImage(ctx, "", nil); err != nil || img != filepath.Join(dir, "image.tar") {
		t.Errorf("BuildImage = %q, %v", img, err)
	}
	if p, err := GoBuild(ctx, "./nri-plugin/cmd/strata", t.TempDir()); err != nil || p != filepath.Join(dir, "bin", "strata") {
		t.Errorf("GoBuild = %q, %v", p, err)
	}
	if _, err := GoBuild(ctx, "./test/e2e/noopplugin", t.TempDir()); err == nil || !strings.Contains(err.Error(), "noopplugin") {
		t.Errorf("GoBuild of a binary not in the directory: %v, want an error naming it", err)
	}
}
