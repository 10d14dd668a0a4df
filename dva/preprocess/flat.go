package preprocess

import (
	"image"
	"image/color"
)

// pilMode is the PIL image mode a decoded image is resized in.
type pilMode uint8

const (
	modeL    pilMode = iota // 8-bit grey, 1 channel
	modeRGB                 // 3 channels
	modeRGBA                // 4 channels, straight (not premultiplied) alpha
	modeCMYK                // 4 channels
	modeI                   // 32-bit integer grey (16-bit PNGs), in ipix
)

// flat is an image as one contiguous buffer: pixel (x, y) channel c is
// pix[(y*w+x)*nc+c] (or ipix[y*w+x] in mode I).
type flat struct {
	mode    pilMode
	nearest bool // PIL resizes modes P and 1 with NEAREST whatever filter is asked for
	w, h    int
	nc      int
	pix     []uint8
	ipix    []int32
}

func channels(m pilMode) int {
	switch m {
	case modeL, modeI:
		return 1
	case modeRGB:
		return 3
	}
	return 4
}

func newFlat(m pilMode, w, h int) *flat {
	f := &flat{mode: m, w: w, h: h, nc: channels(m)}
	if m == modeI {
		f.ipix = make([]int32, w*h)
	} else {
		f.pix = make([]uint8, w*h*f.nc)
	}
	return f
}

// toFlat copies a decoded image into a flat buffer in its PIL mode, by type switch on
// the concrete types the decoders return; other types go through At.
func toFlat(img image.Image) *flat {
	r := img.Bounds()
	w, h := r.Dx(), r.Dy()
	switch m := img.(type) {
	case *RGB:
		// Read only by the resampler: no copy.
		return &flat{mode: modeRGB, w: w, h: h, nc: 3, pix: m.Pix[:3*w*h]}
	case *image.Gray:
		f := newFlat(modeL, w, h)
		for y := 0; y < h; y++ {
			copy(f.pix[y*w:(y+1)*w], m.Pix[y*m.Stride:])
		}
		return f
	case *image.Gray16:
		f := newFlat(modeI, w, h)
		for y := 0; y < h; y++ {
			src := m.Pix[y*m.Stride:]
			dst := f.ipix[y*w : (y+1)*w]
			for x := range dst {
				dst[x] = int32(src[2*x])<<8 | int32(src[2*x+1])
			}
		}
		return f
	case *image.YCbCr:
		if r.Min.X >= 0 && r.Min.Y >= 0 {
			f := newFlat(modeRGB, w, h)
			ycbcrToRGB(m, f.pix, 3)
			return f
		}
	case *image.NYCbCrA:
		if r.Min.X >= 0 && r.Min.Y >= 0 {
			opaque := true
			for y := 0; y < h && opaque; y++ {
				for _, a := range m.A[y*m.AStride : y*m.AStride+w] {
					if a != 0xFF {
						opaque = false
						break
					}
				}
			}
			if opaque {
				f := newFlat(modeRGB, w, h)
				ycbcrToRGB(&m.YCbCr, f.pix, 3)
				return f
			}
			f := newFlat(modeRGBA, w, h)
			ycbcrToRGB(&m.YCbCr, f.pix, 4)
			for y := 0; y < h; y++ {
				src := m.A[y*m.AStride:]
				dst := f.pix[y*w*4 : (y+1)*w*4]
				for x := 0; x < w; x++ {
					dst[4*x+3] = src[x]
				}
			}
			return f
		}
	case *image.NRGBA:
		if opaque8(m.Pix, m.Stride, w, h) {
			return rgbFrom4(m.Pix, m.Stride, w, h)
		}
		f := newFlat(modeRGBA, w, h)
		for y := 0; y < h; y++ {
			copy(f.pix[y*w*4:(y+1)*w*4], m.Pix[y*m.Stride:])
		}
		return f
	case *image.RGBA:
		if opaque8(m.Pix, m.Stride, w, h) {
			return rgbFrom4(m.Pix, m.Stride, w, h)
		}
	case *image.NRGBA64:
		f := newFlat(modeRGBA, w, h)
		opaque := true
		for y := 0; y < h; y++ {
			src := m.Pix[y*m.Stride:]
			dst := f.pix[y*w*4 : (y+1)*w*4]
			for i := range dst {
				dst[i] = src[2*i] // PIL's RGBA;16B unpacker keeps the high byte
			}
			for x := 0; x < w && opaque; x++ {
				opaque = dst[4*x+3] == 0xFF
			}
		}
		if opaque {
			return rgbFrom4(f.pix, 4*w, w, h)
		}
		return f
	case *image.RGBA64:
		if opaque16(m.Pix, m.Stride, w, h) {
			f := newFlat(modeRGB, w, h)
			for y := 0; y < h; y++ {
				src := m.Pix[y*m.Stride:]
				dst := f.pix[y*w*3 : (y+1)*w*3]
				for x := 0; x < w; x++ {
					dst[3*x], dst[3*x+1], dst[3*x+2] = src[8*x], src[8*x+2], src[8*x+4]
				}
			}
			return f
		}
	case *image.Paletted:
		var pal [256][3]uint8 // indices beyond the palette stay black
		for i, c := range m.Palette {
			if i == len(pal) {
				break
			}
			pal[i] = paletteRGB(c)
		}
		f := newFlat(modeRGB, w, h)
		f.nearest = true
		for y := 0; y < h; y++ {
			src := m.Pix[y*m.Stride : y*m.Stride+w]
			dst := f.pix[y*w*3 : (y+1)*w*3]
			for x, p := range src {
				c := &pal[p]
				dst[3*x], dst[3*x+1], dst[3*x+2] = c[0], c[1], c[2]
			}
		}
		return f
	case *image.CMYK:
		f := newFlat(modeCMYK, w, h)
		for y := 0; y < h; y++ {
			copy(f.pix[y*w*4:(y+1)*w*4], m.Pix[y*m.Stride:])
		}
		return f
	}
	return genericFlat(img)
}

// genericFlat converts any image through color.NRGBAModel (PIL mode RGBA, or RGB when
// every pixel is opaque).
func genericFlat(img image.Image) *flat {
	r := img.Bounds()
	w, h := r.Dx(), r.Dy()
	f := newFlat(modeRGBA, w, h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := color.NRGBAModel.Convert(img.At(r.Min.X+x, r.Min.Y+y)).(color.NRGBA)
			i := (y*w + x) * 4
			f.pix[i], f.pix[i+1], f.pix[i+2], f.pix[i+3] = c.R, c.G, c.B, c.A
		}
	}
	if opaque8(f.pix, 4*w, w, h) {
		return rgbFrom4(f.pix, 4*w, w, h)
	}
	return f
}

// paletteRGB is the straight (not premultiplied) colour of a palette entry: PIL's P to
// RGB conversion ignores transparency.
func paletteRGB(c color.Color) [3]uint8 {
	if n, ok := c.(color.NRGBA); ok {
		return [3]uint8{n.R, n.G, n.B}
	}
	n := color.NRGBAModel.Convert(c).(color.NRGBA)
	return [3]uint8{n.R, n.G, n.B}
}

func opaque8(pix []uint8, stride, w, h int) bool {
	for y := 0; y < h; y++ {
		row := pix[y*stride : y*stride+4*w]
		for i := 3; i < len(row); i += 4 {
			if row[i] != 0xFF {
				return false
			}
		}
	}
	return true
}

func opaque16(pix []uint8, stride, w, h int) bool {
	for y := 0; y < h; y++ {
		row := pix[y*stride : y*stride+8*w]
		for i := 6; i < len(row); i += 8 {
			if row[i] != 0xFF || row[i+1] != 0xFF {
				return false
			}
		}
	}
	return true
}

// rgbFrom4 drops the fourth channel of 4-byte pixels: an opaque RGBA image resizes to
// the same RGB values as the RGB image, in a quarter less work.
func rgbFrom4(pix []uint8, stride, w, h int) *flat {
	f := newFlat(modeRGB, w, h)
	for y := 0; y < h; y++ {
		src := pix[y*stride : y*stride+4*w]
		dst := f.pix[y*w*3 : (y+1)*w*3]
		for x := 0; x < w; x++ {
			dst[3*x], dst[3*x+1], dst[3*x+2] = src[4*x], src[4*x+1], src[4*x+2]
		}
	}
	return f
}

// ycbcrToRGB writes m as RGB into dst with nc bytes per pixel (3 or 4; the fourth is left
// alone), using the same integer conversion as color.YCbCrToRGB. m.Rect.Min must not
// be negative.
func ycbcrToRGB(m *image.YCbCr, dst []uint8, nc int) {
	r := m.Rect
	w, h := r.Dx(), r.Dy()
	var hs, vs uint // chroma subsampling shifts
	switch m.SubsampleRatio {
	case image.YCbCrSubsampleRatio422:
		hs = 1
	case image.YCbCrSubsampleRatio420:
		hs, vs = 1, 1
	case image.YCbCrSubsampleRatio440:
		vs = 1
	case image.YCbCrSubsampleRatio411:
		hs = 2
	case image.YCbCrSubsampleRatio410:
		hs, vs = 2, 1
	}
	cx0 := r.Min.X >> hs
	for y := 0; y < h; y++ {
		yrow := m.Y[y*m.YStride : y*m.YStride+w]
		crow := ((r.Min.Y+y)>>vs - r.Min.Y>>vs) * m.CStride
		cb := m.Cb[crow:]
		cr := m.Cr[crow:]
		out := dst[y*w*nc : (y+1)*w*nc]
		for x, yv := range yrow {
			ci := (r.Min.X+x)>>hs - cx0
			// The JFIF conversion in 16.16 fixed point, as color.YCbCrToRGB does it.
			yy1 := int32(yv) * 0x10101
			cb1 := int32(cb[ci]) - 128
			cr1 := int32(cr[ci]) - 128
			o := out[:3:3]
			o[0] = clampYCC(yy1 + 91881*cr1)
			o[1] = clampYCC(yy1 - 22554*cb1 - 46802*cr1)
			o[2] = clampYCC(yy1 + 116130*cb1)
			out = out[nc:]
		}
	}
}

func clampYCC(v int32) uint8 {
	if uint32(v)&0xff000000 == 0 {
		return uint8(v >> 16)
	}
	return uint8(^(v >> 31))
}
