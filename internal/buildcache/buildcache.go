package buildcache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Module says which tool module to build, with which flags, into which
// cache entry.
type Module struct {
	// Name names the build in messages, e.g. "containerd v2.4.2".
	Name string
	// Dir is the tool module: a directory with go.mod, go.sum and its main
	// packages under cmd/.
	Dir string
	// Entry is the cache entry; the binaries land in Entry/bin.
	Entry string
	// Binaries are the names every good build leaves in Entry/bin; an
	// entry missing one is rebuilt.
	Binaries []string
	// Tags and LDFlags are passed to `go build` as -tags and -ldflags and,
	// when set, enter the hash that keys the entry.
	Tags, LDFlags string
	// Env is added to the build's environment (e.g. CGO_ENABLED=0) and,
	// when set, enters the hash that keys the entry.
	Env []string
	// Nice runs the build under `nice -n Nice` when positive.
	Nice int
	// ColdHint is appended to the "building" message, e.g. "a cold build
	// takes ~2 min".
	ColdHint string
	// Logf reports progress (build start and duration); nil is quiet.
	Logf func(format string, args ...any)
}

// Bin is the path of binary name in the entry.
func (m Module) Bin(name string) string { return filepath.Join(m.Entry, "bin", name) }

// BuildModule builds every main package under m.Dir/cmd in one `go build`
// (so they share compiled packages) into m.Entry/bin. It does nothing when
// all m.Binaries exist and the entry's source.sha256 matches the hash of
// the module's files, the Go version, m.Tags, m.LDFlags and m.Env. A flock on
// m.Entry/.lock serialises concurrent builds of the same entry; the build
// goes to bin.tmp and is renamed over bin only when it succeeded.
func BuildModule(ctx context.Context, m Module) error {
	if _, err := os.Stat(filepath.Join(m.Dir, "go.mod")); err != nil {
		return fmt.Errorf("buildcache: %s: no tool module: %w", m.Name, err)
	}
	if err := os.MkdirAll(m.Entry, 0o755); err != nil {
		return fmt.Errorf("buildcache: %s: cache dir: %w", m.Name, err)
	}
	unlock, err := Lock(filepath.Join(m.Entry, ".lock"))
	if err != nil {
		return err
	}
	defer unlock()

	key := []string{runtime.Version()}
	for _, s := range []string{m.Tags, m.LDFlags} {
		if s != "" {
			key = append(key, s)
		}
	}
	key = append(key, m.Env...)
	hash, err := HashTree(m.Dir, key...)
	if err != nil {
		return err
	}
	stamp := filepath.Join(m.Entry, "source.sha256")
	bins := make([]string, len(m.Binaries))
	for i, b := range m.Binaries {
		bins[i] = m.Bin(b)
	}
	if old, err := os.ReadFile(stamp); err == nil && strings.TrimSpace(string(old)) == hash && AllExist(bins...) {
		return nil
	}

	bin := filepath.Join(m.Entry, "bin")
	logf(m.Logf, "building %s from %s into %s%s", m.Name, m.Dir, bin, hint(m.ColdHint))
	start := time.Now()
	tmp := bin + ".tmp"
	_ = os.RemoveAll(tmp)
	args := []string{"go", "build", "-trimpath"}
	if m.Tags != "" {
		args = append(args, "-tags", m.Tags)
	}
	if m.LDFlags != "" {
		args = append(args, "-ldflags", m.LDFlags)
	}
	args = append(args, "-o", tmp+"/", "./cmd/...")
	if m.Nice > 0 {
		args = append([]string{"nice", "-n", strconv.Itoa(m.Nice)}, args...)
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = m.Dir
	// -mod=mod resolves from the committed go.mod/go.sum, which are
	// complete: a build changes nothing in the tree.
	cmd.Env = append(append(os.Environ(), "GOFLAGS=-mod=mod -buildvcs=false", "GOWORK=off"), m.Env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("buildcache: build %s in %s: %w\n%s", m.Name, m.Dir, err, out.String())
	}
	var absent []string
	for _, b := range m.Binaries {
		if !AllExist(filepath.Join(tmp, b)) {
			absent = append(absent, b)
		}
	}
	if len(absent) > 0 {
		return fmt.Errorf("buildcache: build %s in %s made no %v", m.Name, m.Dir, absent)
	}
	_ = os.RemoveAll(bin)
	if err := os.Rename(tmp, bin); err != nil {
		return fmt.Errorf("buildcache: install %s: %w", m.Name, err)
	}
	if err := os.WriteFile(stamp, []byte(hash+"\n"), 0o644); err != nil {
		return fmt.Errorf("buildcache: write %s: %w", stamp, err)
	}
	logf(m.Logf, "built %s in %s", m.Name, time.Since(start).Round(time.Second))
	return nil
}

// Populate fills dir once: when dir/.complete is absent it calls fill on a
// fresh sibling dir+".tmp", writes fill's returned note into .complete and
// renames the sibling over dir. It reports whether it filled. The caller
// holds the lock that serialises fills of dir.
func Populate(dir string, fill func(tmp string) (note string, err error)) (bool, error) {
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err == nil {
		return false, nil
	}
	tmp := dir + ".tmp"
	_ = os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return false, fmt.Errorf("buildcache: %w", err)
	}
	note, err := fill(tmp)
	if err != nil {
		return false, err
	}
	if err := os.WriteFile(filepath.Join(tmp, ".complete"), []byte(note+"\n"), 0o644); err != nil {
		return false, fmt.Errorf("buildcache: %w", err)
	}
	_ = os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		return false, fmt.Errorf("buildcache: %w", err)
	}
	return true, nil
}

// HashTree hashes every regular file under dir (relative path, length and
// content) plus the extra strings, as hex SHA-256.
func HashTree(dir string, extra ...string) (string, error) {
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(h, "%s\x00%d\x00", rel, len(b))
		h.Write(b)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("buildcache: hash %s: %w", dir, err)
	}
	for _, e := range extra {
		fmt.Fprintf(h, "%s\x00", e)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// AllExist reports whether every path exists.
func AllExist(paths ...string) bool {
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			return false
		}
	}
	return true
}

// Lock takes an exclusive flock on path, creating the file, and waits for
// it; call the returned func to release it. Parallel test binaries (go
// test runs packages in parallel) then build each thing once.
func Lock(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("buildcache: lock %s: %w", path, err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("buildcache: lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

func hint(h string) string {
	if h == "" {
		return ""
	}
	return " (" + h + ")"
}

func logf(f func(string, ...any), format string, args ...any) {
	if f != nil {
		f(format, args...)
	}
}
