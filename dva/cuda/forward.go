package cuda

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/gata-contrib/gata/dva/tensor"
)

// workspace holds the activations of one forward pass; buffers grow with the batch and
// are reused.
type workspace struct {
	dev   device
	bufs  map[string]buffer
	chunk int // images per pass of the image tower
}

func newWorkspace(d device) *workspace {
	return &workspace{dev: d, bufs: map[string]buffer{}, chunk: imageChunk}
}

// get returns buffer name with at least bytes bytes.
func (w *workspace) get(name string, bytes int) (dptr, error) {
	b, ok := w.bufs[name]
	if ok && b.bytes >= bytes {
		return b.p, nil
	}
	if ok {
		if err := w.dev.sync(); err != nil {
			return 0, err
		}
		w.dev.free(b.p)
		delete(w.bufs, name)
	}
	p, err := w.dev.alloc(bytes)
	if err != nil {
		return 0, fmt.Errorf("allocate %d MB of activations (%s): %w", bytes>>20, name, err)
	}
	w.bufs[name] = buffer{p: p, bytes: bytes}
	return p, nil
}

func (w *workspace) release() {
	for _, b := range w.bufs {
		w.dev.free(b.p)
	}
	w.bufs = map[string]buffer{}
}

// want is one buffer a pass needs.
type want struct {
	p     *dptr
	name  string
	bytes int
}

// getAll points every want at a buffer of at least its size.
func (w *workspace) getAll(ws ...want) error {
	for _, x := range ws {
		p, err := w.get(x.name, x.bytes)
		if err != nil {
			return err
		}
		*x.p = p
	}
	return nil
}

// towerBufs are the activations of the blocks of one tower.
type towerBufs struct {
	x, h, qkv, attn, hidden dptr
}

// wants lists the block activations of rows tokens, named with prefix.
func (b *towerBufs) wants(prefix string, rows, width, mlp int) []want {
	return []want{
		{&b.x, prefix + "x", 4 * rows * width},
		{&b.h, prefix + "h", 2 * rows * width},
		{&b.qkv, prefix + "qkv", 2 * rows * 3 * width},
		{&b.attn, prefix + "attn", 2 * rows * width},
		{&b.hidden, prefix + "hidden", 2 * rows * mlp},
	}
}

// runBlocks runs the residual attention blocks over x [batch*tokens, width] in place.
func runBlocks(ctx context.Context, d device, bs []block, b towerBufs, batch, tokens int) error {
	rows := batch * tokens
	for i := range bs {
		if err := ctx.Err(); err != nil {
			return err
		}
		k := &bs[i]
		W := k.width
		steps := []func() error{
			func() error { return layerNorm(d, b.x, 0, W, rows, W, k.ln1.gamma, k.ln1.beta, b.h, true) },
			func() error { return gemm(d, k.inProj.op(b.h, b.qkv, rows, tensor.None, epiHalf)) },
			func() error { return attention(d, b.qkv, b.attn, batch, tokens, W, k.heads, k.causal) },
			func() error { return gemm(d, k.outProj.op(b.attn, b.x, rows, tensor.None, epiFloatAdd)) },
			func() error { return layerNorm(d, b.x, 0, W, rows, W, k.ln2.gamma, k.ln2.beta, b.h, true) },
			func() error { return gemm(d, k.fc.op(b.h, b.hidden, rows, k.act, epiHalf)) },
			func() error { return gemm(d, k.proj.op(b.hidden, b.x, rows, tensor.None, epiFloatAdd)) },
		}
		for _, step := range steps {
			if err := step(); err != nil {
				return fmt.Errorf("block %d: %w", i, err)
			}
		}
	}
	return nil
}

// op is the GEMM of this layer over rows rows of x, written to out.
func (l *linear) op(x, out dptr, rows int, act tensor.Act, epi epilogue) gemmOp {
	return gemmOp{a: x, lda: l.in, w: l.w, ldw: l.in, bias: l.b, out: out, ldc: l.out, m: rows, n: l.out, k: l.in, act: act, epilogue: epi}
}

// imageChunk is the number of images of one pass through the image tower: a larger
// batch goes through in chunks, the upload of the next overlapping the compute of this
// one, with activations sized for a chunk.
const imageChunk = 128

// encodeImages runs the image tower on n images given as half pixels [n, 3, S, S]
// (little-endian binary16) and returns n unnormalised embeddings.
func (m *model) encodeImages(ctx context.Context, w *workspace, pix []byte, n int) ([]float32, error) {
	c := m.cfg.Vision
	S, P, g, W, E := c.ImageSize, c.PatchSize, c.Grid(), c.Width, m.cfg.EmbedDim
	if n < 0 || len(pix) != 2*n*3*S*S {
		return nil, fmt.Errorf("encode images: %d pixel values for %d images of 3x%dx%d", len(pix)/2, n, S, S)
	}
	if n == 0 {
		return []float32{}, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d := w.dev
	T := c.Tokens()
	chunk := min(n, w.chunk)
	img := 2 * 3 * S * S // bytes of one image
	var slots [2]dptr
	var patches, emb, pooled, res dptr
	var b towerBufs
	err := w.getAll(append(b.wants("v.", chunk*T, W, c.MLPWidth()),
		want{&slots[0], "v.pixels0", chunk * img}, want{&slots[1], "v.pixels1", chunk * img},
		want{&patches, "v.patches", 2 * chunk * g * g * 3 * P * P}, want{&emb, "v.emb", 4 * chunk * g * g * W},
		want{&pooled, "v.pooled", 2 * chunk * W}, want{&res, "v.out", 4 * n * E})...)
	if err != nil {
		return nil, err
	}
	for c0, k := 0, 0; c0 < n; c0, k = c0+chunk, k+1 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		cn, slot := min(chunk, n-c0), k%2
		if err := m.imageChunk(ctx, d, b, slots[slot], slot, pix[c0*img:(c0+cn)*img], cn, patches, emb, pooled,
			res+dptr(4*c0*E)); err != nil {
			return nil, err
		}
	}
	raw := make([]byte, 4*n*E)
	if err := d.copyOut(raw, res); err != nil {
		return nil, err
	}
	return bytesFloat(raw), ctx.Err()
}

// imageChunk queues the image tower for n images: upload into input slot, patches,
// blocks, pooling and projection into res [n, E].
func (m *model) imageChunk(ctx context.Context, d device, b towerBufs, in dptr, slot int, pix []byte, n int,
	patches, emb, pooled, res dptr) error {
	c := m.cfg.Vision
	S, P, g, W, E, T := c.ImageSize, c.PatchSize, c.Grid(), c.Width, m.cfg.EmbedDim, c.Tokens()
	if err := d.copyInSlot(slot, in, pix); err != nil {
		return err
	}
	if err := im2col(d, in, patches, n, S, P); err != nil {
		return err
	}
	if err := d.releaseSlot(slot); err != nil {
		return err
	}
	conv := gemmOp{a: patches, lda: 3 * P * P, w: m.conv1, ldw: 3 * P * P, out: emb, ldc: W, m: n * g * g, n: W, k: 3 * P * P, epilogue: epiFloat}
	if err := gemm(d, conv); err != nil {
		return err
	}
	if err := visionTokens(d, emb, m.cls, m.visPos, b.x, n, T, W); err != nil {
		return err
	}
	if err := layerNorm(d, b.x, 0, W, n*T, W, m.lnPre.gamma, m.lnPre.beta, b.x, false); err != nil {
		return err
	}
	if err := runBlocks(ctx, d, m.visual, b, n, T); err != nil {
		return err
	}
	if err := layerNorm(d, b.x, 0, T*W, n, W, m.lnPost.gamma, m.lnPost.beta, pooled, true); err != nil {
		return err
	}
	return gemm(d, gemmOp{a: pooled, lda: W, w: m.visProj, ldw: W, out: res, ldc: E, m: n, n: E, k: W, epilogue: epiFloat})
}

// textRows checks token id rows and returns, for each, the position of its end-of-text
// token (the first occurrence of the row's largest id) and the number of positions the
// batch needs (the last EOT + 1; the causal mask makes later positions irrelevant).
func textRows(ids [][]int32, ctxLen, vocab int) (eot []int32, L int, err error) {
	eot = make([]int32, len(ids))
	for i, row := range ids {
		if len(row) != ctxLen {
			return nil, 0, fmt.Errorf("encode texts: row %d has %d token ids, want %d", i, len(row), ctxLen)
		}
		for j, id := range row {
			if id < 0 || int(id) >= vocab {
				return nil, 0, fmt.Errorf("encode texts: row %d position %d: token id %d outside the vocabulary [0, %d)", i, j, id, vocab)
			}
			if id > row[eot[i]] {
				eot[i] = int32(j)
			}
		}
		L = max(L, int(eot[i])+1)
	}
	return eot, L, nil
}

// encodeTexts runs the text tower on rows of token ids.
func (m *model) encodeTexts(ctx context.Context, w *workspace, ids [][]int32) ([]float32, error) {
	c := m.cfg.Text
	n, D, E := len(ids), c.Width, m.cfg.EmbedDim
	eot, L, err := textRows(ids, c.ContextLength, c.VocabSize)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return []float32{}, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d := w.dev
	flat := make([]byte, 0, 4*n*c.ContextLength)
	for _, row := range ids {
		for _, id := range row {
			flat = binary.LittleEndian.AppendUint32(flat, uint32(id))
		}
	}
	rowsOf := make([]byte, 0, 4*n) // the EOT row of each text in x [n*L, D]
	for i, e := range eot {
		rowsOf = binary.LittleEndian.AppendUint32(rowsOf, uint32(i*L+int(e)))
	}
	var idsD, eotD, pooled, res dptr
	var b towerBufs
	err = w.getAll(append(b.wants("t.", n*L, D, c.MLPWidth()),
		want{&idsD, "t.ids", len(flat)}, want{&eotD, "t.eot", len(rowsOf)},
		want{&pooled, "t.pooled", 2 * n * D}, want{&res, "t.out", 4 * n * E})...)
	if err != nil {
		return nil, err
	}
	var out []float32
	err = func() error {
		if err := d.copyIn(idsD, flat); err != nil {
			return err
		}
		if err := d.copyIn(eotD, rowsOf); err != nil {
			return err
		}
		if err := textTokens(d, idsD, m.tokens, m.textPos, b.x, n, L, c.ContextLength, D); err != nil {
			return err
		}
		if err := runBlocks(ctx, d, m.text, b, n, L); err != nil {
			return err
		}
		if err := layerNorm(d, b.x, eotD, D, n, D, m.lnFinal.gamma, m.lnFinal.beta, pooled, true); err != nil {
			return err
		}
		proj := gemmOp{a: pooled, lda: D, w: m.textProj, ldw: D, out: res, ldc: E, m: n, n: E, k: D, epilogue: epiFloat}
		if err := gemm(d, proj); err != nil {
			return err
		}
		raw := make([]byte, 4*n*E)
		if err := d.copyOut(raw, res); err != nil {
			return err
		}
		out = bytesFloat(raw)
		return ctx.Err()
	}()
	if err != nil {
		return nil, err
	}
	return out, nil
}
