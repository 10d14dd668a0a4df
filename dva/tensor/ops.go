package tensor

import (
	"fmt"
	"math"
)

// LayerNorm normalises each of the rows of x [rows, width] to zero mean and unit (biased)
// variance, then scales by w and shifts by b, writing dst (which may be x).
// Sums are accumulated in float64.
func LayerNorm(dst, x []float32, rows, width int, w, b []float32, eps float32, threads int) {
	if len(x) < rows*width || len(dst) < rows*width || len(w) < width || len(b) < width {
		panic(fmt.Sprintf("tensor.LayerNorm: sizes x=%d dst=%d w=%d b=%d for [%d,%d]",
			len(x), len(dst), len(w), len(b), rows, width))
	}
	w, b = w[:width], b[:width]
	ParallelRange(threads, rows, 64, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			layerNormRow(dst[r*width:(r+1)*width], x[r*width:(r+1)*width], w, b, eps)
		}
	})
}

func layerNormRow(dst, x, w, b []float32, eps float32) {
	var sum float64
	for _, v := range x {
		sum += float64(v)
	}
	mean := sum / float64(len(x))
	var ss float64
	for _, v := range x {
		d := float64(v) - mean
		ss += d * d
	}
	inv := float32(1 / math.Sqrt(ss/float64(len(x))+float64(eps)))
	m := float32(mean)
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] = (v-m)*inv*w[i] + b[i]
	}
}

// Softmax replaces row by exp(scale·row - max) / Σ, in place.
func Softmax(row []float32, scale float32) {
	if len(row) == 0 {
		return
	}
	mx := row[0]
	for _, v := range row[1:] {
		mx = max(mx, v)
	}
	inv := 1 / expShiftSum(row, mx, scale)
	for i := range row {
		row[i] *= inv
	}
}

// Activate applies act to every element of x in place on up to threads goroutines.
func Activate(x []float32, act Act, threads int) {
	if act == None {
		return
	}
	ParallelRange(threads, len(x), 1<<14, func(lo, hi int) { activate(x[lo:hi], act) })
}

func activate(x []float32, act Act) {
	switch act {
	case QuickGELU:
		quickGELU(x)
	case GELU:
		for i, v := range x {
			x[i] = float32(0.5 * float64(v) * (1 + math.Erf(float64(v)/math.Sqrt2)))
		}
	}
}

func quickGELUGo(x []float32) {
	for i, v := range x {
		x[i] = v / (1 + Exp(-1.702*v))
	}
}

func expShiftSumGo(x []float32, mx, scale float32) float32 {
	var sum float32
	for i, v := range x {
		e := Exp((v - mx) * scale)
		x[i] = e
		sum += e
	}
	return sum
}

// Add sets dst[i] += x[i].
func Add(dst, x []float32) {
	x = x[:len(dst)]
	for i, v := range x {
		dst[i] += v
	}
}

// Exp is a float32 exponential accurate to about 2 ulp: e^x = 2^n · e^r with r = x - n·ln2
// (|r| <= ln2/2, n·ln2 subtracted in two parts) and a degree-7 polynomial for e^r. It returns
// 0 below -87.3 (no subnormals) and +Inf above 88.72.
func Exp(x float32) float32 {
	switch {
	case x > 88.72283:
		return float32(math.Inf(1))
	case x < -87.33654:
		return 0
	case x != x:
		return x
	}
	n := float32(math.Floor(float64(x*1.442695041 + 0.5)))
	r := x - n*0.693359375
	r -= n * -2.12194440e-4
	p := float32(1.9875691500e-4)
	p = p*r + 1.3981999507e-3
	p = p*r + 8.3334519073e-3
	p = p*r + 4.1665795894e-2
	p = p*r + 1.6666665459e-1
	p = p*r + 5.0000001201e-1
	p = p*r*r + r + 1
	if n > 127 { // x just below the overflow threshold: 2^128 itself is not a float32
		return p * 2 * math.Float32frombits(uint32(127+127)<<23)
	}
	return p * math.Float32frombits(uint32(int32(n)+127)<<23)
}
