// Package tensor holds the dense float32 tensors and the CPU kernels (matrix multiply,
// LayerNorm, softmax, activations) that the CLIP forward pass is built from.
package tensor

import "fmt"

// Tensor is a dense row-major float32 array. The element at index (i0, i1, …, in) is
// Data[((i0*Shape[1]+i1)*Shape[2]+…)*Shape[n]+in]. A 0-d tensor (Shape empty) holds one value.
type Tensor struct {
	Shape []int
	Data  []float32
}

// New returns a zeroed tensor of the given shape.
func New(shape ...int) *Tensor {
	return &Tensor{Shape: append([]int(nil), shape...), Data: make([]float32, Numel(shape))}
}

// Numel is the number of elements a tensor of this shape holds.
func Numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// Len is the number of elements.
func (t *Tensor) Len() int { return len(t.Data) }

// String describes the shape, not the data.
func (t *Tensor) String() string { return fmt.Sprintf("tensor%v", t.Shape) }
