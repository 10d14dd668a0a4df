package cuda

import (
	"fmt"
	"math"

	"github.com/gata-contrib/gata/dva/tensor"
)

// The launches of the kernels of kernels/*.cu: grid, block and shared memory as each
// kernel's comment asks, and the choice between its variants.

// epilogue is what a GEMM does with A·Wᵀ + bias (see kernels/gemm.cu).
type epilogue int

const (
	epiHalf     epilogue = iota // out (half) = act(acc + bias)
	epiFloat                    // out (float) = act(acc + bias)
	epiFloatAdd                 // out (float) += acc + bias
)

var epiNames = [...]string{epiHalf: "h", epiFloat: "f", epiFloatAdd: "fadd"}

// gemmOp is one GEMM: out[M, N] = epilogue(A[M, K]·W[N, K]ᵀ + bias).
type gemmOp struct {
	a        dptr // half
	lda      int
	w        dptr // half
	ldw      int
	bias     dptr // float, or 0
	out      dptr
	ldc      int
	m, n, k  int
	act      tensor.Act
	epilogue epilogue
}

// gemm launches op with the 128x128 tile when that still gives every multiprocessor a
// block, else with the 64x64 one, and with 16-byte copies when the shapes allow them.
func gemm(d device, op gemmOp) error {
	if op.m <= 0 || op.n <= 0 || op.k <= 0 {
		return fmt.Errorf("gemm: empty shape %dx%dx%d", op.m, op.n, op.k)
	}
	if op.epilogue == epiFloatAdd && op.act != tensor.None {
		return fmt.Errorf("gemm: an accumulating epilogue takes no activation")
	}
	tile, threads, smem := 128, 256, 3*(128+128)*40*2
	if cdiv(op.m, 128)*cdiv(op.n, 128) < d.sms() {
		tile, threads, smem = 64, 128, 3*(64+64)*40*2
	}
	aligned := op.k%8 == 0 && op.lda%8 == 0 && op.ldw%8 == 0 && op.a%16 == 0 && op.w%16 == 0
	name := fmt.Sprintf("gemm_%s_%dx%d", epiNames[op.epilogue], tile, tile)
	if aligned {
		name += "_a8"
	}
	grid := [3]uint32{uint32(cdiv(op.n, tile)), uint32(cdiv(op.m, tile)), 1}
	if err := checkGrid(name, grid); err != nil {
		return err
	}
	a := args().ptr(op.a).i32(op.lda).ptr(op.w).i32(op.ldw).ptr(op.bias).ptr(op.out).i32(op.ldc).
		i32(op.m).i32(op.n).i32(op.k).i32(int(op.act))
	return d.launch(name, grid, [3]uint32{uint32(threads), 1, 1}, smem, a)
}

// attentionPad is the padded head dimension of the attention kernel for head dimension hd.
func attentionPad(hd int) (int, error) {
	for _, p := range []int{16, 32, 64, 80, 128} {
		if hd <= p {
			return p, nil
		}
	}
	return 0, fmt.Errorf("attention: head dimension %d is above 128", hd)
}

// attentionSmem mirrors attn_impl::layout<DP>::bytes.
func attentionSmem(dp int) int {
	ldh, ldo := dp+8, dp+4
	return 64*ldh*2*3 + 4*16*(64+4)*4 + 4*16*(64+8)*2 + 4*16*ldo*4
}

// attention runs multi-head attention over qkv [batch*tokens, 3*width] (half) into out
// [batch*tokens, width] (half).
func attention(d device, qkv, out dptr, batch, tokens, width, heads int, causal bool) error {
	if heads <= 0 || width%heads != 0 {
		return fmt.Errorf("attention: width %d is not a multiple of %d heads", width, heads)
	}
	hd := width / heads
	dp, err := attentionPad(hd)
	if err != nil {
		return err
	}
	name := fmt.Sprintf("attention_d%d", dp)
	grid := [3]uint32{uint32(cdiv(tokens, 64)), uint32(heads), uint32(batch)}
	if err := checkGrid(name, grid); err != nil {
		return err
	}
	c := 0
	if causal {
		c = 1
	}
	a := args().ptr(qkv).ptr(out).i32(tokens).i32(width).i32(hd).i32(c).f32(float32(1 / math.Sqrt(float64(hd))))
	return d.launch(name, grid, [3]uint32{128, 1, 1}, attentionSmem(dp), a)
}

// lnEps is the epsilon of every LayerNorm in OpenCLIP.
const lnEps = 1e-5

// layerNorm normalises rows of the float matrix x (row r at x + idx[r]*width when idx is
// set, else at x + r*stride floats) into out, half when toHalf is set, else float.
func layerNorm(d device, x, idx dptr, stride, rows, width int, gamma, beta, out dptr, toHalf bool) error {
	name := "layernorm_f"
	if toHalf {
		name = "layernorm_h"
	}
	a := args().ptr(x).ptr(idx).i64(stride).i32(rows).i32(width).ptr(gamma).ptr(beta).ptr(out).f32(lnEps)
	return d.launch(name, [3]uint32{uint32(cdiv(rows, 8)), 1, 1}, [3]uint32{256, 1, 1}, 0, a)
}

// elementwise launches a one-thread-per-element kernel over n elements.
func elementwise(d device, name string, n int, a *kargs) error {
	if n == 0 {
		return nil
	}
	return d.launch(name, [3]uint32{uint32(cdiv(n, 256)), 1, 1}, [3]uint32{256, 1, 1}, 0, a)
}

// toHalfOn converts n floats at in to half at out on the device.
func toHalfOn(d device, in, out dptr, n int) error {
	return elementwise(d, "f32_to_f16", n, args().ptr(in).ptr(out).i64(n))
}

// im2col writes the patches of n images pixels [n, 3, S, S] (half) as rows [n*g*g, 3*P*P].
func im2col(d device, pixels, patches dptr, n, S, P int) error {
	g := S / P
	return elementwise(d, "im2col", n*g*g*3*P*P, args().ptr(pixels).ptr(patches).i32(n).i32(S).i32(P))
}

// visionTokens writes x [n, T, W] = [class; patch embeddings] + positions.
func visionTokens(d device, emb, cls, pos, x dptr, n, T, W int) error {
	return elementwise(d, "vision_tokens", n*T*W, args().ptr(emb).ptr(cls).ptr(pos).ptr(x).i32(n).i32(T).i32(W))
}

// textTokens writes x [n, L, W] = token embeddings of ids [n, ctx] + positions.
func textTokens(d device, ids, table, pos, x dptr, n, L, ctx, W int) error {
	return elementwise(d, "text_tokens", n*L*W, args().ptr(ids).ptr(table).ptr(pos).ptr(x).i32(n).i32(L).i32(ctx).i32(W))
}

// l2Normalize writes each float row of x divided by its norm to out.
func l2Normalize(d device, x, out dptr, rows, width int) error {
	a := args().ptr(x).ptr(out).i32(rows).i32(width)
	return d.launch("l2_normalize", [3]uint32{uint32(cdiv(rows, 8)), 1, 1}, [3]uint32{256, 1, 1}, 0, a)
}
