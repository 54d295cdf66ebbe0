package main

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

var (
	colorOurs     = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	colorCeiling  = color.RGBA{R: 0x9e, G: 0xc3, B: 0xe6, A: 0xff}
	colorBaseline = color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}
	colorP99      = color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}
)

// bar is one labelled bar of an absolute-value chart.
type bar struct {
	label string
	value float64
	color color.Color
}

// barPlot draws one bar per entry, each in its own color.
func barPlot(title, ylabel string, bars []bar) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text, p.Y.Label.Text = title, ylabel
	labels := make([]string, len(bars))
	for i, b := range bars {
		bc, err := plotter.NewBarChart(plotter.Values{b.value}, vg.Points(40))
		if err != nil {
			return nil, err
		}
		bc.XMin, bc.Color, bc.LineStyle.Width = float64(i), b.color, 0
		p.Add(bc)
		labels[i] = b.label
	}
	p.NominalX(labels...)
	p.X.Min, p.X.Max = -0.6, float64(len(bars))-0.4
	top := 0.0
	for _, b := range bars {
		top = math.Max(top, b.value)
	}
	p.Y.Min, p.Y.Max = 0, top*1.12
	return p, nil
}

// ratioBars draws, per category, a bar from 1 to the value on a log
// scale: up when auditstore is faster, down when slower.
type ratioBars struct {
	values []float64
	offset vg.Length
	width  vg.Length
	color  color.Color
}

func (r *ratioBars) Plot(c draw.Canvas, plt *plot.Plot) {
	trX, trY := plt.Transforms(&c)
	for i, v := range r.values {
		x := trX(float64(i)) + r.offset
		y0, y1 := trY(1), trY(v)
		poly := []vg.Point{{X: x - r.width/2, Y: y0}, {X: x - r.width/2, Y: y1}, {X: x + r.width/2, Y: y1}, {X: x + r.width/2, Y: y0}}
		c.FillPolygon(r.color, c.ClipPolygonY(poly))
	}
}

func (r *ratioBars) DataRange() (xmin, xmax, ymin, ymax float64) {
	ymin, ymax = 1, 1
	for _, v := range r.values {
		ymin, ymax = math.Min(ymin, v), math.Max(ymax, v)
	}
	return 0, float64(len(r.values) - 1), ymin, ymax
}

func (r *ratioBars) Thumbnail(c *draw.Canvas) {
	pts := []vg.Point{{X: c.Min.X, Y: c.Min.Y}, {X: c.Min.X, Y: c.Max.Y}, {X: c.Max.X, Y: c.Max.Y}, {X: c.Max.X, Y: c.Min.Y}}
	c.FillPolygon(r.color, c.ClipPolygonY(pts))
}

// speedups returns baseline/ours per shape for p50 and p99.
func speedups(q *QueryResult) (labels []string, p50, p99 []float64) {
	for _, s := range q.Shapes {
		labels = append(labels, s.Label)
		p50 = append(p50, float64(medianDur(s.BaseP50))/math.Max(1, float64(medianDur(s.OursP50))))
		p99 = append(p99, float64(medianDur(s.BaseP99))/math.Max(1, float64(medianDur(s.OursP99))))
	}
	return labels, p50, p99
}

func queriesPlot(q *QueryResult) *plot.Plot {
	labels, p50, p99 := speedups(q)
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Queries at %s events: PostgreSQL time / auditstore time", num(float64(q.Events)))
	p.Y.Label.Text = "× faster (log scale; below 1: slower)"
	p.Y.Scale, p.Y.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
	a := &ratioBars{values: p50, offset: -vg.Points(9), width: vg.Points(16), color: colorOurs}
	b := &ratioBars{values: p99, offset: vg.Points(9), width: vg.Points(16), color: colorP99}
	one := plotter.NewFunction(func(float64) float64 { return 1 })
	one.Color = color.Gray{Y: 0x60}
	p.Add(a, b, one)
	p.Legend.Add("p50", a)
	p.Legend.Add("p99", b)
	p.Legend.Top = true
	p.NominalX(labels...)
	p.X.Min, p.X.Max = -0.6, float64(len(labels))-0.4
	_, _, lo, hi := a.DataRange()
	_, _, lo2, hi2 := b.DataRange()
	p.Y.Min, p.Y.Max = math.Min(lo, lo2)/1.5, math.Max(hi, hi2)*1.5
	return p
}

// writePNG draws plots side by side into file.
func writePNG(file string, w vg.Length, plots ...*plot.Plot) error {
	h := vg.Points(340)
	img := vgimg.New(w, h)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: len(plots), PadX: vg.Points(20), PadTop: vg.Points(6), PadBottom: vg.Points(6),
		PadLeft: vg.Points(6), PadRight: vg.Points(12)}
	canvases := plot.Align([][]*plot.Plot{plots}, tiles, dc)
	for i, p := range plots {
		p.Draw(canvases[0][i])
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeCharts writes one PNG per measured section into dir and returns
// their names.
func writeCharts(dir string, r *Report) ([]string, error) {
	var files []string
	if in := r.Ingest; in != nil {
		rate, err := barPlot(fmt.Sprintf("Ingest of %s events", num(float64(in.Events))), "events/s", []bar{
			{"auditstore HTTP", median(in.Ours), colorOurs},
			{"ClickHouse INSERT (ceiling)", median(in.Ceiling), colorCeiling},
			{"PostgreSQL COPY", median(in.Baseline), colorBaseline}})
		if err != nil {
			return nil, err
		}
		disk, err := barPlot("Bytes on disk after the load", "MB", []bar{
			{"auditstore", float64(medianInt(in.OursBytes)) / 1e6, colorOurs},
			{"PostgreSQL", float64(medianInt(in.BaselineBytes)) / 1e6, colorBaseline}})
		if err != nil {
			return nil, err
		}
		if err := writePNG(filepath.Join(dir, "ingest.png"), vg.Points(860), rate, disk); err != nil {
			return nil, err
		}
		files = append(files, "ingest.png")
	}
	if q := r.Queries; q != nil && len(q.Shapes) > 0 {
		if err := writePNG(filepath.Join(dir, "queries.png"), vg.Points(860), queriesPlot(q)); err != nil {
			return nil, err
		}
		files = append(files, "queries.png")
	}
	if x := r.Export; x != nil {
		p, err := barPlot(fmt.Sprintf("Export of %s rows", num(float64(x.Rows))), "rows/s", []bar{
			{"auditstore Parquet", median(x.Ours), colorOurs},
			{"PostgreSQL COPY CSV", median(x.Baseline), colorBaseline}})
		if err != nil {
			return nil, err
		}
		if err := writePNG(filepath.Join(dir, "export.png"), vg.Points(480), p); err != nil {
			return nil, err
		}
		files = append(files, "export.png")
	}
	return files, nil
}
