package buildcache

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// toolModule writes a module with one main package, cmd/hello.
func toolModule(t *testing.T, msg string) string {
	t.Helper()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "go.mod"), "module example.com/tool\n\ngo 1.21\n")
	write(t, filepath.Join(dir, "cmd", "hello", "main.go"), "package main\n\nfunc main() { println(\""+msg+"\") }\n")
	return dir
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestBuildModuleBuildsOnceAndAgainWhenTheKeyChanges(t *testing.T) {
	var builds int
	m := Module{
		Name: "hello", Dir: toolModule(t, "hi"), Entry: filepath.Join(t.TempDir(), "1.0"),
		Binaries: []string{"hello"},
		Logf: func(format string, args ...any) {
			if len(format) >= 8 && format[:8] == "building" {
				builds++
			}
		},
	}
	ctx := context.Background()
	build := func(what string, want int) {
		t.Helper()
		if err := BuildModule(ctx, m); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if builds != want {
			t.Fatalf("%s: %d builds so far, want %d", what, builds, want)
		}
		if !AllExist(m.Bin("hello")) {
			t.Fatalf("%s: no %s", what, m.Bin("hello"))
		}
	}
	build("cold", 1)
	build("warm", 1)
	m.Tags = "sometag"
	build("tags changed", 2)
	build("warm with tags", 2)
	write(t, filepath.Join(m.Dir, "cmd", "hello", "main.go"), "package main\n\nfunc main() { println(\"changed\") }\n")
	build("source changed", 3)
	if err := os.Remove(m.Bin("hello")); err != nil {
		t.Fatal(err)
	}
	build("binary removed", 4)
}

func TestBuildModuleFailureKeepsTheOldEntry(t *testing.T) {
	m := Module{Name: "hello", Dir: toolModule(t, "hi"), Entry: filepath.Join(t.TempDir(), "1.0"), Binaries: []string{"hello"}}
	ctx := context.Background()
	if err := BuildModule(ctx, m); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(filepath.Join(m.Entry, "source.sha256"))
	write(t, filepath.Join(m.Dir, "cmd", "hello", "main.go"), "package main\n\nfunc main() { syntax error }\n")
	if err := BuildModule(ctx, m); err == nil {
		t.Fatal("a module that does not compile built")
	}
	if !AllExist(m.Bin("hello")) {
		t.Fatal("a failed build removed the previous binaries")
	}
	if now, _ := os.ReadFile(filepath.Join(m.Entry, "source.sha256")); string(now) != string(old) {
		t.Fatalf("a failed build rewrote the stamp: %q, was %q", now, old)
	}
}

func TestBuildModuleMissingBinaryIsAnError(t *testing.T) {
	m := Module{Name: "hello", Dir: toolModule(t, "hi"), Entry: filepath.Join(t.TempDir(), "1.0"), Binaries: []string{"hello", "absent"}}
	if err := BuildModule(context.Background(), m); err == nil {
		t.Fatal("a build that made no \"absent\" succeeded")
	}
	if _, err := os.Stat(filepath.Join(m.Entry, "source.sha256")); err == nil {
		t.Fatal("an incomplete build was stamped")
	}
}

func TestHashTreeKeysOnPathContentAndExtras(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a"), "x")
	h := func(extra ...string) string {
		s, err := HashTree(dir, extra...)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	base := h("go1", "tags")
	if h("go1", "tags") != base {
		t.Fatal("hash is not stable")
	}
	if h("go1", "other") == base || h("go2", "tags") == base {
		t.Fatal("extras do not enter the hash")
	}
	write(t, filepath.Join(dir, "a"), "y")
	if h("go1", "tags") == base {
		t.Fatal("content does not enter the hash")
	}
	write(t, filepath.Join(dir, "a"), "x")
	if err := os.Rename(filepath.Join(dir, "a"), filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
	if h("go1", "tags") == base {
		t.Fatal("the path does not enter the hash")
	}
}

func TestPopulateFillsOnceAndNeverLeavesHalfAnEntry(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pkg")
	boom := errors.New("download failed")
	if _, err := Populate(dir, func(tmp string) (string, error) {
		write(t, filepath.Join(tmp, "half"), "x")
		return "", boom
	}); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want %v", err, boom)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Fatal("a failed fill left the entry")
	}
	calls := 0
	fill := func(tmp string) (string, error) {
		calls++
		write(t, filepath.Join(tmp, "file"), "content")
		return "pkg_1.deb", nil
	}
	for i, want := range []bool{true, false} {
		filled, err := Populate(dir, fill)
		if err != nil || filled != want {
			t.Fatalf("call %d: filled %v, %v; want %v", i, filled, err, want)
		}
	}
	if calls != 1 {
		t.Fatalf("fill ran %d times, want 1", calls)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, ".complete")); string(b) != "pkg_1.deb\n" {
		t.Fatalf(".complete = %q", b)
	}
	if !AllExist(filepath.Join(dir, "file")) || AllExist(dir+".tmp") {
		t.Fatal("the entry was not renamed into place")
	}
}

func TestLockExcludes(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".lock")
	unlock, err := Lock(path)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan struct{})
	go func() {
		u, err := Lock(path)
		if err == nil {
			u()
		}
		close(got)
	}()
	select {
	case <-got:
		t.Fatal("a second Lock did not wait for the first")
	case <-time.After(200 * time.Millisecond):
	}
	unlock()
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the second Lock did not get the lock after release")
	}
}
