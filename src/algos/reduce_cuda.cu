/*
 * reduce_cuda.cu - the device kernels of the CUDA plugin, chiefly the
 * reductions:
 * dst[i] = ((s0[i] op s1[i]) op s2[i]) ... op s[n-1][i], for every type and
 * op of hring.h, bit for bit what hring__reduce computes on the host when
 * applied source by source (reduce.h, reduce_generic.c):
 *
 * - The accumulator is rounded to the element type after every step, and
 *   AVG (with div > 1) is a sum whose last step is divided by div.
 * - Integers: sum and prod wrap (computed in the unsigned type of the same
 *   width); AVG divides the wrapped sum in the element type, truncating.
 * - float32 / float64: the _rn intrinsics, so that nvcc never contracts an
 *   operation into an FMA nor approximates the division.
 * - float16 / bfloat16: widened to fp32 exactly, one fp32 operation (for
 *   AVG's last step the sum, then the division, both in fp32), rounded to
 *   nearest even once.
 * - max / min of floats: a's NaN if a is one, else b's (16-bit NaNs made
 *   quiet, as the host does); +0 and -0 are combined bitwise (AND for max,
 *   OR for min), so max(+0, -0) = +0 and min(+0, -0) = -0 in either order.
 *   These are exact bit for bit, NaNs included.
 * - Known difference: sum, prod and AVG with a NaN operand (or inf - inf)
 *   give the GPU's canonical NaN, not the host's payload.  The result is a
 *   NaN on both; its bits are left unspecified by reduce.h for two NaNs and
 *   differ here for one.
 *
 * Build without --use_fast_math or -ftz=true: fp32 subnormals must survive,
 * as they do on the host.
 *
 * Layout: when dst and every source are 16-byte aligned, each thread takes
 * 16 bytes per iteration (one 128-bit load per source, one store); the
 * tail, and misaligned buffers, take a scalar grid-stride loop.
 */
#include <stdint.h>
#include <string.h>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "algos/reduce_cuda.h"
#include "core/cuda.h"

#define THREADS 256
#define BLOCKS_PER_SM 8 /* 8 x 256 threads fill an SM of sm_80 / sm_90 */
#define MAX_DEVICES 64  /* devices whose SM count is cached */

/* The sources, by value: kernel parameters need no copy to the device. */
struct Srcs {
  const void *p[HRING_CUDA_MAX_SRCS];
  int n;
};

/* ---- element operations ---------------------------------------------- */

/* T: the element; U: its unsigned twin, where wrapping is defined; W: the
 * type the host divides in (int for int8 after C's promotion). */
template <typename T, typename U, typename W>
struct IntOps {
  typedef T type;
  static __device__ __forceinline__ T sum(T a, T b) { return (T)(U)((U)a + (U)b); }
  static __device__ __forceinline__ T prod(T a, T b) { return (T)(U)((U)a * (U)b); }
  static __device__ __forceinline__ T max(T a, T b) { return a > b ? a : b; }
  static __device__ __forceinline__ T min(T a, T b) { return a < b ? a : b; }
  static __device__ __forceinline__ T avg(T a, T b, int div) {
    return (T)((W)sum(a, b) / (W)div);
  }
};

struct F32Ops {
  typedef float type;
  static __device__ __forceinline__ float sum(float a, float b) { return __fadd_rn(a, b); }
  static __device__ __forceinline__ float prod(float a, float b) { return __fmul_rn(a, b); }
  static __device__ __forceinline__ float max(float a, float b) {
    if (a != a) return a;
    if (b != b) return b;
    if (a > b) return a;
    if (b > a) return b;
    return __uint_as_float(__float_as_uint(a) & __float_as_uint(b));
  }
  static __device__ __forceinline__ float min(float a, float b) {
    if (a != a) return a;
    if (b != b) return b;
    if (a < b) return a;
    if (b < a) return b;
    return __uint_as_float(__float_as_uint(a) | __float_as_uint(b));
  }
  static __device__ __forceinline__ float avg(float a, float b, int div) {
    return __fdiv_rn(__fadd_rn(a, b), (float)div);
  }
};

struct F64Ops {
  typedef double type;
  static __device__ __forceinline__ double sum(double a, double b) { return __dadd_rn(a, b); }
  static __device__ __forceinline__ double prod(double a, double b) { return __dmul_rn(a, b); }
  static __device__ __forceinline__ double max(double a, double b) {
    if (a != a) return a;
    if (b != b) return b;
    if (a > b) return a;
    if (b > a) return b;
    return __longlong_as_double(__double_as_longlong(a) & __double_as_longlong(b));
  }
  static __device__ __forceinline__ double min(double a, double b) {
    if (a != a) return a;
    if (b != b) return b;
    if (a < b) return a;
    if (b < a) return b;
    return __longlong_as_double(__double_as_longlong(a) | __double_as_longlong(b));
  }
  static __device__ __forceinline__ double avg(double a, double b, int div) {
    return __ddiv_rn(__dadd_rn(a, b), (double)div);
  }
};

/* The 16-bit formats, stored as raw bits. */
struct HalfBits {
  static __device__ __forceinline__ float widen(uint16_t h) {
    return __half2float(__ushort_as_half(h));
  }
  static __device__ __forceinline__ uint16_t narrow(float f) {
    return __half_as_ushort(__float2half_rn(f));
  }
  static constexpr uint16_t quiet = 0x0200; /* the host's widen + narrow sets it */
};

struct Bf16Bits {
  static __device__ __forceinline__ float widen(uint16_t h) {
    return __bfloat162float(__ushort_as_bfloat16(h));
  }
  static __device__ __forceinline__ uint16_t narrow(float f) {
    return __bfloat16_as_ushort(__float2bfloat16_rn(f));
  }
  static constexpr uint16_t quiet = 0x0040;
};

/* max and min pick an operand, which the host's round trip through fp32
 * returns unchanged but for a NaN (made quiet) and for +0 / -0 (combined
 * bitwise); doing exactly that on the bits matches the host bit for bit. */
template <class C>
struct Narrow16Ops {
  typedef uint16_t type;
  static __device__ __forceinline__ uint16_t sum(uint16_t a, uint16_t b) {
    return C::narrow(__fadd_rn(C::widen(a), C::widen(b)));
  }
  static __device__ __forceinline__ uint16_t prod(uint16_t a, uint16_t b) {
    return C::narrow(__fmul_rn(C::widen(a), C::widen(b)));
  }
  static __device__ __forceinline__ uint16_t max(uint16_t a, uint16_t b) {
    float x = C::widen(a), y = C::widen(b);
    if (x != x) return (uint16_t)(a | C::quiet);
    if (y != y) return (uint16_t)(b | C::quiet);
    if (x > y) return a;
    if (y > x) return b;
    return (uint16_t)(a & b);
  }
  static __device__ __forceinline__ uint16_t min(uint16_t a, uint16_t b) {
    float x = C::widen(a), y = C::widen(b);
    if (x != x) return (uint16_t)(a | C::quiet);
    if (y != y) return (uint16_t)(b | C::quiet);
    if (x < y) return a;
    if (y < x) return b;
    return (uint16_t)(a | b);
  }
  static __device__ __forceinline__ uint16_t avg(uint16_t a, uint16_t b, int div) {
    return C::narrow(__fdiv_rn(__fadd_rn(C::widen(a), C::widen(b)), (float)div));
  }
};

typedef IntOps<int8_t, uint8_t, int> I8Ops;
typedef IntOps<uint8_t, uint8_t, unsigned> U8Ops;
typedef IntOps<int32_t, uint32_t, int32_t> I32Ops;
typedef IntOps<uint32_t, uint32_t, uint32_t> U32Ops;
typedef IntOps<int64_t, uint64_t, int64_t> I64Ops;
typedef IntOps<uint64_t, uint64_t, uint64_t> U64Ops;
typedef Narrow16Ops<HalfBits> F16Ops;
typedef Narrow16Ops<Bf16Bits> BF16Ops;

/* One step of the left fold: acc op b, where AVG's steps are sums and only
 * the last one (`last`) divides.  OP is a compile-time constant, so the
 * branches fold away. */
template <class E, int OP>
__device__ __forceinline__ typename E::type step(typename E::type a, typename E::type b,
                                                 bool last, int div) {
  if (OP == HRING_PROD) return E::prod(a, b);
  if (OP == HRING_MAX) return E::max(a, b);
  if (OP == HRING_MIN) return E::min(a, b);
  if (OP == HRING_AVG && last) return E::avg(a, b, div);
  return E::sum(a, b);
}

/* ---- the kernel ------------------------------------------------------ */

/* 16 bytes of elements, for 128-bit loads and stores. */
template <typename T>
struct alignas(16) Vec {
  T e[16 / sizeof(T)];
};

/* No __restrict__: dst may be srcs.p[0].  Each element is read by the one
 * thread that writes it, before it writes it, so that alias is harmless. */
template <class E, int OP>
__global__ void __launch_bounds__(THREADS)
    reduce_kernel(Srcs srcs, void *dst, size_t count, int div, int vec) {
  typedef typename E::type T;
  const size_t V = 16 / sizeof(T);
  const int n = srcs.n;
  const size_t stride = (size_t)gridDim.x * blockDim.x;
  const size_t tid = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  const size_t nvec = vec ? count / V : 0;

  for (size_t v = tid; v < nvec; v += stride) {
    Vec<T> acc = ((const Vec<T> *)srcs.p[0])[v];
    for (int k = 1; k < n; k++) {
      Vec<T> b = ((const Vec<T> *)srcs.p[k])[v];
      const bool last = k == n - 1;
#pragma unroll
      for (size_t j = 0; j < V; j++) acc.e[j] = step<E, OP>(acc.e[j], b.e[j], last, div);
    }
    ((Vec<T> *)dst)[v] = acc;
  }
  for (size_t i = nvec * V + tid; i < count; i += stride) {
    T acc = ((const T *)srcs.p[0])[i];
    for (int k = 1; k < n; k++) acc = step<E, OP>(acc, ((const T *)srcs.p[k])[i], k == n - 1, div);
    ((T *)dst)[i] = acc;
  }
}

/* reduce_push_async: the arguments come from host memory when the kernel
 * runs (cuda.h), and the result goes to every destination. */
template <class E, int OP>
__global__ void __launch_bounds__(THREADS) push_kernel(const hring_cuda_push_t *args) {
  typedef typename E::type T;
  __shared__ hring_cuda_push_t a;
  const volatile uint64_t *from = (const volatile uint64_t *)args;
  for (unsigned w = threadIdx.x; w < sizeof a / 8; w += blockDim.x) ((uint64_t *)&a)[w] = from[w];
  __syncthreads();
  const size_t count = a.count;
  const int n = (int)a.n, nd = (int)a.ndst, div = (int)a.div;
  uint64_t bits = 0;
  for (int k = 0; k < n; k++) bits |= a.srcs[k];
  for (int d = 0; d < nd; d++) bits |= a.dsts[d];
  const size_t V = 16 / sizeof(T);
  const size_t stride = (size_t)gridDim.x * blockDim.x;
  const size_t tid = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  const size_t nvec = (bits & 15) == 0 ? count / V : 0;
  for (size_t v = tid; v < nvec; v += stride) {
    Vec<T> acc = ((const Vec<T> *)a.srcs[0])[v];
    for (int k = 1; k < n; k++) {
      Vec<T> b = ((const Vec<T> *)a.srcs[k])[v];
#pragma unroll
      for (size_t j = 0; j < V; j++) acc.e[j] = step<E, OP>(acc.e[j], b.e[j], k == n - 1, div);
    }
    for (int d = 0; d < nd; d++) ((Vec<T> *)a.dsts[d])[v] = acc;
  }
  for (size_t i = nvec * V + tid; i < count; i += stride) {
    T acc = ((const T *)a.srcs[0])[i];
    for (int k = 1; k < n; k++) acc = step<E, OP>(acc, ((const T *)a.srcs[k])[i], k == n - 1, div);
    for (int d = 0; d < nd; d++) ((T *)a.dsts[d])[i] = acc;
  }
}

/* ---- dispatch -------------------------------------------------------- */

typedef void (*kernel_fn)(Srcs, void *, size_t, int, int);

#define ROW(E)                                                                  \
  {                                                                             \
    reduce_kernel<E, HRING_SUM>, reduce_kernel<E, HRING_PROD>,                  \
        reduce_kernel<E, HRING_MAX>, reduce_kernel<E, HRING_MIN>,               \
        reduce_kernel<E, HRING_AVG>                                             \
  }

/* Indexed [type][op] in hring.h's numbering. */
static const kernel_fn kernels[HRING_NUM_TYPES][HRING_NUM_OPS] = {
    ROW(I8Ops),  ROW(U8Ops),  ROW(I32Ops), ROW(U32Ops), ROW(I64Ops),
    ROW(U64Ops), ROW(F16Ops), ROW(F32Ops), ROW(F64Ops), ROW(BF16Ops),
};

typedef void (*push_fn)(const hring_cuda_push_t *);

#define PUSH_ROW(E)                                                            \
  {                                                                            \
    push_kernel<E, HRING_SUM>, push_kernel<E, HRING_PROD>, push_kernel<E, HRING_MAX>, \
        push_kernel<E, HRING_MIN>, push_kernel<E, HRING_AVG>                   \
  }

static const push_fn push_kernels[HRING_NUM_TYPES][HRING_NUM_OPS] = {
    PUSH_ROW(I8Ops),  PUSH_ROW(U8Ops),  PUSH_ROW(I32Ops), PUSH_ROW(U32Ops), PUSH_ROW(I64Ops),
    PUSH_ROW(U64Ops), PUSH_ROW(F16Ops), PUSH_ROW(F32Ops), PUSH_ROW(F64Ops), PUSH_ROW(BF16Ops),
};

static_assert(HRING_SUM == 0 && HRING_PROD == 1 && HRING_MAX == 2 && HRING_MIN == 3 &&
                  HRING_AVG == 4 && HRING_NUM_OPS == 5,
              "ROW lists the ops in hring.h's order");
static_assert(HRING_INT8 == 0 && HRING_UINT8 == 1 && HRING_INT32 == 2 && HRING_UINT32 == 3 &&
                  HRING_INT64 == 4 && HRING_UINT64 == 5 && HRING_FLOAT16 == 6 &&
                  HRING_FLOAT32 == 7 && HRING_FLOAT64 == 8 && HRING_BFLOAT16 == 9,
              "kernels lists the types in hring.h's order");

static int sm_cache[MAX_DEVICES]; /* 0: not asked yet */

/* Multiprocessors of the current device, asked once per device. */
static cudaError_t sm_count(int *out) {
  int dev, v = 0;
  cudaError_t e = cudaGetDevice(&dev);
  if (e != cudaSuccess) return e;
  if (dev >= 0 && dev < MAX_DEVICES) v = __atomic_load_n(&sm_cache[dev], __ATOMIC_RELAXED);
  if (v <= 0) {
    e = cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev);
    if (e != cudaSuccess) return e;
    if (v <= 0) v = 1;
    if (dev >= 0 && dev < MAX_DEVICES) __atomic_store_n(&sm_cache[dev], v, __ATOMIC_RELAXED);
  }
  *out = v;
  return cudaSuccess;
}

cudaError_t hring__cuda_reduce_launch(void *dst, const void *const *srcs, int n, size_t count,
                                      hring_datatype_t type, hring_redop_t op, int div,
                                      cudaStream_t s) {
  /* The host treats AVG with div <= 1 as SUM; the SUM kernel is exactly that. */
  if (op == HRING_AVG && div <= 1) op = HRING_SUM;
  Srcs p;
  memset(&p, 0, sizeof p);
  uintptr_t bits = (uintptr_t)dst;
  for (int k = 0; k < n; k++) {
    p.p[k] = srcs[k];
    bits |= (uintptr_t)srcs[k];
  }
  p.n = n;
  int vec = (bits & 15) == 0;

  /* One thread per 16-byte vector (plus the short tail), or per element. */
  size_t per_vec = 16 / hring__cuda_esize(type);
  size_t work = vec ? count / per_vec + count % per_vec : count;
  int sms;
  cudaError_t e = sm_count(&sms);
  if (e != cudaSuccess) return e;
  size_t blocks = (work + THREADS - 1) / THREADS;
  size_t cap = (size_t)sms * BLOCKS_PER_SM;
  if (blocks > cap) blocks = cap;
  if (blocks < 1) blocks = 1;

  void *args[] = {&p, &dst, &count, &div, &vec};
  return cudaLaunchKernel((const void *)kernels[type][op], dim3((unsigned)blocks), dim3(THREADS),
                          args, 0, s);
}

cudaError_t hring__cuda_push_launch(const hring_cuda_push_t *args, size_t max_count,
                                    hring_datatype_t type, hring_redop_t op, cudaStream_t s) {
  /* Sized for the vector path; the kernel's loops cover any count. */
  size_t work = max_count / (16 / hring__cuda_esize(type)) + 16;
  int sms;
  cudaError_t e = sm_count(&sms);
  if (e != cudaSuccess) return e;
  size_t blocks = (work + THREADS - 1) / THREADS, cap = (size_t)sms * BLOCKS_PER_SM;
  if (blocks > cap) blocks = cap;
  void *kargs[] = {&args};
  return cudaLaunchKernel((const void *)push_kernels[type][op], dim3((unsigned)blocks),
                          dim3(THREADS), kargs, 0, s);
}

/* ---- delay ----------------------------------------------------------- */

__global__ void delay_kernel(unsigned long long ns) {
  unsigned long long t0, t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
  do {
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  } while (t - t0 < ns);
}

cudaError_t hring__cuda_delay_launch(unsigned us, cudaStream_t s) {
  unsigned long long ns = 1000ull * us;
  void *args[] = {&ns};
  return cudaLaunchKernel((const void *)delay_kernel, dim3(1), dim3(1), args, 0, s);
}

cudaError_t hring__cuda_kernels_load(void) {
  cudaFuncAttributes attr;
  cudaError_t e = cudaFuncGetAttributes(&attr, (const void *)delay_kernel);
  for (int t = 0; t < HRING_NUM_TYPES && e == cudaSuccess; t++)
    for (int o = 0; o < HRING_NUM_OPS && e == cudaSuccess; o++)
      e = cudaFuncGetAttributes(&attr, (const void *)kernels[t][o]);
  for (int t = 0; t < HRING_NUM_TYPES && e == cudaSuccess; t++)
    for (int o = 0; o < HRING_NUM_OPS && e == cudaSuccess; o++)
      e = cudaFuncGetAttributes(&attr, (const void *)push_kernels[t][o]);
  return e;
}
