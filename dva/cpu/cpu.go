// Package cpu is the dva.Backend that runs a CLIP model on the CPU with the float32 kernels
// of dva/tensor. It runs everywhere and is the reference the GPU backend is compared with.
package cpu

import (
	"context"
	"fmt"

	"github.com/gata-contrib/gata/dva"
	"github.com/gata-contrib/gata/dva/clip"
	"github.com/gata-contrib/gata/dva/tensor"
)

// Backend runs a clip.Model on up to a fixed number of goroutines.
type Backend struct {
	m       *clip.Model
	threads int
}

var _ dva.Backend = (*Backend)(nil)

// New returns a backend for m that uses threads goroutines per call (0 or less: GOMAXPROCS).
func New(m *clip.Model, threads int) *Backend {
	return &Backend{m: m, threads: tensor.Threads(threads)}
}

// Name says "cpu (N threads)".
func (b *Backend) Name() string { return fmt.Sprintf("cpu (%d threads)", b.threads) }

// EncodeImages returns n unnormalised image embeddings for n preprocessed images.
func (b *Backend) EncodeImages(ctx context.Context, pixels []float32, n int) ([]float32, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return b.m.EncodeImages(ctx, pixels, n, b.threads)
}

// EncodeTexts returns unnormalised text embeddings for rows of token ids.
func (b *Backend) EncodeTexts(ctx context.Context, ids [][]int32) ([]float32, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return b.m.EncodeTexts(ctx, ids, b.threads)
}

// EmbedDim is the width of the joint embedding space.
func (b *Backend) EmbedDim() int { return b.m.Config.EmbedDim }

// Close does nothing: the model holds no file or device; it is left to the garbage collector.
func (b *Backend) Close() error { return nil }
