/* test_readme.c - the README's table of variables is the config table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "harness.h"
#include "mp/mp.h"

HTEST(readme_config_table_in_sync, 5) {
  char path[4096];
  snprintf(path, sizeof path, "%s/../../README.md", mp_bindir());
  FILE *f = fopen(path, "r");
  if (!f) HSKIP("no README.md at %s (binary moved out of build/bin)", path);
  static char readme[1 << 16];
  size_t n = fread(readme, 1, sizeof readme - 1, f);
  fclose(f);
  readme[n] = '\0';
  char *table = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&table, &len);
  HREQUIRE(mem, "open_memstream");
  hring__cfg_print(mem, 1);
  fclose(mem);
  HCHECK(strstr(readme, table) != NULL,
         "README.md's variable table differs from the config table; `make readme` "
         "regenerates it");
  free(table);
}
