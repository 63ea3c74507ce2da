package rdt

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	grdt "github.com/intel/goresctrl/pkg/rdt"

	"github.com/strata-nri/strata/rdt/rdttest"
)

// cat builds a goresctrl cache config from key, value pairs.
func cat(kv ...string) grdt.CatConfig {
	c := grdt.CatConfig{}
	for i := 0; i < len(kv); i += 2 {
		c[kv[i]] = grdt.CacheIdCatConfig{Unified: grdt.CacheProportion(kv[i+1])}
	}
	return c
}

func mbConfig(key string, vals ...string) grdt.MbaConfig {
	var props grdt.CacheIdMbaConfig
	for _, v := range vals {
		props = append(props, grdt.MbProportion(v))
	}
	return grdt.MbaConfig{key: props}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func resolve(t *testing.T, r *Resctrl, class string, spec ClassSpec) Schemata {
	t.Helper()
	s, err := r.Resolve(class, spec)
	if err != nil {
		t.Fatalf("resolve %s: %v", class, err)
	}
	return s
}

func TestResolveShares(t *testing.T) {
	r := open(t, rdttest.IntelL3MBA) // 11 ways, MB in 10 % steps from 10 %
	for _, tc := range []struct {
		spec ClassSpec
		want string
	}{
		// goresctrl's arithmetic: 50 % of 11 ways is ways 0-5.
		{ClassSpec{L3: cat("all", "50%")}, "L3:0=3f;1=3f\n"},
		{ClassSpec{L3: cat("all", "50-100%")}, "L3:0=7e0;1=7e0\n"},
		{ClassSpec{L3: cat("all", "0-3", "1", "8-10")}, "L3:0=f;1=700\n"},
		{ClassSpec{L3: cat("all", "0x3f0")}, "L3:0=3f0;1=3f0\n"},
		{ClassSpec{L3: cat("0", "10%")}, "L3:0=1;1=7ff\n"},
		{ClassSpec{MB: mbConfig("all", "45%")}, "MB:0=50;1=50\n"},
		{ClassSpec{MB: mbConfig("all", "1000MBps", "80%")}, "MB:0=80;1=80\n"},
		{ClassSpec{L3: cat("all", "100%"), MB: grdt.MbaConfig{"all": {"30%"}, "1": {"100%"}}}, "L3:0=7ff;1=7ff\nMB:0=30;1=100\n"},
	} {
		if got := resolve(t, r, "c", tc.spec).String(); got != tc.want {
			t.Errorf("%+v: got %q, want %q", tc.spec, got, tc.want)
		}
	}
}

// A latency-critical class with exclusive top ways, batch sharing the rest
// with the default group: the files hold exactly what the kernel is asked.
func TestApplyIntelByteForByte(t *testing.T) {
	r := open(t, rdttest.IntelL3MBA)
	batch := resolve(t, r, "batch", ClassSpec{L3: cat("all", "0-3"), MB: mbConfig("all", "40%")})
	err := r.Apply(map[string]ClassConfig{
		"":      {Schemata: Schemata{L3: {0: 0xff, 1: 0xff}}},
		"lc":    {Schemata: Schemata{L3: {0: 0x700, 1: 0x700}, MB: {0: 100, 1: 100}}, Exclusive: true},
		"batch": {Schemata: batch},
	})
	if err != nil {
		t.Fatal(err)
	}
	root := r.Root()
	for file, want := range map[string]string{
		"schemata":                 "L3:0=ff;1=ff\n",
		"strata-lc/schemata":       "L3:0=700;1=700\nMB:0=100;1=100\n",
		"strata-lc/mode":           "exclusive",
		"strata-batch/schemata":    "L3:0=f;1=f\nMB:0=40;1=40\n",
		"info/last_cmd_status":     "ok\n",
		"strata-batch/../schemata": "L3:0=ff;1=ff\n",
	} {
		if got := readFile(t, filepath.Join(root, file)); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	classes, err := r.Classes()
	if err != nil || len(classes) != 2 || classes[0].Name() != "batch" || classes[1].Name() != "lc" || !classes[1].Exclusive() {
		t.Fatalf("classes %v, %v", classes, err)
	}

	// Batch shrinks to two ways and 20 %; lc grows by one: batch's write
	// goes first so lc's never overlaps.
	err = r.Apply(map[string]ClassConfig{
		"lc":    {Schemata: Schemata{L3: {0: 0x780, 1: 0x780}}, Exclusive: true},
		"":      {Schemata: Schemata{L3: {0: 0x7f, 1: 0x7f}}},
		"batch": {Schemata: Schemata{L3: {0: 0x3, 1: 0x3}, MB: {0: 20, 1: 20}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(root, "strata-lc/schemata")); got != "L3:0=780;1=780\n" {
		t.Errorf("lc schemata %q", got)
	}
	if got := readFile(t, filepath.Join(root, "strata-batch/schemata")); got != "L3:0=3;1=3\nMB:0=20;1=20\n" {
		t.Errorf("batch schemata %q", got)
	}

	// lc stops being exclusive.
	if err := r.Apply(map[string]ClassConfig{"lc": {Schemata: Schemata{L3: {0: 0x7ff, 1: 0x7ff}}}}); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(root, "strata-lc/mode")); got != "shareable" {
		t.Errorf("lc mode %q, want shareable", got)
	}
}

func TestApplyCDP(t *testing.T) {
	r := open(t, rdttest.IntelCDP) // 12 ways
	spec := ClassSpec{L3: grdt.CatConfig{
		"all": {Unified: "50%"},
		"1":   {Unified: "100%", Code: "0-3", Data: "4-11"},
	}}
	if err := r.Apply(map[string]ClassConfig{"db": {Schemata: resolve(t, r, "db", spec)}}); err != nil {
		t.Fatal(err)
	}
	if got, want := readFile(t, filepath.Join(r.Root(), "strata-db/schemata")), "L3CODE:0=3f;1=f\nL3DATA:0=3f;1=ff0\n"; got != want {
		t.Fatalf("schemata %q, want %q", got, want)
	}
	// A unified L3 line cannot be written on a CDP host.
	err := r.Apply(map[string]ClassConfig{"x": {Schemata: Schemata{L3: {0: 0xf}}}})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "CDP is enabled") {
		t.Fatalf("got %v", err)
	}
	// An exclusive code mask must stay off the others' data masks too.
	err = r.Apply(map[string]ClassConfig{
		"":   {Schemata: Schemata{L3Code: {0: 0xff, 1: 0xff}, L3Data: {0: 0xff, 1: 0xff}}},
		"db": {Schemata: Schemata{L3Code: {0: 0xf00, 1: 0xf00}, L3Data: {0: 0x80, 1: 0x800}}, Exclusive: true},
	})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `"db"`) || !strings.Contains(err.Error(), "0x80") {
		t.Fatalf("got %v, want an overlap error naming db and 0x80", err)
	}
}

func TestApplyAMD(t *testing.T) {
	r := open(t, rdttest.AMDEPYC)
	s := resolve(t, r, "batch", ClassSpec{
		L3: cat("all", "100%", "16-23", "0-7"),
		MB: grdt.MbaConfig{"all": {"1000MBps"}, "16-23": {"50%"}},
	})
	if err := r.Apply(map[string]ClassConfig{"batch": {Schemata: s}}); err != nil {
		t.Fatal(err)
	}
	want := "L3:0=ffff;1=ffff;2=ffff;3=ffff;4=ffff;5=ffff;6=ffff;7=ffff;16=ff;17=ff;18=ff;19=ff;20=ff;21=ff;22=ff;23=ff\n" +
		"MB:0=8;1=8;2=8;3=8;4=8;5=8;6=8;7=8;16=1024;17=1024;18=1024;19=1024;20=1024;21=1024;22=1024;23=1024\n"
	if got := readFile(t, filepath.Join(r.Root(), "strata-batch/schemata")); got != want {
		t.Fatalf("schemata\n%s\nwant\n%s", got, want)
	}
	// Cache id 8 does not exist (ids jump from 7 to 16).
	_, err := r.Resolve("batch", ClassSpec{L3: cat("8", "50%")})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "cache id 8") || !strings.Contains(err.Error(), "0-7,16-23") {
		t.Fatalf("got %v", err)
	}
	// AMD allows empty and sparse masks, and MB 0..2048.
	if err := r.Validate("x", Schemata{L3: {0: 0, 16: 0xf0f}, MB: {0: 0, 16: 2048}}); err != nil {
		t.Fatal(err)
	}
	if err := r.Validate("x", Schemata{MB: {0: 2049}}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `"2049"`) {
		t.Fatalf("got %v", err)
	}
}

func TestSparseMasks(t *testing.T) {
	sparse := open(t, rdttest.IntelSparse)
	if s := resolve(t, sparse, "c", ClassSpec{L3: cat("all", "0-2,5-6")}); s.String() != "L3:0=67;1=67\n" {
		t.Fatalf("sparse host: %q", s)
	}
	_, err := open(t, rdttest.IntelL3MBA).Resolve("c", ClassSpec{L3: cat("all", "0-2,5-6")})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "not contiguous") || !strings.Contains(err.Error(), "0x67") {
		t.Fatalf("contiguous host: %v", err)
	}
}

// Bad input is refused with the class and value named, and nothing on disk
// changes.
func TestApplyBadInput(t *testing.T) {
	haswell := rdttest.IntelL3MBA // Haswell-EP: 20 ways, min_cbm_bits 2, shareable 0xc0000
	haswell.Caches = []rdttest.Cache{{Resource: "L3", CBMMask: 0xfffff, MinCBMBits: 2, ShareableBits: 0xc0000, NumCLOSIDs: 16, IDs: []int{0, 1}}}
	r := open(t, haswell)
	good := map[string]ClassConfig{
		"":      {Schemata: Schemata{L3: {0: 0x00fff, 1: 0x00fff}}},
		"lc":    {Schemata: Schemata{L3: {0: 0x3f000, 1: 0x3f000}}, Exclusive: true},
		"batch": {Schemata: Schemata{L3: {0: 0xff, 1: 0xff}, MB: {0: 50, 1: 50}}},
	}
	if err := r.Apply(good); err != nil {
		t.Fatal(err)
	}
	snapshot := func() map[string]string {
		out := map[string]string{}
		filepath.Walk(r.Root(), func(path string, info os.FileInfo, err error) error {
			if err == nil && !info.IsDir() {
				out[path] = readFile(t, path)
			} else if err == nil {
				out[path] = "dir"
			}
			return nil
		})
		return out
	}
	before := snapshot()
	for _, tc := range []struct {
		name  string
		cfgs  map[string]ClassConfig
		spec  *ClassSpec
		words []string
	}{
		{"overlapping exclusive", map[string]ClassConfig{"web": {Schemata: Schemata{L3: {0: 0x03000, 1: 0x00f00}}}}, nil,
			[]string{`"lc"`, "0x3f000", `"web"`}},
		{"exclusive over the default group", map[string]ClassConfig{"db": {Schemata: Schemata{L3: {0: 0x00f00}}, Exclusive: true}}, nil,
			[]string{`"db"`, "default group", "0xf00"}},
		{"exclusive over shareable bits", map[string]ClassConfig{"lc": {Schemata: Schemata{L3: {0: 0xff000}}, Exclusive: true}}, nil,
			[]string{`"lc"`, "shareable_bits", "0xff000"}},
		{"wider than the cache", map[string]ClassConfig{"batch": {Schemata: Schemata{L3: {1: 0x1fffff}}}}, nil,
			[]string{`"batch"`, "cache id 1", "0x1fffff", "cbm_mask is 0xfffff"}},
		{"below min bits", map[string]ClassConfig{"batch": {Schemata: Schemata{L3: {0: 0x1}}}}, nil,
			[]string{`"batch"`, "0x1", "min_cbm_bits=2"}},
		{"empty mask", map[string]ClassConfig{"batch": {Schemata: Schemata{L3: {0: 0}}}}, nil,
			[]string{`"batch"`, "empty mask"}},
		{"unknown cache id", map[string]ClassConfig{"batch": {Schemata: Schemata{L3: {2: 0xff}}}}, nil,
			[]string{`"batch"`, "cache id 2", "0-1"}},
		{"MBA above range", map[string]ClassConfig{"batch": {Schemata: Schemata{MB: {0: 110}}}}, nil,
			[]string{`"batch"`, `"110"`, "[10, 100]"}},
		{"MBA off the step", map[string]ClassConfig{"batch": {Schemata: Schemata{MB: {0: 55}}}}, nil,
			[]string{`"batch"`, `"55"`, "bandwidth_gran=10"}},
		{"MBA below min", nil, &ClassSpec{MB: mbConfig("all", "5%")}, []string{`"batch"`, "5%", "min_bandwidth=10"}},
		{"MBA not a number", nil, &ClassSpec{MB: mbConfig("all", "fast")}, []string{`"batch"`, "fast"}},
		{"bad share", nil, &ClassSpec{L3: cat("all", "120%")}, []string{`"batch"`, "120%"}},
		{"bad cache id list", nil, &ClassSpec{L3: cat("zero", "50%")}, []string{`"batch"`, "zero"}},
		{"huge cache id list", nil, &ClassSpec{L3: cat("0-4000000000", "50%")}, []string{`"batch"`, "4000000000", "4095"}},
		{"way beyond the cache", nil, &ClassSpec{L3: cat("all", "0-100000")}, []string{`"batch"`, "0-100000"}},
		{"bad class name", map[string]ClassConfig{"../etc": {Schemata: Schemata{L3: {0: 0xff}}}}, nil, []string{"../etc"}},
		{"resource the host lacks", map[string]ClassConfig{"batch": {Schemata: Schemata{L2: {0: 0xf}}}}, nil, []string{`"batch"`, "L2", "L3, MB"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.spec != nil {
				var s Schemata
				if s, err = r.Resolve("batch", *tc.spec); err == nil {
					t.Fatalf("resolved to %q", s)
				}
			} else {
				err = r.Apply(tc.cfgs)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
			for _, w := range tc.words {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %s", err, w)
				}
			}
			after := snapshot()
			for path, v := range before {
				if after[path] != v {
					t.Errorf("%s changed: %q -> %q", path, v, after[path])
				}
			}
			if len(after) != len(before) {
				t.Errorf("%d files before, %d after", len(before), len(after))
			}
		})
	}
}

// When the kernel refuses a write after validation passed (here: a file
// that cannot be written), what was written is rolled back and new groups
// are removed.
func TestApplyRollsBack(t *testing.T) {
	r := open(t, rdttest.IntelL3MBA)
	if err := r.Apply(map[string]ClassConfig{
		"batch": {Schemata: Schemata{L3: {0: 0xff, 1: 0xff}}},
		"web":   {Schemata: Schemata{L3: {0: 0xff, 1: 0xff}}},
	}); err != nil {
		t.Fatal(err)
	}
	// The kernel refuses web's write, as it would a mask overlapping a
	// group it knows to be exclusive.
	web := filepath.Join(r.Root(), "strata-web", "schemata")
	write := r.write
	r.write = func(path, value string) error {
		if path == web {
			os.WriteFile(filepath.Join(r.Root(), "info", "last_cmd_status"), []byte("overlaps with exclusive group\n"), 0o644)
			return &os.PathError{Op: "write", Path: path, Err: syscall.EINVAL}
		}
		return write(path, value)
	}
	// batch narrows first (written, then rolled back), web fails.
	err := r.Apply(map[string]ClassConfig{
		"batch": {Schemata: Schemata{L3: {0: 0xf, 1: 0xf}}},
		"web":   {Schemata: Schemata{L3: {0: 0x7ff, 1: 0x7ff}}},
		"new":   {Schemata: Schemata{L3: {0: 0x1, 1: 0x1}}},
	})
	if !errors.Is(err, syscall.EINVAL) || !strings.Contains(err.Error(), `class "web"`) || !strings.Contains(err.Error(), web) ||
		!strings.Contains(err.Error(), "kernel: overlaps with exclusive group") {
		t.Fatalf("got %v, want a write error naming web and its file", err)
	}
	if got := readFile(t, filepath.Join(r.Root(), "strata-batch", "schemata")); got != "L3:0=ff;1=ff\n" {
		t.Errorf("batch schemata %q, want the old one back", got)
	}
	if _, err := os.Stat(filepath.Join(r.Root(), "strata-new")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("strata-new left behind: %v", err)
	}

	// A new class that cannot be created (mkdir fails) removes the other
	// new class made in the same Apply.
	r.write = write
	if err := os.WriteFile(filepath.Join(r.Root(), "strata-zz"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err = r.Apply(map[string]ClassConfig{
		"aa": {Schemata: Schemata{L3: {0: 0x1, 1: 0x1}}},
		"zz": {Schemata: Schemata{L3: {0: 0x1, 1: 0x1}}},
	})
	if err == nil || !strings.Contains(err.Error(), "mkdir") {
		t.Fatalf("got %v, want a mkdir error", err)
	}
	if _, err := os.Stat(filepath.Join(r.Root(), "strata-aa")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("strata-aa left behind: %v", err)
	}
}

func TestCLOSIDBudget(t *testing.T) {
	r := open(t, rdttest.IntelL3MBA) // 8 CLOSIDs (MBA's), one for the default group
	// Another agent's group takes one.
	if err := os.Mkdir(filepath.Join(r.Root(), "other-agent"), 0o755); err != nil {
		t.Fatal(err)
	}
	one := Schemata{L3: {0: 0x1, 1: 0x1}}
	for _, name := range []string{"c1", "c2", "c3", "c4", "c5", "c6"} {
		if err := r.Apply(map[string]ClassConfig{name: {Schemata: one}}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	err := r.Apply(map[string]ClassConfig{"c7": {Schemata: one}})
	var be *BudgetError
	if !errors.As(err, &be) || !errors.Is(err, ErrBudget) || be.Kind != "CLOSID" || be.InUse != 8 || be.Limit != 8 || !strings.Contains(err.Error(), `"c7"`) {
		t.Fatalf("got %v, want a CLOSID budget error for c7 (8 of 8 in use)", err)
	}
	if _, err := os.Stat(filepath.Join(r.Root(), "strata-c7")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("strata-c7 was created: %v", err)
	}
	// Updating existing classes needs no CLOSID; deleting one frees one.
	if err := r.Apply(map[string]ClassConfig{"c1": {Schemata: Schemata{L3: {0: 0x3}}}}); err != nil {
		t.Fatal(err)
	}
	c1, err := r.Class("c1")
	if err != nil {
		t.Fatal(err)
	}
	if err := c1.Delete(); err != nil {
		t.Fatal(err)
	}
	if err := r.Apply(map[string]ClassConfig{"c7": {Schemata: one}}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Class("c1"); !errors.Is(err, ErrNoClass) {
		t.Fatalf("deleted class: %v", err)
	}
}

func TestTasks(t *testing.T) {
	r := open(t, rdttest.IntelL3MBA)
	if err := r.Apply(map[string]ClassConfig{"batch": {Schemata: Schemata{MB: {0: 50, 1: 50}}}}); err != nil {
		t.Fatal(err)
	}
	batch, err := r.Class("batch")
	if err != nil {
		t.Fatal(err)
	}
	// Task 300 exits during the move: the kernel answers ESRCH.
	real := r.writeTask
	r.writeTask = func(path string, pid int) error {
		if pid == 300 {
			return &os.PathError{Op: "write", Path: path, Err: syscall.ESRCH}
		}
		return real(path, pid)
	}
	gone, err := batch.AddTasks(100, 200, 300, 400)
	if err != nil || len(gone) != 1 || gone[0] != 300 {
		t.Fatalf("gone %v, err %v; want [300], nil", gone, err)
	}
	if got := readFile(t, filepath.Join(batch.Dir(), "tasks")); got != "100\n200\n400\n" {
		t.Fatalf("tasks %q", got)
	}
	if _, err := batch.AddTasks(-1); err == nil || !strings.Contains(err.Error(), `"-1"`) {
		t.Fatalf("AddTasks(-1): %v", err)
	}
	for pid, want := range map[int]string{200: "batch", 999: ""} {
		name, ours, err := r.ClassOf(pid)
		if err != nil || name != want || !ours {
			t.Errorf("ClassOf(%d) = %q %v %v, want %q", pid, name, ours, err, want)
		}
	}
	// Where the kernel has /proc/PID/cpu_resctrl_groups it is read instead.
	os.MkdirAll(filepath.Join(r.proc, "777"), 0o755)
	os.WriteFile(filepath.Join(r.proc, "777", "cpu_resctrl_groups"), []byte("res:strata-batch\nmon:c1\n"), 0o644)
	if ctrl, mon, err := r.TaskGroup(777); err != nil || ctrl != "strata-batch" || mon != "c1" {
		t.Fatalf("TaskGroup(777) = %q %q %v", ctrl, mon, err)
	}
	os.WriteFile(filepath.Join(r.proc, "777", "cpu_resctrl_groups"), []byte("res:/\nmon:\n"), 0o644)
	if ctrl, mon, err := r.TaskGroup(777); err != nil || ctrl != "" || mon != "" {
		t.Fatalf("TaskGroup(777) = %q %q %v", ctrl, mon, err)
	}
}

func TestAddProcessesMovesEveryThread(t *testing.T) {
	r := open(t, rdttest.IntelL3MBA)
	if err := r.Apply(map[string]ClassConfig{"batch": {Schemata: Schemata{MB: {0: 50}}}}); err != nil {
		t.Fatal(err)
	}
	for _, tid := range []string{"500", "501", "502", "600"} {
		pid := map[bool]string{true: "600", false: "500"}[tid == "600"]
		os.MkdirAll(filepath.Join(r.proc, pid, "task", tid), 0o755)
	}
	batch, _ := r.Class("batch")
	gone, err := batch.AddProcesses(500, 600, 700) // 700 has exited
	if err != nil || len(gone) != 1 || gone[0] != 700 {
		t.Fatalf("gone %v err %v", gone, err)
	}
	if got := readFile(t, filepath.Join(batch.Dir(), "tasks")); got != "500\n501\n502\n600\n" {
		t.Fatalf("tasks %q", got)
	}
}
