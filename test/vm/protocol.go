package vm

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// ManifestPath is where the guest's /init finds its instructions.
const ManifestPath = "/strata/manifest.json"

// EventMarker starts every line the guest's /init prints for the host to
// parse. Everything else on the console (kernel messages, the tests' own
// output, echoed for the log) is ignored by the parser.
const EventMarker = "@@strata-vm "

// Manifest tells the guest's /init what to set up and what to run.
type Manifest struct {
	// Modules are loaded in order (dependencies first) at boot.
	Modules []Module `json:"modules"`
	// Env is added to every run's environment.
	Env []string `json:"env"`
	// Scratch is the block device holding an empty ext4 file system that
	// the guest mounts on /var/tmp and makes the runs' TMPDIR ("": none).
	Scratch string `json:"scratch,omitempty"`
	// Files is the block device holding the read-only ext4 image of
	// Options.DiskFiles, mounted on FilesMount ("": none).
	Files string `json:"files,omitempty"`
	// Network brings up the qemu user network's NIC (Options.Network):
	// GuestIP on eth0, default route via HostIP.
	Network bool `json:"network,omitempty"`
	// ConsoleLoglevel, when not 0, is written to /proc/sys/kernel/printk
	// by /init as soon as it has read the manifest: the kernel boots with
	// its whole log on the console (so a boot that hangs says where), the
	// runs see only its errors.
	ConsoleLoglevel int `json:"console_loglevel,omitempty"`
	// Runs are run one after another: measured tests must not share the
	// guest's CPUs.
	Runs []GuestRun `json:"runs"`
}

// FilesMount is where the guest mounts the disk of Options.DiskFiles.
const FilesMount = "/strata/files"

// The qemu user network (slirp) the guest gets with Options.Network: the
// guest is GuestIP, and HostIP reaches the host's loopback, so a service
// the host binds to 127.0.0.1 is https://10.0.2.2:<port> in the guest.
const (
	GuestIP = "10.0.2.15"
	HostIP  = "10.0.2.2"
)

// Module is a kernel module file in the initramfs and its parameters.
type Module struct {
	Path   string `json:"path"`
	Params string `json:"params,omitempty"`
}

// GuestRun is one test binary run in the guest.
type GuestRun struct {
	// Name identifies the run in events, e.g. the package's import path.
	Name string `json:"name"`
	// Binary is its path in the initramfs.
	Binary string `json:"binary"`
	// Dir is the working directory (the package's source directory with
	// its testdata, as `go test` would use).
	Dir  string   `json:"dir"`
	Args []string `json:"args"`
	// Env is added to the manifest's Env for this run.
	Env []string `json:"env,omitempty"`
	// TimeoutSec kills the binary if it outlives its own -test.timeout.
	TimeoutSec int `json:"timeout_sec"`
}

// Event kinds the guest prints.
const (
	EventBoot   = "boot"   // the guest is set up; Info says what it has
	EventStart  = "start"  // Run started
	EventResult = "result" // Test finished with Result pass, fail or skip
	EventExit   = "exit"   // Run's binary exited with Code
	EventError  = "error"  // set-up failed (Msg); the guest powers off
	EventDone   = "done"   // every run finished; the guest powers off
	EventAlive  = "alive"  // the guest's /init still runs (every HeartbeatInterval); Msg says how the guest is
)

// HeartbeatInterval is how often the guest's /init prints an EventAlive,
// from its first instruction to power-off, whatever its runs print: a
// console quiet for several intervals means the guest itself has stopped
// (its kernel, or /init), not a test that has nothing to say, so the
// host's silence watchdog (Options.Silence) can be minutes, not a run's
// whole timeout.
const HeartbeatInterval = 15 * time.Second

// Event is one parseable line from the guest.
type Event struct {
	Kind    string  `json:"e"`
	Run     string  `json:"run,omitempty"`
	Test    string  `json:"test,omitempty"`
	Result  string  `json:"result,omitempty"`
	Elapsed float64 `json:"elapsed,omitempty"`
	// Output is the tail of the test's output, for failures and skips.
	Output string `json:"output,omitempty"`
	Code   int    `json:"code,omitempty"`
	Msg    string `json:"msg,omitempty"`
	// Info describes the guest at boot (kernel release, controllers, CPUs).
	Info map[string]string `json:"info,omitempty"`
}

// FormatEvent renders ev as a console line.
func FormatEvent(ev Event) string {
	b, _ := json.Marshal(ev)
	return EventMarker + string(b)
}

// ParseEvent returns the event on a console line, if it carries one. Serial
// consoles may put kernel messages or carriage returns on the same line, so
// the marker is searched anywhere in it.
func ParseEvent(line string) (Event, bool, error) {
	i := strings.Index(line, EventMarker)
	if i < 0 {
		return Event{}, false, nil
	}
	var ev Event
	payload := strings.TrimRight(line[i+len(EventMarker):], "\r")
	if err := json.Unmarshal([]byte(payload), &ev); err != nil {
		return Event{}, true, fmt.Errorf("vm: bad event line %q: %w", line, err)
	}
	return ev, true, nil
}

// ParseConsole reads a whole console transcript into a Report.
func ParseConsole(r io.Reader) (*Report, error) {
	rep := NewReport()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		rep.AddLine(sc.Text())
	}
	return rep, sc.Err()
}
