/*
 * pmix.c - the unique id through a PMIx server (pmix.h says why libpmix is
 * loaded at run time).
 *
 * Every wait of this file has a deadline: the calls are the non-blocking
 * ones (PMIx_Fence_nb, PMIx_Get_nb), whose callbacks, run by the PMIx
 * progress thread, set a flag this thread polls.  A rank that never joins
 * (it died, or the job launched a program that does not use hring) costs
 * the others a timeout with a message, not a hang.
 */
#include "core/pmix.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"

int hring__pmix_present(void) {
  const char *ns = getenv("PMIX_NAMESPACE"), *rank = getenv("PMIX_RANK");
  return ns && *ns && rank && *rank;
}

#if HRING_HAVE_PMIX_H

#include <dlfcn.h>
#include <pmix.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#include "core/wait.h"

/* The calls hring makes, typed by the header they were built against (names
 * without the pmix_ prefix, which is the library's).  These calls have had
 * these signatures since PMIx 2, and PMIx clients and servers of different
 * versions interoperate. */
typedef struct {
  __typeof__(PMIx_Init) *init;
  __typeof__(PMIx_Finalize) *finalize;
  __typeof__(PMIx_Put) *put;
  __typeof__(PMIx_Commit) *commit;
  __typeof__(PMIx_Fence_nb) *fence_nb;
  __typeof__(PMIx_Get_nb) *get_nb;
  __typeof__(PMIx_Error_string) *error_string;
} calls_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static calls_t api;
static int loaded;            /* 0 not tried, 1 loaded, -1 failed */
static int inited;            /* PMIx_Init succeeded; PMIx_Finalize is due at exit */
static pmix_proc_t me;
static uint32_t job_size;     /* 0 until read */
static unsigned id_seq;       /* ids published so far: the next key's number */
static char state[600] = "PMIx: compiled in; library not loaded (no PMIx job seen)";

/* One completion: written by a PMIx callback, polled by the caller.  A
 * result larger than a unique id is refused, so the copy is bounded. */
typedef struct pending {
  struct pending *next; /* in `abandoned` once given up */
  atomic_int done;
  pmix_status_t status;
  pmix_data_type_t type;
  uint32_t u32;
  size_t len;
  char bytes[HRING_UNIQUE_ID_BYTES];
} pending_t;

static const char *perr(pmix_status_t s) {
  const char *t = api.error_string ? api.error_string(s) : NULL;
  return t ? t : "unknown PMIx status";
}

static void *try_open(const char *name, char *why, size_t len) {
  void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
  const char *e = h ? NULL : dlerror();
  if (e && !*why) snprintf(why, len, "%s", e); /* the first place tried says most */
  return h;
}

/* libpmix.so.2 from the loader's path (LD_LIBRARY_PATH, the system), then
 * from the directory the build found it in, then the development name. */
static int load(void) {
  if (loaded) return loaded;
  char why[400] = "";
  void *h = try_open("libpmix.so.2", why, sizeof why);
#ifdef HRING_PMIX_LIBDIR
  if (!h) h = try_open(HRING_PMIX_LIBDIR "/libpmix.so.2", why, sizeof why);
#endif
  if (!h) h = try_open("libpmix.so", why, sizeof why);
  if (!h) {
    snprintf(state, sizeof state, "PMIx: compiled in; libpmix not loadable (%s)", why);
    loaded = -1;
    return loaded;
  }
#define HRING_PMIX_SYM(field, name)                               \
  if (!(api.field = (__typeof__(api.field))dlsym(h, #name)) && !*why) \
  snprintf(why, sizeof why, "no %s", #name)
  HRING_PMIX_SYM(init, PMIx_Init);
  HRING_PMIX_SYM(finalize, PMIx_Finalize);
  HRING_PMIX_SYM(put, PMIx_Put);
  HRING_PMIX_SYM(commit, PMIx_Commit);
  HRING_PMIX_SYM(fence_nb, PMIx_Fence_nb);
  HRING_PMIX_SYM(get_nb, PMIx_Get_nb);
  HRING_PMIX_SYM(error_string, PMIx_Error_string);
#undef HRING_PMIX_SYM
  if (*why) {
    snprintf(state, sizeof state, "PMIx: compiled in; libpmix lacks a call (%s)", why);
    memset(&api, 0, sizeof api);
    dlclose(h);
    loaded = -1;
    return loaded;
  }
  /* Never closed: PMIx keeps a progress thread running inside it. */
  loaded = 1;
  return loaded;
}

/* Runs at exit, not at communicator destroy: one PMIx_Init serves every
 * communicator of the process, a later hring_comm_init_env still needs the
 * server, and a launcher reports a client that exits without finalizing
 * as a failed job. */
static void finalize_at_exit(void) {
  if (!inited) return;
  inited = 0;
  pmix_status_t s = api.finalize(NULL, 0);
  if (s != PMIX_SUCCESS) HRING_WARN(HRING_SUB_INIT, "PMIx_Finalize: %s", perr(s));
}

static void fence_cb(pmix_status_t status, void *cbdata) {
  pending_t *op = cbdata;
  op->status = status;
  atomic_store(&op->done, 1);
}

/* The value belongs to PMIx and is released when this returns: copy it. */
static void get_cb(pmix_status_t status, pmix_value_t *kv, void *cbdata) {
  pending_t *op = cbdata;
  if (status == PMIX_SUCCESS && kv) {
    op->type = kv->type;
    if (kv->type == PMIX_UINT32) op->u32 = kv->data.uint32;
    if (kv->type == PMIX_BYTE_OBJECT) {
      op->len = kv->data.bo.size;
      if (op->len <= sizeof op->bytes && kv->data.bo.bytes)
        memcpy(op->bytes, kv->data.bo.bytes, op->len);
    }
  }
  op->status = status;
  atomic_store(&op->done, 1);
}

/* Ops given up at their deadline: their callbacks may still come, so they
 * are never freed (a few bytes per failure), and kept reachable from here so
 * leak checkers do not report them. */
static pending_t *abandoned;

/* Waits for op until the deadline; on time out, op joins `abandoned`. */
static hring_result_t op_wait(pending_t *op, uint64_t deadline_ns, int64_t timeout_ms,
                              const char *what) {
  while (!atomic_load(&op->done)) {
    if (hring__now_ns() > deadline_ns) {
      op->next = abandoned;
      abandoned = op;
      return hring__err(HRING_ERR_TIMEOUT,
                        "PMIx: rank %u of job %s: %s did not complete within %lld ms "
                        "(HRING_TIMEOUT_MS); a rank of the job died before "
                        "hring_comm_init_env, or the job runs a program that does not call it",
                        me.rank, me.nspace, what, (long long)timeout_ms);
    }
    usleep(1000);
  }
  return HRING_SUCCESS;
}

/* A timeout for the server too, in whole seconds, so a server that honours
 * it ends the operation itself (no callback left behind). */
static void info_timeout(pmix_info_t *info, int64_t timeout_ms) {
  memset(info, 0, sizeof *info);
  snprintf(info->key, sizeof info->key, "%s", PMIX_TIMEOUT);
  info->value.type = PMIX_INT;
  info->value.data.integer = (int)((timeout_ms + 999) / 1000);
}

static hring_result_t get(const pmix_proc_t *proc, const char *key, int64_t timeout_ms,
                          uint64_t deadline_ns, pending_t **out) {
  pending_t *op = calloc(1, sizeof *op);
  if (!op) return hring__err(HRING_ERR_NO_MEMORY, "PMIx_Get");
  pmix_info_t info;
  info_timeout(&info, timeout_ms);
  pmix_status_t s = api.get_nb(proc, key, &info, 1, get_cb, op);
  if (s != PMIX_SUCCESS) {
    free(op);
    return hring__err(HRING_ERR_SYSTEM, "PMIx: PMIx_Get(%s of rank %u) failed: %s", key,
                      proc->rank, perr(s));
  }
  char what[200];
  snprintf(what, sizeof what, "PMIx_Get(%s of rank %u)", key, proc->rank);
  HRING_CHECK(op_wait(op, deadline_ns, timeout_ms, what));
  if (op->status != PMIX_SUCCESS) {
    hring_result_t code = op->status == PMIX_ERR_TIMEOUT ? HRING_ERR_TIMEOUT : HRING_ERR_REMOTE;
    hring_result_t r = hring__err(code, "PMIx: rank %u of job %s: %s failed: %s", me.rank,
                                  me.nspace, what, perr(op->status));
    free(op);
    return r;
  }
  *out = op;
  return HRING_SUCCESS;
}

/* PMIx_Init once per process, and the job size (both retried by a later
 * call after a failure). */
static hring_result_t join(int64_t timeout_ms, uint64_t deadline_ns) {
  if (job_size) return HRING_SUCCESS;
  if (!inited) {
    if (load() < 0)
      return hring__err(HRING_ERR_UNSUPPORTED,
                        "hring_comm_init_env: started by a PMIx server (PMIX_NAMESPACE=%s) but "
                        "%s; install libpmix2, or launch with hring-run or set HRING_ROOT",
                        getenv("PMIX_NAMESPACE"), state);
    pmix_status_t s = api.init(&me, NULL, 0);
    if (s != PMIX_SUCCESS)
      return hring__err(HRING_ERR_SYSTEM,
                        "hring_comm_init_env: PMIx_Init failed: %s (the launcher set "
                        "PMIX_NAMESPACE=%s, but its PMIx server cannot be reached)",
                        perr(s), getenv("PMIX_NAMESPACE"));
    inited = 1;
    static int registered;
    if (!registered && atexit(finalize_at_exit) == 0) registered = 1;
  }
  pmix_proc_t job = me;
  job.rank = PMIX_RANK_WILDCARD;
  pending_t *op = NULL;
  HRING_CHECK(get(&job, PMIX_JOB_SIZE, timeout_ms, deadline_ns, &op));
  int type = (int)op->type;
  uint32_t size = op->u32;
  free(op);
  if (type != PMIX_UINT32 || size < 1 || me.rank >= size)
    return hring__err(HRING_ERR_REMOTE, "PMIx: job %s: bad job size (type %d, value %u, rank %u)",
                      me.nspace, type, size, me.rank);
  job_size = size;
  snprintf(state, sizeof state, "PMIx: job %.200s joined, rank %u of %u", me.nspace, me.rank,
           job_size);
  HRING_INFO(HRING_SUB_INIT, "%s", state);
  return HRING_SUCCESS;
}

/* Rank 0's part: the id, or one byte that tells the others it failed, so
 * they stop at once instead of at their timeout. */
static hring_result_t publish(const char *key, hring_unique_id_t *id) {
  hring_result_t made = hring_get_unique_id(id);
  char failed = 0;
  pmix_value_t v;
  memset(&v, 0, sizeof v);
  v.type = PMIX_BYTE_OBJECT;
  v.data.bo.bytes = made == HRING_SUCCESS ? id->internal : &failed;
  v.data.bo.size = made == HRING_SUCCESS ? sizeof id->internal : 1;
  pmix_status_t s = api.put(PMIX_GLOBAL, key, &v);
  if (s == PMIX_SUCCESS) s = api.commit();
  if (made != HRING_SUCCESS) return made;
  if (s != PMIX_SUCCESS)
    return hring__err(HRING_ERR_SYSTEM, "PMIx: rank 0 of job %s: PMIx_Put/Commit(%s): %s",
                      me.nspace, key, perr(s));
  return HRING_SUCCESS;
}

static hring_result_t fence(int64_t timeout_ms, uint64_t deadline_ns) {
  pending_t *op = calloc(1, sizeof *op);
  if (!op) return hring__err(HRING_ERR_NO_MEMORY, "PMIx_Fence");
  /* Collect the data in the fence: every rank then reads the id locally. */
  pmix_info_t info[2];
  memset(&info[0], 0, sizeof info[0]);
  snprintf(info[0].key, sizeof info[0].key, "%s", PMIX_COLLECT_DATA);
  info[0].value.type = PMIX_BOOL;
  info[0].value.data.flag = true;
  info_timeout(&info[1], timeout_ms);
  pmix_status_t s = api.fence_nb(NULL, 0, info, 2, fence_cb, op);
  if (s == PMIX_OPERATION_SUCCEEDED) {
    free(op);
    return HRING_SUCCESS;
  }
  if (s != PMIX_SUCCESS) {
    free(op);
    return hring__err(HRING_ERR_SYSTEM, "PMIx: rank %u of job %s: PMIx_Fence failed: %s",
                      me.rank, me.nspace, perr(s));
  }
  HRING_CHECK(op_wait(op, deadline_ns, timeout_ms, "the fence after rank 0 published the id"));
  s = op->status;
  free(op);
  if (s != PMIX_SUCCESS)
    return hring__err(s == PMIX_ERR_TIMEOUT ? HRING_ERR_TIMEOUT : HRING_ERR_REMOTE,
                      "PMIx: rank %u of job %s: the fence after rank 0 published the id failed: "
                      "%s (a rank of the job died or never reached hring_comm_init_env)",
                      me.rank, me.nspace, perr(s));
  return HRING_SUCCESS;
}

static hring_result_t exchange(int64_t timeout_ms, hring_unique_id_t *id, int *rank,
                               int *nranks) {
  uint64_t deadline_ns = hring__now_ns() + (uint64_t)timeout_ms * 1000000ull;
  HRING_CHECK(join(timeout_ms, deadline_ns));
  pmix_key_t key;
  snprintf(key, sizeof key, "hring.id.%u", id_seq++);
  if (me.rank == 0) {
    /* Rank 0 takes part in the fence even when it has no id: the others
     * then read its failure marker, and are not left to time out. */
    hring_result_t made = publish(key, id);
    if (made != HRING_SUCCESS) {
      char why[512];
      snprintf(why, sizeof why, "%s", hring_last_error());
      (void)fence(timeout_ms, deadline_ns);
      return hring__err(made, "%s", why);
    }
  }
  HRING_CHECK(fence(timeout_ms, deadline_ns));
  if (me.rank != 0) {
    pmix_proc_t root = me;
    root.rank = 0;
    pending_t *op = NULL;
    HRING_CHECK(get(&root, key, timeout_ms, deadline_ns, &op));
    size_t len = op->len;
    int type = (int)op->type;
    if (type == PMIX_BYTE_OBJECT && len == sizeof id->internal)
      memcpy(id->internal, op->bytes, sizeof id->internal);
    free(op);
    if (type == PMIX_BYTE_OBJECT && len == 1)
      return hring__err(HRING_ERR_REMOTE,
                        "PMIx: rank 0 of job %s could not create the unique id (its log says why)",
                        me.nspace);
    if (type != PMIX_BYTE_OBJECT || len != sizeof id->internal)
      return hring__err(HRING_ERR_REMOTE,
                        "PMIx: job %s: %s of rank 0 is not a unique id (type %d, %zu bytes)",
                        me.nspace, key, type, len);
  }
  *rank = (int)me.rank;
  *nranks = (int)job_size;
  return HRING_SUCCESS;
}

hring_result_t hring__pmix_unique_id(int64_t timeout_ms, hring_unique_id_t *id, int *rank,
                                     int *nranks) {
  pthread_mutex_lock(&lock);
  hring_result_t r = exchange(timeout_ms, id, rank, nranks);
  pthread_mutex_unlock(&lock);
  return r;
}

const char *hring__pmix_status(void) { return state; }

#else /* !HRING_HAVE_PMIX_H */

hring_result_t hring__pmix_unique_id(int64_t timeout_ms, hring_unique_id_t *id, int *rank,
                                     int *nranks) {
  (void)timeout_ms, (void)id, (void)rank, (void)nranks;
  return hring__err(HRING_ERR_UNSUPPORTED,
                    "hring_comm_init_env: started by a PMIx server (PMIX_NAMESPACE=%s), but this "
                    "build of hring has no PMIx support (pmix.h was not found at build time; "
                    "install libpmix-dev and rebuild), or set HRING_ROOT or launch with hring-run",
                    getenv("PMIX_NAMESPACE"));
}

const char *hring__pmix_status(void) {
  return "PMIx: not compiled in (pmix.h not found at build time)";
}

#endif
