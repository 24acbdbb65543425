/*
 * config.c - the table of every HRING_* variable.  Values are read at
 * communicator creation (and copied into the communicator), never on a hot
 * path, so a program may set them with setenv() before creating a comm.
 */
#include "core/config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

static const hring_cfg_entry_t table[HRING_CFG_COUNT] = {
    [HRING_CFG_TIMEOUT_MS] = {"HRING_TIMEOUT_MS", "300000", "ms",
                              "upper bound of any wait; a stuck call returns a timeout error"},
    [HRING_CFG_TRANSPORTS] = {"HRING_TRANSPORTS", NULL, "list",
                              "transports allowed, comma separated (shm,tcp); default: all"},
    [HRING_CFG_ALGO] = {"HRING_ALGO", NULL, "name",
                        "force the allreduce algorithm (ring, allpairs, direct, exchange, rdouble, rabenseifner, tree, hier, hier2d); default: auto, per call"},
    [HRING_CFG_CHUNK_SIZE] = {"HRING_CHUNK_SIZE", "0", "bytes",
                              "pipeline chunk of the ring; 0: chosen per call"},
    [HRING_CFG_SHM_SLOT_SIZE] = {"HRING_SHM_SLOT_SIZE", "64K", "bytes",
                                 "size of one shared-memory FIFO slot"},
    [HRING_CFG_SHM_SLOTS] = {"HRING_SHM_SLOTS", "8", "", "shared-memory FIFO depth"},
    [HRING_CFG_TCP_SLOT_SIZE] = {"HRING_TCP_SLOT_SIZE", "256K", "bytes",
                                 "size of one tcp staging slot"},
    [HRING_CFG_TCP_SLOTS] = {"HRING_TCP_SLOTS", "4", "", "tcp FIFO depth per direction"},
    [HRING_CFG_TCP_SOCKBUF] = {"HRING_TCP_SOCKBUF", "4M", "bytes",
                               "SO_SNDBUF/SO_RCVBUF of tcp data sockets; 0: kernel default"},
    [HRING_CFG_TCP_CC] = {"HRING_TCP_CC", "auto", "name",
                          "congestion control of tcp data sockets: auto (cubic where the "
                          "kernel's default is bbr, else the default), system (the kernel's "
                          "default), or a name the kernel has (cubic, reno, dctcp ...)"},
    [HRING_CFG_SOCKET_IFNAME] = {"HRING_SOCKET_IFNAME", NULL, "name",
                                 "network interface for tcp and bootstrap listeners"},
    [HRING_CFG_SPIN_US] = {"HRING_SPIN_US", "50", "us",
                           "spin before yielding when a rank has a core of its own"},
    [HRING_CFG_SMALL_MAX] = {"HRING_SMALL_MAX", "-1", "bytes",
                             "largest allreduce sent whole to every peer (allpairs); -1: auto"},
    [HRING_CFG_NT_MIN] = {"HRING_NT_MIN", "auto", "bytes",
                          "results at least this large are written with non-temporal stores "
                          "(0: never); auto: 4M where the machine's ranks outnumber its cores, "
                          "else never"},
    [HRING_CFG_NODE_ID] = {"HRING_NODE_ID", NULL, "text",
                           "node identity override (ranks with equal ids share memory)"},
    [HRING_CFG_DEBUG] = {"HRING_DEBUG", "WARN", "level", "log level: NONE, WARN, INFO, TRACE"},
    [HRING_CFG_DEBUG_SUBSYS] = {"HRING_DEBUG_SUBSYS", "ALL", "list",
                                "log subsystems: INIT,NET,SHM,COLL,ALL"},
    [HRING_CFG_DEBUG_FILE] = {"HRING_DEBUG_FILE", NULL, "path",
                              "log to this file (%h host, %p pid); default stderr"},
    [HRING_CFG_CPU_KERNELS] = {"HRING_CPU_KERNELS", NULL, "name",
                               "reduction kernels: generic, avx2, avx512 (at most what the CPU has); default: best"},
    [HRING_CFG_ROOT] = {"HRING_ROOT", NULL, "host:port",
                        "bootstrap root for hring_comm_init_env (else MASTER_ADDR:MASTER_PORT)"},
    [HRING_CFG_RANK] = {"HRING_RANK", NULL, "", "rank for hring_comm_init_env (else RANK)"},
    [HRING_CFG_NRANKS] = {"HRING_NRANKS", NULL, "",
                          "number of ranks for hring_comm_init_env (else WORLD_SIZE)"},
    [HRING_CFG_SECRET] = {"HRING_SECRET", NULL, "hex",
                          "job secret for hring_comm_init_env (hring-run sets one)"},
    [HRING_CFG_CUDA] = {"HRING_CUDA", "1", "0/1", "0: never load the CUDA plugin (host memory only)"},
    [HRING_CFG_CUDA_PLUGIN] = {"HRING_CUDA_PLUGIN", NULL, "path",
                               "CUDA plugin to load; default libhring_cuda.so beside the library"},
    [HRING_CFG_CUDA_IPC] = {"HRING_CUDA_IPC", "1", "0/1",
                            "0: device data between local ranks goes through host staging, not CUDA IPC"},
    [HRING_CFG_CUDA_STAGE_CHUNK] = {"HRING_CUDA_STAGE_CHUNK", "4M", "bytes",
                                    "pipeline chunk of device data staged through host memory"},
    [HRING_CFG_CUDA_WAIT] = {"HRING_CUDA_WAIT", "auto", "name",
                             "how a stream waits for a collective: auto (stream memory op), hostfn"},
    [HRING_CFG_BIND] = {"HRING_BIND", "none", "name",
                        "pin each rank: none, core (a core of its own), numa (the cores of one NUMA node)"},
    [HRING_CFG_MODEL_FILE] = {"HRING_MODEL_FILE", NULL, "path",
                              "cost model parameters to load (written by hring-tune); default: built-in"},
    [HRING_CFG_TUNE] = {"HRING_TUNE", "off", "name",
                        "online: the first calls of each allreduce size class time the chosen "
                        "algorithm and the model's next best, and the ranks agree on the "
                        "fastest (docs/model.md); off: the model and rules alone"},
    [HRING_CFG_TUNE_MAX] = {"HRING_TUNE_MAX", "1M", "bytes",
                            "largest allreduce the online choice tunes"},
    [HRING_CFG_TUNE_REPS] = {"HRING_TUNE_REPS", "5", "",
                             "online choice: rounds of trials per size class (1-16), each "
                             "9 to 65 calls in a row per candidate"},
    [HRING_CFG_TUNE_RETRY] = {"HRING_TUNE_RETRY", "100", "",
                              "online choice: a settled size class tries again after this many "
                              "times as many calls as its trials took (0: never)"},
    [HRING_CFG_PROGRESS] = {"HRING_PROGRESS", "thread", "name",
                            "who moves nonblocking collectives: thread (a background thread per "
                            "communicator, asleep when idle) or caller (inside hring_test/wait)"},
    [HRING_CFG_FUSION] = {"HRING_FUSION", "planned", "mode",
                          "default gradient bucketing of hring_fusion.h: none, threshold:BYTES, "
                          "ddp, planned"},
    [HRING_CFG_FUSION_REPLAN] = {"HRING_FUSION_REPLAN", "20", "steps",
                                 "fusion: steps between agreed re-measurements of the backward "
                                 "timing (the plan is recomputed when it drifted)"},
    [HRING_CFG_FUSION_TRIAL] = {"HRING_FUSION_TRIAL", "2", "steps",
                                "fusion: steps each candidate plan runs in the measured trial "
                                "after a new plan (0 to 16; 0: the model's plan, untried)"},
};

const hring_cfg_entry_t *hring__cfg_table(void) { return table; }

const char *hring__cfg_str(hring_cfg_id_t id) {
  if ((unsigned)id >= HRING_CFG_COUNT) return NULL;
  const char *v = getenv(table[id].name);
  return v && *v ? v : table[id].defval;
}

int hring__cfg_parse_int(const char *s, int64_t *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 0);
  if (errno || end == s) return -1;
  int64_t mul = 1;
  switch (*end) {
    case 'k': case 'K': mul = 1024; end++; break;
    case 'm': case 'M': mul = 1024 * 1024; end++; break;
    case 'g': case 'G': mul = 1024LL * 1024 * 1024; end++; break;
    default: break;
  }
  /* "64MiB", "64MB" read as "64M" (the spellings of Horovod's docs). */
  if (mul > 1 && (*end == 'i' || *end == 'I')) end++;
  if (mul > 1 && (*end == 'b' || *end == 'B')) end++;
  if (*end != '\0') return -1;
  *out = (int64_t)v * mul;
  return 0;
}

int64_t hring__cfg_int(hring_cfg_id_t id) {
  int64_t v = 0, def = 0;
  if ((unsigned)id >= HRING_CFG_COUNT) return 0;
  if (table[id].defval) hring__cfg_parse_int(table[id].defval, &def);
  const char *s = getenv(table[id].name);
  if (!s || !*s) return def;
  if (hring__cfg_parse_int(s, &v) != 0) {
    HRING_WARN(HRING_SUB_INIT, "%s=%s is not a number; using %lld", table[id].name, s,
               (long long)def);
    return def;
  }
  return v;
}

void hring__cfg_print(FILE *f, int markdown) {
  if (markdown) {
    fprintf(f, "| variable | default | unit | meaning |\n|---|---|---|---|\n");
    for (int i = 0; i < HRING_CFG_COUNT; i++)
      fprintf(f, "| `%s` | %s | %s | %s |\n", table[i].name,
              table[i].defval ? table[i].defval : "(unset)", table[i].unit, table[i].help);
    return;
  }
  for (int i = 0; i < HRING_CFG_COUNT; i++) {
    const char *env = getenv(table[i].name);
    fprintf(f, "  %-22s = %-12s (default %s%s%s) %s\n", table[i].name,
            env && *env ? env : (table[i].defval ? table[i].defval : "(unset)"),
            table[i].defval ? table[i].defval : "unset", *table[i].unit ? " " : "",
            table[i].unit, table[i].help);
  }
}
