/*
 * reduce.c - entry points of the host reduction kernels and the run-time
 * choice among their instruction-set versions.
 *
 * The choice is made once, on first use: the widest family the CPU supports
 * (avx512 > avx2 > generic, by __builtin_cpu_supports, which also checks
 * that the OS saves the wider registers), lowered by HRING_CPU_KERNELS when
 * it names a narrower one ("generic", "avx2", "avx512"; "auto" or an
 * unknown value leaves the CPU's choice).  Each family's table is completed
 * at that time from the narrower ones, so a call is one table load and one
 * indirect call.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "algos/reduce.h"
#include "algos/reduce_isa.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

enum { ISA_GENERIC, ISA_AVX2, ISA_AVX512, ISA_COUNT };

static const char *const isa_names[ISA_COUNT] = {"generic", "avx2", "avx512"};

static hring__reduce_table_t isa_tables[ISA_COUNT];
static hring__copy_kernel_t isa_copy[ISA_COUNT];
static int isa_cpu;     /* the widest family this CPU runs */
static int isa_default; /* isa_cpu lowered by HRING_CPU_KERNELS */
static int isa_active;  /* read and written with __atomic builtins */
static pthread_once_t isa_once = PTHREAD_ONCE_INIT;

#if defined(__x86_64__)
/* Clang's __builtin_cpu_supports does not know "f16c": ask CPUID leaf 1.
 * The OS side (saving the YMM state) is what the avx2 check below covers. */
static int cpu_has_f16c(void) {
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
  return (ecx & bit_F16C) != 0;
}
#endif

static int isa_detect(void) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma") ||
      !cpu_has_f16c())
    return ISA_GENERIC;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"))
    return ISA_AVX512;
  return ISA_AVX2;
#else
  return ISA_GENERIC;
#endif
}

static int isa_from_name(const char *name) {
  for (int i = 0; i < ISA_COUNT; i++)
    if (strcmp(name, isa_names[i]) == 0) return i;
  return -1;
}

#if defined(__x86_64__)
/* Table `to` = `over` where it has a kernel, else `under`. */
static void isa_merge(hring__reduce_table_t to,
                      const hring__reduce_table_t over,
                      const hring__reduce_table_t under) {
  for (int t = 0; t < HRING_NUM_TYPES; t++)
    for (int o = 0; o < HRING_NUM_OPS; o++)
      to[t][o] = over[t][o] ? over[t][o] : under[t][o];
}
#endif

static void isa_init(void) {
  const char *env = getenv("HRING_CPU_KERNELS");

  memcpy(isa_tables[ISA_GENERIC], hring__reduce_generic_table,
         sizeof(hring__reduce_table_t));
  isa_copy[ISA_GENERIC] = hring__copy_generic;
#if defined(__x86_64__)
  isa_merge(isa_tables[ISA_AVX2], hring__reduce_avx2_table,
            isa_tables[ISA_GENERIC]);
  isa_merge(isa_tables[ISA_AVX512], hring__reduce_avx512_table,
            isa_tables[ISA_AVX2]);
  isa_copy[ISA_AVX2] = hring__copy_avx2;
  isa_copy[ISA_AVX512] = hring__copy_avx2;
#else
  for (int i = ISA_AVX2; i < ISA_COUNT; i++) {
    memcpy(isa_tables[i], hring__reduce_generic_table,
           sizeof(hring__reduce_table_t));
    isa_copy[i] = hring__copy_generic;
  }
#endif
  isa_cpu = isa_detect();
  isa_default = isa_cpu;
  if (env && *env) {
    int want = isa_from_name(env);
    if (want >= 0 && want < isa_cpu) isa_default = want;
  }
  __atomic_store_n(&isa_active, isa_default, __ATOMIC_RELEASE);
}

static inline int isa_current(void) {
  pthread_once(&isa_once, isa_init);
  return __atomic_load_n(&isa_active, __ATOMIC_ACQUIRE);
}

void hring__reduce(void *dst, void *dst2, const void *a, const void *b,
                   size_t count, hring_datatype_t type, hring_redop_t op,
                   int div, int flags) {
  int isa;
  if (count == 0 || (unsigned)type >= HRING_NUM_TYPES ||
      (unsigned)op >= HRING_NUM_OPS)
    return;
  if (op == HRING_AVG && div <= 1) op = HRING_SUM;
  isa = isa_current();
  isa_tables[isa][type][op](dst, dst2, a, b, count, div, flags);
}

/* Element sizes, kept here so the kernels do not depend on the core. */
static const unsigned char type_size[HRING_NUM_TYPES] = {
    [HRING_INT8] = 1,    [HRING_UINT8] = 1,   [HRING_INT32] = 4,
    [HRING_UINT32] = 4,  [HRING_INT64] = 8,   [HRING_UINT64] = 8,
    [HRING_FLOAT16] = 2, [HRING_FLOAT32] = 4, [HRING_FLOAT64] = 8,
    [HRING_BFLOAT16] = 2,
};

void hring__divide(void *dst, const void *src, size_t count,
                   hring_datatype_t type, int div) {
  size_t esz = (unsigned)type < HRING_NUM_TYPES ? type_size[type] : 0;
  if (count == 0 || esz == 0) return;
  if (div <= 1) {
    if (dst != src) memcpy(dst, src, count * esz);
    return;
  }
  hring__divide_generic(dst, src, count, type, div);
}

void hring__copy(void *dst, void *dst2, const void *src, size_t n,
                 int flags) {
  if (n == 0) return;
  isa_copy[isa_current()](dst, dst2, src, n, flags);
}

const char *hring__reduce_isa(void) { return isa_names[isa_current()]; }

int hring__reduce_set_isa(const char *name) {
  int isa;
  pthread_once(&isa_once, isa_init);
  if (!name || strcmp(name, "auto") == 0) {
    isa = isa_default;
  } else {
    isa = isa_from_name(name);
    if (isa < 0 || isa > isa_cpu) return -1;
  }
  __atomic_store_n(&isa_active, isa, __ATOMIC_RELEASE);
  return 0;
}

void hring__reduce_force_generic(int on) {
  hring__reduce_set_isa(on ? "generic" : NULL);
}
