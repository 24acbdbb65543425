/*
 * cuda.c - finds and loads the CUDA plugin (cuda.h says why it is one).
 *
 * Loaded once per process, at the first collective that could involve a
 * device (never at init, so a program may fork after creating ids, and a
 * host-only program pays nothing until then).
 */
#include "core/cuda.h"

#include <dlfcn.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static const hring_cuda_api_t *api;
static char status[512] = "CUDA unavailable: not probed";

/* Directory of the object holding this code (libhring.so, libnccl.so.2, or
 * an executable that linked libhring.a). */
static int self_dir(char *out, size_t len) {
  Dl_info info;
  if (!dladdr((void *)&hring__cuda, &info) || !info.dli_fname) return -1;
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s", info.dli_fname);
  snprintf(out, len, "%s", dirname(tmp));
  return 0;
}

static void *try_open(const char *path, char *why, size_t len) {
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  const char *e = h ? NULL : dlerror();
  if (e && !*why) snprintf(why, len, "%s", e); /* the first place tried says most */
  return h;
}

static void *open_plugin(char *why, size_t len) {
  const char *forced = hring__cfg_str(HRING_CFG_CUDA_PLUGIN);
  if (forced && *forced) return try_open(forced, why, len);
  char dir[4096], path[4200];
  void *h = NULL;
  if (self_dir(dir, sizeof dir) == 0) {
    snprintf(path, sizeof path, "%s/libhring_cuda.so", dir);
    h = try_open(path, why, len);
    if (!h) {
      snprintf(path, sizeof path, "%s/../lib/libhring_cuda.so", dir);
      h = try_open(path, why, len);
    }
  }
  if (!h) h = try_open("libhring_cuda.so", why, len);
  return h;
}

static void load(void) {
  const char *on = hring__cfg_str(HRING_CFG_CUDA);
  if (on && strcmp(on, "0") == 0) {
    snprintf(status, sizeof status, "CUDA unavailable: disabled by HRING_CUDA=0");
    return;
  }
  char why[1024] = "";
  void *h = open_plugin(why, sizeof why);
  if (!h) {
    snprintf(status, sizeof status, "CUDA unavailable: no plugin (%.400s); it is built where nvcc is found", why);
    HRING_INFO(HRING_SUB_INIT, "%s", status);
    return;
  }
  hring_cuda_plugin_fn fn = (hring_cuda_plugin_fn)dlsym(h, HRING_CUDA_PLUGIN_SYMBOL);
  const hring_cuda_api_t *t = fn ? fn() : NULL;
  if (!t || t->abi != HRING_CUDA_ABI) {
    snprintf(status, sizeof status, "CUDA unavailable: plugin has %s", t ? "another ABI" : "no table");
    dlclose(h);
    return;
  }
  int n = t->probe();
  if (n <= 0) {
    snprintf(status, sizeof status, "CUDA unavailable: %.400s", t->last_error());
    HRING_INFO(HRING_SUB_INIT, "%s", status);
    return; /* the plugin stays loaded: unloading a CUDA runtime is unsafe */
  }
  snprintf(status, sizeof status, "CUDA available: %d device%s (plugin %s)", n, n > 1 ? "s" : "",
           t->name);
  HRING_INFO(HRING_SUB_INIT, "%s", status);
  api = t;
}

const hring_cuda_api_t *hring__cuda(void) {
  pthread_once(&once, load);
  return api;
}

const char *hring__cuda_status(void) {
  pthread_once(&once, load);
  return status;
}
