package clip

import (
	"context"
	"fmt"

	"github.com/gata-contrib/gata/dva/tensor"
)

// VisionTransformer is the image tower (visual.*).
type VisionTransformer struct {
	Config VisionConfig
	// Conv1 is the patch embedding: visual.conv1.weight [width, 3, P, P] as a Linear over
	// patch vectors ordered (channel, py, px), without bias.
	Conv1          Linear
	ClassEmbedding []float32 // [width]
	PosEmbedding   []float32 // [tokens, width]
	LNPre          LayerNorm
	Blocks         []Block
	LNPost         LayerNorm
	Proj           *tensor.Packed // visual.proj [width, embed]
}

// Forward embeds n images, pixels [n, 3, S, S] in CHW order, into n unnormalised image
// embeddings [n, embed]. It checks ctx between layers.
func (v *VisionTransformer) Forward(ctx context.Context, threads int, pixels []float32, n int) ([]float32, error) {
	c := v.Config
	S, P, g, W := c.ImageSize, c.PatchSize, c.Grid(), c.Width
	if n < 0 || len(pixels) != n*3*S*S {
		return nil, fmt.Errorf("encode images: %d pixel values for %d images of 3x%dx%d", len(pixels), n, S, S)
	}
	if n == 0 {
		return []float32{}, nil
	}
	trace := traceFrom(ctx)
	T := c.Tokens()

	// Patch embedding: one row per patch, a matrix product with the flattened conv kernel.
	patches := make([]float32, n*g*g*3*P*P)
	tensor.Parallel(threads, n, func(img int) { im2col(patches[img*g*g*3*P*P:], pixels[img*3*S*S:], S, P) })
	emb := make([]float32, n*g*g*W)
	v.Conv1.Forward(threads, emb, patches, n*g*g, tensor.None)
	trace.emit("patch_embed", emb, n*g*g, W)
	patches = nil

	x := make([]float32, n*T*W)
	for img := 0; img < n; img++ {
		seq := x[img*T*W : (img+1)*T*W]
		copy(seq[:W], v.ClassEmbedding)
		copy(seq[W:], emb[img*g*g*W:(img+1)*g*g*W])
		tensor.Add(seq, v.PosEmbedding)
	}
	emb = nil
	trace.emit("embed_plus_pos", x, n*T, W)
	v.LNPre.Forward(threads, x, x, n*T)
	trace.emit("ln_pre", x, n*T, W)

	s := newScratch(n*T, W, c.MLPWidth())
	for i := range v.Blocks {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		v.Blocks[i].Forward(threads, x, n, T, s)
		trace.emit(fmt.Sprintf("block%d", i), x, n*T, W)
	}

	cls := make([]float32, n*W)
	for img := 0; img < n; img++ {
		copy(cls[img*W:(img+1)*W], x[img*T*W:])
	}
	v.LNPost.Forward(threads, cls, cls, n)
	trace.emit("ln_post", cls, n, W)
	out := make([]float32, n*v.Proj.N)
	tensor.MatMul(out, cls, n, v.Proj, nil, tensor.None, threads)
	trace.emit("proj", out, n, v.Proj.N)
	return out, ctx.Err()
}

// im2col writes the (S/P)² patches of one image [3, S, S] as rows ordered (channel, py, px),
// patches in row-major grid order.
func im2col(dst, img []float32, S, P int) {
	g := S / P
	i := 0
	for gy := 0; gy < g; gy++ {
		for gx := 0; gx < g; gx++ {
			for ch := 0; ch < 3; ch++ {
				for py := 0; py < P; py++ {
					src := img[ch*S*S+(gy*P+py)*S+gx*P:]
					i += copy(dst[i:i+P], src[:P])
				}
			}
		}
	}
}
