// emu.cc: the emulator's launcher and the table of the kernels of kernels/*.cu, compiled
// here as host C++ (see emu.h).
#include "emu.h"

#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <ucontext.h>
#include <tuple>
#include <utility>

#include "attention.cu"
#include "embed.cu"
#include "gemm.cu"
#include "layernorm.cu"
#include "resize.cu"

#include "emu_c.h"

namespace emu {

thread_local Thread* self = nullptr;

namespace {

using Body = std::function<void()>;

constexpr size_t kStack = 256 << 10;

// The scheduler of the launch running on this host thread.
struct Sched {
  ucontext_t main;
  const Body* body;
  Barrier* block_bar;
};
thread_local Sched* sched = nullptr;
thread_local Thread* starting = nullptr;

void fiber_main() {
  Thread* me = starting;
  self = me;
  const dim3 grid = me->grid;
  for (unsigned z = 0; z < grid.z; z++)
    for (unsigned y = 0; y < grid.y; y++)
      for (unsigned x = 0; x < grid.x; x++) {
        me->block = dim3{x, y, z};
        (*sched->body)();
        self = me;
        gata::cp_async_wait<0>();
        sched->block_bar->wait();  // the next block starts with fresh shared memory
      }
  me->done = true;
  // Returning resumes the scheduler (uc_link).
}

// run runs body as every thread of every block of the grid, one block after another.
// It returns 0, or EMU_BAD_LAUNCH for a bad block size, or EMU_DEADLOCK when threads wait
// at a barrier that the others never reach.
int run(dim3 grid, dim3 block, size_t smem, const Body& body) {
  const int n = block.x * block.y * block.z;
  if (n <= 0 || n > 1024) return EMU_BAD_LAUNCH;
  std::vector<unsigned char> dyn(smem + 128);
  unsigned char* dyn_smem = dyn.data() + (128 - reinterpret_cast<uintptr_t>(dyn.data()) % 128) % 128;
  Barrier block_bar(n);
  std::vector<std::unique_ptr<Warp>> warps;
  for (int w = 0; w < (n + 31) / 32; w++) warps.push_back(std::make_unique<Warp>(std::min(32, n - 32 * w)));
  std::vector<Thread> threads(n);
  // A barrier that all lanes of a warp meet at ends the warp's shared products.
  auto forget = [&threads](Warp* w) {
    w->mma.clear();
    for (auto& t : threads)
      if (t.warp == w) t.mma_calls = 0;
  };
  for (auto& w : warps) w->bar.on_release = [forget, p = w.get()] { forget(p); };
  block_bar.on_release = [&warps, forget] {
    for (auto& w : warps) forget(w.get());
  };
  Sched sc{};
  sc.body = &body;
  sc.block_bar = &block_bar;
  Sched* outer = sched;
  sched = &sc;
  std::vector<ucontext_t> ctxs(n);
  std::vector<std::unique_ptr<char[]>> stacks;
  for (int t = 0; t < n; t++) {
    Thread& me = threads[t];
    me.thread = dim3{unsigned(t % block.x), unsigned(t / block.x % block.y), unsigned(t / (block.x * block.y))};
    me.grid = grid;
    me.bdim = block;
    me.lane = t % 32;
    me.warp = warps[t / 32].get();
    me.block_bar = &block_bar;
    me.dyn_smem = dyn_smem;
    me.fiber = &ctxs[t];
    stacks.emplace_back(new char[kStack]);
    getcontext(&ctxs[t]);
    ctxs[t].uc_stack.ss_sp = stacks.back().get();
    ctxs[t].uc_stack.ss_size = kStack;
    ctxs[t].uc_link = &sc.main;
    makecontext(&ctxs[t], fiber_main, 0);
  }
  int rc = 0;
  for (bool started = false;;) {
    bool ran = false, left = false;
    for (auto& t : threads) {
      if (t.done) continue;
      left = true;
      if (t.blocked) continue;
      ran = true;
      starting = &t;
      self = &t;
      swapcontext(&sc.main, static_cast<ucontext_t*>(t.fiber));
    }
    started = true;
    if (!left) break;
    if (!ran && started) {
      rc = EMU_DEADLOCK;
      break;
    }
  }
  self = nullptr;
  sched = outer;
  return rc;
}

}  // namespace

void Barrier::wait() {
  if (++arrived == expected) {
    arrived = 0;
    if (on_release) on_release();
    for (Thread* t : waiting) t->blocked = false;
    waiting.clear();
    return;
  }
  Thread* me = self;
  me->blocked = true;
  waiting.push_back(me);
  swapcontext(static_cast<ucontext_t*>(me->fiber), &sched->main);
  self = me;
}

namespace {

struct Kernel {
  std::vector<int> sizes;  // of the parameters, in bytes
  std::function<Body(void**)> bind;
};

template <typename... A, size_t... I>
void call(void (*k)(A...), void** p, std::index_sequence<I...>) {
  k(*static_cast<std::remove_reference_t<A>*>(p[I])...);
}

template <typename... A>
Kernel kernel(void (*k)(A...)) {
  Kernel out;
  out.sizes = {int(sizeof(A))...};
  out.bind = [k](void** p) -> Body {
    // Copy the arguments now, as cuLaunchKernel does.
    auto args = std::make_shared<std::tuple<std::remove_cv_t<std::remove_reference_t<A>>...>>();
    size_t i = 0;
    std::apply([&](auto&... a) { ((std::memcpy(&a, p[i++], sizeof a)), ...); }, *args);
    return [k, args] { std::apply([k](auto&... a) { k(a...); }, *args); };
  };
  return out;
}

// A kernel with a barrier that lane 0 never reaches, for the deadlock check's test.
void emu_selftest_deadlock(int) {
  if (threadIdx.x % 32 == 0) return;
  __syncwarp();
}

#define K(name) {#name, kernel(name)}

const std::map<std::string, Kernel>& table() {
  static const std::map<std::string, Kernel> t = {
      K(gemm_h_128x128_a8), K(gemm_h_128x128), K(gemm_h_64x64_a8), K(gemm_h_64x64),
      K(gemm_f_128x128_a8), K(gemm_f_128x128), K(gemm_f_64x64_a8), K(gemm_f_64x64),
      K(gemm_fadd_128x128_a8), K(gemm_fadd_128x128), K(gemm_fadd_64x64_a8), K(gemm_fadd_64x64),
      K(attention_d16), K(attention_d32), K(attention_d64), K(attention_d80), K(attention_d128),
      K(layernorm_h), K(layernorm_f),
      K(f32_to_f16), K(im2col), K(vision_tokens), K(text_tokens), K(l2_normalize),
      K(resize_coeffs), K(resize_h), K(resize_v_normalize),
      K(emu_selftest_deadlock),
  };
  return t;
}

}  // namespace
}  // namespace emu

extern "C" int emu_launch(const char* name, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                          unsigned bz, unsigned smem, void** params, const int* sizes, int nparams) {
  auto& t = emu::table();
  auto it = t.find(name);
  if (it == t.end()) return EMU_NO_KERNEL;
  const auto& k = it->second;
  if ((int)k.sizes.size() != nparams) return EMU_BAD_ARGS;
  for (int i = 0; i < nparams; i++)
    if (k.sizes[i] != sizes[i]) return EMU_BAD_ARGS;
  return emu::run(dim3{gx, gy, gz}, dim3{bx, by, bz}, smem, k.bind(params));
}

extern "C" int emu_kernels(char* buf, int len) {
  std::string all;
  for (auto& [name, _] : emu::table()) all += name + "\n";
  std::snprintf(buf, len, "%s", all.c_str());
  return (int)all.size();
}
