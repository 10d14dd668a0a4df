// Package dva is the Data Validation Agent: it scores image–text pairs with a DFN CLIP model
// (cosine similarity of L2-normalised image and text embeddings) on a pluggable backend,
// and manages the models it uses.
package dva

import "context"

// Backend runs the two towers of a loaded CLIP model. The CPU backend (dva/cpu) runs
// everywhere; a CUDA backend implements the same interface. Every backend must pass the
// conformance suite in dva/dvatest.
type Backend interface {
	// Name says what runs the model, e.g. "cpu (2 threads)" or "cuda:0 NVIDIA H100".
	Name() string
	// EncodeImages takes n preprocessed images, each [3, S, S] float32 in CHW order,
	// concatenated, and returns n×EmbedDim unnormalised image embeddings, row-major.
	EncodeImages(ctx context.Context, pixels []float32, n int) ([]float32, error)
	// EncodeTexts takes token id rows (each of the model's context length, zero padded,
	// ending in the end-of-text id) and returns len(ids)×EmbedDim unnormalised text embeddings.
	EncodeTexts(ctx context.Context, ids [][]int32) ([]float32, error)
	// EmbedDim is the width of the joint embedding space.
	EmbedDim() int
	// Close releases what the backend holds (memory maps, device memory, child processes).
	Close() error
}
