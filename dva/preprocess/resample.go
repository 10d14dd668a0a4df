package preprocess

import "math"

// This file ports the algorithm of PIL's Resample.c (Pillow 9-11): a separable
// convolution, horizontal pass first, with an antialiasing support that grows with the
// downscale factor; 8-bit images use 22-bit fixed-point coefficients and a uint8
// intermediate image, mode I uses float64 coefficients and an int32 intermediate.
// Floating-point expressions are split with explicit float64 conversions so that no
// platform fuses them into FMA instructions, which PIL's C build does not do.

const precisionBits = 32 - 8 - 2 // PIL's PRECISION_BITS

// filter is a resampling kernel with its support radius at scale 1.
type filter struct {
	support float64
	f       func(float64) float64
}

var (
	bicubicFilter  = filter{2, bicubic}
	bilinearFilter = filter{1, bilinear}
)

// bicubic is the cubic convolution kernel with a = -0.5.
func bicubic(x float64) float64 {
	const a = -0.5
	if x < 0 {
		x = -x
	}
	if x < 1 {
		return float64(float64(float64(float64((a+2)*x)-(a+3))*x)*x) + 1
	}
	if x < 2 {
		return float64(float64(float64(float64(x-5)*x)+8)*x-4) * a
	}
	return 0
}

func bilinear(x float64) float64 {
	if x < 0 {
		x = -x
	}
	if x < 1 {
		return 1 - x
	}
	return 0
}

// coeffs holds the kernel of each output pixel in [o0, o0+len(start)) of a resize from
// inSize to outSize: output i reads n[i] inputs from start[i] with weights at
// i*ksize in fixed (22-bit fixed point) and dbl (normalised float64).
type coeffs struct {
	ksize int
	start []int
	n     []int
	fixed []int32
	dbl   []float64
}

// precompute mirrors PIL's precompute_coeffs + normalize_coeffs_8bpc for the outputs
// o0 .. o0+count-1 only (each output's kernel depends on nothing but its index).
func precompute(inSize, outSize, o0, count int, flt filter) *coeffs {
	scale := float64(inSize) / float64(outSize)
	filterscale := max(scale, 1.0)
	support := flt.support * filterscale
	ksize := int(math.Ceil(support))*2 + 1
	c := &coeffs{
		ksize: ksize,
		start: make([]int, count),
		n:     make([]int, count),
		fixed: make([]int32, count*ksize),
		dbl:   make([]float64, count*ksize),
	}
	ss := 1.0 / filterscale
	for i := range count {
		center := float64(float64(o0+i)+0.5) * scale
		xmin := int(center - support + 0.5)
		xmin = max(xmin, 0)
		xmax := int(center + support + 0.5)
		xmax = min(xmax, inSize)
		n := xmax - xmin
		n = max(n, 0)
		k := c.dbl[i*ksize : i*ksize+n]
		ww := 0.0
		for x := range k {
			w := flt.f(float64(float64(float64(x+xmin)-center)+0.5) * ss)
			k[x] = w
			ww += w
		}
		if ww != 0 {
			for x := range k {
				k[x] /= ww
			}
		}
		fx := c.fixed[i*ksize : i*ksize+n]
		for x, v := range k {
			p := float64(v * (1 << precisionBits))
			if v < 0 {
				fx[x] = int32(-0.5 + p)
			} else {
				fx[x] = int32(0.5 + p)
			}
		}
		c.start[i], c.n[i] = xmin, n
	}
	return c
}

func clip8(acc int32) uint8 {
	v := acc >> precisionBits
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// horizontal8 resamples rows y0 .. y0+rows-1 of src (w pixels of nc bytes) into dst,
// len(c.start) pixels per row.
func horizontal8(dst, src []uint8, w, nc, y0, rows int, c *coeffs) {
	ow := len(c.start)
	const half = 1 << (precisionBits - 1)
	for y := range rows {
		in := src[(y0+y)*w*nc : (y0+y+1)*w*nc]
		out := dst[y*ow*nc : (y+1)*ow*nc]
		for i := range ow {
			s, n := c.start[i], c.n[i]
			k := c.fixed[i*c.ksize : i*c.ksize+n]
			switch nc {
			case 1:
				p := in[s : s+n]
				acc := int32(half)
				for j, kv := range k {
					acc += int32(p[j]) * kv
				}
				out[i] = clip8(acc)
			case 3:
				p := in[3*s : 3*(s+n)]
				a0, a1, a2 := int32(half), int32(half), int32(half)
				for _, kv := range k {
					_ = p[2]
					a0 += int32(p[0]) * kv
					a1 += int32(p[1]) * kv
					a2 += int32(p[2]) * kv
					p = p[3:]
				}
				o := out[3*i : 3*i+3]
				o[0], o[1], o[2] = clip8(a0), clip8(a1), clip8(a2)
			case 4:
				p := in[4*s : 4*(s+n)]
				a0, a1, a2, a3 := int32(half), int32(half), int32(half), int32(half)
				for _, kv := range k {
					_ = p[3]
					a0 += int32(p[0]) * kv
					a1 += int32(p[1]) * kv
					a2 += int32(p[2]) * kv
					a3 += int32(p[3]) * kv
					p = p[4:]
				}
				o := out[4*i : 4*i+4]
				o[0], o[1], o[2], o[3] = clip8(a0), clip8(a1), clip8(a2), clip8(a3)
			}
		}
	}
}

// vertical8 resamples the rows of src (rowLen bytes each; c.start relative to src's
// first row) into len(c.start) rows of dst. Channels do not mix vertically, so a row is
// one run of bytes; the accumulation goes tap by tap over a whole row for locality.
func vertical8(dst, src []uint8, rowLen int, c *coeffs) {
	acc := make([]int32, rowLen)
	for i := range c.start {
		for x := range acc {
			acc[x] = 1 << (precisionBits - 1)
		}
		s, n := c.start[i], c.n[i]
		for j, kv := range c.fixed[i*c.ksize : i*c.ksize+n] {
			in := src[(s+j)*rowLen : (s+j+1)*rowLen]
			for x, v := range in {
				acc[x] += int32(v) * kv
			}
		}
		out := dst[i*rowLen : (i+1)*rowLen]
		for x, a := range acc {
			out[x] = clip8(a)
		}
	}
}

// roundUp is PIL's ROUND_UP: round half away from zero, then truncate to int.
func roundUp(f float64) int32 {
	if f >= 0 {
		return int32(f + 0.5)
	}
	return int32(f - 0.5)
}

// horizontal32 and vertical32 are the mode I passes (PIL's 32bpc resampler).
func horizontal32(dst, src []int32, w, y0, rows int, c *coeffs) {
	ow := len(c.start)
	for y := range rows {
		in := src[(y0+y)*w : (y0+y+1)*w]
		out := dst[y*ow : (y+1)*ow]
		for i := range ow {
			s, n := c.start[i], c.n[i]
			ss := 0.0
			for j, kv := range c.dbl[i*c.ksize : i*c.ksize+n] {
				ss += float64(float64(in[s+j]) * kv)
			}
			out[i] = roundUp(ss)
		}
	}
}

func vertical32(dst, src []int32, w int, c *coeffs) {
	for i := range c.start {
		s, n := c.start[i], c.n[i]
		k := c.dbl[i*c.ksize : i*c.ksize+n]
		out := dst[i*w : (i+1)*w]
		for x := range out {
			ss := 0.0
			for j, kv := range k {
				ss += float64(float64(src[(s+j)*w+x]) * kv)
			}
			out[x] = roundUp(ss)
		}
	}
}

// resample resizes f to nw x nh and returns only the window of cw x ch pixels at
// (x0, y0) of the result, computing nothing outside it; the window's pixels equal those
// of PIL's full resize followed by a crop. A dimension that does not change is not
// resampled (as in PIL).
func resample(f *flat, nw, nh, x0, y0, cw, ch int, flt filter) *flat {
	needH, needV := nw != f.w, nh != f.h
	var hc, vc *coeffs
	rowFirst, rowCount := y0, ch // source rows the vertical pass (or the copy) reads
	if needV {
		vc = precompute(f.h, nh, y0, ch, flt)
		last := ch - 1
		rowFirst = vc.start[0]
		rowCount = vc.start[last] + vc.n[last] - rowFirst
		for i := range vc.start {
			vc.start[i] -= rowFirst
		}
	}
	if needH {
		hc = precompute(f.w, nw, x0, cw, flt)
	}
	nc := f.nc
	// Horizontal pass (or column crop) into tmp: cw x rowCount.
	tmp := newFlat(f.mode, cw, rowCount)
	switch {
	case needH && f.mode == modeI:
		horizontal32(tmp.ipix, f.ipix, f.w, rowFirst, rowCount, hc)
	case needH:
		horizontal8(tmp.pix, f.pix, f.w, nc, rowFirst, rowCount, hc)
	case f.mode == modeI:
		for y := range rowCount {
			copy(tmp.ipix[y*cw:(y+1)*cw], f.ipix[(rowFirst+y)*f.w+x0:])
		}
	default:
		for y := range rowCount {
			copy(tmp.pix[y*cw*nc:(y+1)*cw*nc], f.pix[((rowFirst+y)*f.w+x0)*nc:])
		}
	}
	if !needV {
		return tmp
	}
	out := newFlat(f.mode, cw, ch)
	if f.mode == modeI {
		vertical32(out.ipix, tmp.ipix, cw, vc)
	} else {
		vertical8(out.pix, tmp.pix, cw*nc, vc)
	}
	return out
}

// nearest is PIL's NEAREST resize (ImagingScaleAffine), used for modes P and 1, again
// only for the cw x ch window at (x0, y0). Source positions are accumulated by repeated
// addition as PIL does, so they round the same way; positions outside the source stay 0.
func nearest(f *flat, nw, nh, x0, y0, cw, ch int) *flat {
	xs := nearestIndex(f.w, nw, x0, cw)
	ys := nearestIndex(f.h, nh, y0, ch)
	out := newFlat(f.mode, cw, ch)
	nc := f.nc
	for y, sy := range ys {
		if sy < 0 {
			continue
		}
		for x, sx := range xs {
			if sx < 0 {
				continue
			}
			if f.mode == modeI {
				out.ipix[y*cw+x] = f.ipix[sy*f.w+sx]
				continue
			}
			copy(out.pix[(y*cw+x)*nc:(y*cw+x+1)*nc], f.pix[(sy*f.w+sx)*nc:])
		}
	}
	return out
}

// maxNearestWalk bounds the accumulation loop of nearestIndex; beyond it (absurd aspect
// ratios) positions are computed by multiplication, which may differ from PIL by one
// source pixel in rare cases.
const maxNearestWalk = 1 << 22

func nearestIndex(inSize, outSize, o0, count int) []int {
	a := float64(inSize) / float64(outSize)
	idx := make([]int, count)
	coord := func(v float64) int {
		if v < 0 {
			return -1
		}
		i := int(v)
		if i >= inSize {
			return -1
		}
		return i
	}
	if o0+count > maxNearestWalk {
		for i := range idx {
			idx[i] = coord(float64(float64(o0+i)+0.5) * a)
		}
		return idx
	}
	v := float64(a * 0.5)
	for o := 0; o < o0+count; o++ {
		if o >= o0 {
			idx[o-o0] = coord(v)
		}
		v += a
	}
	return idx
}
