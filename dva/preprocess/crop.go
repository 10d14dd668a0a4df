package preprocess

import (
	"fmt"
	"image"
	"image/color"
	"math"
)

// RGB is an 8-bit RGB image without alpha: pixel (x, y) is Pix[3*(y*W+x) : 3*(y*W+x)+3]
// (row-major, R, G, B interleaved, no padding). It implements image.Image.
type RGB struct {
	Pix  []uint8
	W, H int
}

// ColorModel implements image.Image.
func (m *RGB) ColorModel() color.Model { return color.RGBAModel }

// Bounds implements image.Image.
func (m *RGB) Bounds() image.Rectangle { return image.Rect(0, 0, m.W, m.H) }

// At implements image.Image.
func (m *RGB) At(x, y int) color.Color {
	if x < 0 || y < 0 || x >= m.W || y >= m.H {
		return color.RGBA{}
	}
	p := m.Pix[3*(y*m.W+x):]
	return color.RGBA{p[0], p[1], p[2], 0xFF}
}

// Geometry returns the size an image of w x h pixels is resized to and the top-left
// corner of the Size x Size crop taken from the resized image. For ResizeShortest the
// shorter side becomes Size and the longer int(Size*long/short) (float division,
// truncated, as torchvision does), and the crop offsets are rounded half to even
// (Python's round); for ResizeSquash both sides become Size and the crop is (0, 0).
func Geometry(w, h int, cfg Config) (resized, crop image.Point) {
	s := cfg.Size
	if cfg.ResizeMode == ResizeSquash {
		return image.Pt(s, s), image.Point{}
	}
	if w <= h {
		resized = image.Pt(s, int(float64(s)*float64(h)/float64(w)))
	} else {
		resized = image.Pt(int(float64(s)*float64(w)/float64(h)), s)
	}
	crop.X = int(math.RoundToEven(float64(resized.X-s) / 2))
	crop.Y = int(math.RoundToEven(float64(resized.Y-s) / 2))
	return resized, crop
}

// Crop resizes img as open_clip's eval transform does with PIL (in the image's own mode:
// RGBA premultiplied, palette and 1-bit images with NEAREST), takes the centre
// Size x Size crop and converts it to RGB (grey replicated, alpha dropped without
// compositing, palette expanded, CMYK and 16-bit grey as PIL converts them).
func Crop(img image.Image, cfg Config) (*RGB, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= 0 || h <= 0 {
		return nil, fmt.Errorf("crop image: empty image %dx%d", w, h)
	}
	resized, off := Geometry(w, h, cfg)
	s := cfg.Size
	if resized.X < s || resized.Y < s || off.X < 0 || off.Y < 0 {
		return nil, fmt.Errorf("crop image: %dx%d resized to %dx%d is smaller than %d", w, h, resized.X, resized.Y, s)
	}
	f := toFlat(img)
	var out *flat
	switch {
	case resized.X == w && resized.Y == h:
		out = resample(f, w, h, off.X, off.Y, s, s, filter{}) // a plain crop
	case f.nearest:
		out = nearest(f, resized.X, resized.Y, off.X, off.Y, s, s)
	default:
		flt := bicubicFilter
		if cfg.Interpolation == Bilinear {
			flt = bilinearFilter
		}
		if f.mode == modeRGBA {
			premultiply(f.pix)
		}
		out = resample(f, resized.X, resized.Y, off.X, off.Y, s, s, flt)
		if f.mode == modeRGBA {
			unpremultiply(out.pix)
		}
	}
	return toRGB(out), nil
}

// mulDiv255 is PIL's MULDIV255: a*b/255 rounded, in integers.
func mulDiv255(a, b uint32) uint32 {
	t := a*b + 128
	return ((t >> 8) + t) >> 8
}

// premultiply is PIL's RGBA -> RGBa conversion.
func premultiply(pix []uint8) {
	for i := 0; i+3 < len(pix); i += 4 {
		a := uint32(pix[i+3])
		if a == 0xFF {
			continue
		}
		pix[i] = uint8(mulDiv255(uint32(pix[i]), a))
		pix[i+1] = uint8(mulDiv255(uint32(pix[i+1]), a))
		pix[i+2] = uint8(mulDiv255(uint32(pix[i+2]), a))
	}
}

// unpremultiply is PIL's RGBa -> RGBA conversion (truncating division, clipped).
func unpremultiply(pix []uint8) {
	for i := 0; i+3 < len(pix); i += 4 {
		a := uint32(pix[i+3])
		if a == 0xFF || a == 0 {
			continue
		}
		for c := i; c < i+3; c++ {
			pix[c] = uint8(min(255*uint32(pix[c])/a, 255))
		}
	}
}

// toRGB is PIL's convert("RGB") of an image in mode f.mode.
func toRGB(f *flat) *RGB {
	n := f.w * f.h
	m := &RGB{Pix: make([]uint8, 3*n), W: f.w, H: f.h}
	d := m.Pix
	switch f.mode {
	case modeRGB:
		copy(d, f.pix)
	case modeL:
		for i, v := range f.pix[:n] {
			d[3*i], d[3*i+1], d[3*i+2] = v, v, v
		}
	case modeI:
		for i, v := range f.ipix[:n] {
			u := uint8(min(max(v, 0), 255))
			d[3*i], d[3*i+1], d[3*i+2] = u, u, u
		}
	case modeRGBA:
		for i := range n {
			d[3*i], d[3*i+1], d[3*i+2] = f.pix[4*i], f.pix[4*i+1], f.pix[4*i+2]
		}
	case modeCMYK:
		for i := range n {
			p := f.pix[4*i : 4*i+4]
			nk := 255 - uint32(p[3])
			for c := range 3 {
				d[3*i+c] = uint8(nk - mulDiv255(uint32(p[c]), nk))
			}
		}
	}
	return m
}

// Normalize writes the CHW float32 tensor of an interleaved RGB image of
// cfg.Size x cfg.Size into dst (3*Size*Size values): v = (u/255 - mean[c]) / std[c],
// every operation rounded to float32 as torchvision does it. It panics if rgb or dst is
// shorter than that.
func Normalize(rgb []uint8, cfg Config, dst []float32) {
	n := cfg.Size * cfg.Size
	rgb = rgb[:3*n]
	dst = dst[:3*n]
	// Every uint8 maps to one float32 per channel: a lookup table gives the same bits.
	var lut [3][256]float32
	for c := range 3 {
		for u := range 256 {
			lut[c][u] = float32(float32(u)/255-cfg.Mean[c]) / cfg.Std[c]
		}
	}
	r, g, b := dst[:n], dst[n:2*n], dst[2*n:]
	for i := range n {
		p := rgb[3*i : 3*i+3]
		r[i] = lut[0][p[0]]
		g[i] = lut[1][p[1]]
		b[i] = lut[2][p[2]]
	}
}
