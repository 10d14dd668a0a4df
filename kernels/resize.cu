// resize.cu: preprocessing on the GPU from decoded 8-bit RGB: the resize of open_clip's
// eval transform as PIL does it (a separable convolution, horizontal pass first, the
// kernel's support growing with the downscale factor; 22-bit fixed-point weights and a
// uint8 intermediate image), the centre crop (only the cropped window is computed), and
// the normalisation v = (u/255 - mean[c]) / std[c] into CHW float. It gives the same
// bytes and floats as dva/preprocess (a port of PIL's Resample.c) for RGB images.
//
// Three launches per image: resize_coeffs for each axis that changes size (one thread an
// output pixel), resize_h (one thread a pixel of the intermediate rows x window columns)
// and resize_v_normalize (one thread an output pixel); block 256.
#include "common.cuh"

namespace resize_impl {

constexpr int PRECISION_BITS = 32 - 8 - 2;

// The filters, with every operation rounded on its own (no fused multiply-add), as PIL's
// C build computes them.
DEV double bicubic(double x) {
  const double a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return __dadd_rn(__dmul_rn(__dmul_rn(__dsub_rn(__dmul_rn(a + 2, x), a + 3), x), x), 1);
  if (x < 2) return __dmul_rn(__dsub_rn(__dmul_rn(__dadd_rn(__dmul_rn(__dsub_rn(x, 5), x), 8), x), 4), a);
  return 0;
}

DEV double bilinear(double x) {
  if (x < 0) x = -x;
  return x < 1 ? 1 - x : 0;
}

DEV unsigned char clip8(int acc) {
  int v = acc >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : (unsigned char)v;
}

}  // namespace resize_impl

// resize_coeffs computes the kernel of outputs o0 … o0+count-1 of a resize from in_size
// to out_size (PIL's precompute_coeffs and normalize_coeffs_8bpc): output i reads n[i]
// inputs from start[i] with the weights fixed[i*ksize …]. filter: 0 bicubic, 1 bilinear.
extern "C" __global__ void __launch_bounds__(256)
    resize_coeffs(int in_size, int out_size, int o0, int count, int filter, int ksize, int* start, int* n, int* fixed) {
  using namespace resize_impl;
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= count) return;
  const double support0 = filter == 0 ? 2.0 : 1.0;
  const double scale = (double)in_size / (double)out_size;
  const double filterscale = scale > 1.0 ? scale : 1.0;
  const double support = __dmul_rn(support0, filterscale);
  const double ss = 1.0 / filterscale;
  const double center = __dmul_rn(__dadd_rn((double)(o0 + i), 0.5), scale);
  int xmin = (int)__dadd_rn(__dsub_rn(center, support), 0.5);
  if (xmin < 0) xmin = 0;
  int xmax = (int)__dadd_rn(__dadd_rn(center, support), 0.5);
  if (xmax > in_size) xmax = in_size;
  int m = xmax - xmin;
  if (m < 0) m = 0;
  if (m > ksize) m = ksize;  // cannot happen with the ksize of PIL's formula
  double w[64];
  double ww = 0;
  for (int x = 0; x < m && x < 64; x++) {
    const double arg = __dmul_rn(__dadd_rn(__dsub_rn((double)(x + xmin), center), 0.5), ss);
    w[x] = filter == 0 ? bicubic(arg) : bilinear(arg);
    ww = __dadd_rn(ww, w[x]);
  }
  for (int x = 0; x < m && x < 64; x++) {
    double v = ww != 0 ? w[x] / ww : w[x];
    double p = __dmul_rn(v, (double)(1 << PRECISION_BITS));
    fixed[i * ksize + x] = v < 0 ? (int)__dadd_rn(-0.5, p) : (int)__dadd_rn(0.5, p);
  }
  start[i] = xmin;
  n[i] = m;
}

// resize_h resamples rows row0 … row0+rows-1 of the image in (w x 3 bytes a row) into tmp
// (rows x S x 3), S output columns from the horizontal kernel; with need_h unset it copies
// columns x0 … x0+S-1 instead.
extern "C" __global__ void __launch_bounds__(256)
    resize_h(const unsigned char* in, int w, int row0, int rows, int S, int x0, int need_h, const int* start,
             const int* n, const int* fixed, int ksize, unsigned char* tmp) {
  using namespace resize_impl;
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= rows * S) return;
  const int y = i / S, x = i % S;
  const unsigned char* src = in + (size_t)(row0 + y) * w * 3;
  unsigned char* dst = tmp + (size_t)i * 3;
  if (!need_h) {
    for (int c = 0; c < 3; c++) dst[c] = src[(x0 + x) * 3 + c];
    return;
  }
  const int s = start[x], m = n[x];
  const int* k = fixed + x * ksize;
  int a0 = 1 << (PRECISION_BITS - 1), a1 = a0, a2 = a0;
  for (int j = 0; j < m; j++) {
    const unsigned char* p = src + (s + j) * 3;
    a0 += p[0] * k[j];
    a1 += p[1] * k[j];
    a2 += p[2] * k[j];
  }
  dst[0] = clip8(a0);
  dst[1] = clip8(a1);
  dst[2] = clip8(a2);
}

// resize_v_normalize resamples the rows of tmp (S x 3 bytes each, image rows row0 …)
// into the S x S output, or with need_v unset takes rows 0 … S-1 of tmp, and writes the
// normalised pixels as [3, S, S] float.
extern "C" __global__ void __launch_bounds__(256)
    resize_v_normalize(const unsigned char* tmp, int S, int row0, int need_v, const int* start, const int* n, const int* fixed,
                       int ksize, float mean0, float mean1, float mean2, float std0, float std1, float std2, float* out) {
  using namespace resize_impl;
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= S * S) return;
  const int y = i / S, x = i % S;
  unsigned char u[3];
  if (!need_v) {
    for (int c = 0; c < 3; c++) u[c] = tmp[((size_t)y * S + x) * 3 + c];
  } else {
    const int s = start[y] - row0, m = n[y];
    const int* k = fixed + y * ksize;
    int a[3] = {1 << (PRECISION_BITS - 1), 1 << (PRECISION_BITS - 1), 1 << (PRECISION_BITS - 1)};
    for (int j = 0; j < m; j++) {
      const unsigned char* p = tmp + ((size_t)(s + j) * S + x) * 3;
      for (int c = 0; c < 3; c++) a[c] += p[c] * k[j];
    }
    for (int c = 0; c < 3; c++) u[c] = clip8(a[c]);
  }
  const float mean[3] = {mean0, mean1, mean2}, sd[3] = {std0, std1, std2};
  for (int c = 0; c < 3; c++)
    out[(size_t)c * S * S + i] = __fdiv_rn(__fsub_rn(__fdiv_rn((float)u[c], 255.0f), mean[c]), sd[c]);
}
