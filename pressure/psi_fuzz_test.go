package pressure

import "testing"

// FuzzParsePSI feeds arbitrary PSI file content to the parser: no panic;
// success means a "some" line with finite averages in [0, 100]-ish range
// as the kernel prints them (non-negative, never NaN); failure is a
// bounded error naming the file.
func FuzzParsePSI(f *testing.F) {
	for _, s := range []string{
		"some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
		"some avg10=1.50 avg60=0.30 avg300=0.10 total=123456\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=42\n",
		"full avg10=0.00 avg60=0.00 avg300=0.00 total=1\n", "", "some\n", "some avg10=NaN avg60=0 avg300=0 total=0\n",
		"some avg10=1e9 avg60=0 avg300=0 total=0\n", "some avg10=.5 avg60=5. avg300=0 total=18446744073709551616\n",
		"some avg10=0.00 avg60=0.00 avg300=0.00 total=0 extra=\x00\n",
	} {
		f.Add([]byte(s))
	}
	const path = "/proc/pressure/cpu"
	f.Fuzz(func(t *testing.T, b []byte) {
		var st PSIStats
		err := parsePSI(path, b, &st)
		if err != nil {
			if n := len(err.Error()); n > 1024 {
				t.Fatalf("error of %d bytes", n)
			}
			return
		}
		for _, l := range []PSILine{st.Some, st.Full} {
			for _, v := range []float64{l.Avg10, l.Avg60, l.Avg300} {
				if v != v || v < 0 {
					t.Fatalf("parsed average %v from %q", v, b)
				}
			}
			if l.Total < 0 {
				t.Fatalf("negative total %v from %q", l.Total, b)
			}
		}
	})
}
