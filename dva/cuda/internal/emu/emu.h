// emu.h: just enough of CUDA C++ for the kernels of kernels/*.cu to compile as host C++
// and run on the CPU, each CUDA thread a fiber (ucontext) of one host thread, switched at
// barriers. Blocks run one after another, so a kernel's __shared__ variables (static here)
// belong to the block that runs; barriers are the block's (__syncthreads) and the warp's
// (__syncwarp, shuffles), and a barrier that some threads never reach is reported as a
// deadlock instead of hanging. WMMA fragments hold their whole 16x16 tile in every lane, so their
// element-to-lane mapping (unspecified by CUDA) never matters; a fragment store is written
// by lane 0 only, so a warp that reads it back without __syncwarp reads stale data, as it
// may on the hardware. cp.async copies are held back until the cp_async_wait that
// guarantees them, which catches reads of a stage that has not landed yet.
//
// What this cannot show: timing, occupancy, bank conflicts, register pressure, the real
// tensor-core rounding (here float sums in a fixed order) or bugs that need the hardware's
// memory model. Those are for the GPU tests.
#pragma once

#include <functional>
#include <math.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(n) alignas(n)

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
};

struct uint4 {
  unsigned x, y, z, w;
};
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return uint4{x, y, z, w}; }

namespace emu {

struct Thread;

// Barrier is a cooperative barrier: a thread that arrives early yields to the scheduler
// until the last one arrives (see emu.cc).
struct Barrier {
  explicit Barrier(int n) : expected(n) {}
  void wait();
  int expected;
  int arrived = 0;
  std::vector<Thread*> waiting;
  std::function<void()> on_release;  // run when the last thread arrives
};

// Mma is one product of a warp's lanes (see mma_sync).
struct Mma {
  float a[16][16], b[16][16], c[16][16], d[16][16];
};

// Warp is what the lanes of one warp share.
struct Warp {
  explicit Warp(int n) : bar(n) {}
  Barrier bar;
  uint32_t slot[32] = {};
  std::vector<Mma> mma;  // the products since the warp last met at a barrier
};

// Thread is the state of one emulated CUDA thread.
struct Thread {
  dim3 thread, block, grid, bdim;
  int lane = 0;
  Warp* warp = nullptr;
  Barrier* block_bar = nullptr;
  unsigned char* dyn_smem = nullptr;
  // cp.async: copies issued since the last commit, and the committed groups not yet waited for.
  struct Copy {
    void* dst;
    const void* src;
    int bytes;
  };
  std::vector<Copy> pending;
  std::vector<std::vector<Copy>> groups;
  void* fiber = nullptr;  // the scheduler's context of this thread
  bool blocked = false, done = false;
  size_t mma_calls = 0;  // mma_sync calls since the warp last met at a barrier
};

// self is the emulated thread running now on this host thread.
extern thread_local Thread* self;

}  // namespace emu

#define threadIdx (emu::self->thread)
#define blockIdx (emu::self->block)
#define gridDim (emu::self->grid)
#define blockDim (emu::self->bdim)
#define DYNAMIC_SMEM(name) unsigned char* name = emu::self->dyn_smem

inline void __syncthreads() { emu::self->block_bar->wait(); }
inline void __syncwarp(unsigned = 0xffffffffu) { emu::self->warp->bar.wait(); }

template <typename T>
inline T __shfl_xor_sync(unsigned, T v, int lane_mask) {
  static_assert(sizeof(T) == 4, "32-bit shuffles only");
  emu::Warp* w = emu::self->warp;
  uint32_t bits;
  std::memcpy(&bits, &v, 4);
  w->slot[emu::self->lane] = bits;
  w->bar.wait();
  bits = w->slot[emu::self->lane ^ lane_mask];
  w->bar.wait();
  T out;
  std::memcpy(&out, &bits, 4);
  return out;
}

inline float __int_as_float(int i) {
  float f;
  std::memcpy(&f, &i, 4);
  return f;
}
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
// The explicitly rounded operations. The host build does not fuse either: ISO C++
// (-std=c++20, not gnu++) keeps GCC's -ffp-contract=off, and baseline x86-64 has no FMA.
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }

// __half is IEEE binary16, converted by the compiler's _Float16 (round to nearest even).
struct __half {
  uint16_t bits;
};
inline __half __float2half_rn(float f) {
  _Float16 h = static_cast<_Float16>(f);
  __half out;
  std::memcpy(&out.bits, &h, 2);
  return out;
}
// half_table holds every binary16 value as float: software half conversion is slow.
inline const float* half_table() {
  static const std::vector<float> t = [] {
    std::vector<float> v(65536);
    for (uint32_t i = 0; i < 65536; i++) {
      uint16_t b = static_cast<uint16_t>(i);
      _Float16 h;
      std::memcpy(&h, &b, 2);
      v[i] = static_cast<float>(h);
    }
    return v;
  }();
  return t.data();
}
inline float __half2float(__half h) { return half_table()[h.bits]; }

namespace gata {
inline void cp_async16(void* smem, const void* gmem, int src_bytes) {
  emu::self->pending.push_back({smem, gmem, src_bytes});
}
inline void cp_async_commit() {
  emu::self->groups.push_back(std::move(emu::self->pending));
  emu::self->pending.clear();
}
template <int N>
inline void cp_async_wait() {
  auto& g = emu::self->groups;
  while ((int)g.size() > N) {
    for (auto& c : g.front()) {
      std::memcpy(c.dst, c.src, c.bytes);
      std::memset(static_cast<char*>(c.dst) + c.bytes, 0, 16 - c.bytes);
    }
    g.erase(g.begin());
  }
}
}  // namespace gata

namespace nvcuda {
namespace wmma {

struct row_major {};
struct col_major {};
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
enum layout_t { mem_row_major, mem_col_major };

template <typename Use, int M, int N, int K, typename T, typename Layout = void>
struct fragment {
  static_assert(M == 16 && N == 16 && K == 16, "16x16x16 fragments only");
  float v[16][16];  // (row, column) of the fragment's matrix
};

template <typename Use, typename T, typename Layout>
inline void load_matrix_sync(fragment<Use, 16, 16, 16, T, Layout>& f, const __half* p, unsigned ldm) {
  static_assert(std::is_same<Layout, row_major>::value || std::is_same<Layout, col_major>::value, "layout");
  for (int i = 0; i < 16; i++)
    for (int j = 0; j < 16; j++)
      f.v[i][j] = __half2float(std::is_same<Layout, row_major>::value ? p[i * ldm + j] : p[j * ldm + i]);
}

inline void load_matrix_sync(fragment<accumulator, 16, 16, 16, float>& f, const float* p, unsigned ldm, layout_t l) {
  for (int i = 0; i < 16; i++)
    for (int j = 0; j < 16; j++) f.v[i][j] = l == mem_row_major ? p[i * ldm + j] : p[j * ldm + i];
}

inline void store_matrix_sync(float* p, const fragment<accumulator, 16, 16, 16, float>& f, unsigned ldm, layout_t l) {
  if (emu::self->lane != 0) return;
  for (int i = 0; i < 16; i++)
    for (int j = 0; j < 16; j++) (l == mem_row_major ? p[i * ldm + j] : p[j * ldm + i]) = f.v[i][j];
}

template <typename T>
inline void fill_fragment(fragment<accumulator, 16, 16, 16, T>& f, T v) {
  for (auto& row : f.v)
    for (auto& x : row) x = v;
}

// mma_sync computes d = a·b + c. Every lane of a warp makes the same calls with the same
// fragments, so the first lane's result of its i-th call since the last barrier is kept
// and reused by the others after checking that their inputs are the same bits (a lane
// whose inputs differ computes its own): the emulator does the product once a warp.
template <typename LA, typename LB>
inline void mma_sync(fragment<accumulator, 16, 16, 16, float>& d, const fragment<matrix_a, 16, 16, 16, __half, LA>& a,
                     const fragment<matrix_b, 16, 16, 16, __half, LB>& b,
                     const fragment<accumulator, 16, 16, 16, float>& c) {
  emu::Warp* w = emu::self->warp;
  const size_t i = emu::self->mma_calls++;
  if (i < w->mma.size()) {
    const emu::Mma& e = w->mma[i];
    if (!std::memcmp(e.a, a.v, sizeof e.a) && !std::memcmp(e.b, b.v, sizeof e.b) && !std::memcmp(e.c, c.v, sizeof e.c)) {
      std::memcpy(d.v, e.d, sizeof e.d);
      return;
    }
  }
  float out[16][16];
  for (int r = 0; r < 16; r++)
    for (int j = 0; j < 16; j++) {
      float s = c.v[r][j];
      for (int k = 0; k < 16; k++) s += a.v[r][k] * b.v[k][j];
      out[r][j] = s;
    }
  if (i == w->mma.size()) {
    emu::Mma e;
    std::memcpy(e.a, a.v, sizeof e.a);
    std::memcpy(e.b, b.v, sizeof e.b);
    std::memcpy(e.c, c.v, sizeof e.c);
    std::memcpy(e.d, out, sizeof e.d);
    w->mma.push_back(e);
  }
  std::memcpy(d.v, out, sizeof out);
}

}  // namespace wmma
}  // namespace nvcuda
