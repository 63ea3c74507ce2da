package cgroup

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/strata-nri/strata/internal/safetext"
)

var (
	// ErrVanished reports that a cgroup directory no longer exists, usually
	// because its container exited between listing and acting. Callers that
	// sweep many cgroups test for it with errors.Is and skip the cgroup.
	ErrVanished = errors.New("cgroup vanished")

	// ErrNotSupported reports that the hierarchy or kernel has no file for a
	// value (memory.high on cgroup v1, cpu.idle before Linux 5.15, a
	// controller that is not mounted or not enabled).
	ErrNotSupported = errors.New("not supported by this cgroup hierarchy")

	// ErrEscapesRoot reports a cgroups path that would leave the hierarchy
	// root through "..".
	ErrEscapesRoot = errors.New("cgroups path escapes the hierarchy root")

	// ErrInvalidPath reports a cgroups path in neither the cgroupfs style nor
	// the systemd "slice:prefix:name" style.
	ErrInvalidPath = errors.New("invalid cgroups path")

	// ErrNoController reports a controller that is not mounted (v1) or not
	// available (v2).
	ErrNoController = errors.New("cgroup controller not available")

	// ErrMalformedMountinfo reports a mountinfo file that cannot be parsed or
	// that shows no cgroup mount at all.
	ErrMalformedMountinfo = errors.New("malformed mountinfo")
)

// FileError is the error of reading, parsing or writing one cgroup file. It
// names the operation, the file and the value involved.
type FileError struct {
	Op    string // "read", "parse" or "write"
	Path  string // absolute path of the cgroup file
	Value string // value written, or text that failed to parse
	Err   error
}

func (e *FileError) Error() string {
	switch e.Op {
	case "write":
		return fmt.Sprintf("write %s to %s: %s", safetext.Quote(e.Value), e.Path, reason(e.Err))
	case "parse":
		return fmt.Sprintf("parse %s: value %s: %s", e.Path, safetext.Quote(e.Value), reason(e.Err))
	default:
		return fmt.Sprintf("%s %s: %s", e.Op, e.Path, reason(e.Err))
	}
}

func (e *FileError) Unwrap() error { return e.Err }

// maxReason bounds the text of a FileError's cause.
const maxReason = 4 * safetext.MaxLen

// reason is err's text without the input it echoes (Value already shows
// that, quoted and cut): strconv's errors repeat the whole number they
// failed on, so a 2 KiB line of a stat file came back twice, once uncut.
// Whatever else a cause says is cut to maxReason bytes.
func reason(err error) string {
	if err == nil {
		return "<nil>"
	}
	s := err.Error()
	var ne *strconv.NumError
	if errors.As(err, &ne) {
		s = strings.Replace(s, ne.Error(), "strconv."+ne.Func+": "+ne.Err.Error(), 1)
	}
	if len(s) <= maxReason {
		return s
	}
	cut := maxReason
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…(+" + strconv.Itoa(len(s)-cut) + " bytes)"
}
