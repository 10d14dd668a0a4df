package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.Float64()*2 - 1)
	}
	return s
}

// refMatMul computes act(a·wᵀ + bias) in float64 for w [n, k], and the magnitude Σ|a·w| per
// element that bounds the float32 rounding error.
func refMatMul(a []float32, m, k int, w []float32, n int, bias []float32) (want, mag []float64) {
	want = make([]float64, m*n)
	mag = make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s, g float64
			if bias != nil {
				s = float64(bias[j])
				g = math.Abs(s)
			}
			for kk := 0; kk < k; kk++ {
				p := float64(a[i*k+kk]) * float64(w[j*k+kk])
				s += p
				g += math.Abs(p)
			}
			want[i*n+j] = s
			mag[i*n+j] = g
		}
	}
	return want, mag
}

func checkClose(t *testing.T, call string, got []float32, want, mag []float64) {
	t.Helper()
	bad := 0
	for i := range want {
		d := math.Abs(float64(got[i]) - want[i])
		if d > 1e-6+2e-6*mag[i] || math.IsNaN(float64(got[i])) {
			if bad < 5 {
				t.Errorf("%s[%d] = %v, want %v (|Σ|=%.3g)", call, i, got[i], want[i], mag[i])
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d elements out of tolerance", call, bad, len(want))
	}
}

var shapes = []struct{ m, n, k int }{
	{1, 1, 1}, {1, 16, 1}, {3, 17, 5}, {6, 16, 4}, {7, 33, 17}, {17, 17, 17},
	{64, 64, 64}, {77, 512, 64}, {1, 512, 768}, {2, 768, 3},
	{197, 64, 197}, {197, 197, 64}, {145, 40, 300}, {300, 3, 257}, {300, 40, 600},
	{197, 768, 768}, {77, 3072, 512}, {197, 768, 3072},
}

// bigGemm is the size (m·n·k) above which a shape runs only without the race detector:
// {300, 40, 600} already crosses every cache-block boundary, and the race detector makes the
// ViT-sized shapes take minutes.
const bigGemm = 10_000_000

// gemmCase is one shape's operands and float64 references, computed once for every kernel
// and thread count.
type gemmCase struct {
	m, n, k         int
	a, w, wt, bias  []float32
	want, mag       []float64 // a·wᵀ + bias
	wantNoB, magNoB []float64 // a·wᵀ
	wantRes, magRes []float64 // a + a·wᵀ + bias (square shapes)
}

func gemmCases(t *testing.T) []gemmCase {
	r := rand.New(rand.NewPCG(1, 2))
	var out []gemmCase
	for _, s := range shapes {
		if raceEnabled && s.m*s.n*s.k > bigGemm {
			t.Logf("%dx%dx%d: run without -race only", s.m, s.n, s.k)
			continue
		}
		c := gemmCase{m: s.m, n: s.n, k: s.k, a: randSlice(r, s.m*s.k), w: randSlice(r, s.n*s.k), bias: randSlice(r, s.n)}
		c.wt = make([]float32, s.k*s.n)
		for j := 0; j < s.n; j++ {
			for kk := 0; kk < s.k; kk++ {
				c.wt[kk*s.n+j] = c.w[j*s.k+kk]
			}
		}
		c.want, c.mag = refMatMul(c.a, s.m, s.k, c.w, s.n, c.bias)
		c.wantNoB, c.magNoB = refMatMul(c.a, s.m, s.k, c.w, s.n, nil)
		if s.n == s.k {
			c.wantRes, c.magRes = make([]float64, len(c.want)), make([]float64, len(c.mag))
			for i := range c.want {
				c.wantRes[i] = c.want[i] + float64(c.a[i])
				c.magRes[i] = c.mag[i] + math.Abs(float64(c.a[i]))
			}
		}
		out = append(out, c)
	}
	return out
}

// kernels are the micro-kernel variants a test runs through.
var kernels = []struct {
	name        string
	asm, avx512 bool
}{{"avx512", true, true}, {"avx2", true, false}, {"go", false, false}}

// withKernel runs fn with the given micro-kernel selected, skipping variants this CPU or
// architecture lacks.
func withKernel(t *testing.T, asm, avx512 bool, fn func(t *testing.T)) {
	if (asm && !useAsm) || (avx512 && !useAVX512) {
		t.Skip("this CPU/architecture has no such micro-kernel")
	}
	savedAsm, saved512 := useAsm, useAVX512
	useAsm, useAVX512 = asm, avx512
	defer func() { useAsm, useAVX512 = savedAsm, saved512 }()
	fn(t)
}

func TestMatMul(t *testing.T) {
	cases := gemmCases(t)
	for _, kern := range kernels {
		t.Run(kern.name, func(t *testing.T) {
			withKernel(t, kern.asm, kern.avx512, func(t *testing.T) {
				for _, c := range cases {
					for _, threads := range []int{1, 3} {
						name := fmt.Sprintf("%dx%dx%d/threads=%d", c.m, c.n, c.k, threads)
						t.Run(name, func(t *testing.T) {
							got := make([]float32, c.m*c.n)
							MatMul(got, c.a, c.m, PackT(c.w, c.n, c.k), c.bias, None, threads)
							checkClose(t, "MatMul(PackT)", got, c.want, c.mag)

							// The same product through Pack of the transposed weight and no bias.
							MatMul(got, c.a, c.m, Pack(c.wt, c.k, c.n), nil, None, threads)
							checkClose(t, "MatMul(Pack)", got, c.wantNoB, c.magNoB)

							// MatMulAdd onto a copy of a: only when square, as a residual.
							if c.n == c.k {
								res := append([]float32(nil), c.a...)
								MatMulAdd(res, c.a, c.m, PackT(c.w, c.n, c.k), c.bias, threads)
								checkClose(t, "MatMulAdd", res, c.wantRes, c.magRes)
							}
						})
					}
				}
			})
		})
	}
}

func TestMatMulAct(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	m, n, k := 50, 70, 40
	a, w, bias := randSlice(r, m*k), randSlice(r, n*k), randSlice(r, n)
	b := PackT(w, n, k)
	for _, tt := range []struct {
		act Act
		fn  func(float64) float64
	}{
		{QuickGELU, func(x float64) float64 { return x / (1 + math.Exp(-1.702*x)) }},
		{GELU, func(x float64) float64 { return 0.5 * x * (1 + math.Erf(x/math.Sqrt2)) }},
	} {
		t.Run(fmt.Sprint(tt.act), func(t *testing.T) {
			want, mag := refMatMul(a, m, k, w, n, bias)
			for i := range want {
				want[i] = tt.fn(want[i])
			}
			got := make([]float32, m*n)
			MatMul(got, a, m, b, bias, tt.act, 2)
			checkClose(t, "MatMul(act)", got, want, mag)
		})
	}
}

// TestGemmStrided multiplies sub-matrices of larger buffers, as attention does per head.
func TestGemmStrided(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	m, n, k, lda, ldw, ldc := 37, 29, 19, 50, 40, 33
	a, w := randSlice(r, m*lda), randSlice(r, n*ldw)
	ac, wc := make([]float32, m*k), make([]float32, n*k)
	for i := 0; i < m; i++ {
		copy(ac[i*k:(i+1)*k], a[i*lda:])
	}
	for j := 0; j < n; j++ {
		copy(wc[j*k:(j+1)*k], w[j*ldw:])
	}
	want, mag := refMatMul(ac, m, k, wc, n, nil)
	b := newPacked(k, n)
	packTInto(b.Data, w, n, k, ldw)
	c := randSlice(r, m*ldc)
	keep := append([]float32(nil), c...)
	gemm(1, m, a, lda, b, c, ldc, nil, None, false)
	got := make([]float32, m*n)
	for i := 0; i < m; i++ {
		copy(got[i*n:(i+1)*n], c[i*ldc:])
		for j := n; j < ldc; j++ {
			if c[i*ldc+j] != keep[i*ldc+j] {
				t.Fatalf("gemm wrote c[%d][%d] outside the %d columns", i, j, n)
			}
		}
	}
	checkClose(t, "gemm(strided)", got, want, mag)
}

func benchShape(b *testing.B, m, n, k int) {
	r := rand.New(rand.NewPCG(1, 1))
	a, w := randSlice(r, m*k), randSlice(r, n*k)
	p := PackT(w, n, k)
	c := make([]float32, m*n)
	b.ResetTimer()
	cpu0 := cpuSeconds()
	for i := 0; i < b.N; i++ {
		MatMul(c, a, m, p, nil, None, 0)
	}
	flop := 2 * float64(m) * float64(n) * float64(k) * float64(b.N)
	b.ReportMetric(flop/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	// Per CPU-second: what one core does, even when other work shares the machine.
	if cpu := cpuSeconds() - cpu0; cpu > 0 {
		b.ReportMetric(flop/cpu/1e9, "GFLOP/cpu-s")
	}
}

// BenchmarkMatMul runs the ViT-B/16 GEMM shapes (m×n×k) for one image (197 rows) and for a
// batch of 32 images stacked into one matrix (32·197 rows).
func BenchmarkMatMul(b *testing.B) {
	for _, s := range []struct {
		name    string
		m, n, k int
	}{
		{"qkv_6304x2304x768", 32 * 197, 2304, 768},
		{"out_6304x768x768", 32 * 197, 768, 768},
		{"fc_6304x3072x768", 32 * 197, 3072, 768},
		{"proj_6304x768x3072", 32 * 197, 768, 3072},
		{"single_197x768x768", 197, 768, 768},
		{"single_197x3072x768", 197, 3072, 768},
		{"single_197x768x3072", 197, 768, 3072},
	} {
		b.Run(s.name, func(b *testing.B) { benchShape(b, s.m, s.n, s.k) })
	}
}
