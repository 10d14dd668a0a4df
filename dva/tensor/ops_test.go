package tensor

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestExp(t *testing.T) {
	for x := -87.0; x <= 88.7; x += 0.0137 {
		got := float64(Exp(float32(x)))
		want := math.Exp(float64(float32(x)))
		if d := math.Abs(got-want) / want; d > 3e-7 {
			t.Fatalf("Exp(%v) = %v, want %v (rel %.2g)", x, got, want, d)
		}
	}
	for _, tt := range []struct{ x, want float32 }{
		{0, 1}, {-200, 0}, {float32(math.Inf(-1)), 0}, {100, float32(math.Inf(1))},
	} {
		if got := Exp(tt.x); got != tt.want {
			t.Errorf("Exp(%v) = %v, want %v", tt.x, got, tt.want)
		}
	}
	if got := Exp(88.72); math.IsInf(float64(got), 0) || math.Abs(float64(got)/math.Exp(float64(float32(88.72)))-1) > 3e-7 {
		t.Errorf("Exp(88.72) = %v, want %v", got, math.Exp(88.72))
	}
}

func TestLayerNorm(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	rows, width := 9, 37
	x, w, b := randSlice(r, rows*width), randSlice(r, width), randSlice(r, width)
	for i := range x {
		x[i] = x[i]*3 + 5 // a large mean catches a one-pass variance
	}
	got := make([]float32, len(x))
	LayerNorm(got, x, rows, width, w, b, 1e-5, 2)
	for i := 0; i < rows; i++ {
		row := x[i*width : (i+1)*width]
		var mean, v float64
		for _, e := range row {
			mean += float64(e)
		}
		mean /= float64(width)
		for _, e := range row {
			v += (float64(e) - mean) * (float64(e) - mean)
		}
		v /= float64(width)
		for j, e := range row {
			want := (float64(e)-mean)/math.Sqrt(v+1e-5)*float64(w[j]) + float64(b[j])
			if d := math.Abs(float64(got[i*width+j]) - want); d > 1e-6+1e-6*math.Abs(want) {
				t.Fatalf("LayerNorm[%d][%d] = %v, want %v", i, j, got[i*width+j], want)
			}
		}
	}
}

func TestSoftmax(t *testing.T) {
	row := []float32{1, 2, 3, -1000, 0.5}
	in := append([]float32(nil), row...)
	Softmax(row, 0.5)
	var sum float64
	var z float64
	for _, v := range in {
		z += math.Exp(0.5 * float64(v-3))
	}
	for i, v := range in {
		want := math.Exp(0.5*float64(v-3)) / z
		if d := math.Abs(float64(row[i]) - want); d > 1e-7+1e-6*want {
			t.Errorf("Softmax[%d] = %v, want %v", i, row[i], want)
		}
		sum += float64(row[i])
	}
	if math.Abs(sum-1) > 1e-6 {
		t.Errorf("Softmax sums to %v, want 1", sum)
	}
}

func TestActivate(t *testing.T) {
	xs := []float32{-60, -8, -3, -1, -0.1, 0, 0.1, 1, 3, 8, 60}
	for _, tt := range []struct {
		name string
		act  Act
		fn   func(float64) float64
	}{
		{"QuickGELU", QuickGELU, func(x float64) float64 { return x / (1 + math.Exp(-1.702*x)) }},
		{"GELU", GELU, func(x float64) float64 { return 0.5 * x * (1 + math.Erf(x/math.Sqrt2)) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := append([]float32(nil), xs...)
			Activate(got, tt.act, 1)
			for i, x := range xs {
				want := tt.fn(float64(x))
				if d := math.Abs(float64(got[i]) - want); d > 1e-7+3e-7*math.Abs(want) {
					t.Errorf("Activate(%s, %v) = %v, want %v", tt.name, x, got[i], want)
				}
			}
		})
	}
}

// TestVectorOps checks QuickGELU and Softmax on long rows through both the assembly and the
// portable code, against float64.
func TestVectorOps(t *testing.T) {
	for _, kern := range []struct {
		name string
		asm  bool
	}{{"asm", true}, {"go", false}} {
		t.Run(kern.name, func(t *testing.T) {
			withKernel(t, kern.asm, false, func(t *testing.T) {
				r := rand.New(rand.NewPCG(11, 12))
				for _, n := range []int{1, 7, 8, 9, 31, 197, 1000} {
					x := randSlice(r, n)
					for i := range x {
						x[i] *= 30
					}
					x[0] = -95 // beyond the exp clamp in both directions
					if n > 3 {
						x[3] = 60
					}
					got := append([]float32(nil), x...)
					Activate(got, QuickGELU, 1)
					for i, v := range x {
						want := float64(v) / (1 + math.Exp(-1.702*float64(v)))
						// e^(-1.702v) carries the float32 rounding of its argument: relative error ~ |1.702v|·ulp.
						if d := math.Abs(float64(got[i]) - want); d > 1e-30+(4e-7+1.5e-7*math.Abs(1.702*float64(v)))*math.Abs(want) {
							t.Fatalf("QuickGELU(%v) = %v, want %v (n=%d)", v, got[i], want, n)
						}
					}
					got = append(got[:0], x...)
					Softmax(got, 0.125)
					mx := math.Inf(-1)
					for _, v := range x {
						mx = math.Max(mx, float64(v))
					}
					var z float64
					for _, v := range x {
						z += math.Exp((float64(v) - mx) * 0.125)
					}
					for i, v := range x {
						want := math.Exp((float64(v)-mx)*0.125) / z
						if d := math.Abs(float64(got[i]) - want); d > 1e-30+(1e-6+1.5e-7*math.Abs((float64(v)-mx)*0.125))*want {
							t.Fatalf("Softmax[%d] = %v, want %v (n=%d)", i, got[i], want, n)
						}
					}
				}
			})
		})
	}
}
