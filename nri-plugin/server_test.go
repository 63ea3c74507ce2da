package nriplugin

import (
	"bytes"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Listen on a unix socket replaces only a stale socket: never a file,
// never a socket something still answers on.
func TestListenUnixReplacesOnlyStaleSockets(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "precious")
	if err := os.WriteFile(file, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen("unix:"+file, quietLogger()); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("over a regular file: %v, want a refusal", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "keep" {
		t.Errorf("regular file was replaced")
	}

	live := filepath.Join(dir, "live.sock")
	other, err := net.Listen("unix", live)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := Listen("unix:"+live, quietLogger()); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("over a live socket: %v, want a refusal", err)
	}

	stale := filepath.Join(dir, "stale.sock")
	ul, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ul.(*net.UnixListener).SetUnlinkOnClose(false)
	ul.Close() // the socket file stays, nobody listens: stale
	l, err := Listen("unix:"+stale, quietLogger())
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	defer l.Close()
	fi, err := os.Stat(stale)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, %v; want 0600", fi.Mode(), err)
	}
}

// The socket has its final mode from bind on: with a permissive umask the
// file still never shows more than 0600. (bind creates the file with
// 0777 &^ umask; Chmod afterwards would leave a window.)
func TestListenUnixModeFromBind(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	path := filepath.Join(t.TempDir(), "s.sock")
	umaskMu.Lock()
	// What bind alone would create under umask 0, for comparison.
	probe := filepath.Join(filepath.Dir(path), "probe.sock")
	pl, err := net.Listen("unix", probe)
	umaskMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(probe)
	pl.Close()
	if fi.Mode().Perm()&0o077 == 0 {
		t.Skip("this file system ignores socket modes")
	}
	l, err := bindUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode right after bind %v, %v; want 0600", fi.Mode().Perm(), err)
	}
}

// A TCP address beyond loopback is served, with a warning that the
// endpoints carry no authentication; loopback is not warned about.
func TestListenTCPWarnsBeyondLoopback(t *testing.T) {
	for addr, warn := range map[string]bool{"127.0.0.1:0": false, "[::1]:0": false, "localhost:0": false, "0.0.0.0:0": true, ":0": true} {
		var buf bytes.Buffer
		l, err := Listen(addr, slog.New(slog.NewTextHandler(&buf, nil)))
		if err != nil {
			if strings.Contains(addr, "::1") {
				continue // no IPv6 loopback here
			}
			t.Fatalf("%s: %v", addr, err)
		}
		l.Close()
		if got := strings.Contains(buf.String(), "no authentication"); got != warn {
			t.Errorf("%s: warned %v, want %v (%q)", addr, got, warn, buf.String())
		}
	}
	if _, err := Listen("no-port", quietLogger()); err == nil {
		t.Error("address without port accepted")
	}
}
