package preprocess

import "image"

// A lossy WebP (VP8) image is 4:2:0 Y'CbCr in the BT.601 "studio" range (Y in 16..235),
// which golang.org/x/image/webp returns as an *image.YCbCr that Go's colour code would
// read as full-range JFIF (colours off by several levels). PIL decodes WebP with libwebp,
// which upsamples chroma with its "fancy" filter (weights 9/3/3/1 between the four
// nearest chroma samples) and converts with a fixed-point BT.601 matrix; webpToRGB does
// the same.

// webpClip is libwebp's clip of a 6-bit fixed-point colour value.
func webpClip(v int32) uint8 {
	if v&^(256<<6-1) == 0 {
		return uint8(v >> 6)
	}
	if v < 0 {
		return 0
	}
	return 255
}

func mulHi(v, c int32) int32 { return (v * c) >> 8 }

// webpPixel converts one Y'CbCr sample to RGB.
func webpPixel(o []uint8, y, u, v int32) {
	yy := mulHi(y, 19077)
	o[0] = webpClip(yy + mulHi(v, 26149) - 14234)
	o[1] = webpClip(yy - mulHi(u, 6419) - mulHi(v, 13320) + 8708)
	o[2] = webpClip(yy + mulHi(u, 33050) - 17685)
}

// upsampleRow writes one output row: chroma rows near and far are the two chroma rows
// around it, near the closer one (weight 3 against 1 vertically). ys is the luma row,
// dst gets nc bytes per pixel.
func upsampleRow(dst []uint8, nc int, ys []uint8, nearU, nearV, farU, farV []uint8) {
	w := len(ys)
	put := func(x int, u, v int32) { webpPixel(dst[x*nc:x*nc+3], int32(ys[x]), u, v) }
	// Horizontal edge samples: (3*near + far + 2) / 4.
	edge := func(x, j int) {
		put(x, (3*int32(nearU[j])+int32(farU[j])+2)>>2, (3*int32(nearV[j])+int32(farV[j])+2)>>2)
	}
	edge(0, 0)
	last := (w - 1) >> 1
	for j := 1; j <= last; j++ {
		// The four chroma samples around pixels 2j-1 and 2j: near row (left nl, right nr)
		// and far row (fl, fr); each pixel weighs 9 its nearest, 3 the two beside, 1 the
		// diagonal, computed in two rounding steps as libwebp does.
		mix := func(nl, nr, fl, fr int32) (a, b int32) {
			avg := nl + nr + fl + fr + 8
			diagNearRFarL := (avg + 2*(nr+fl)) >> 3
			diagNearLFarR := (avg + 2*(nl+fr)) >> 3
			return (diagNearRFarL + nl) >> 1, (diagNearLFarR + nr) >> 1
		}
		u0, u1 := mix(int32(nearU[j-1]), int32(nearU[j]), int32(farU[j-1]), int32(farU[j]))
		v0, v1 := mix(int32(nearV[j-1]), int32(nearV[j]), int32(farV[j-1]), int32(farV[j]))
		put(2*j-1, u0, v0)
		put(2*j, u1, v1)
	}
	if w&1 == 0 {
		edge(w-1, last)
	}
}

// webpToRGB converts a lossy WebP decoding (4:2:0, Rect at the origin) to RGB as libwebp
// does: an *RGB, or an *image.NRGBA when there is an alpha plane (alpha, with its stride). It returns nil when
// the layout is not the one the VP8 decoder produces.
func webpToRGB(m *image.YCbCr, alpha []uint8, astride int) image.Image {
	r := m.Rect
	if r.Min != (image.Point{}) || m.SubsampleRatio != image.YCbCrSubsampleRatio420 {
		return nil
	}
	w, h := r.Dx(), r.Dy()
	var pix []uint8
	var stride, nc int
	var out image.Image
	if alpha != nil {
		o := image.NewNRGBA(r)
		pix, stride, nc, out = o.Pix, o.Stride, 4, o
	} else {
		o := &RGB{Pix: make([]uint8, 3*w*h), W: w, H: h}
		pix, stride, nc, out = o.Pix, 3*w, 3, o
	}
	cw := (w + 1) / 2
	crow := func(c []uint8, k int) []uint8 { return c[k*m.CStride : k*m.CStride+cw] }
	for y := range h {
		// Row 0 and, for an even height, the last row use one chroma row twice; row
		// 2k-1 is nearer chroma row k-1, row 2k nearer chroma row k.
		var near, far int
		switch {
		case y == 0:
			near, far = 0, 0
		case y&1 == 1 && y == h-1:
			near, far = y/2, y/2
		case y&1 == 1:
			near, far = y/2, y/2+1
		default:
			near, far = y/2, y/2-1
		}
		row := pix[y*stride : y*stride+nc*w]
		upsampleRow(row, nc, m.Y[y*m.YStride:y*m.YStride+w],
			crow(m.Cb, near), crow(m.Cr, near), crow(m.Cb, far), crow(m.Cr, far))
		if alpha != nil {
			a := alpha[y*astride:]
			for x := range w {
				row[4*x+3] = a[x]
			}
		}
	}
	return out
}
