// gemm.cu: the matrix products of the transformer, out = epilogue(A·Wᵀ + bias), on the
// tensor cores (WMMA 16x16x16, half inputs, float accumulation).
//
// A is [M, K] half, row-major with leading dimension lda (the activations); W is [N, K]
// half, row-major with leading dimension ldw (a PyTorch Linear weight, out x in). Tiles of
// A and W stream into shared memory through a three-stage cp.async pipeline; each warp
// owns a WM x WN block of the output tile. The epilogue adds the bias (float, may be null)
// and then, by kernel:
//   gemm_h_*:    out (half)  = act(acc + bias)              q/k/v projections, MLP c_fc
//   gemm_f_*:    out (float) = act(acc + bias)              patch embedding, projections
//   gemm_fadd_*: out (float) += acc + bias                  the residual branches
// Kernel names end in the tile (128x128 with 8 warps, 64x64 with 4 warps) and in _a8 when
// K is a multiple of 8 and A, W are 16-byte aligned with lda, ldw multiples of 8, which
// allows 16-byte asynchronous copies; the other variant loads element by element.
#include "common.cuh"

namespace gemm_impl {

using namespace nvcuda;

constexpr int BK = 32;
constexpr int STAGES = 3;
constexpr int LDS = BK + 8;  // shared row length in halves: 80 bytes keeps fragments 32-byte aligned

enum Epi { EPI_HALF = 0, EPI_FLOAT = 1, EPI_FLOAT_ADD = 2 };

template <int BM, int BN>
constexpr int smem_bytes() {
  return STAGES * (BM + BN) * LDS * 2;
}

// load_tile copies rows [r0, r0+ROWS) x columns [k0, k0+BK) of src (rows_total x K, leading
// dimension ld) into dst (ROWS x LDS), zero outside the matrix.
template <int ROWS, int THREADS, bool ALIGNED>
DEV void load_tile(__half* dst, const __half* src, int ld, int rows_total, int K, int r0, int k0, int tid) {
  constexpr int CHUNKS = ROWS * BK / 8;  // 8 halves = 16 bytes each
#pragma unroll
  for (int c = tid; c < CHUNKS; c += THREADS) {
    int row = c / (BK / 8);
    int col = (c % (BK / 8)) * 8;
    int gr = r0 + row;
    int gk = k0 + col;
    __half* d = dst + row * LDS + col;
    if (ALIGNED) {
      bool ok = gr < rows_total && gk < K;
      const __half* s = ok ? src + (size_t)gr * ld + gk : src;
      gata::cp_async16(d, s, ok ? 16 : 0);
    } else {
#pragma unroll
      for (int e = 0; e < 8; e++) {
        bool ok = gr < rows_total && gk + e < K;
        d[e] = ok ? src[(size_t)gr * ld + gk + e] : __float2half_rn(0.0f);
      }
    }
  }
}

template <int BM, int BN, int WARPS_M, int WARPS_N, int EPI, bool ALIGNED>
DEV void gemm(const __half* __restrict__ A, int lda, const __half* __restrict__ W, int ldw,
              const float* __restrict__ bias, void* out, int ldc, int M, int N, int K, int act) {
  constexpr int THREADS = WARPS_M * WARPS_N * 32;
  constexpr int WM = BM / WARPS_M;  // rows of the output tile per warp
  constexpr int WN = BN / WARPS_N;
  constexpr int FM = WM / 16;  // fragments per warp
  constexpr int FN = WN / 16;
  DYNAMIC_SMEM(smem);
  __half* As = reinterpret_cast<__half*>(smem);
  __half* Bs = As + STAGES * BM * LDS;

  const int tid = threadIdx.x;
  const int warp = tid / 32, lane = tid % 32;
  const int wm = warp / WARPS_N, wn = warp % WARPS_N;
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;

  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[FM][FN];
#pragma unroll
  for (int i = 0; i < FM; i++)
#pragma unroll
    for (int j = 0; j < FN; j++) wmma::fill_fragment(acc[i][j], 0.0f);

  const int ktiles = (K + BK - 1) / BK;
#pragma unroll
  for (int s = 0; s < STAGES - 1; s++) {
    if (s < ktiles) {
      load_tile<BM, THREADS, ALIGNED>(As + s * BM * LDS, A, lda, M, K, m0, s * BK, tid);
      load_tile<BN, THREADS, ALIGNED>(Bs + s * BN * LDS, W, ldw, N, K, n0, s * BK, tid);
    }
    gata::cp_async_commit();
  }

  for (int kt = 0; kt < ktiles; kt++) {
    gata::cp_async_wait<STAGES - 2>();
    __syncthreads();  // tile kt has landed for everyone; everyone is done with tile kt-1
    int next = kt + STAGES - 1;
    if (next < ktiles) {
      int s = next % STAGES;
      load_tile<BM, THREADS, ALIGNED>(As + s * BM * LDS, A, lda, M, K, m0, next * BK, tid);
      load_tile<BN, THREADS, ALIGNED>(Bs + s * BN * LDS, W, ldw, N, K, n0, next * BK, tid);
    }
    gata::cp_async_commit();

    const __half* as = As + (kt % STAGES) * BM * LDS + wm * WM * LDS;
    const __half* bs = Bs + (kt % STAGES) * BN * LDS + wn * WN * LDS;
#pragma unroll
    for (int kk = 0; kk < BK; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa[FM];
      wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> fb[FN];
#pragma unroll
      for (int i = 0; i < FM; i++) wmma::load_matrix_sync(fa[i], as + i * 16 * LDS + kk, LDS);
#pragma unroll
      for (int j = 0; j < FN; j++) wmma::load_matrix_sync(fb[j], bs + j * 16 * LDS + kk, LDS);
#pragma unroll
      for (int i = 0; i < FM; i++)
#pragma unroll
        for (int j = 0; j < FN; j++) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
    }
  }
  gata::cp_async_wait<0>();
  __syncthreads();  // the pipeline's shared memory is reused for the epilogue

  // Epilogue: one 16x16 fragment at a time through a per-warp staging tile; lane l
  // handles row l/2, columns (l%2)*8 … +7.
  float* stage = reinterpret_cast<float*>(smem) + warp * 16 * 16;
  const int r = lane / 2, c0 = (lane % 2) * 8;
#pragma unroll
  for (int i = 0; i < FM; i++) {
#pragma unroll
    for (int j = 0; j < FN; j++) {
      wmma::store_matrix_sync(stage, acc[i][j], 16, wmma::mem_row_major);
      __syncwarp();
      int gm = m0 + wm * WM + i * 16 + r;
      int gn0 = n0 + wn * WN + j * 16 + c0;
      if (gm < M) {
#pragma unroll 1
        for (int e = 0; e < 8; e++) {
          int gn = gn0 + e;
          if (gn >= N) break;
          float v = stage[r * 16 + c0 + e];
          if (bias) v += bias[gn];
          size_t o = (size_t)gm * ldc + gn;
          if (EPI == EPI_HALF) {
            static_cast<__half*>(out)[o] = __float2half_rn(gata::activate(v, act));
          } else if (EPI == EPI_FLOAT) {
            static_cast<float*>(out)[o] = gata::activate(v, act);
          } else {
            static_cast<float*>(out)[o] += v;
          }
        }
      }
      __syncwarp();
    }
  }
}

}  // namespace gemm_impl

// The exported kernels. Grid: (ceil(N/BN), ceil(M/BM)); block: 256 threads for 128x128,
// 128 for 64x64; dynamic shared memory: gemm_impl::smem_bytes (61440 and 30720 bytes).
#define GATA_GEMM(name, BM, BN, WMS, WNS, EPI, AL)                                                        \
  extern "C" __global__ void __launch_bounds__(WMS* WNS * 32)                                            \
      name(const __half* A, int lda, const __half* W, int ldw, const float* bias, void* out, int ldc, int M, \
           int N, int K, int act) {                                                                      \
    gemm_impl::gemm<BM, BN, WMS, WNS, EPI, AL>(A, lda, W, ldw, bias, out, ldc, M, N, K, act);            \
  }

GATA_GEMM(gemm_h_128x128_a8, 128, 128, 2, 4, gemm_impl::EPI_HALF, true)
GATA_GEMM(gemm_h_128x128, 128, 128, 2, 4, gemm_impl::EPI_HALF, false)
GATA_GEMM(gemm_h_64x64_a8, 64, 64, 2, 2, gemm_impl::EPI_HALF, true)
GATA_GEMM(gemm_h_64x64, 64, 64, 2, 2, gemm_impl::EPI_HALF, false)
GATA_GEMM(gemm_f_128x128_a8, 128, 128, 2, 4, gemm_impl::EPI_FLOAT, true)
GATA_GEMM(gemm_f_128x128, 128, 128, 2, 4, gemm_impl::EPI_FLOAT, false)
GATA_GEMM(gemm_f_64x64_a8, 64, 64, 2, 2, gemm_impl::EPI_FLOAT, true)
GATA_GEMM(gemm_f_64x64, 64, 64, 2, 2, gemm_impl::EPI_FLOAT, false)
GATA_GEMM(gemm_fadd_128x128_a8, 128, 128, 2, 4, gemm_impl::EPI_FLOAT_ADD, true)
GATA_GEMM(gemm_fadd_128x128, 128, 128, 2, 4, gemm_impl::EPI_FLOAT_ADD, false)
GATA_GEMM(gemm_fadd_64x64_a8, 64, 64, 2, 2, gemm_impl::EPI_FLOAT_ADD, true)
GATA_GEMM(gemm_fadd_64x64, 64, 64, 2, 2, gemm_impl::EPI_FLOAT_ADD, false)
