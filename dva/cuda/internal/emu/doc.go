// Package emu runs the CUDA kernels of kernels/*.cu on the CPU, each CUDA thread a fiber
// of the calling thread, so that their indexing, tiling, masking and numerics can be
// tested on a machine without a GPU, and the CUDA backend's whole forward pass with them.
// It is for tests: it is slow, and it says nothing about timing or the hardware's memory
// model (see emu.h). It needs Linux (ucontext) and cgo with a C++ compiler; elsewhere the
// package is empty.
//
// Device memory is host memory from C's allocator; a device pointer is its address.
package emu
