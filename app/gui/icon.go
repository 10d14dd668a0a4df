package gui

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
	"sync"

	"fyne.io/fyne/v2"
)

// IconSize is the edge length of the app icon in pixels.
const IconSize = 512

// The icon: a rounded square with a teal-to-indigo gradient, a white "G" drawn as an open
// ring with a crossbar, and an amber dot in the ring's opening (a data point being checked).
// It is drawn from signed distances with 4x4 supersampling, so it needs no image files;
// assets/icon.png is this image, written by the test with -update.
var (
	bgTop   = [3]float64{0x14, 0xb8, 0xa6} // teal
	bgBot   = [3]float64{0x43, 0x38, 0xca} // indigo
	dotCol  = [3]float64{0xfb, 0xbf, 0x24} // amber
	ringCol = [3]float64{0xff, 0xff, 0xff}
)

// IconImage draws the app icon at IconSize x IconSize.
func IconImage() *image.NRGBA {
	const n = IconSize
	const ss = 4 // samples per axis per pixel
	img := image.NewNRGBA(image.Rect(0, 0, n, n))
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			var bgCov, ringCov, dotCov float64
			for sy := 0; sy < ss; sy++ {
				for sx := 0; sx < ss; sx++ {
					px := float64(x) + (float64(sx)+0.5)/ss
					py := float64(y) + (float64(sy)+0.5)/ss
					if inRoundedSquare(px, py) {
						bgCov++
						if inDot(px, py) {
							dotCov++
						} else if inG(px, py) {
							ringCov++
						}
					}
				}
			}
			bgCov /= ss * ss
			ringCov /= ss * ss
			dotCov /= ss * ss
			if bgCov == 0 {
				continue
			}
			// Gradient along the diagonal from the top left to the bottom right.
			t := (float64(x) + float64(y)) / (2 * n)
			var c [3]float64
			for i := range c {
				bg := bgTop[i] + (bgBot[i]-bgTop[i])*t
				// Ring and dot coverage are fractions of the pixel, inside the background.
				fg := (ringCov*ringCol[i] + dotCov*dotCol[i]) / bgCov
				cov := (ringCov + dotCov) / bgCov
				c[i] = bg*(1-cov) + fg
			}
			img.SetNRGBA(x, y, color.NRGBA{R: clamp8(c[0]), G: clamp8(c[1]), B: clamp8(c[2]), A: clamp8(bgCov * 255)})
		}
	}
	return img
}

func clamp8(v float64) uint8 { return uint8(math.Round(math.Min(math.Max(v, 0), 255))) }

// inRoundedSquare: a 480 px square centred in the canvas with 108 px corner radius.
func inRoundedSquare(x, y float64) bool {
	const half, r = 240.0, 108.0
	dx := math.Abs(x-IconSize/2) - (half - r)
	dy := math.Abs(y-IconSize/2) - (half - r)
	if dx <= 0 || dy <= 0 {
		return dx <= r && dy <= r
	}
	return dx*dx+dy*dy <= r*r
}

// inG: a ring (radii 98 to 150 around the centre) open between 0° and 50° (upper right; y grows
// downwards, so angles are measured with y flipped), plus a crossbar below the opening.
func inG(x, y float64) bool {
	const cx, cy = IconSize / 2, IconSize / 2
	const rIn, rOut = 98.0, 150.0
	dx, dy := x-cx, cy-y
	d := math.Hypot(dx, dy)
	ang := math.Atan2(dy, dx) * 180 / math.Pi
	if d >= rIn && d <= rOut && (ang <= 0 || ang >= 50) {
		return true
	}
	// Crossbar: from just right of the centre to the ring, its top flush with the opening's lower edge.
	return x >= cx+8 && y >= cy && y <= cy+48 && d <= rOut
}

// inDot: the amber point in the ring's opening.
func inDot(x, y float64) bool {
	const r = 34.0
	a := 29.0 * math.Pi / 180
	cx := IconSize/2 + 124*math.Cos(a)
	cy := IconSize/2 - 124*math.Sin(a)
	return math.Hypot(x-cx, y-cy) <= r
}

// IconPNG encodes IconImage as PNG.
func IconPNG() []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, IconImage()); err != nil {
		// Encoding an in-memory NRGBA image into a buffer cannot fail.
		panic(err)
	}
	return b.Bytes()
}

var iconOnce = sync.OnceValue(func() fyne.Resource { return fyne.NewStaticResource("gata.png", IconPNG()) })

// Icon is the app icon as a Fyne resource (for the window, the tray and notifications).
func Icon() fyne.Resource { return iconOnce() }
