/*
 * run_bind.h - how hring-run pins its ranks to CPUs (run_bind.c).
 *
 * With --bind cores the launcher gives each rank cores of its own when the
 * ranks do not outnumber them, as mpirun and srun do by default.  That is
 * not the default: on the 2-core machine of docs/performance.md (thirteenth
 * section) pinned and unpinned runs of 2 ranks measured the same, and a
 * rank's other threads (a trainer's input pipeline) would share its cores.
 * With more ranks than cores, consecutive ranks share a core (in blocks),
 * which the default, --bind auto, does too: a ring then crosses between
 * cores once per core, and its median ran 1.4-2.7x faster than unpinned or
 * round-robin ranks when crossing was slow (fifteenth section).
 */
#ifndef HRING_RUN_BIND_H
#define HRING_RUN_BIND_H

#include <sched.h>

/* --bind: never pin; pin always (a core each, or blocks); blocks only where
 * the ranks outnumber the cores (the default). */
enum { RUN_BIND_NONE, RUN_BIND_CORES, RUN_BIND_AUTO };

/* Splits the CPUs in `allowed` among n ranks, whole cores each: the cores
 * (CPUs sharing a package and core id in sysfs, else each CPU alone), in
 * the order of their lowest CPU, are cut into n runs as equal as they can
 * be, and rank r gets the CPUs of run r in sets[r].  With fewer cores than
 * ranks, rank r gets core r * cores / n: consecutive ranks share a core,
 * so a ring crosses between cores once per core.  Returns the number of
 * cores, 0 when none is allowed (sets untouched). */
int run_bind_plan(const cpu_set_t *allowed, int n, cpu_set_t *sets);

#endif
