package vm

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The monitor's output as qemu 7.2 prints it (`info registers -a`, one
// CPU spinning in the kernel, one halted, one in user space; `x/4gx`).
const registersOut = `
CPU#0
RAX=0000000000000001 RBX=ffff888100a3c000 RCX=0000000000000000 RDX=0000000000000001
RSI=0000000000000000 RDI=ffffe8ffffc2b0c0 RBP=ffffc90000003e48 RSP=ffffc90000003e20
RIP=ffffffff81100020 RFL=00000002 [-------] CPL=0 II=0 A20=1 SMM=0 HLT=0
CPU#1
RSP=ffffc9000008fe90
RIP=ffffffff81000010 RFL=00000246 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=1
CPU#2
RSP=00007ffd51bb0f48
RIP=0000000000401000 RFL=00000246 [---Z-P-] CPL=3 II=0 A20=1 SMM=0 HLT=0
`

const wordsOut = `ffffc90000003e20: 0x0000000000000001 0xffffffff81100048
ffffc90000003e30: 0xffff888100a3c000 0xffffffff81000011
`

const sysmap = `ffffffff81000000 T _stext
ffffffff81000000 T default_idle
ffffffff81100000 T native_queued_spin_lock_slowpath
ffffffff81100040 t _raw_spin_lock_irqsave
ffffffff81200000 D some_data
ffffffff81300000 T _etext
`

func TestMonitorParsing(t *testing.T) {
	cpus := parseRegisters(registersOut)
	if len(cpus) != 3 {
		t.Fatalf("%d CPUs parsed, want 3: %+v", len(cpus), cpus)
	}
	if c := cpus[0]; c.rip != 0xffffffff81100020 || c.rsp != 0xffffc90000003e20 || c.halted || c.user {
		t.Errorf("CPU 0: %+v", c)
	}
	if !cpus[1].halted || !cpus[2].user || cpus[2].index != 2 {
		t.Errorf("CPU 1 halted %v, CPU 2 user %v index %d", cpus[1].halted, cpus[2].user, cpus[2].index)
	}
	words := parseWords(wordsOut)
	if len(words) != 4 || words[1] != 0xffffffff81100048 {
		t.Fatalf("words %x", words)
	}
	path := filepath.Join(t.TempDir(), "System.map")
	if err := os.WriteFile(path, []byte(sysmap), 0o644); err != nil {
		t.Fatal(err)
	}
	syms, err := loadSymbols(path)
	if err != nil {
		t.Fatal(err)
	}
	var named []string
	for _, w := range append([]uint64{cpus[0].rip}, words...) {
		if n := syms.name(w); n != "" {
			named = append(named, n)
		}
	}
	want := "native_queued_spin_lock_slowpath+0x20 _raw_spin_lock_irqsave+0x8 default_idle+0x11"
	if got := strings.Join(named, " "); got != want {
		t.Errorf("named %q, want %q", got, want)
	}
}

// Without symbols (Debian's System.map is a stub) kernel text addresses
// are kept as they are, anything else dropped.
func TestMonitorUnnamed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "System.map")
	if err := os.WriteFile(path, []byte("ffffffffffffffff B The real System.map is in the linux-image-<version>-dbg package\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadSymbols(path); err == nil {
		t.Fatal("a stub System.map was accepted")
	}
	var syms *symbols // what DumpCPUs uses then
	if got := syms.name(0xffffffff81a10cad); got != "0xffffffff81a10cad" {
		t.Errorf("kernel address named %q", got)
	}
	if got := syms.name(0xffa000000009be58); got != "" {
		t.Errorf("stack address kept as %q", got)
	}
}

// fakeMonitor is a stand-in for qemu's monitor that talks as HMP does on
// a unix socket: a banner, the "(qemu) " prompt, each command echoed (with
// the line editor's escapes) before reply's output. It serves one client;
// done closes when that client has gone, and cmds has what it sent.
func fakeMonitor(t *testing.T, reply func(cmd string) string) (sock string, cmds *[]string, done <-chan struct{}) {
	sock = filepath.Join(t.TempDir(), "mon.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	cmds = new([]string)
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		fmt.Fprint(c, "QEMU 7.2.22 monitor - type 'help' for more information\r\n(qemu) ")
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			cmd := sc.Text()
			*cmds = append(*cmds, cmd)
			fmt.Fprintf(c, "%s\x1b[K\r\n%s(qemu) ", cmd, strings.ReplaceAll(reply(cmd), "\n", "\r\n"))
		}
	}()
	return sock, cmds, ch
}

// TestDumpCPUs runs DumpCPUs against fakeMonitor.
func TestDumpCPUs(t *testing.T) {
	dir := t.TempDir()
	sock, sent, done := fakeMonitor(t, func(cmd string) string {
		switch {
		case cmd == "info registers -a":
			return registersOut
		case strings.HasPrefix(cmd, "x/"):
			return wordsOut
		}
		return ""
	})
	path := filepath.Join(dir, "System.map")
	if err := os.WriteFile(path, []byte(sysmap), 0o644); err != nil {
		t.Fatal(err)
	}
	lines, err := DumpCPUs(sock, path)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"CPU 0: kernel at native_queued_spin_lock_slowpath+0x20; stack: _raw_spin_lock_irqsave+0x8 < default_idle+0x11",
		"CPU 1: idle (HLT) at default_idle+0x10; stack: _raw_spin_lock_irqsave+0x8 < default_idle+0x11",
		"CPU 2: user mode at 0x401000",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("dump:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	<-done
	cmds := *sent
	if len(cmds) != 5 || cmds[1] != "cpu 0" || cmds[2] != "x/192gx 0xffffc90000003e20" || cmds[3] != "cpu 1" {
		t.Errorf("commands sent: %q", cmds)
	}
}

// TestQemuStatus reads the run state from `info status` as qemu 7.2's
// monitor prints it, and refuses output that is not one.
func TestQemuStatus(t *testing.T) {
	for reply, want := range map[string]string{
		"VM status: paused (internal-error)\n": "paused (internal-error)",
		"unknown command: 'info status'\n":     "",
	} {
		sock, _, _ := fakeMonitor(t, func(string) string { return reply })
		got, err := QemuStatus(sock)
		switch {
		case want == "" && err == nil:
			t.Errorf("reply %q: accepted as status %q", reply, got)
		case want != "" && (err != nil || got != want):
			t.Errorf("reply %q: status %q, %v; want %q", reply, got, err, want)
		}
	}
}
