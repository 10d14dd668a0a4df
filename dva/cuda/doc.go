// Package cuda is the GPU backend of dva: the CLIP forward pass on an NVIDIA GPU with the
// kernels of package kernels, run in a child process of the same executable.
//
// The binary starts everywhere: nothing links the CUDA libraries. The driver API
// (libcuda.so.1, nvcuda.dll) is loaded at run time with purego and only the calls the
// backend needs are bound (driver.go); NVML (go-nvml, also loaded at run time) picks the
// device and reports its memory. Where there is no driver, no GPU, or no card of compute
// capability 8.0 or newer, Open returns the CPU backend and says why in its Name.
//
// The GPU work runs in `gata gpu-runner`, a child process spoken to over its stdin and
// stdout with a small framed protocol (protocol.go), so that a sticky CUDA error or a
// driver hang takes down only the child: the parent (Backend) restarts it and sends the
// batch again, and after repeated failures falls back to the CPU backend, saying so.
//
// On the device, weights are uploaded once and converted to half; the residual stream is
// float, every GEMM reads half and accumulates in float on the tensor cores; batches come
// in through pinned host buffers on a copy stream that overlaps the compute stream.
//
// Without a GPU the kernels and the whole forward pass are tested on the emulator of
// internal/emu; gpucheck.sh builds the tests that need a real GPU.
package cuda
