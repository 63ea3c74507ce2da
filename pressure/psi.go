package pressure

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/strata-nri/strata/internal/byteconv"
	"github.com/strata-nri/strata/internal/safetext"
)

// PSILine is one line of a PSI file: the share of time in which tasks
// stalled, as the kernel's running averages (percent, 0..100) and as the
// cumulative stall time, which is what rates are computed from.
type PSILine struct {
	Avg10, Avg60, Avg300 float64
	Total                time.Duration
}

// PSIStats is a PSI file: "some" (at least one task stalled) and "full" (all
// non-idle tasks stalled at once). HasFull is false where the kernel shows
// no full line (node-wide CPU before Linux 5.13).
type PSIStats struct {
	Some    PSILine
	Full    PSILine
	HasFull bool
}

// StallRates is the share of wall time (0..1) stalled between two samples,
// from the growth of the PSI totals.
type StallRates struct {
	Some, Full float64
}

// ErrMalformedPSI reports a PSI file that is not "some|full avg10=.. avg60=..
// avg300=.. total=..".
var ErrMalformedPSI = errors.New("malformed PSI line")

// ParsePSI parses the content of a PSI file (a cgroup's io.pressure, say)
// into out without allocating unless it fails; the error names path and the
// line. It serves other samplers that keep their own PSI files open.
func ParsePSI(path string, b []byte, out *PSIStats) error { return parsePSI(path, b, out) }

// parsePSI parses the content of a PSI file without allocating unless it
// fails; the error names the file and the line.
func parsePSI(path string, b []byte, out *PSIStats) error {
	*out = PSIStats{}
	lineNo := 0
	haveSome := false
	for len(b) > 0 {
		lineNo++
		var line []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			line, b = b, nil
		}
		if len(line) == 0 {
			continue
		}
		var dst *PSILine
		switch {
		case bytes.HasPrefix(line, []byte("some ")):
			dst = &out.Some
			haveSome = true
		case bytes.HasPrefix(line, []byte("full ")):
			dst = &out.Full
			out.HasFull = true
		default:
			// Newer kernels may add kinds; unknown lines are not ours.
			continue
		}
		if err := parsePSILine(line[5:], dst); err != nil {
			return fmt.Errorf("parse %s: line %d %s: %w", path, lineNo, safetext.Quote(string(line)), err)
		}
	}
	if !haveSome {
		return fmt.Errorf("parse %s: %w: no \"some\" line", path, ErrMalformedPSI)
	}
	return nil
}

func parsePSILine(fields []byte, dst *PSILine) error {
	var seen int
	for len(fields) > 0 {
		var f []byte
		if i := bytes.IndexByte(fields, ' '); i >= 0 {
			f, fields = fields[:i], fields[i+1:]
		} else {
			f, fields = fields, nil
		}
		eq := bytes.IndexByte(f, '=')
		if eq < 0 {
			return fmt.Errorf("%w: field %s has no '='", ErrMalformedPSI, safetext.Quote(string(f)))
		}
		key, val := f[:eq], f[eq+1:]
		switch string(key) {
		case "avg10", "avg60", "avg300":
			v, ok := byteconv.ParseDecimal(val)
			if !ok {
				return fmt.Errorf("%w: %s=%s is not a decimal", ErrMalformedPSI, key, safetext.Quote(string(val)))
			}
			switch string(key) {
			case "avg10":
				dst.Avg10 = v
			case "avg60":
				dst.Avg60 = v
			default:
				dst.Avg300 = v
			}
			seen++
		case "total":
			v, ok := byteconv.ParseUint(val)
			if !ok {
				return fmt.Errorf("%w: total=%s is not an unsigned integer", ErrMalformedPSI, safetext.Quote(string(val)))
			}
			dst.Total = time.Duration(v) * time.Microsecond
			seen++
		}
	}
	if seen != 4 {
		return fmt.Errorf("%w: want avg10, avg60, avg300 and total", ErrMalformedPSI)
	}
	return nil
}

// stallRates turns the growth of PSI totals over dt into shares of time.
func stallRates(prev, cur *PSIStats, dt time.Duration) StallRates {
	r := StallRates{Some: float64(cur.Some.Total-prev.Some.Total) / float64(dt)}
	if cur.HasFull && prev.HasFull {
		r.Full = float64(cur.Full.Total-prev.Full.Total) / float64(dt)
	}
	return r
}

// psiWentBack reports whether a PSI total decreased (a recreated cgroup).
func psiWentBack(prev, cur *PSIStats) bool {
	return cur.Some.Total < prev.Some.Total || cur.HasFull && prev.HasFull && cur.Full.Total < prev.Full.Total
}
