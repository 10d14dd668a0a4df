// layernorm.cu: LayerNorm of float rows (the residual stream), one warp per row, with the
// mean and the biased variance accumulated in float over two passes, as
// out = (x - mean) / sqrt(var + eps) * gamma + beta.
//
// Row r of the input is at x + idx[r]*width when idx is given (the end-of-text rows of the
// text tower), else at x + r*stride (stride = width: every row; tokens*width: the class
// token of each image). Row r of the output is at out + r*width; out may be x when stride
// is width and idx is null (the kernel reads a row before it writes it).
//
// layernorm_h writes half (the input of a GEMM), layernorm_f writes float.
// Grid: ceil(rows/8); block: 256 threads.
#include "common.cuh"

namespace ln_impl {

DEV void store(float* p, float v) { *p = v; }
DEV void store(__half* p, float v) { *p = __float2half_rn(v); }

template <typename T>
DEV void layernorm(const float* __restrict__ x, const int* __restrict__ idx, long long stride, int rows, int width,
                   const float* __restrict__ gamma, const float* __restrict__ beta, T* out, float eps) {
  const int row = blockIdx.x * 8 + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= rows) return;
  const float* in = idx ? x + (size_t)idx[row] * width : x + (size_t)row * stride;
  float s = 0.0f;
  for (int i = lane; i < width; i += 32) s += in[i];
  const float mean = gata::warp_sum(s) / width;
  float ss = 0.0f;
  for (int i = lane; i < width; i += 32) {
    float d = in[i] - mean;
    ss += d * d;
  }
  const float inv = rsqrtf(gata::warp_sum(ss) / width + eps);
  T* o = out + (size_t)row * width;
  for (int i = lane; i < width; i += 32) store(o + i, (in[i] - mean) * inv * gamma[i] + beta[i]);
}

}  // namespace ln_impl

extern "C" __global__ void __launch_bounds__(256)
    layernorm_h(const float* x, const int* idx, long long stride, int rows, int width, const float* gamma,
                const float* beta, __half* out, float eps) {
  ln_impl::layernorm(x, idx, stride, rows, width, gamma, beta, out, eps);
}

extern "C" __global__ void __launch_bounds__(256)
    layernorm_f(const float* x, const int* idx, long long stride, int rows, int width, const float* gamma,
                const float* beta, float* out, float eps) {
  ln_impl::layernorm(x, idx, stride, rows, width, gamma, beta, out, eps);
}
