package image

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

// TestWriteArchiveLayerAndManifest unpacks the archive and checks that the
// Docker manifest names the image and that the layer holds the files with
// their parent directories, in order.
func TestWriteArchiveLayerAndManifest(t *testing.T) {
	var buf bytes.Buffer
	opts := Options{
		Ref: "strata.local/e2e/base:1",
		Files: []File{
			{Path: "/bin/sh", Linkname: "busybox"},
			{Path: "pause", Data: []byte("#!"), Mode: 0o755},
		},
	}
	if err := WriteArchive(&buf, opts); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	tr := tar.NewReader(&buf)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		files[hdr.Name] = b
	}
	var dm []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(files["manifest.json"], &dm); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	if len(dm) != 1 || len(dm[0].RepoTags) != 1 || dm[0].RepoTags[0] != opts.Ref || len(dm[0].Layers) != 1 {
		t.Fatalf("manifest.json = %+v, want one image tagged %s with one layer", dm, opts.Ref)
	}
	layer, ok := files[dm[0].Layers[0]]
	if !ok {
		t.Fatalf("layer blob %s missing from archive", dm[0].Layers[0])
	}
	var got []string
	lr := tar.NewReader(bytes.NewReader(layer))
	for {
		hdr, err := lr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, hdr.Name+"|"+hdr.Linkname)
	}
	want := "bin/|,bin/sh|busybox,pause|"
	if strings.Join(got, ",") != want {
		t.Errorf("layer entries = %q, want %q", strings.Join(got, ","), want)
	}
}

func TestWriteArchiveIsDeterministic(t *testing.T) {
	opts := Options{Ref: "a/b:1", Files: []File{{Path: "x", Data: []byte("1")}}}
	h1, err := ContentHash(opts)
	if err != nil {
		t.Fatal(err)
	}
	h2, _ := ContentHash(opts)
	opts.Files[0].Data = []byte("2")
	h3, _ := ContentHash(opts)
	if h1 != h2 || h1 == h3 {
		t.Errorf("hashes %s %s %s: want first two equal and the third different", h1, h2, h3)
	}
}

func TestWriteArchiveRejectsBadInput(t *testing.T) {
	for name, opts := range map[string]Options{
		"no tag":         {Ref: "strata.local/e2e/base"},
		"empty path":     {Ref: "a:1", Files: []File{{Path: "/", Data: []byte("x")}}},
		"two kinds":      {Ref: "a:1", Files: []File{{Path: "x", Data: []byte("x"), Linkname: "y"}}},
		"duplicate path": {Ref: "a:1", Files: []File{{Path: "x", Dir: true}, {Path: "/x", Dir: true}}},
	} {
		if err := WriteArchive(io.Discard, opts); err == nil {
			t.Errorf("%s: WriteArchive accepted %+v", name, opts)
		}
	}
}
