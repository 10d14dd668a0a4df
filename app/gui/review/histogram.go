package review

import (
	"image/color"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/gata-contrib/gata/app/core"
)

// histogramSize is the smallest size of the histogram.
var histogramSize = fyne.NewSize(360, 80)

// histogram draws a run's score distribution as bars, the bins at or above the threshold
// in the primary colour, with a line at the threshold.
type histogram struct {
	widget.BaseWidget
	dist      core.ScoreDistribution
	threshold float32
}

func newHistogram() *histogram {
	h := &histogram{}
	h.ExtendBaseWidget(h)
	return h
}

// set shows a distribution and a threshold.
func (h *histogram) set(d core.ScoreDistribution, threshold float32) {
	h.dist, h.threshold = d, threshold
	h.Refresh()
}

func (h *histogram) setThreshold(t float32) {
	h.threshold = t
	h.Refresh()
}

func (h *histogram) CreateRenderer() fyne.WidgetRenderer {
	r := &histogramRenderer{h: h, base: canvas.NewRectangle(color.Transparent), line: canvas.NewLine(color.Black)}
	r.line.StrokeWidth = 2
	r.Refresh()
	return r
}

type histogramRenderer struct {
	h    *histogram
	base *canvas.Rectangle
	bars []*canvas.Rectangle
	line *canvas.Line
	size fyne.Size
}

func (r *histogramRenderer) MinSize() fyne.Size { return histogramSize }

func (r *histogramRenderer) Objects() []fyne.CanvasObject {
	objs := []fyne.CanvasObject{r.base}
	for _, b := range r.bars {
		objs = append(objs, b)
	}
	return append(objs, r.line)
}

func (r *histogramRenderer) Destroy() {}

func (r *histogramRenderer) Layout(size fyne.Size) {
	r.size = size
	r.base.Resize(size)
	n := len(r.bars)
	if n == 0 {
		r.line.Hide()
		return
	}
	most := 1
	for _, c := range r.h.dist.Counts {
		most = max(most, c)
	}
	w := size.Width / float32(n)
	for i, b := range r.bars {
		hgt := size.Height * float32(r.h.dist.Counts[i]) / float32(most)
		b.Move(fyne.NewPos(float32(i)*w+1, size.Height-hgt))
		b.Resize(fyne.NewSize(max(w-2, 1), hgt))
	}
	d := r.h.dist
	x := float32(0)
	if d.Max > d.Min {
		x = size.Width * (r.h.threshold - d.Min) / (d.Max - d.Min)
	}
	x = min(max(x, 0), size.Width)
	r.line.Position1 = fyne.NewPos(x, 0)
	r.line.Position2 = fyne.NewPos(x, size.Height)
	r.line.Show()
}

func (r *histogramRenderer) Refresh() {
	d := r.h.dist
	for len(r.bars) < len(d.Counts) {
		r.bars = append(r.bars, canvas.NewRectangle(color.Transparent))
	}
	r.bars = r.bars[:len(d.Counts)]
	kept, dropped := theme.Color(theme.ColorNamePrimary), theme.Color(theme.ColorNameDisabled)
	for i, b := range r.bars {
		// A bin is drawn kept when its upper edge reaches the threshold.
		if d.Edges[i+1] >= r.h.threshold {
			b.FillColor = kept
		} else {
			b.FillColor = dropped
		}
		b.Refresh()
	}
	r.base.FillColor = theme.Color(theme.ColorNameInputBackground)
	r.base.Refresh()
	r.line.StrokeColor = theme.Color(theme.ColorNameForeground)
	r.line.Refresh()
	r.Layout(r.size)
}
