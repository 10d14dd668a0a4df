// common.cuh: what every kernel of the GPU backend shares: half precision, the asynchronous
// global-to-shared copies of sm_80, warp reductions and the activations.
//
// Built two ways: by nvcc into PTX (compute_80), and, with GATA_EMU defined, by a host C++
// compiler against the emulator of dva/cuda/internal/emu, which runs every CUDA thread as a
// host thread so that the kernels' indexing can be tested on a machine without a GPU. The
// hardware-specific pieces below therefore sit behind small inline functions.
#pragma once

#ifdef GATA_EMU
#include "emu.h"
#else
#include <cuda_fp16.h>
#include <mma.h>
#endif

#define DEV static __device__ __forceinline__

// Activations, as dva/tensor numbers them (tensor.Act).
#define ACT_NONE 0
#define ACT_QUICK_GELU 1
#define ACT_GELU 2

namespace gata {

DEV float neg_inf() { return __int_as_float(0xff800000); }

// gelu is out of line: inlined into every unrolled GEMM epilogue it multiplies the PTX.
// Not static: a function of internal linkage gets a name hashed from the source's full
// path, which would make the generated PTX depend on where the checkout lies.
inline __device__ __noinline__ float gelu(float v) { return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f)); }

DEV float activate(float v, int act) {
  if (act == ACT_QUICK_GELU) return v / (1.0f + expf(-1.702f * v));
  if (act == ACT_GELU) return gelu(v);
  return v;
}

DEV float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

DEV float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

#ifndef GATA_EMU
// cp_async16 copies 16 bytes from global to shared memory without going through registers;
// only the first src_bytes (0 or 16) are read, the rest of the 16 are zero-filled.
DEV void cp_async16(void* smem, const void* gmem, int src_bytes) {
  unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(src_bytes));
}
DEV void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
// cp_async_wait waits until at most N committed groups of this thread are still in flight.
template <int N>
DEV void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}
#endif

}  // namespace gata

// DYNAMIC_SMEM declares the block's dynamic shared memory as bytes.
#ifndef GATA_EMU
#define DYNAMIC_SMEM(name) extern __shared__ __align__(128) unsigned char name[]
#endif
