// Command simplot runs a simulation scenario of package isolation/sim and
// draws pool sizes and loads over simulated time as SVG (or PNG, by the
// output's extension), and prints the scenario's figures as a Markdown table.
//
//	go run ./benchmarks/cmd/simplot -scenario diurnal -out docs/simulation-diurnal.svg
//	go run ./benchmarks/cmd/simplot -scenario spike -out docs/simulation-spike.svg
//
// The machine is a cpusettest fixture (-shape, default the 80-CPU
// intel-2s-20c-2t), written to a temporary directory and discovered like a
// real /sys.
package main

import (
	"flag"
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	strcpuset "github.com/strata-nri/strata/cpuset"
	"github.com/strata-nri/strata/cpuset/cpusettest"
	"github.com/strata-nri/strata/isolation/sim"
)

type options struct {
	scenario string
	shape    string
	out      string
	every    time.Duration
	from, to time.Duration
	scale    int
}

func main() {
	var o options
	flag.StringVar(&o.scenario, "scenario", "diurnal", "scenario: diurnal, spike, steady, memory")
	flag.StringVar(&o.shape, "shape", cpusettest.Intel2S20C2T.Name, "machine shape (cpusettest): "+shapeNames())
	flag.StringVar(&o.out, "out", "", "output image (.svg or .png); empty: figures only")
	flag.DurationVar(&o.every, "every", 0, "plot one point per this much simulated time (default: 2m for diurnal, one period otherwise)")
	flag.DurationVar(&o.from, "from", 0, "plot from this simulated time")
	flag.DurationVar(&o.to, "to", 0, "plot up to this simulated time (0: the end)")
	flag.IntVar(&o.scale, "scale", 1, "multiply every workload's replicas (for larger -shape)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "simplot:", err)
		os.Exit(1)
	}
}

func shapeNames() string {
	var n []string
	for k := range cpusettest.All() {
		n = append(n, k)
	}
	sort.Strings(n)
	return strings.Join(n, ", ")
}

func run(o options) error {
	shape, ok := cpusettest.All()[o.shape]
	if !ok {
		return fmt.Errorf("-shape %q: unknown; allowed: %s", o.shape, shapeNames())
	}
	dir, err := os.MkdirTemp("", "simplot-sysfs")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := cpusettest.WriteSysfs(dir, shape); err != nil {
		return err
	}
	topo, err := strcpuset.Discover(dir)
	if err != nil {
		return err
	}
	var s sim.Scenario
	switch o.scenario {
	case "diurnal":
		s = sim.DiurnalScenario(topo)
		if o.every == 0 {
			o.every = 2 * time.Minute
		}
	case "spike":
		s = sim.SpikeScenario(topo)
	case "steady":
		s = sim.SteadyScenario(topo)
	case "memory":
		s = sim.MemoryPressureScenario(topo)
	default:
		return fmt.Errorf("-scenario %q: unknown; allowed: diurnal, spike, steady, memory", o.scenario)
	}
	if o.scale > 1 {
		s = sim.Scale(s, o.scale)
	}
	s.Record = true
	r, err := sim.Run(s)
	if err != nil {
		return err
	}
	printFigures(s, r)
	if o.out == "" {
		return nil
	}
	return draw2(o, s, r)
}

func printFigures(s sim.Scenario, r *sim.Result) {
	fmt.Printf("scenario %s on %d usable CPUs: %d periods after %s warm-up, simulated in %s\n\n",
		r.Scenario, r.UsableCPUs, r.Periods, s.WarmUp, r.Elapsed.Round(time.Millisecond))
	fmt.Println("| pool | band | time in band | resizes | mean CPUs | mean load | band exits | reaction mean / max (periods) |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	for _, p := range r.Pools {
		fmt.Printf("| %s | %.0f–%.0f %% | %.2f %% | %d | %.1f | %.1f %% | %d | %.1f / %d |\n",
			p.Name, 100*p.Band.Low, 100*p.Band.High, 100*p.TimeInBand, p.Resizes, p.MeanSize, 100*p.MeanLoad,
			p.Excursions, p.MeanReaction, p.MaxReaction)
	}
	fmt.Printf("\nnode utilisation %.1f %%, batch share %.1f %%, batch use of the CPUs left to it %.1f %%, of all idle CPU %.1f %%\n",
		100*r.NodeUtilisation, 100*r.BatchShare, 100*r.BatchUseOfFree, 100*r.BatchUseOfIdle)
	kinds := map[string]int{}
	for _, a := range r.Actions {
		kinds[string(a.Kind)]++
	}
	if len(kinds) > 0 {
		fmt.Printf("actions: %v; evicted: %v\n", kinds, r.Evicted)
	}
}

var poolColors = []color.Color{
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}, // pool 0: red
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, // pool 1: blue
	color.RGBA{R: 0x7f, G: 0x7f, B: 0x7f, A: 0xff}, // batch: grey
}

func draw2(o options, s sim.Scenario, r *sim.Result) error {
	to := o.to
	if to == 0 {
		to = s.Duration
	}
	hours := s.Duration >= 6*time.Hour
	x := func(t time.Duration) float64 {
		if hours {
			return t.Hours()
		}
		return t.Minutes()
	}
	xlabel := "simulated time (minutes)"
	if hours {
		xlabel = "simulated time of day (hours, UTC)"
	}
	period := s.Config.Period.Duration
	every := max(int(o.every/period), 1)

	sizes := plot.New()
	sizes.Title.Text = fmt.Sprintf("Strata simulation %q: pool CPUs (%d usable)", s.Name, r.UsableCPUs)
	sizes.Y.Label.Text = "CPUs"
	sizes.X.Label.Text = xlabel
	loads := plot.New()
	loads.Title.Text = "pool load (usage ÷ CPUs) and target bands"
	loads.Y.Label.Text = "load"
	loads.X.Label.Text = xlabel
	loads.Y.Min, loads.Y.Max = 0, 1.1

	n := len(r.Pools)
	size := make([]plotter.XYs, n)
	demand := make([]plotter.XYs, n)
	load := make([]plotter.XYs, n)
	var capacity plotter.XYs
	for i := 0; i < len(r.Samples); i += every {
		sm := r.Samples[i]
		if sm.T < o.from || sm.T > to {
			continue
		}
		for k, p := range sm.Pools {
			size[k] = append(size[k], plotter.XY{X: x(sm.T), Y: float64(p.Size + p.Exclusive)})
			demand[k] = append(demand[k], plotter.XY{X: x(sm.T), Y: p.Demand})
			load[k] = append(load[k], plotter.XY{X: x(sm.T), Y: p.Load})
		}
		capacity = append(capacity, plotter.XY{X: x(sm.T), Y: sm.BatchCapacity})
	}
	// Bands first, so lines are drawn over them.
	for k := 0; k < n-1; k++ {
		b := r.Pools[k].Band
		lo, hi := x(o.from), x(to)
		poly, err := plotter.NewPolygon(plotter.XYs{{X: lo, Y: b.Low}, {X: hi, Y: b.Low}, {X: hi, Y: b.High}, {X: lo, Y: b.High}})
		if err != nil {
			return err
		}
		c := poolColors[k%len(poolColors)].(color.RGBA)
		poly.Color, poly.LineStyle.Width = color.NRGBA{R: c.R, G: c.G, B: c.B, A: 0x28}, 0
		loads.Add(poly)
	}
	for k := 0; k < n; k++ {
		c := poolColors[min(k, len(poolColors)-1)]
		l, err := plotter.NewLine(size[k])
		if err != nil {
			return err
		}
		l.Color, l.Width = c, vg.Points(1.2)
		sizes.Add(l)
		sizes.Legend.Add(r.Pools[k].Name+" CPUs", l)
		if k < n-1 {
			d, err := plotter.NewLine(demand[k])
			if err != nil {
				return err
			}
			d.Color, d.Width, d.Dashes = c, vg.Points(0.8), []vg.Length{vg.Points(2), vg.Points(2)}
			sizes.Add(d)
			sizes.Legend.Add(r.Pools[k].Name+" shared demand", d)
			ll, err := plotter.NewLine(load[k])
			if err != nil {
				return err
			}
			ll.Color, ll.Width = c, vg.Points(1)
			loads.Add(ll)
			loads.Legend.Add(fmt.Sprintf("%s (band %.0f–%.0f %%)", r.Pools[k].Name, 100*r.Pools[k].Band.Low, 100*r.Pools[k].Band.High), ll)
		}
	}
	cl, err := plotter.NewLine(capacity)
	if err != nil {
		return err
	}
	cl.Color, cl.Width, cl.Dashes = color.Black, vg.Points(0.8), []vg.Length{vg.Points(4), vg.Points(2)}
	sizes.Add(cl)
	sizes.Legend.Add("batch capacity view", cl)
	sizes.Legend.Top = true
	sizes.Y.Min, sizes.Y.Max = 0, float64(r.UsableCPUs)*1.25 // room for the legend
	if hours {
		var ticks []plot.Tick
		for h := 0; h <= int(s.Duration.Hours()); h++ {
			t := plot.Tick{Value: float64(h)}
			if h%2 == 0 {
				t.Label = fmt.Sprintf("%02d:00", h)
			}
			ticks = append(ticks, t)
		}
		sizes.X.Tick.Marker = plot.ConstantTicks(ticks)
		loads.X.Tick.Marker = plot.ConstantTicks(ticks)
	}
	sizes.Legend.TextStyle.Font.Size = vg.Points(8)
	loads.Legend.TextStyle.Font.Size = vg.Points(8)
	loads.Legend.Top = true
	sizes.Add(plotter.NewGrid())
	loads.Add(plotter.NewGrid())

	rows := []*plot.Plot{sizes, loads}
	if s.NodeMemory > 0 {
		mp, err := memoryPlot(s, r, x, xlabel, o.from, to, every)
		if err != nil {
			return err
		}
		rows = append(rows, mp)
	}
	w, h := 9*vg.Inch, 3.5*vg.Inch*vg.Length(len(rows))
	var c vg.CanvasWriterTo
	switch strings.ToLower(filepath.Ext(o.out)) {
	case ".svg":
		c = vgsvg.New(w, h)
	case ".png":
		c = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(96))}
	default:
		return fmt.Errorf("-out %q: want a .svg or .png file", o.out)
	}
	dc := draw.New(c)
	tiles := draw.Tiles{Rows: len(rows), Cols: 1, PadY: vg.Points(12), PadTop: vg.Points(4), PadBottom: vg.Points(4), PadLeft: vg.Points(4), PadRight: vg.Points(8)}
	grid := make([][]*plot.Plot, len(rows))
	for i, p := range rows {
		grid[i] = []*plot.Plot{p}
	}
	canvases := plot.Align(grid, tiles, dc)
	for i, p := range rows {
		p.Draw(canvases[i][0])
	}
	f, err := os.Create(o.out)
	if err != nil {
		return err
	}
	if _, err := c.WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", o.out, err)
	}
	return f.Close()
}

// memoryPlot draws node memory use against the protection levels' memory
// thresholds, with a mark where each kind of action first appeared.
func memoryPlot(s sim.Scenario, r *sim.Result, x func(time.Duration) float64, xlabel string, from, to time.Duration, every int) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "node memory use, protection thresholds and first actions"
	p.X.Label.Text = xlabel
	p.Y.Label.Text = "memory used / total"
	p.Y.Min, p.Y.Max = 0.5, 1.05
	var used plotter.XYs
	for i := 0; i < len(r.Samples); i += every {
		sm := r.Samples[i]
		if sm.T >= from && sm.T <= to {
			used = append(used, plotter.XY{X: x(sm.T), Y: float64(sm.MemoryUsed) / float64(s.NodeMemory)})
		}
	}
	l, err := plotter.NewLine(used)
	if err != nil {
		return nil, err
	}
	l.Width = vg.Points(1.2)
	p.Add(l)
	p.Legend.Add("memory used", l)
	for _, lv := range s.Config.Protection.Levels {
		if lv.When.MemoryUsage == 0 {
			continue
		}
		th, err := plotter.NewLine(plotter.XYs{{X: x(from), Y: lv.When.MemoryUsage}, {X: x(to), Y: lv.When.MemoryUsage}})
		if err != nil {
			return nil, err
		}
		th.Dashes = []vg.Length{vg.Points(3), vg.Points(3)}
		th.Color = color.Gray{Y: 0x80}
		p.Add(th)
		lbl, err := plotter.NewLabels(plotter.XYLabels{XYs: plotter.XYs{{X: x(from), Y: lv.When.MemoryUsage}}, Labels: []string{" level " + lv.Name}})
		if err != nil {
			return nil, err
		}
		p.Add(lbl)
	}
	seen := map[string]bool{}
	shapes := []draw.GlyphDrawer{draw.CircleGlyph{}, draw.TriangleGlyph{}, draw.SquareGlyph{}, draw.PlusGlyph{}, draw.CrossGlyph{}, draw.RingGlyph{}}
	for _, a := range r.Actions {
		k := string(a.Kind)
		if seen[k] || a.T < from || a.T > to {
			continue
		}
		seen[k] = true
		i := int(a.T / s.Config.Period.Duration)
		y := float64(r.Samples[i].MemoryUsed) / float64(s.NodeMemory)
		sc, err := plotter.NewScatter(plotter.XYs{{X: x(a.T), Y: y}})
		if err != nil {
			return nil, err
		}
		sc.GlyphStyle.Shape = shapes[(len(seen)-1)%len(shapes)]
		sc.GlyphStyle.Radius = vg.Points(4)
		sc.GlyphStyle.Color = poolColors[0]
		p.Add(sc)
		p.Legend.Add("first "+k, sc)
	}
	p.Legend.Top, p.Legend.Left = false, false // bottom right: below the thresholds
	p.Legend.TextStyle.Font.Size = vg.Points(8)
	p.Add(plotter.NewGrid())
	return p, nil
}
