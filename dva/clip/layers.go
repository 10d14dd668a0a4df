package clip

import "github.com/gata-contrib/gata/dva/tensor"

// lnEps is the epsilon of every LayerNorm in OpenCLIP.
const lnEps = 1e-5

// LayerNorm normalises each row and applies the affine Weight and Bias (ln_*.weight, ln_*.bias).
type LayerNorm struct {
	Weight, Bias []float32
}

// Forward writes the normalised rows of x [rows, width] to dst (which may be x).
func (ln *LayerNorm) Forward(threads int, dst, x []float32, rows int) {
	tensor.LayerNorm(dst, x, rows, len(ln.Weight), ln.Weight, ln.Bias, lnEps, threads)
}

// Linear is y = x·Wᵀ + b with W [out, in] packed once for tensor.MatMul.
type Linear struct {
	Weight *tensor.Packed
	Bias   []float32
}

// Forward writes act(x·Wᵀ + b) for x [rows, in] to dst [rows, out].
func (l *Linear) Forward(threads int, dst, x []float32, rows int, act tensor.Act) {
	tensor.MatMul(dst, x, rows, l.Weight, l.Bias, act, threads)
}

// AddForward adds x·Wᵀ + b to dst: a residual branch ending in this layer.
func (l *Linear) AddForward(threads int, dst, x []float32, rows int) {
	tensor.MatMulAdd(dst, x, rows, l.Weight, l.Bias, threads)
}

// Attention is multi-head self-attention (attn.in_proj_*, attn.out_proj.*): the in-projection
// rows are q, then k, then v; head h uses channels h*d … (h+1)*d-1.
type Attention struct {
	InProj  Linear
	OutProj Linear
	Heads   int
	Causal  bool
}

// MLP is c_fc, the activation, c_proj.
type MLP struct {
	FC   Linear
	Proj Linear
	Act  tensor.Act
}

// Block is a pre-LayerNorm residual attention block:
// x += attn(ln_1(x)); x += mlp(ln_2(x)).
type Block struct {
	LN1  LayerNorm
	Attn Attention
	LN2  LayerNorm
	MLP  MLP
}

// scratch holds the activations of one forward pass, reused by every block.
type scratch struct {
	h, qkv, attn, hidden []float32
}

func newScratch(rows, width, mlp int) *scratch {
	return &scratch{
		h:      make([]float32, rows*width),
		qkv:    make([]float32, rows*3*width),
		attn:   make([]float32, rows*width),
		hidden: make([]float32, rows*mlp),
	}
}

// Forward updates x [batch*tokens, width] in place.
func (b *Block) Forward(threads int, x []float32, batch, tokens int, s *scratch) {
	rows := batch * tokens
	width := len(b.LN1.Weight)
	b.LN1.Forward(threads, s.h, x, rows)
	b.Attn.InProj.Forward(threads, s.qkv, s.h, rows, tensor.None)
	tensor.Attention(s.attn, s.qkv, batch, tokens, width, b.Attn.Heads, b.Attn.Causal, threads)
	b.Attn.OutProj.AddForward(threads, x, s.attn, rows)

	b.LN2.Forward(threads, s.h, x, rows)
	b.MLP.FC.Forward(threads, s.hidden, s.h, rows, b.MLP.Act)
	b.MLP.Proj.AddForward(threads, x, s.hidden, rows)
}
