/*
 * config.h - the one table of HRING_* environment variables.
 *
 * Each entry has a name, a default, a unit and a help line (config.c).  Values
 * are read from the environment once and cached; hring-info prints the table
 * and the README's list is generated from it (`hring-info -c --markdown`).
 */
#ifndef HRING_CORE_CONFIG_H
#define HRING_CORE_CONFIG_H

#include <stdint.h>
#include <stdio.h>

typedef enum {
  HRING_CFG_TIMEOUT_MS,
  HRING_CFG_TRANSPORTS,
  HRING_CFG_ALGO,
  HRING_CFG_CHUNK_SIZE,
  HRING_CFG_SHM_SLOT_SIZE,
  HRING_CFG_SHM_SLOTS,
  HRING_CFG_TCP_SLOT_SIZE,
  HRING_CFG_TCP_SLOTS,
  HRING_CFG_TCP_SOCKBUF,
  HRING_CFG_TCP_CC,
  HRING_CFG_SOCKET_IFNAME,
  HRING_CFG_SPIN_US,
  HRING_CFG_SMALL_MAX,
  HRING_CFG_NT_MIN,
  HRING_CFG_NODE_ID,
  HRING_CFG_DEBUG,
  HRING_CFG_DEBUG_SUBSYS,
  HRING_CFG_DEBUG_FILE,
  HRING_CFG_CPU_KERNELS,
  HRING_CFG_ROOT,
  HRING_CFG_RANK,
  HRING_CFG_NRANKS,
  HRING_CFG_SECRET,
  HRING_CFG_CUDA,
  HRING_CFG_CUDA_PLUGIN,
  HRING_CFG_CUDA_IPC,
  HRING_CFG_CUDA_STAGE_CHUNK,
  HRING_CFG_CUDA_WAIT,
  HRING_CFG_BIND,
  HRING_CFG_MODEL_FILE,
  HRING_CFG_TUNE,
  HRING_CFG_TUNE_MAX,
  HRING_CFG_TUNE_REPS,
  HRING_CFG_TUNE_RETRY,
  HRING_CFG_PROGRESS,
  HRING_CFG_FUSION,
  HRING_CFG_FUSION_REPLAN,
  HRING_CFG_FUSION_TRIAL,
  HRING_CFG_COUNT
} hring_cfg_id_t;

typedef struct {
  const char *name;
  const char *defval; /* as text; NULL = unset */
  const char *unit;   /* "ms", "bytes", "us", "" ... */
  const char *help;
} hring_cfg_entry_t;

const hring_cfg_entry_t *hring__cfg_table(void);

/* The value in force (environment or default), NULL when unset. */
const char *hring__cfg_str(hring_cfg_id_t id);
/* Integer value with K/M/G suffixes accepted; the default on a bad value
 * (logged at WARN once). */
int64_t hring__cfg_int(hring_cfg_id_t id);
/* A decimal (or 0x) integer with an optional binary suffix K, M or G
 * (KiB/MB spellings too); 0 on success, -1 when s is not one. */
int hring__cfg_parse_int(const char *s, int64_t *out);

/* Prints the table (name, value in force, default, unit, help); markdown
 * gives a README table. */
void hring__cfg_print(FILE *f, int markdown);

#endif
