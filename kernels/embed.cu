// embed.cu: the element-wise kernels around the transformer blocks: precision conversion,
// the patch embedding's im2col, the token sequences of both towers, and L2 normalisation.
// Every kernel but l2_normalize takes one thread per output element: grid ceil(n/256),
// block 256.
#include "common.cuh"

// f32_to_f16 converts n floats to half, rounding to nearest even.
extern "C" __global__ void __launch_bounds__(256) f32_to_f16(const float* in, __half* out, long long n) {
  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = __float2half_rn(in[i]);
}

// im2col writes the patches of images pixels [n, 3, S, S] (half, CHW) as rows of patches
// [n*g*g, 3*P*P] (g = S/P), each ordered (channel, py, px) like visual.conv1.weight, the
// patches of an image in row-major grid order.
extern "C" __global__ void __launch_bounds__(256)
    im2col(const __half* pixels, __half* patches, int n, int S, int P) {
  const int g = S / P, cols = 3 * P * P;
  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (long long)n * g * g * cols) return;
  const int col = (int)(i % cols);
  const long long row = i / cols;
  const int img = (int)(row / (g * g)), p = (int)(row % (g * g));
  const int gy = p / g, gx = p % g;
  const int ch = col / (P * P), py = (col % (P * P)) / P, px = col % P;
  patches[i] = pixels[(((size_t)img * 3 + ch) * S + gy * P + py) * S + gx * P + px];
}

// vision_tokens builds the image tower's input x [n, T, W] (float, T = 1 + g*g): the class
// embedding then the patch embeddings emb [n*g*g, W], plus the positional embedding [T, W].
extern "C" __global__ void __launch_bounds__(256)
    vision_tokens(const float* emb, const float* cls, const float* pos, float* x, int n, int T, int W) {
  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (long long)n * T * W) return;
  const int c = (int)(i % W), t = (int)((i / W) % T);
  const long long img = i / ((long long)T * W);
  const float v = t == 0 ? cls[c] : emb[(img * (T - 1) + t - 1) * W + c];
  x[i] = v + pos[(size_t)t * W + c];
}

// text_tokens builds the text tower's input x [n, L, W] (float): the token embeddings
// table [vocab, W] (half) of ids [n, ctx] at positions 0 … L-1, plus the positional
// embedding [ctx, W].
extern "C" __global__ void __launch_bounds__(256)
    text_tokens(const int* ids, const __half* table, const float* pos, float* x, int n, int L, int ctx, int W) {
  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (long long)n * L * W) return;
  const int c = (int)(i % W), j = (int)((i / W) % L);
  const long long row = i / ((long long)L * W);
  const int id = ids[row * ctx + j];
  x[i] = __half2float(table[(size_t)id * W + c]) + pos[(size_t)j * W + c];
}

// l2_normalize writes x / max(|x|, 1e-12) for each of rows rows of width floats, one warp
// a row. Grid: ceil(rows/8); block: 256.
extern "C" __global__ void __launch_bounds__(256) l2_normalize(const float* x, float* out, int rows, int width) {
  const int row = blockIdx.x * 8 + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= rows) return;
  const float* in = x + (size_t)row * width;
  float s = 0.0f;
  for (int i = lane; i < width; i += 32) s += in[i] * in[i];
  const float inv = 1.0f / fmaxf(sqrtf(gata::warp_sum(s)), 1e-12f);
  for (int i = lane; i < width; i += 32) out[(size_t)row * width + i] = in[i] * inv;
}
