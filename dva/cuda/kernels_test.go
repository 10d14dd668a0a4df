package cuda

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gata-contrib/gata/dva"
	"github.com/gata-contrib/gata/dva/preprocess"
	"github.com/gata-contrib/gata/dva/tensor"
)

// The kernel tests compare each kernel with the CPU kernels of dva/tensor (or a plain loop
// where dva/tensor has none) on odd shapes: sizes that are not multiples of the tiles,
// batch 1, 77 and 197 tokens. They take a device, so the emulator (emu_test.go) and a
// real GPU (gpu_test.go) run the same cases.

func runKernelTests(t *testing.T, d device) {
	t.Run("gemm", func(t *testing.T) { testGEMM(t, d) })
	t.Run("attention", func(t *testing.T) { testAttention(t, d) })
	t.Run("layernorm", func(t *testing.T) { testLayerNorm(t, d) })
	t.Run("elementwise", func(t *testing.T) { testElementwise(t, d) })
	t.Run("preprocess", func(t *testing.T) { testPreprocess(t, d) })
}

// --- helpers --------------------------------------------------------------------------

type devMem struct {
	t *testing.T
	a arena
}

func newDevMem(t *testing.T, d device) *devMem {
	m := &devMem{t: t, a: arena{dev: d}}
	t.Cleanup(m.a.release)
	return m
}

func (m *devMem) f32(x []float32) dptr {
	m.t.Helper()
	b := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	p, err := m.a.upload(b)
	if err != nil {
		m.t.Fatal(err)
	}
	return p
}

func (m *devMem) half(x []float32) dptr {
	m.t.Helper()
	p, err := m.a.upload(halves(nil, x))
	if err != nil {
		m.t.Fatal(err)
	}
	return p
}

func (m *devMem) i32(x []int32) dptr {
	m.t.Helper()
	b := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(v))
	}
	p, err := m.a.upload(b)
	if err != nil {
		m.t.Fatal(err)
	}
	return p
}

func (m *devMem) zeros(bytes int) dptr {
	m.t.Helper()
	p, err := m.a.upload(make([]byte, bytes))
	if err != nil {
		m.t.Fatal(err)
	}
	return p
}

func (m *devMem) readF32(p dptr, n int) []float32 {
	m.t.Helper()
	b := make([]byte, 4*n)
	if err := m.a.dev.copyOut(b, p); err != nil {
		m.t.Fatal(err)
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

func (m *devMem) readHalf(p dptr, n int) []float32 {
	m.t.Helper()
	b := make([]byte, 2*n)
	if err := m.a.dev.copyOut(b, p); err != nil {
		m.t.Fatal(err)
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = fromHalf(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return out
}

func randn(r *rand.Rand, n int, scale float32) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64()) * scale
	}
	return x
}

// roundHalf rounds every value to the nearest half, as the kernels see their inputs.
func roundHalf(x []float32) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = fromHalf(toHalf(v))
	}
	return out
}

// compare fails when |got - want| > abs + rel*|want| anywhere, naming the worst element.
func compare(t *testing.T, what string, got, want []float32, abs, rel float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	worst, at := -1.0, -1
	for i := range got {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		excess := d - (abs + rel*math.Abs(float64(want[i])))
		if math.IsNaN(d) {
			excess = math.Inf(1)
		}
		if excess > 0 && excess > worst {
			worst, at = excess, i
		}
	}
	if at >= 0 {
		t.Errorf("%s: element %d = %g, want %g (tolerance %g + %g·|want|)", what, at, got[at], want[at], abs, rel)
	}
}

// --- GEMM -----------------------------------------------------------------------------

func testGEMM(t *testing.T, d device) {
	for _, tt := range []struct {
		m, n, k, lda int
		act          tensor.Act
		epi          epilogue
		bias         bool
	}{
		{197, 100, 72, 72, tensor.QuickGELU, epiHalf, true}, // 16-byte copies, ragged M and N
		{77, 40, 20, 20, tensor.GELU, epiFloat, true},       // K not a multiple of 8: element loads
		{1, 64, 512, 512, tensor.None, epiFloatAdd, true},   // batch 1
		{130, 129, 48, 56, tensor.None, epiHalf, false},     // A with a leading dimension above K, no bias
		{14, 12, 4, 4, tensor.QuickGELU, epiHalf, true},     // the tiny text tower: K = 4
		{300, 260, 96, 96, tensor.None, epiFloatAdd, true},  // several tiles both ways
		{5, 16, 3072, 3072, tensor.None, epiFloat, false},   // a long K (the patch embedding)
	} {
		name := fmt.Sprintf("%dx%dx%d_lda%d_%s_%s", tt.m, tt.n, tt.k, tt.lda, epiNames[tt.epi], tt.act)
		t.Run(name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(tt.m), uint64(tt.n*1000+tt.k)))
			mem := newDevMem(t, d)
			a := roundHalf(randn(r, tt.m*tt.lda, 1))
			w := roundHalf(randn(r, tt.n*tt.k, float32(1/math.Sqrt(float64(tt.k)))))
			var bias []float32
			var biasP dptr
			if tt.bias {
				bias = randn(r, tt.n, 0.5)
				biasP = mem.f32(bias)
			}
			dense := make([]float32, tt.m*tt.k) // A without the gap of lda > k
			for i := range tt.m {
				copy(dense[i*tt.k:(i+1)*tt.k], a[i*tt.lda:])
			}
			want := make([]float32, tt.m*tt.n)
			var outP dptr
			switch tt.epi {
			case epiHalf:
				outP = mem.zeros(2 * tt.m * tt.n)
			default:
				if tt.epi == epiFloatAdd {
					want = randn(r, tt.m*tt.n, 1)
				}
				outP = mem.f32(want)
			}
			packed := tensor.PackT(w, tt.n, tt.k)
			if tt.epi == epiFloatAdd {
				tensor.MatMulAdd(want, dense, tt.m, packed, bias, 1)
			} else {
				tensor.MatMul(want, dense, tt.m, packed, bias, tt.act, 1)
			}
			op := gemmOp{a: mem.half(a), lda: tt.lda, w: mem.half(w), ldw: tt.k, bias: biasP, out: outP, ldc: tt.n,
				m: tt.m, n: tt.n, k: tt.k, act: tt.act, epilogue: tt.epi}
			if err := gemm(d, op); err != nil {
				t.Fatalf("gemm: %v", err)
			}
			if tt.epi == epiHalf {
				compare(t, "gemm (half out)", mem.readHalf(outP, tt.m*tt.n), want, 1e-3, 2e-3)
			} else {
				compare(t, "gemm (float out)", mem.readF32(outP, tt.m*tt.n), want, 1e-4, 1e-4)
			}
		})
	}
}

// --- attention ------------------------------------------------------------------------

func testAttention(t *testing.T, d device) {
	for _, tt := range []struct {
		batch, tokens, width, heads int
		causal                      bool
	}{
		{1, 197, 128, 2, false}, // ViT-B/16's sequence, head dimension 64, four key tiles
		{2, 77, 128, 2, true},   // the text tower's context, causal
		{3, 50, 32, 2, false},   // the tiny model's image tower: head dimension 16
		{2, 14, 4, 2, true},     // the tiny model's text tower: head dimension 2, element loads
		{1, 65, 160, 2, false},  // head dimension 80 (ViT-H/14), one key past a tile
		{2, 130, 96, 1, true},   // head dimension 96 padded to 128
		{1, 1, 64, 1, true},     // one token
	} {
		name := fmt.Sprintf("b%d_t%d_w%d_h%d_causal=%v", tt.batch, tt.tokens, tt.width, tt.heads, tt.causal)
		t.Run(name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(tt.tokens), uint64(tt.width)))
			mem := newDevMem(t, d)
			rows := tt.batch * tt.tokens
			qkv := roundHalf(randn(r, rows*3*tt.width, 1.5))
			want := make([]float32, rows*tt.width)
			tensor.Attention(want, qkv, tt.batch, tt.tokens, tt.width, tt.heads, tt.causal, 1)
			out := mem.zeros(2 * rows * tt.width)
			if err := attention(d, mem.half(qkv), out, tt.batch, tt.tokens, tt.width, tt.heads, tt.causal); err != nil {
				t.Fatalf("attention: %v", err)
			}
			compare(t, "attention", mem.readHalf(out, rows*tt.width), want, 4e-3, 4e-3)
		})
	}
}

// --- LayerNorm ------------------------------------------------------------------------

func testLayerNorm(t *testing.T, d device) {
	for _, tt := range []struct {
		name              string
		rows, width, pick int // pick > 0: normalise row 0 of every pick rows (the class tokens)
		idx               []int32
		half, inPlace     bool
	}{
		{name: "197x100_half", rows: 197, width: 100, half: true},
		{name: "9x768_float_in_place", rows: 9, width: 768, inPlace: true},
		{name: "class_tokens", rows: 3, width: 32, pick: 50, half: true},
		{name: "eot_rows", rows: 4, width: 4, idx: []int32{3, 13, 14, 27}, half: true},
		{name: "1x1", rows: 1, width: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(tt.rows), uint64(tt.width)))
			mem := newDevMem(t, d)
			inRows := tt.rows
			switch {
			case tt.pick > 0:
				inRows = tt.rows * tt.pick
			case tt.idx != nil:
				inRows = 28
			}
			x := randn(r, inRows*tt.width, 3)
			for i := range x {
				x[i] += 2 // a mean away from zero
			}
			g, b := randn(r, tt.width, 1), randn(r, tt.width, 1)
			sel := make([]float32, tt.rows*tt.width)
			for i := range tt.rows {
				src := i
				switch {
				case tt.pick > 0:
					src = i * tt.pick
				case tt.idx != nil:
					src = int(tt.idx[i])
				}
				copy(sel[i*tt.width:(i+1)*tt.width], x[src*tt.width:])
			}
			want := make([]float32, len(sel))
			tensor.LayerNorm(want, sel, tt.rows, tt.width, g, b, lnEps, 1)

			xp := mem.f32(x)
			var idxP dptr
			if tt.idx != nil {
				idxP = mem.i32(tt.idx)
			}
			stride := tt.width
			if tt.pick > 0 {
				stride = tt.pick * tt.width
			}
			out := xp
			if !tt.inPlace {
				out = mem.zeros(4 * tt.rows * tt.width)
			}
			if err := layerNorm(d, xp, idxP, stride, tt.rows, tt.width, mem.f32(g), mem.f32(b), out, tt.half); err != nil {
				t.Fatalf("layerNorm: %v", err)
			}
			if tt.half {
				compare(t, "layernorm (half out)", mem.readHalf(out, tt.rows*tt.width), want, 2e-3, 1e-3)
			} else {
				compare(t, "layernorm (float out)", mem.readF32(out, tt.rows*tt.width), want, 1e-5, 1e-5)
			}
		})
	}
}

// --- the element-wise kernels ---------------------------------------------------------

func testElementwise(t *testing.T, d device) {
	r := rand.New(rand.NewPCG(1, 2))
	t.Run("f32_to_f16", func(t *testing.T) {
		mem := newDevMem(t, d)
		x := randn(r, 1001, 100)
		x = append(x, 65504, 65520, -1e9, 1e-8, 3e-8, 0, float32(math.Inf(1)))
		out := mem.zeros(2 * len(x))
		if err := toHalfOn(d, mem.f32(x), out, len(x)); err != nil {
			t.Fatal(err)
		}
		got := mem.readHalf(out, len(x))
		for i, v := range x {
			if toHalf(got[i]) != toHalf(v) {
				t.Errorf("f32_to_f16(%g) = %g, want %g", v, got[i], fromHalf(toHalf(v)))
			}
		}
	})
	t.Run("im2col_and_vision_tokens", func(t *testing.T) {
		mem := newDevMem(t, d)
		n, S, P, W := 2, 48, 16, 24
		g := S / P
		T := g*g + 1
		pix := roundHalf(randn(r, n*3*S*S, 1))
		patches := mem.zeros(2 * n * g * g * 3 * P * P)
		if err := im2col(d, mem.half(pix), patches, n, S, P); err != nil {
			t.Fatal(err)
		}
		want := make([]float32, 0, n*g*g*3*P*P)
		for img := range n {
			for gy := range g {
				for gx := range g {
					for ch := range 3 {
						for py := range P {
							for px := range P {
								want = append(want, pix[((img*3+ch)*S+gy*P+py)*S+gx*P+px])
							}
						}
					}
				}
			}
		}
		compare(t, "im2col", mem.readHalf(patches, len(want)), want, 0, 0)

		emb, cls, pos := randn(r, n*g*g*W, 1), randn(r, W, 1), randn(r, T*W, 1)
		x := mem.zeros(4 * n * T * W)
		if err := visionTokens(d, mem.f32(emb), mem.f32(cls), mem.f32(pos), x, n, T, W); err != nil {
			t.Fatal(err)
		}
		want = want[:0]
		for img := range n {
			for tok := range T {
				for c := range W {
					v := cls[c]
					if tok > 0 {
						v = emb[(img*g*g+tok-1)*W+c]
					}
					want = append(want, v+pos[tok*W+c])
				}
			}
		}
		compare(t, "vision_tokens", mem.readF32(x, n*T*W), want, 0, 0)
	})
	t.Run("text_tokens", func(t *testing.T) {
		mem := newDevMem(t, d)
		n, L, ctx, W, vocab := 3, 5, 77, 12, 50
		ids := make([]int32, n*ctx)
		for i := range ids {
			ids[i] = int32(r.IntN(vocab))
		}
		table, pos := roundHalf(randn(r, vocab*W, 1)), randn(r, ctx*W, 1)
		x := mem.zeros(4 * n * L * W)
		if err := textTokens(d, mem.i32(ids), mem.half(table), mem.f32(pos), x, n, L, ctx, W); err != nil {
			t.Fatal(err)
		}
		var want []float32
		for i := range n {
			for j := range L {
				for c := range W {
					want = append(want, table[int(ids[i*ctx+j])*W+c]+pos[j*W+c])
				}
			}
		}
		compare(t, "text_tokens", mem.readF32(x, n*L*W), want, 0, 0)
	})
	t.Run("l2_normalize", func(t *testing.T) {
		mem := newDevMem(t, d)
		rows, width := 11, 33
		x := randn(r, rows*width, 2)
		copy(x[5*width:6*width], make([]float32, width)) // a zero row stays zero
		out := mem.zeros(4 * rows * width)
		if err := l2Normalize(d, mem.f32(x), out, rows, width); err != nil {
			t.Fatal(err)
		}
		var want []float32
		for i := range rows {
			want = append(want, dva.Normalize(x[i*width:(i+1)*width])...)
		}
		compare(t, "l2_normalize", mem.readF32(out, rows*width), want, 1e-6, 1e-6)
	})
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }

// --- preprocessing ----------------------------------------------------------------------

func testPreprocess(t *testing.T, d device) {
	for _, tt := range []struct {
		name          string
		w, h          int
		interpolation string
		mode          string
	}{
		{"downscale_landscape", 300, 200, preprocess.Bicubic, preprocess.ResizeShortest},
		{"downscale_portrait_bilinear", 230, 500, preprocess.Bilinear, preprocess.ResizeShortest},
		{"exact_size_crop_only", 224, 260, preprocess.Bicubic, preprocess.ResizeShortest},
		{"upscale", 100, 150, preprocess.Bicubic, preprocess.ResizeShortest},
		{"squash", 640, 97, preprocess.Bicubic, preprocess.ResizeSquash},
		{"large", 1024, 768, preprocess.Bicubic, preprocess.ResizeShortest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRand(uint64(tt.w*1000 + tt.h))
			rgb := make([]byte, 3*tt.w*tt.h)
			for y := range tt.h { // smooth gradients with noise and hard edges: clipping, rounding
				for x := range tt.w {
					for c := range 3 {
						v := (x*(c+1)*7+y*3)%256 + r.IntN(40) - 20
						if (x/17+y/13)%5 == 0 {
							v = 255 * ((x + c) % 2)
						}
						rgb[3*(y*tt.w+x)+c] = byte(min(max(v, 0), 255))
					}
				}
			}
			cfg := preprocess.DefaultConfig()
			cfg.Interpolation, cfg.ResizeMode = tt.interpolation, tt.mode
			crop, err := preprocess.Crop(&preprocess.RGB{Pix: rgb, W: tt.w, H: tt.h}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			want := make([]float32, 3*cfg.Size*cfg.Size)
			preprocess.Normalize(crop.Pix, cfg, want)

			mem := newDevMem(t, d)
			ws := newWorkspace(d)
			defer ws.release()
			out := mem.zeros(4 * len(want))
			if err := preprocessRGB(d, ws, rgb, tt.w, tt.h, cfg, out); err != nil {
				t.Fatalf("preprocessRGB: %v", err)
			}
			compare(t, "preprocessRGB", mem.readF32(out, len(want)), want, 0, 0)
		})
	}
}
