package clip

import (
	"context"
	"fmt"

	"github.com/gata-contrib/gata/dva/tensor"
)

// TextTransformer is the causal text tower (token_embedding, positional_embedding,
// transformer.*, ln_final, text_projection).
type TextTransformer struct {
	Config         TextConfig
	TokenEmbedding []float32 // [vocab, width]
	PosEmbedding   []float32 // [context, width]
	Blocks         []Block   // with causal attention
	LNFinal        LayerNorm
	Proj           *tensor.Packed // text_projection [width, embed]
}

// Forward embeds token id rows (each ContextLength long) into unnormalised text embeddings
// [len(ids), embed], pooled at the first occurrence of each row's largest id (the end-of-text
// token). Only the positions up to the batch's last EOT are computed: the causal mask makes
// the result identical. It checks ctx between layers.
func (t *TextTransformer) Forward(ctx context.Context, threads int, ids [][]int32) ([]float32, error) {
	c := t.Config
	n, W := len(ids), c.Width
	if n == 0 {
		return []float32{}, nil
	}
	eot := make([]int, n)
	L := 0
	for i, row := range ids {
		if len(row) != c.ContextLength {
			return nil, fmt.Errorf("encode texts: row %d has %d token ids, want %d", i, len(row), c.ContextLength)
		}
		for j, id := range row {
			if id < 0 || int(id) >= c.VocabSize {
				return nil, fmt.Errorf("encode texts: row %d position %d: token id %d outside the vocabulary [0, %d)", i, j, id, c.VocabSize)
			}
			if id > row[eot[i]] {
				eot[i] = j
			}
		}
		L = max(L, eot[i]+1)
	}
	trace := traceFrom(ctx)

	x := make([]float32, n*L*W)
	for i, row := range ids {
		for j := 0; j < L; j++ {
			dst := x[(i*L+j)*W : (i*L+j+1)*W]
			copy(dst, t.TokenEmbedding[int(row[j])*W:])
			tensor.Add(dst, t.PosEmbedding[j*W:])
		}
	}
	trace.emit("embed_plus_pos", x, n*L, W)

	s := newScratch(n*L, W, c.MLPWidth())
	for i := range t.Blocks {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		t.Blocks[i].Forward(threads, x, n, L, s)
		trace.emit(fmt.Sprintf("block%d", i), x, n*L, W)
	}

	pooled := make([]float32, n*W)
	for i := range ids {
		copy(pooled[i*W:(i+1)*W], x[(i*L+eot[i])*W:])
	}
	t.LNFinal.Forward(threads, pooled, pooled, n)
	trace.emit("ln_final", pooled, n, W)
	out := make([]float32, n*t.Proj.N)
	tensor.MatMul(out, pooled, n, t.Proj, nil, tensor.None, threads)
	trace.emit("proj", out, n, t.Proj.N)
	return out, ctx.Err()
}
