#include "algos/reduce_isa.h"
#if defined(__x86_64__)
const hring__reduce_table_t hring__reduce_avx512_table;
#endif
