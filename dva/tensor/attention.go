package tensor

import (
	"fmt"
	"math"
	"sync"
)

type attnScratch struct {
	kt, v  Packed
	scores []float32
}

var attnPool = sync.Pool{New: func() any { return new(attnScratch) }}

func (p *Packed) reshape(k, n int) {
	p.K, p.N = k, n
	size := (n + nr - 1) / nr * k * nr
	if cap(p.Data) < size {
		p.Data = make([]float32, size)
	}
	p.Data = p.Data[:size]
}

// Attention is multi-head scaled dot-product attention. qkv is [batch*tokens, 3*width]: the
// query, key and value projections side by side, head h on channels h*d … (h+1)*d-1 of each
// (d = width/heads). It writes dst [batch*tokens, width] = softmax(q·kᵀ/√d [+ causal mask])·v
// per sequence and head, with the (sequence, head) pairs spread over threads goroutines.
// With causal set, position i attends to positions 0 … i only.
func Attention(dst, qkv []float32, batch, tokens, width, heads int, causal bool, threads int) {
	if heads <= 0 || width%heads != 0 || len(qkv) < batch*tokens*3*width || len(dst) < batch*tokens*width {
		panic(fmt.Sprintf("tensor.Attention: qkv=%d dst=%d for batch %d tokens %d width %d heads %d",
			len(qkv), len(dst), batch, tokens, width, heads))
	}
	d := width / heads
	ld := 3 * width
	scale := float32(1 / math.Sqrt(float64(d)))
	Parallel(threads, batch*heads, func(job int) {
		b, h := job/heads, job%heads
		s := attnPool.Get().(*attnScratch)
		defer attnPool.Put(s)
		base := b * tokens * ld
		s.kt.reshape(d, tokens)
		packTInto(s.kt.Data, qkv[base+width+h*d:], tokens, d, ld)
		s.v.reshape(tokens, d)
		packInto(s.v.Data, qkv[base+2*width+h*d:], tokens, d, ld)
		if cap(s.scores) < tokens*tokens {
			s.scores = make([]float32, tokens*tokens)
		}
		sc := s.scores[:tokens*tokens]
		gemm(1, tokens, qkv[base+h*d:], ld, &s.kt, sc, tokens, nil, None, false)
		for i := 0; i < tokens; i++ {
			row := sc[i*tokens : (i+1)*tokens]
			if causal {
				Softmax(row[:i+1], scale)
				clear(row[i+1:])
			} else {
				Softmax(row, scale)
			}
		}
		gemm(1, tokens, sc, tokens, &s.v, dst[b*tokens*width+h*d:], width, nil, None, false)
	})
}
