/*
 * kill_during_init.c - probe (not part of the suite): 4 ranks killed with
 * SIGKILL D ms after they started hring_comm_init_rank, for D = 0, STEP,
 * ... MAX; prints how many /dev/shm/hring-*-<pid> names each kill left.
 *
 * shm.c creates a rank's segment in shm_local_init and removes its name
 * in shm_after_barrier, after two more bootstrap rounds; a rank killed in
 * between leaves the name (and its memory) in /dev/shm until reboot.
 * The probe removes what it finds.
 *
 *   cc -Iinclude tests/probes/kill_during_init.c build/lib/libhring.a \
 *      -pthread -ldl -lm -o /tmp/kill_during_init
 *   HRING_DEBUG=NONE /tmp/kill_during_init 10 160
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hring.h"

/* /dev/shm/hring-*-<pid> entries; removed when del. */
static int count(pid_t pid, int del) {
  DIR *d = opendir("/dev/shm");
  if (!d) return -1;
  struct dirent *e;
  int n = 0;
  char suf[32];
  snprintf(suf, sizeof suf, "-%d", (int)pid);
  while ((e = readdir(d))) {
    size_t l = strlen(e->d_name), s = strlen(suf);
    if (!strncmp(e->d_name, "hring-", 6) && l > s && !strcmp(e->d_name + l - s, suf)) {
      n++;
      if (del) {
        char p[300];
        snprintf(p, sizeof p, "/dev/shm/%s", e->d_name);
        unlink(p);
      }
    }
  }
  closedir(d);
  return n;
}

int main(int argc, char **argv) {
  int step = argc > 1 ? atoi(argv[1]) : 10, maxd = argc > 2 ? atoi(argv[2]) : 200;
  if (step <= 0) step = 10;
  for (int dms = 0; dms <= maxd; dms += step) {
    int fds[2];
    hring_unique_id_t id;
    if (pipe(fds) != 0) return 1;
    pid_t root = fork();
    if (!root) {
      if (hring_get_unique_id(&id) != HRING_SUCCESS) _exit(1);
      if (write(fds[1], &id, sizeof id) != sizeof id) _exit(1);
      for (;;) pause();
    }
    if (read(fds[0], &id, sizeof id) != sizeof id) return 1;
    pid_t pids[4];
    for (int r = 0; r < 4; r++)
      if (!(pids[r] = fork())) {
        hring_comm_t c;
        if (hring_comm_init_rank(&c, 4, id, r)) _exit(1);
        for (;;) pause();
      }
    usleep((useconds_t)dms * 1000);
    int before = 0, left = 0;
    for (int r = 0; r < 4; r++) before += count(pids[r], 0);
    for (int r = 0; r < 4; r++) kill(pids[r], SIGKILL);
    kill(root, SIGKILL);
    for (int r = 0; r < 4; r++) waitpid(pids[r], NULL, 0);
    waitpid(root, NULL, 0);
    for (int r = 0; r < 4; r++) left += count(pids[r], 1);
    printf("kill at %3d ms: %d named before the kill, %d left in /dev/shm after\n", dms, before,
           left);
    close(fds[0]);
    close(fds[1]);
  }
  return 0;
}
