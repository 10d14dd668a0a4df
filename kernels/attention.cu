// attention.cu: fused multi-head attention, out = softmax(q·kᵀ/√d [+ causal mask])·v, on
// the tensor cores, without writing the score matrix to global memory (the online softmax
// of FlashAttention: running row maxima and sums, the output rescaled tile by tile).
//
// qkv is [batch*tokens, 3*width] half: the query, key and value projections side by side,
// head h on channels h*d … h*d+d-1 of each, as the in-projection GEMM writes them; out is
// [batch*tokens, width] half. A block of 4 warps takes 64 queries of one (sequence, head);
// each warp owns 16 query rows and walks the keys 64 at a time: S = Q·Kᵀ into a per-warp
// shared tile, the softmax update by lane pairs (one row per pair), then O += P·V with O
// kept in shared memory in float. The head dimension is zero-padded to DP (16, 32, 64, 80
// or 128: attention_d16 …); padded channels add nothing to q·k and their outputs are
// dropped. With causal set, query i sees keys 0 … i and key tiles past the block's last
// query are skipped.
//
// Grid: (ceil(tokens/64), heads, batch); block: 128 threads; dynamic shared memory:
// attention_smem_bytes(DP) (see attn_impl::smem_bytes).
#include "common.cuh"

namespace attn_impl {

using namespace nvcuda;

constexpr int BQ = 64;   // queries per block
constexpr int BKV = 64;  // keys per step
constexpr int WARPS = 4;
constexpr int LDSS = BKV + 4;  // float score row
constexpr int LDP = BKV + 8;   // half probability row

template <int DP>
struct layout {
  static constexpr int LDH = DP + 8;  // half rows of Q, K, V
  static constexpr int LDO = DP + 4;  // float output rows
  static constexpr int q = 0;
  static constexpr int k = q + BQ * LDH * 2;
  static constexpr int v = k + BKV * LDH * 2;
  static constexpr int s = v + BKV * LDH * 2;
  static constexpr int p = s + WARPS * 16 * LDSS * 4;
  static constexpr int o = p + WARPS * 16 * LDP * 2;
  static constexpr int bytes = o + WARPS * 16 * LDO * 4;
};

// load_rows copies rows [r0, r0+64) of one head's d channels (at src + row*ld) into dst
// (64 x LDH), zero beyond tokens and beyond d.
template <int DP>
DEV void load_rows(__half* dst, const __half* src, size_t ld, int r0, int tokens, int d, bool vec, int tid) {
  constexpr int LDH = layout<DP>::LDH;
  if (vec) {  // d and the row stride are multiples of 8 halves: 16-byte loads
    constexpr int CH = DP / 8;
    for (int c = tid; c < 64 * CH; c += WARPS * 32) {
      int row = c / CH, col = (c % CH) * 8;
      uint4 val = make_uint4(0, 0, 0, 0);
      if (r0 + row < tokens && col < d) val = *reinterpret_cast<const uint4*>(src + (size_t)(r0 + row) * ld + col);
      *reinterpret_cast<uint4*>(dst + row * LDH + col) = val;
    }
  } else {
    for (int c = tid; c < 64 * DP; c += WARPS * 32) {
      int row = c / DP, col = c % DP;
      __half val = __float2half_rn(0.0f);
      if (r0 + row < tokens && col < d) val = src[(size_t)(r0 + row) * ld + col];
      dst[row * LDH + col] = val;
    }
  }
}

template <int DP>
DEV void attention(const __half* __restrict__ qkv, __half* __restrict__ out, int tokens, int width, int d,
                   int causal, float scale) {
  using L = layout<DP>;
  constexpr int LDH = L::LDH, LDO = L::LDO;
  DYNAMIC_SMEM(smem);
  __half* Qs = reinterpret_cast<__half*>(smem + L::q);
  __half* Ks = reinterpret_cast<__half*>(smem + L::k);
  __half* Vs = reinterpret_cast<__half*>(smem + L::v);

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  float* S = reinterpret_cast<float*>(smem + L::s) + warp * 16 * LDSS;
  __half* P = reinterpret_cast<__half*>(smem + L::p) + warp * 16 * LDP;
  float* O = reinterpret_cast<float*>(smem + L::o) + warp * 16 * LDO;

  const int q0 = blockIdx.x * BQ, h = blockIdx.y, b = blockIdx.z;
  const size_t ld = 3 * (size_t)width;
  const __half* base = qkv + (size_t)b * tokens * ld + (size_t)h * d;
  const bool vec = d % 8 == 0 && width % 8 == 0;

  load_rows<DP>(Qs, base, ld, q0, tokens, d, vec, tid);
  for (int i = lane; i < 16 * LDO; i += 32) O[i] = 0.0f;

  // Lane pair (2r, 2r+1) owns row r of the warp's 16: its running max m and sum l.
  const int r = lane / 2, half_ = lane % 2;
  const int qi = q0 + warp * 16 + r;
  float m = gata::neg_inf(), l = 0.0f;

  __syncthreads();
  wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fq[DP / 16];
#pragma unroll
  for (int kd = 0; kd < DP / 16; kd++) wmma::load_matrix_sync(fq[kd], Qs + warp * 16 * LDH + kd * 16, LDH);

  const int kv_end = causal ? min(tokens, q0 + BQ) : tokens;
  for (int k0 = 0; k0 < kv_end; k0 += BKV) {
    __syncthreads();  // everyone is done with the previous K and V tiles
    load_rows<DP>(Ks, base + width, ld, k0, tokens, d, vec, tid);
    load_rows<DP>(Vs, base + 2 * width, ld, k0, tokens, d, vec, tid);
    __syncthreads();

    // S = Q·Kᵀ for this warp's 16 rows and the 64 keys.
#pragma unroll
    for (int j = 0; j < BKV / 16; j++) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> fs;
      wmma::fill_fragment(fs, 0.0f);
#pragma unroll
      for (int kd = 0; kd < DP / 16; kd++) {
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> fk;
        wmma::load_matrix_sync(fk, Ks + j * 16 * LDH + kd * 16, LDH);
        wmma::mma_sync(fs, fq[kd], fk, fs);
      }
      wmma::store_matrix_sync(S + j * 16, fs, LDSS, wmma::mem_row_major);
    }
    __syncwarp();

    // Online softmax for row r over this lane's 32 of the 64 columns.
    const int c0 = half_ * (BKV / 2);
    float mx = gata::neg_inf();
    for (int c = c0; c < c0 + BKV / 2; c++) {
      int kj = k0 + c;
      bool ok = kj < tokens && (!causal || kj <= qi);
      float s = ok ? S[r * LDSS + c] * scale : gata::neg_inf();
      S[r * LDSS + c] = s;
      mx = fmaxf(mx, s);
    }
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    const float m_new = fmaxf(m, mx);
    const float base_ = m_new == gata::neg_inf() ? 0.0f : m_new;  // a row with no key yet
    const float alpha = expf(m - base_);
    float sum = 0.0f;
    for (int c = c0; c < c0 + BKV / 2; c++) {
      float s = S[r * LDSS + c];
      __half p = __float2half_rn(s == gata::neg_inf() ? 0.0f : expf(s - base_));
      P[r * LDP + c] = p;
      sum += __half2float(p);
    }
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    l = l * alpha + sum;
    m = m_new;
    for (int c = half_ * (DP / 2); c < (half_ + 1) * (DP / 2); c++) O[r * LDO + c] *= alpha;
    __syncwarp();

    // O += P·V.
#pragma unroll
    for (int dj = 0; dj < DP / 16; dj++) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> fo;
      wmma::load_matrix_sync(fo, O + dj * 16, LDO, wmma::mem_row_major);
#pragma unroll
      for (int kk = 0; kk < BKV / 16; kk++) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fp;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::row_major> fv;
        wmma::load_matrix_sync(fp, P + kk * 16, LDP);
        wmma::load_matrix_sync(fv, Vs + kk * 16 * LDH + dj * 16, LDH);
        wmma::mma_sync(fo, fp, fv, fo);
      }
      wmma::store_matrix_sync(O + dj * 16, fo, LDO, wmma::mem_row_major);
    }
    __syncwarp();
  }

  if (qi < tokens) {
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    __half* dst = out + ((size_t)b * tokens + qi) * width + (size_t)h * d;
    for (int c = half_; c < d; c += 2) dst[c] = __float2half_rn(O[r * LDO + c] * inv);
  }
}

}  // namespace attn_impl

#define GATA_ATTENTION(DP)                                                                                  \
  extern "C" __global__ void __launch_bounds__(128, 2)                                                    \
      attention_d##DP(const __half* qkv, __half* out, int tokens, int width, int d, int causal, float scale) { \
    attn_impl::attention<DP>(qkv, out, tokens, width, d, causal, scale);                                  \
  }

GATA_ATTENTION(16)
GATA_ATTENTION(32)
GATA_ATTENTION(64)
GATA_ATTENTION(80)
GATA_ATTENTION(128)
