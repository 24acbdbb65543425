/*
 * nccl_mem.c - ncclMemAlloc/ncclMemFree and buffer registration.
 *
 * Memory comes from the CUDA plugin (cudaMalloc).  Registration has nothing
 * to pin or map up front: the device path exports and maps a buffer at its
 * first collective and caches the mapping (algos/device_ipc.c), so a
 * registration handle only records the range, and deregistration frees it.
 */
#include <stdlib.h>

#include "nccl_shim.h"
#include "core/cuda.h"

typedef struct {
  uint64_t magic;
  void *buff;
  size_t size;
} reg_handle_t;

#define REG_MAGIC 0x6e63636c72656731ULL /* "ncclreg1" */

HRING__NCCL_API ncclResult_t ncclMemAlloc(void **ptr, size_t size) {
  if (ptr == NULL) return hring__nccl_err(ncclInvalidArgument, "ncclMemAlloc: ptr is NULL");
  const hring_cuda_api_t *cu = hring__cuda();
  if (!cu) return hring__nccl_err(ncclSystemError, "ncclMemAlloc: %s", hring__cuda_status());
  if (size == 0) {
    *ptr = NULL;
    return ncclSuccess;
  }
  void *p = NULL;
  if (cu->mem_alloc(&p, size) != 0)
    return hring__nccl_err(ncclSystemError, "ncclMemAlloc(%zu): %s", size, cu->last_error());
  *ptr = p;
  return ncclSuccess;
}

HRING__NCCL_API ncclResult_t ncclMemFree(void *ptr) {
  if (ptr == NULL) return ncclSuccess;
  const hring_cuda_api_t *cu = hring__cuda();
  if (!cu) return hring__nccl_err(ncclSystemError, "ncclMemFree: %s", hring__cuda_status());
  if (cu->mem_free(ptr) != 0)
    return hring__nccl_err(ncclInvalidArgument, "ncclMemFree(%p): %s", ptr, cu->last_error());
  return ncclSuccess;
}

HRING__NCCL_API ncclResult_t ncclCommRegister(const ncclComm_t comm, void *buff, size_t size,
                                              void **handle) {
  ncclResult_t r = hring__nccl_comm_check(comm, "ncclCommRegister");
  if (r != ncclSuccess) return r;
  if (handle == NULL || (buff == NULL && size > 0))
    return hring__nccl_err(ncclInvalidArgument, "ncclCommRegister: %s is NULL",
                           handle == NULL ? "handle" : "buff");
  reg_handle_t *h = malloc(sizeof *h);
  if (!h) return hring__nccl_err(ncclSystemError, "ncclCommRegister: out of memory");
  *h = (reg_handle_t){REG_MAGIC, buff, size};
  *handle = h;
  return ncclSuccess;
}

HRING__NCCL_API ncclResult_t ncclCommDeregister(const ncclComm_t comm, void *handle) {
  ncclResult_t r = hring__nccl_comm_check(comm, "ncclCommDeregister");
  if (r != ncclSuccess) return r;
  reg_handle_t *h = handle;
  if (h == NULL || h->magic != REG_MAGIC)
    return hring__nccl_err(ncclInvalidArgument, "ncclCommDeregister: %p is not a registration",
                           handle);
  h->magic = 0;
  free(h);
  return ncclSuccess;
}

HRING__NCCL_ALIAS(ncclResult_t, ncclMemAlloc, (void **ptr, size_t size));
HRING__NCCL_ALIAS(ncclResult_t, ncclMemFree, (void *ptr));
HRING__NCCL_ALIAS(ncclResult_t, ncclCommRegister,
                  (const ncclComm_t comm, void *buff, size_t size, void **handle));
HRING__NCCL_ALIAS(ncclResult_t, ncclCommDeregister, (const ncclComm_t comm, void *handle));
