package main

import (
	"fmt"
	"io"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// WriteSVG draws the LC p99 per scenario as bars (log scale, ms) and
// writes the SVG to w.
func (r *Report) WriteSVG(w io.Writer) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("LC p99 at %.0f %% of capacity (%d CPUs)", 100*r.Options.Load, r.CPUs)
	p.Y.Label.Text = "p99 latency (ms)"
	var vals plotter.Values
	var names []string
	for _, x := range r.Results {
		if x.P99 > 0 {
			vals = append(vals, x.P99)
			names = append(names, x.Scenario)
		}
	}
	if len(vals) == 0 {
		return fmt.Errorf("plot: no scenario has an LC p99")
	}
	bars, err := plotter.NewBarChart(vals, vg.Points(30))
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	p.Add(bars)
	p.NominalX(names...)
	c := vgsvg.New(6*vg.Inch, 3.5*vg.Inch)
	p.Draw(draw.New(c))
	_, err = c.WriteTo(w)
	return err
}
