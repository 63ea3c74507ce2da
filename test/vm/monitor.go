package vm

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// A guest whose kernel wedges with every CPU spinning and interrupts off
// prints nothing: the TCG guest has no PMU, so no NMI watchdog, and the
// soft-lockup and RCU-stall detectors need a timer interrupt on some CPU.
// The host then asks qemu itself where the CPUs are: the monitor's
// registers of each vCPU and the kernel-text words on its stack, named
// with the kernel's System.map when it has symbols (Debian ships a stub;
// the real one is in linux-image-<release>-dbg), else as addresses, which
// nokaslr keeps equal to those of the guest's /proc/kallsyms.

// hmp is a connection to qemu's human monitor.
type hmp struct {
	conn net.Conn
	r    *bufio.Reader
}

const hmpPrompt = "(qemu) "

func dialHMP(path string) (*hmp, error) {
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("vm: monitor: %w", err)
	}
	m := &hmp{conn: c, r: bufio.NewReader(c)}
	if _, err := m.readPrompt(); err != nil { // the banner
		c.Close()
		return nil, err
	}
	return m, nil
}

func (m *hmp) Close() error { return m.conn.Close() }

var ansiEscape = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)

func (m *hmp) readPrompt() (string, error) {
	_ = m.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	var b strings.Builder
	for {
		c, err := m.r.ReadByte()
		if err != nil {
			return b.String(), fmt.Errorf("vm: monitor: %w", err)
		}
		b.WriteByte(c)
		if strings.HasSuffix(b.String(), hmpPrompt) {
			s := strings.TrimSuffix(b.String(), hmpPrompt)
			return strings.ReplaceAll(ansiEscape.ReplaceAllString(s, ""), "\r", ""), nil
		}
	}
}

// cmd runs one monitor command and returns its output (without the echo
// of the command line).
func (m *hmp) cmd(c string) (string, error) {
	_ = m.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := m.conn.Write([]byte(c + "\n")); err != nil {
		return "", fmt.Errorf("vm: monitor: %w", err)
	}
	out, err := m.readPrompt()
	if i := strings.IndexByte(out, '\n'); i >= 0 {
		out = out[i+1:]
	}
	return out, err
}

// vcpu is one guest CPU's state as the monitor shows it.
type vcpu struct {
	index    int
	rip, rsp uint64
	halted   bool // HLT=1: idle, waiting for an interrupt
	user     bool // CPL=3
}

var regRE = regexp.MustCompile(`\b(RIP|RSP|HLT|CPL)=([0-9a-f]+)`)

// parseRegisters reads `info registers -a`.
func parseRegisters(out string) []vcpu {
	var cpus []vcpu
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "CPU#"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(rest))
			if err == nil {
				cpus = append(cpus, vcpu{index: n})
			}
			continue
		}
		if len(cpus) == 0 {
			continue
		}
		c := &cpus[len(cpus)-1]
		for _, m := range regRE.FindAllStringSubmatch(line, -1) {
			v, _ := strconv.ParseUint(m[2], 16, 64)
			switch m[1] {
			case "RIP":
				c.rip = v
			case "RSP":
				c.rsp = v
			case "HLT":
				c.halted = v == 1
			case "CPL":
				c.user = v == 3
			}
		}
	}
	return cpus
}

// parseWords reads the 64-bit words of an `x/Ngx` dump.
func parseWords(out string) []uint64 {
	var w []uint64
	for _, line := range strings.Split(out, "\n") {
		_, vals, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		for _, f := range strings.Fields(vals) {
			if v, err := strconv.ParseUint(strings.TrimPrefix(f, "0x"), 16, 64); err == nil {
				w = append(w, v)
			}
		}
	}
	return w
}

// symbols names kernel text addresses from a System.map.
type symbols struct {
	addrs      []uint64
	names      []string
	stext, end uint64
}

func loadSymbols(path string) (*symbols, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("vm: %w", err)
	}
	defer f.Close()
	s := &symbols{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 3 || !strings.ContainsAny(fs[1], "tTwW") {
			continue
		}
		a, err := strconv.ParseUint(fs[0], 16, 64)
		if err != nil {
			continue
		}
		switch fs[2] {
		case "_stext":
			s.stext = a
		case "_etext":
			s.end = a
		}
		s.addrs = append(s.addrs, a)
		s.names = append(s.names, fs[2])
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("vm: %s: %w", path, err)
	}
	idx := make([]int, len(s.addrs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(i, j int) bool { return s.addrs[idx[i]] < s.addrs[idx[j]] })
	addrs, names := make([]uint64, len(idx)), make([]string, len(idx))
	for i, k := range idx {
		addrs[i], names[i] = s.addrs[k], s.names[k]
	}
	s.addrs, s.names = addrs, names
	if s.stext == 0 || s.end <= s.stext {
		return nil, fmt.Errorf("vm: %s has no kernel symbols (_stext, _etext)", path)
	}
	return s, nil
}

// The x86-64 kernel image's virtual range (Documentation/x86/x86_64/mm.rst),
// used without symbols.
const kernelTextStart, kernelTextEnd = 0xffffffff80000000, 0xffffffffa0000000

// name is "func+0xoff" for an address in kernel text, "" otherwise.
// Without symbols (s nil) it is the address in hex.
func (s *symbols) name(a uint64) string {
	if s == nil {
		if a >= kernelTextStart && a < kernelTextEnd {
			return fmt.Sprintf("0x%x", a)
		}
		return ""
	}
	if a < s.stext || a >= s.end {
		return ""
	}
	i := sort.Search(len(s.addrs), func(i int) bool { return s.addrs[i] > a }) - 1
	if i < 0 {
		return ""
	}
	return fmt.Sprintf("%s+0x%x", s.names[i], a-s.addrs[i])
}

// QemuStatus asks the monitor at sock for the guest's run state as qemu
// sees it (`info status`, the human monitor's query-status): "running"
// for a guest qemu still executes, "paused (internal-error)" or
// "paused (guest-panicked)" for one it stopped, "paused" for one a
// monitor stopped.
func QemuStatus(sock string) (string, error) {
	m, err := dialHMP(sock)
	if err != nil {
		return "", err
	}
	defer m.Close()
	out, err := m.cmd("info status")
	if err != nil {
		return "", err
	}
	st, ok := strings.CutPrefix(strings.TrimSpace(out), "VM status: ")
	if !ok {
		return "", fmt.Errorf("vm: monitor: unexpected `info status` output %q", out)
	}
	return st, nil
}

// stackWords is how much of each CPU's stack is scanned (8 bytes each).
const stackWords = 192

// DumpCPUs asks the monitor at sock where each guest CPU is, and returns
// one line per CPU: its state, the function it runs, and the kernel
// functions whose addresses are on its stack (innermost first, like the
// kernel's own "?" entries: a scan, not an unwinding, so stale frames may
// appear). sysmap names kernel addresses.
func DumpCPUs(sock, sysmap string) ([]string, error) {
	syms, symErr := loadSymbols(sysmap)
	m, err := dialHMP(sock)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	out, err := m.cmd("info registers -a")
	if err != nil {
		return nil, err
	}
	cpus := parseRegisters(out)
	if len(cpus) == 0 {
		return nil, fmt.Errorf("vm: monitor: no CPUs in `info registers -a`: %q", out)
	}
	var lines []string
	if symErr != nil {
		lines = append(lines, fmt.Sprintf("(addresses unnamed: %v)", symErr))
		syms = nil
	}
	for _, c := range cpus {
		state := "kernel"
		switch {
		case c.user:
			state = "user mode"
		case c.halted:
			state = "idle (HLT)"
		}
		where := syms.name(c.rip)
		if where == "" {
			where = fmt.Sprintf("0x%x", c.rip)
		}
		line := fmt.Sprintf("CPU %d: %s at %s", c.index, state, where)
		if !c.user {
			if _, err := m.cmd(fmt.Sprintf("cpu %d", c.index)); err == nil {
				if out, err := m.cmd(fmt.Sprintf("x/%dgx 0x%x", stackWords, c.rsp)); err == nil {
					var frames []string
					for _, w := range parseWords(out) {
						if n := syms.name(w); n != "" {
							frames = append(frames, n)
						}
					}
					if len(frames) > 0 {
						line += "; stack: " + strings.Join(frames, " < ")
					}
				}
			}
		}
		lines = append(lines, line)
	}
	return lines, nil
}
