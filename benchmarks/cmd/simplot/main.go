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

	w, h := 9*vg.Inch, 7*vg.Inch
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
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadY: vg.Points(12), PadTop: vg.Points(4), PadBottom: vg.Points(4), PadLeft: vg.Points(4), PadRight: vg.Points(8)}
	canvases := plot.Align([][]*plot.Plot{{sizes}, {loads}}, tiles, dc)
	sizes.Draw(canvases[0][0])
	loads.Draw(canvases[1][0])
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
