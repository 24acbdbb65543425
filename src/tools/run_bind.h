/*
 * run_bind.h - how hring-run pins its ranks to CPUs (run_bind.c).
 *
 * With --bind cores the launcher gives each rank cores of its own when the
 * ranks do not outnumber them, as mpirun and srun do by default.  It is not
 * the default: on the 2-core machine of docs/performance.md (thirteenth
 * section) pinned and unpinned runs of 2 ranks measured the same, and a
 * rank's other threads (a trainer's input pipeline) would share its cores.
 */
#ifndef HRING_RUN_BIND_H
#define HRING_RUN_BIND_H

#include <sched.h>

/* Splits the CPUs in `allowed` among n ranks, whole cores each: the cores
 * (CPUs sharing a package and core id in sysfs, else each CPU alone), in
 * the order of their lowest CPU, are cut into n runs as equal as they can
 * be, and rank r gets the CPUs of run r in sets[r].  Returns the number of
 * cores, or 0 when there are fewer cores than ranks (sets untouched: the
 * ranks stay unpinned, as the scheduler then must share cores anyway). */
int run_bind_plan(const cpu_set_t *allowed, int n, cpu_set_t *sets);

#endif
