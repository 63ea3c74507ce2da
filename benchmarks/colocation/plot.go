package main

import (
	"fmt"
	"image/color"
	"io"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// WriteSVG draws two panels and writes them as one SVG to w: the LC p99
// against the steady load levels, one line per scenario (log scale), and
// for every scenario at every level the pair (batch CPU work ratio to
// alone, LC p99 ratio to alone) — utilisation gained against latency kept.
func (r *Report) WriteSVG(w io.Writer) error {
	type series struct {
		name string
		lat  plotter.XYs // load % → p99 ms
		pair plotter.XYs // batch ratio → p99 ratio
	}
	var ss []*series
	byName := map[string]*series{}
	for _, x := range r.Results {
		if x.P99 <= 0 {
			continue
		}
		s := byName[x.Scenario]
		if s == nil {
			s = &series{name: x.Scenario}
			byName[x.Scenario] = s
			ss = append(ss, s)
		}
		if x.OfferedRPS > 0 && r.CapacityRPS > 0 && !isStep(x.Level) {
			s.lat = append(s.lat, plotter.XY{X: 100 * x.OfferedRPS / r.CapacityRPS, Y: x.P99})
		}
		if x.P99Ratio > 0 {
			s.pair = append(s.pair, plotter.XY{X: x.CPUWorkRatio, Y: x.P99Ratio})
		}
	}
	if len(ss) == 0 {
		return fmt.Errorf("plot: no scenario has an LC p99")
	}
	lat := plot.New()
	lat.Title.Text = fmt.Sprintf("LC p99 against load (%d CPUs)", r.CPUs)
	lat.X.Label.Text = "offered load (% of capacity alone)"
	lat.Y.Label.Text = "p99 latency (ms)"
	lat.Y.Scale = plot.LogScale{}
	lat.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	lat.Legend.Top = true
	pair := plot.New()
	pair.Title.Text = "utilisation gained against latency kept"
	pair.X.Label.Text = "batch CPU work / batch alone"
	pair.Y.Label.Text = "LC p99 / LC alone"
	pair.Y.Scale = plot.LogScale{}
	pair.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	pair.Legend.Top = true
	for i, s := range ss {
		c := palette[i%len(palette)]
		if len(s.lat) > 0 {
			l, p, err := plotter.NewLinePoints(s.lat)
			if err != nil {
				return fmt.Errorf("plot: %w", err)
			}
			l.Color, p.Color = c, c
			p.Shape = shapes[i%len(shapes)]
			lat.Add(l, p)
			lat.Legend.Add(s.name, l, p)
		}
		if len(s.pair) > 0 {
			sc, err := plotter.NewScatter(s.pair)
			if err != nil {
				return fmt.Errorf("plot: %w", err)
			}
			sc.Color = c
			sc.Shape = shapes[i%len(shapes)]
			sc.Radius = vg.Points(4)
			pair.Add(sc)
			pair.Legend.Add(s.name, sc)
		}
	}
	fixLog(lat)
	fixLog(pair)
	const width, height = 7 * vg.Inch, 8 * vg.Inch
	c := vgsvg.New(width, height)
	dc := draw.New(c)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadY: vg.Points(12), PadTop: vg.Points(6), PadBottom: vg.Points(6), PadLeft: vg.Points(6), PadRight: vg.Points(6)}
	lat.Draw(tiles.At(dc, 0, 0))
	pair.Draw(tiles.At(dc, 0, 1))
	_, err := c.WriteTo(w)
	return err
}

func isStep(level string) bool { return len(level) >= 4 && level[:4] == "step" }

// fixLog keeps a log axis' range positive even for a single point.
func fixLog(p *plot.Plot) {
	if p.Y.Min <= 0 {
		p.Y.Min = 1e-3
	}
	if p.Y.Max <= p.Y.Min {
		p.Y.Max = p.Y.Min * 10
	}
	p.Y.Min, p.Y.Max = math.Pow(10, math.Floor(math.Log10(p.Y.Min))), math.Pow(10, math.Ceil(math.Log10(p.Y.Max)))
}

var palette = []color.Color{
	color.RGBA{0x1f, 0x77, 0xb4, 0xff}, color.RGBA{0xff, 0x7f, 0x0e, 0xff}, color.RGBA{0x2c, 0xa0, 0x2c, 0xff},
	color.RGBA{0xd6, 0x27, 0x28, 0xff}, color.RGBA{0x94, 0x67, 0xbd, 0xff}, color.RGBA{0x8c, 0x56, 0x4b, 0xff},
	color.RGBA{0xe3, 0x77, 0xc2, 0xff},
}

var shapes = []draw.GlyphDrawer{draw.CircleGlyph{}, draw.BoxGlyph{}, draw.TriangleGlyph{}, draw.CrossGlyph{},
	draw.PlusGlyph{}, draw.RingGlyph{}, draw.SquareGlyph{}}
