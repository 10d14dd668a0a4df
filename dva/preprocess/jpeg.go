package preprocess

import "image"

// Go's image/jpeg returns the Y'CbCr planes after its inverse DCT and leaves colour
// conversion to color.YCbCrToRGB, which replicates subsampled chroma and rounds slightly
// low. PIL decodes with libjpeg(-turbo), which upsamples 4:2:0 and 4:2:2 chroma with a
// triangle ("fancy") filter and converts with tables of rounded BT.601 full-range
// coefficients. jpegToRGB reproduces those two steps on Go's planes, so that the only
// difference left to PIL is the IDCT (a level or two).

// libjpeg's colour tables (16-bit fixed point, x = sample - 128).
var jpegCrR, jpegCbB, jpegCrG, jpegCbG [256]int32

func init() {
	const half = 1 << 15
	fix := func(v float64) int32 { return int32(v*65536 + 0.5) }
	for i := range 256 {
		x := int32(i - 128)
		jpegCrR[i] = (fix(1.40200)*x + half) >> 16
		jpegCbB[i] = (fix(1.77200)*x + half) >> 16
		jpegCrG[i] = -fix(0.71414) * x
		jpegCbG[i] = -fix(0.34414)*x + half
	}
}

func clamp255(v int32) uint8 {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// jpegPixel converts one full-range Y'CbCr sample as libjpeg does.
func jpegPixel(o []uint8, y, cb, cr uint8) {
	yy := int32(y)
	o[0] = clamp255(yy + jpegCrR[cr])
	o[1] = clamp255(yy + (jpegCbG[cb]+jpegCrG[cr])>>16)
	o[2] = clamp255(yy + jpegCbB[cb])
}

// jpegToRGB converts a decoded JPEG (Rect at the origin, planes padded to whole MCUs as
// image/jpeg allocates them) to an RGB image. It returns nil for layouts it
// does not handle, which then go through the generic conversion.
func jpegToRGB(m *image.YCbCr) *RGB {
	r := m.Rect
	if r.Min != (image.Point{}) {
		return nil
	}
	var vsub bool
	switch m.SubsampleRatio {
	case image.YCbCrSubsampleRatio444:
	case image.YCbCrSubsampleRatio422:
	case image.YCbCrSubsampleRatio420:
		vsub = true
	default:
		return nil
	}
	w, h := r.Dx(), r.Dy()
	out := &RGB{Pix: make([]uint8, 3*w*h), W: w, H: h}
	if m.SubsampleRatio == image.YCbCrSubsampleRatio444 {
		for y := range h {
			ys := m.Y[y*m.YStride : y*m.YStride+w]
			cb := m.Cb[y*m.CStride : y*m.CStride+w]
			cr := m.Cr[y*m.CStride : y*m.CStride+w]
			o := out.Pix[3*y*w : 3*(y+1)*w]
			for x := range w {
				jpegPixel(o[3*x:3*x+3], ys[x], cb[x], cr[x])
			}
		}
		return out
	}
	cw := (w + 1) / 2 // libjpeg's downsampled_width
	ch := h
	if vsub {
		ch = (h + 1) / 2
	}
	// With one chroma column libjpeg's first-column case also reads the second one,
	// which holds decoded padding; the padded plane has it too.
	readW := max(cw, min(2, m.CStride))
	sumCb := make([]int32, readW)
	sumCr := make([]int32, readW)
	upCb := make([]uint8, 2*cw)
	upCr := make([]uint8, 2*cw)
	for y := range h {
		if vsub {
			// Vertical: 3/4 the nearer chroma row, 1/4 the next nearer (edge rows repeat).
			k := y / 2
			other := k - 1
			if y&1 == 1 {
				other = k + 1
			}
			other = min(max(other, 0), ch-1)
			for j := range readW {
				sumCb[j] = 3*int32(m.Cb[k*m.CStride+j]) + int32(m.Cb[other*m.CStride+j])
				sumCr[j] = 3*int32(m.Cr[k*m.CStride+j]) + int32(m.Cr[other*m.CStride+j])
			}
			upsampleH2V2(upCb, sumCb, cw)
			upsampleH2V2(upCr, sumCr, cw)
		} else {
			upsampleH2V1(upCb, m.Cb[y*m.CStride:y*m.CStride+readW], cw)
			upsampleH2V1(upCr, m.Cr[y*m.CStride:y*m.CStride+readW], cw)
		}
		ys := m.Y[y*m.YStride : y*m.YStride+w]
		o := out.Pix[3*y*w : 3*(y+1)*w]
		for x := range w {
			jpegPixel(o[3*x:3*x+3], ys[x], upCb[x], upCr[x])
		}
	}
	return out
}

// upsampleH2V2 is the horizontal half of libjpeg's h2v2 triangle filter on column sums
// (3*near + far rows): 3/4 the nearer column, 1/4 the other, rounding alternating.
func upsampleH2V2(dst []uint8, sum []int32, cw int) {
	dst[0] = uint8((sum[0]*4 + 8) >> 4)
	if cw == 1 {
		dst[1] = uint8((sum[0]*3 + sum[len(sum)-1] + 7) >> 4)
		return
	}
	dst[1] = uint8((sum[0]*3 + sum[1] + 7) >> 4)
	for j := 1; j < cw-1; j++ {
		dst[2*j] = uint8((sum[j]*3 + sum[j-1] + 8) >> 4)
		dst[2*j+1] = uint8((sum[j]*3 + sum[j+1] + 7) >> 4)
	}
	j := cw - 1
	dst[2*j] = uint8((sum[j]*3 + sum[j-1] + 8) >> 4)
	dst[2*j+1] = uint8((sum[j]*4 + 7) >> 4)
}

// upsampleH2V1 is libjpeg's h2v1 triangle filter; the first and last outputs copy the
// edge samples.
func upsampleH2V1(dst []uint8, c []uint8, cw int) {
	dst[0] = c[0]
	if cw == 1 {
		dst[1] = uint8((int32(c[0])*3 + int32(c[len(c)-1]) + 2) >> 2)
		return
	}
	dst[1] = uint8((int32(c[0])*3 + int32(c[1]) + 2) >> 2)
	for j := 1; j < cw-1; j++ {
		v := int32(c[j]) * 3
		dst[2*j] = uint8((v + int32(c[j-1]) + 1) >> 2)
		dst[2*j+1] = uint8((v + int32(c[j+1]) + 2) >> 2)
	}
	j := cw - 1
	dst[2*j] = uint8((int32(c[j])*3 + int32(c[j-1]) + 1) >> 2)
	dst[2*j+1] = c[j]
}
