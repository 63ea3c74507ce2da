package image

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// File is one entry of the image's single layer. Exactly one of Source, Data
// or Linkname gives its content; parent directories are added automatically.
type File struct {
	// Path inside the image, absolute or relative to "/" ("bin/sh" == "/bin/sh").
	Path string
	// Source is a host file whose content is copied.
	Source string
	// Data is literal content.
	Data []byte
	// Linkname makes the entry a symbolic link to Linkname.
	Linkname string
	// Dir makes the entry an (empty) directory.
	Dir bool
	// Mode is the permission bits; 0 means 0755 for directories and
	// executables from Source, 0644 for Data.
	Mode os.FileMode
}

// Options describe the image to pack.
type Options struct {
	// Ref is the image reference recorded in the archive, e.g.
	// "strata.local/e2e/base:1". It must carry a tag.
	Ref string
	// Files make up the image's one layer.
	Files []File
	// Entrypoint and Cmd are the image's default command.
	Entrypoint []string
	Cmd        []string
	// Env is the image's environment ("KEY=value").
	Env []string
	// Architecture and OS default to "amd64" and "linux".
	Architecture, OS string
}

// fixedTime keeps archives byte-for-byte reproducible, so the same inputs
// give the same digests and the harness can cache the tarball by content.
var fixedTime = time.Unix(0, 0).UTC()

// WriteArchive writes opts as an image tarball to w. The tarball is both an
// OCI image layout (oci-layout, index.json, blobs/sha256/...) and a Docker
// archive (manifest.json with RepoTags), the format `docker save` produces;
// containerd's importer takes the image name from RepoTags.
func WriteArchive(w io.Writer, opts Options) error {
	if err := validate(opts); err != nil {
		return err
	}
	layer, err := buildLayer(opts.Files)
	if err != nil {
		return err
	}
	layerDigest := digest.FromBytes(layer)

	arch, osName := opts.Architecture, opts.OS
	if arch == "" {
		arch = "amd64"
	}
	if osName == "" {
		osName = "linux"
	}
	created := fixedTime
	config := ocispec.Image{
		Created:  &created,
		Platform: ocispec.Platform{Architecture: arch, OS: osName},
		Config: ocispec.ImageConfig{
			Entrypoint: opts.Entrypoint,
			Cmd:        opts.Cmd,
			Env:        opts.Env,
			WorkingDir: "/",
		},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{layerDigest}},
	}
	configJSON, err := json.Marshal(config)
	if err != nil {
		return fmt.Errorf("image %s: encode config: %w", opts.Ref, err)
	}
	configDesc := ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageConfig,
		Digest:    digest.FromBytes(configJSON),
		Size:      int64(len(configJSON)),
	}
	manifest := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    configDesc,
		Layers: []ocispec.Descriptor{{
			MediaType: ocispec.MediaTypeImageLayer,
			Digest:    layerDigest,
			Size:      int64(len(layer)),
		}},
	}
	manifestJSON, err := json.Marshal(manifest)
	if err != nil {
		return fmt.Errorf("image %s: encode manifest: %w", opts.Ref, err)
	}
	manifestDesc := ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageManifest,
		Digest:    digest.FromBytes(manifestJSON),
		Size:      int64(len(manifestJSON)),
		Platform:  &ocispec.Platform{Architecture: arch, OS: osName},
		Annotations: map[string]string{
			// containerd's own annotation for the full image name, and the
			// OCI one for the tag; both are honoured on import.
			"io.containerd.image.name": opts.Ref,
			ocispec.AnnotationRefName:  opts.Ref[strings.LastIndex(opts.Ref, ":")+1:],
		},
	}
	index := ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{manifestDesc},
	}
	indexJSON, err := json.Marshal(index)
	if err != nil {
		return fmt.Errorf("image %s: encode index: %w", opts.Ref, err)
	}
	blobPath := func(d digest.Digest) string { return "blobs/sha256/" + d.Encoded() }
	dockerManifest, err := json.Marshal([]struct {
		Config   string
		RepoTags []string
		Layers   []string
	}{{
		Config:   blobPath(configDesc.Digest),
		RepoTags: []string{opts.Ref},
		Layers:   []string{blobPath(layerDigest)},
	}})
	if err != nil {
		return fmt.Errorf("image %s: encode manifest.json: %w", opts.Ref, err)
	}
	layoutJSON, err := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err != nil {
		return fmt.Errorf("image %s: encode oci-layout: %w", opts.Ref, err)
	}

	tw := tar.NewWriter(w)
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: fixedTime}); err != nil {
			return fmt.Errorf("image %s: write archive: %w", opts.Ref, err)
		}
	}
	entries := []struct {
		name string
		data []byte
	}{
		{ocispec.ImageLayoutFile, layoutJSON},
		{blobPath(layerDigest), layer},
		{blobPath(configDesc.Digest), configJSON},
		{blobPath(manifestDesc.Digest), manifestJSON},
		{"index.json", indexJSON},
		{"manifest.json", dockerManifest},
	}
	for _, e := range entries {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: e.name, Mode: 0o644, Size: int64(len(e.data)), ModTime: fixedTime}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("image %s: write %s: %w", opts.Ref, e.name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return fmt.Errorf("image %s: write %s: %w", opts.Ref, e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("image %s: close archive: %w", opts.Ref, err)
	}
	return nil
}

func validate(opts Options) error {
	i := strings.LastIndex(opts.Ref, ":")
	if opts.Ref == "" || i < 0 || strings.Contains(opts.Ref[i:], "/") {
		return fmt.Errorf("image: Ref %q must be a reference with a tag, e.g. \"strata.local/e2e/base:1\"", opts.Ref)
	}
	seen := map[string]bool{}
	for _, f := range opts.Files {
		p := cleanPath(f.Path)
		if p == "" {
			return fmt.Errorf("image %s: file path %q names the root or is empty", opts.Ref, f.Path)
		}
		if seen[p] {
			return fmt.Errorf("image %s: file path %q given twice", opts.Ref, f.Path)
		}
		seen[p] = true
		kinds := 0
		for _, set := range []bool{f.Source != "", f.Data != nil, f.Linkname != "", f.Dir} {
			if set {
				kinds++
			}
		}
		if kinds != 1 {
			return fmt.Errorf("image %s: file %q must set exactly one of Source, Data, Linkname, Dir (has %d)", opts.Ref, f.Path, kinds)
		}
	}
	return nil
}

// cleanPath turns "/bin/sh" or "bin/sh" into "bin/sh"; "" for the root.
func cleanPath(p string) string {
	p = strings.TrimPrefix(path.Clean("/"+p), "/")
	return p
}

// buildLayer returns an uncompressed layer tarball holding files and their
// parent directories, sorted by path so the output is deterministic.
func buildLayer(files []File) ([]byte, error) {
	byPath := map[string]File{}
	for _, f := range files {
		p := cleanPath(f.Path)
		byPath[p] = f
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if _, ok := byPath[d]; !ok {
				byPath[d] = File{Path: d, Dir: true}
			}
		}
	}
	paths := make([]string, 0, len(byPath))
	for p := range byPath {
		paths = append(paths, p)
	}
	sort.Strings(paths)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		f := byPath[p]
		hdr := &tar.Header{Name: p, ModTime: fixedTime, Mode: int64(f.Mode.Perm())}
		var data []byte
		switch {
		case f.Dir:
			hdr.Typeflag, hdr.Name = tar.TypeDir, p+"/"
			if hdr.Mode == 0 {
				hdr.Mode = 0o755
			}
		case f.Linkname != "":
			hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, f.Linkname, 0o777
		case f.Source != "":
			b, err := os.ReadFile(f.Source)
			if err != nil {
				return nil, fmt.Errorf("image: file %q: %w", f.Path, err)
			}
			data = b
			hdr.Typeflag = tar.TypeReg
			if hdr.Mode == 0 {
				hdr.Mode = 0o755
			}
		default:
			data = f.Data
			hdr.Typeflag = tar.TypeReg
			if hdr.Mode == 0 {
				hdr.Mode = 0o644
			}
		}
		hdr.Size = int64(len(data))
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("image: layer entry %q: %w", p, err)
		}
		if _, err := tw.Write(data); err != nil {
			return nil, fmt.Errorf("image: layer entry %q: %w", p, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("image: close layer: %w", err)
	}
	return buf.Bytes(), nil
}

// ContentHash returns a hex SHA-256 over everything that determines the
// archive WriteArchive would produce for opts (including the content of
// Source files), so callers can cache the tarball by it.
func ContentHash(opts Options) (string, error) {
	h := sha256.New()
	if err := WriteArchive(h, opts); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
