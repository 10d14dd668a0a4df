// Package kernels holds the CUDA kernels of the GPU backend: the .cu sources, the PTX
// generated from them, and the embedded PTX with the kernels' names. It imports only embed.
package kernels
