/*
 * model_file.c - the cost model's parameter file (hring-tune writes it,
 * HRING_MODEL_FILE loads it).
 *
 *   # comments
 *   version = 1
 *   intra.alpha = 1.5e-06      (seconds per message step)
 *   intra.beta = 1.2e-10       (seconds per byte on the wire)
 *   intra.gamma = 1.5e-10      (seconds per byte reduced)
 *   inter.alpha = ...  inter.beta = ...  inter.gamma = ...
 *   mem.cache = 4194304        (bytes of the machine's vectors that stay in cache)
 *   mem.beta = 1e-10           (seconds more per byte from memory)
 *
 * Version 1 files, written before the cache term, have no mem.* keys and
 * load with that term off (mem.beta = 0).
 * Loading is strict: a file that names an unknown key, lacks one, repeats
 * one, or holds a value that is not a finite number >= 0 is refused with
 * the file and line, rather than silently running on half a model.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "algos/model.h"
#include "core/error.h"

enum { K_VERSION, K_IA, K_IB, K_IG, K_EA, K_EB, K_EG, K_MC, K_MB, K_COUNT };
#define K_V1_COUNT K_MC /* the keys of a version 1 file */
static const char *const key_names[K_COUNT] = {
    "version",     "intra.alpha", "intra.beta", "intra.gamma", "inter.alpha",
    "inter.beta",  "inter.gamma", "mem.cache",  "mem.beta"};

static double *slot_of(hring_model_params_t *p, int k) {
  double *v[K_COUNT] = {NULL,           &p->intra.alpha, &p->intra.beta,
                        &p->intra.gamma, &p->inter.alpha, &p->inter.beta,
                        &p->inter.gamma, &p->mem.cache,   &p->mem.beta};
  return v[k];
}

hring_result_t hring__model_write(FILE *f, const hring_model_params_t *p, const char *comment) {
  hring_model_params_t q = *p;
  fprintf(f, "# hring cost model: T = alpha * steps + beta * bytes on the wire + gamma * bytes "
             "reduced (docs/model.md)\n");
  if (comment && *comment) fprintf(f, "# %s\n", comment);
  fprintf(f, "%s = %d\n", key_names[K_VERSION], HRING_MODEL_FILE_VERSION);
  for (int k = K_IA; k < K_COUNT; k++) fprintf(f, "%s = %.17g\n", key_names[k], *slot_of(&q, k));
  return ferror(f) ? hring__err(HRING_ERR_SYSTEM, "model file: write failed") : HRING_SUCCESS;
}

hring_result_t hring__model_save(const char *path, const hring_model_params_t *p,
                                 const char *comment) {
  FILE *f = fopen(path, "w");
  if (!f) return hring__err_errno(HRING_ERR_SYSTEM, errno, "model file %s", path);
  hring_result_t r = hring__model_write(f, p, comment);
  if (fclose(f) != 0 && r == HRING_SUCCESS)
    r = hring__err_errno(HRING_ERR_SYSTEM, errno, "model file %s", path);
  return r;
}

static char *trim(char *s) {
  while (*s == ' ' || *s == '\t') s++;
  char *e = s + strlen(s);
  while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r')) *--e = '\0';
  return s;
}

/* One "key = value" line into q; `seen` marks the keys found so far. */
static hring_result_t parse_line(const char *path, int lineno, char *line, hring_model_params_t *q,
                                 int *seen) {
  char *eq = strchr(line, '=');
  if (!eq) return hring__err(HRING_ERR_INVALID_ARGUMENT, "model file %s:%d: expected key = value", path, lineno);
  *eq = '\0';
  char *key = trim(line), *val = trim(eq + 1);
  int k = 0;
  while (k < K_COUNT && strcmp(key, key_names[k]) != 0) k++;
  if (k == K_COUNT)
    return hring__err(HRING_ERR_INVALID_ARGUMENT, "model file %s:%d: unknown key '%s'", path, lineno, key);
  if (seen[k])
    return hring__err(HRING_ERR_INVALID_ARGUMENT, "model file %s:%d: '%s' given twice", path, lineno, key);
  char *end;
  errno = 0;
  double v = strtod(val, &end);
  if (end == val || *end != '\0' || errno != 0 || !isfinite(v) || v < 0)
    return hring__err(HRING_ERR_INVALID_ARGUMENT,
                      "model file %s:%d: %s = '%s' is not a finite number >= 0", path, lineno, key, val);
  if (k == K_VERSION && v != 1 && v != HRING_MODEL_FILE_VERSION)
    return hring__err(HRING_ERR_INVALID_ARGUMENT,
                      "model file %s:%d: version %s, this build reads versions 1 to %d", path,
                      lineno, val, HRING_MODEL_FILE_VERSION);
  if (k != K_VERSION) *slot_of(q, k) = v;
  seen[k] = k == K_VERSION ? (int)v : 1;
  return HRING_SUCCESS;
}

hring_result_t hring__model_load(const char *path, hring_model_params_t *p) {
  FILE *f = fopen(path, "r");
  if (!f) return hring__err_errno(HRING_ERR_INVALID_ARGUMENT, errno, "model file %s", path);
  hring_model_params_t q = *p;
  int seen[K_COUNT] = {0}, lineno = 0;
  char buf[512];
  hring_result_t r = HRING_SUCCESS;
  while (r == HRING_SUCCESS && fgets(buf, sizeof buf, f)) {
    lineno++;
    if (!strchr(buf, '\n') && !feof(f)) {
      r = hring__err(HRING_ERR_INVALID_ARGUMENT, "model file %s:%d: line too long", path, lineno);
      break;
    }
    char *s = trim(buf);
    if (*s == '\0' || *s == '#') continue;
    r = parse_line(path, lineno, s, &q, seen);
  }
  fclose(f);
  HRING_CHECK(r);
  const int nkeys = seen[K_VERSION] == 1 ? K_V1_COUNT : K_COUNT;
  for (int k = 0; k < K_COUNT; k++) {
    if (!seen[k] && k < nkeys)
      return hring__err(HRING_ERR_INVALID_ARGUMENT, "model file %s: '%s' missing", path, key_names[k]);
    if (seen[k] && k >= nkeys)
      return hring__err(HRING_ERR_INVALID_ARGUMENT, "model file %s: '%s' in a version 1 file",
                        path, key_names[k]);
  }
  if (nkeys == K_V1_COUNT) q.mem = (hring_model_mem_t){0, 0}; /* no cache term */
  *p = q; /* all or nothing */
  return HRING_SUCCESS;
}
