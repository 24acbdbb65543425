/* test_config.c - the configuration table and the chunk arithmetic. */
#include <stdlib.h>
#include <string.h>

#include "algos/algo.h"
#include "core/config.h"
#include "harness.h"

HTEST(config_table_complete, 5) {
  const hring_cfg_entry_t *t = hring__cfg_table();
  for (int i = 0; i < HRING_CFG_COUNT; i++) {
    HCHECK(t[i].name && strncmp(t[i].name, "HRING_", 6) == 0, "entry %d has no HRING_ name", i);
    HCHECK(t[i].help && strlen(t[i].help) > 10, "entry %d (%s) has no help", i, t[i].name);
    HCHECK(t[i].unit != NULL, "entry %d has no unit", i);
    for (int j = 0; j < i; j++) HCHECK(strcmp(t[i].name, t[j].name) != 0, "duplicate %s", t[i].name);
  }
}

HTEST(config_values, 5) {
  unsetenv("HRING_SHM_SLOTS");
  HCHECK(hring__cfg_int(HRING_CFG_SHM_SLOTS) == 8, "default");
  setenv("HRING_SHM_SLOT_SIZE", "128K", 1);
  HCHECK(hring__cfg_int(HRING_CFG_SHM_SLOT_SIZE) == 128 * 1024, "K suffix");
  setenv("HRING_SHM_SLOT_SIZE", "2M", 1);
  HCHECK(hring__cfg_int(HRING_CFG_SHM_SLOT_SIZE) == 2 * 1024 * 1024, "M suffix");
  setenv("HRING_SHM_SLOT_SIZE", "12abc", 1);
  HCHECK(hring__cfg_int(HRING_CFG_SHM_SLOT_SIZE) == 64 * 1024, "bad value falls back to default");
  setenv("HRING_TIMEOUT_MS", "1500", 1);
  HCHECK(hring__cfg_int(HRING_CFG_TIMEOUT_MS) == 1500, "timeout");
  setenv("HRING_ALGO", "", 1);
  HCHECK(hring__cfg_str(HRING_CFG_ALGO) == NULL, "empty string means unset");
}

HTEST(partition_covers_exactly, 10) {
  size_t counts[] = {0, 1, 2, 7, 8, 9, 1000, 1000003};
  for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
    for (int n = 1; n <= 9; n++) {
      size_t next = 0, maxc = 0, minc = (size_t)-1;
      for (int i = 0; i < n; i++) {
        size_t off, cnt;
        hring__partition(counts[c], n, i, &off, &cnt);
        HCHECK(off == next, "count %zu n %d part %d starts at %zu, expected %zu", counts[c], n, i,
               off, next);
        next = off + cnt;
        if (cnt > maxc) maxc = cnt;
        if (cnt < minc) minc = cnt;
      }
      HCHECK(next == counts[c], "count %zu n %d: parts cover %zu", counts[c], n, next);
      HCHECK(maxc - minc <= 1, "count %zu n %d: unbalanced %zu..%zu", counts[c], n, minc, maxc);
    }
  }
}
