/*
 * topo.h - what the machine looks like from one process (cores, NUMA nodes,
 * NICs, GPUs as PCI devices) and pinning a rank to part of it (HRING_BIND).
 *
 * The topology is read once per process, at its first use, and never makes
 * a caller fail: libhwloc is used when it can be loaded at run time (it is
 * never linked, see docs/topology.md), else what Linux gives
 * (sched_getaffinity, /sys/devices/system/{cpu,node}, /sys/class/net,
 * /sys/bus/pci), so the feature degrades rather than disappears.
 */
#ifndef HRING_CORE_TOPO_H
#define HRING_CORE_TOPO_H

#include <sched.h>
#include <stddef.h>

#include "hring.h"

#define HRING_TOPO_MAX_NUMA 64
#define HRING_TOPO_MAX_NICS 32
#define HRING_TOPO_MAX_GPUS 32

typedef enum { HRING_BIND_NONE = 0, HRING_BIND_CORE, HRING_BIND_NUMA } hring_bind_t;

typedef struct {
  char name[32];        /* interface name (eth0) */
  char pci[16];         /* PCI function under it; "" for virtual interfaces */
  char rdma[32];        /* RDMA device on that PCI function (mlx5_0); "" if none */
  char addrs[200];      /* IPv4 and IPv6 addresses, space separated */
  int numa;             /* NUMA node index (topo numa[] order), -1 unknown */
  int up, loopback;
  int speed_mbps;       /* -1: unknown (virtual links report none) */
} hring_topo_nic_t;

typedef struct {
  char pci[16];
  unsigned vendor, device, class_id; /* class_id: PCI class and subclass, 0x0300 VGA, 0x0302 3D */
  int numa;
  char name[32];        /* OS device name when hwloc knows it (card0, cuda0), else "" */
} hring_topo_gpu_t;

typedef struct {
  int hwloc;            /* 1: cores, NUMA nodes and PCI locality came from hwloc */
  char source[200];     /* how it was detected, and why hwloc was not used */
  int ncpus;            /* online logical CPUs (hardware threads) */
  int ncores;           /* physical cores */
  int npackages;
  cpu_set_t allowed;    /* CPUs the process may use (as before hring bound it) */
  int core_of[CPU_SETSIZE]; /* physical core index of each CPU, -1 offline */
  int nnuma;
  int numa_os[HRING_TOPO_MAX_NUMA];          /* the kernel's node number */
  cpu_set_t numa_cpus[HRING_TOPO_MAX_NUMA];
  int nnics;
  hring_topo_nic_t nics[HRING_TOPO_MAX_NICS];
  int ngpus;
  hring_topo_gpu_t gpus[HRING_TOPO_MAX_GPUS];
} hring_topo_t;

/* The process's topology, detected at the first call (thread-safe). */
const hring_topo_t *hring__topo_get(void);
/* A fresh detection; use_hwloc 0 forces the Linux-only path (hring-info -L
 * and the tests compare both). */
void hring__topo_detect(hring_topo_t *t, int use_hwloc);

/* Index in numa[] of the node holding `cpu`, -1 if none. */
int hring__topo_numa_of_cpu(const hring_topo_t *t, int cpu);
/* "0-3,8" text of a CPU set. */
void hring__cpuset_str(const cpu_set_t *set, char *buf, size_t len);
/* "NUMA 0; NICs eth0; GPUs none": what lies nearest to the given CPUs. */
void hring__topo_near(const hring_topo_t *t, const cpu_set_t *cpus, char *buf, size_t len);

/* HRING_BIND parsed; a value other than none, core or numa is an
 * invalid-argument error naming the accepted values. */
hring_result_t hring__topo_bind_mode(hring_bind_t *mode);
/* The CPUs local rank `local_rank` of `local_size` is given by `mode` out
 * of `allowed`: core: the PUs of physical core local_rank of the allowed
 * cores, or, with more local ranks than cores, of core
 * local_rank * cores / local_size (consecutive ranks share one);
 * numa: the allowed CPUs of the (local_rank mod n)-th of the n NUMA nodes
 * holding allowed CPUs.  what: "core 3", "NUMA node 1".  -1 when nothing
 * can be given (no allowed CPU). */
int hring__topo_bind_plan(const hring_topo_t *t, const cpu_set_t *allowed, hring_bind_t mode,
                          int local_rank, int local_size, cpu_set_t *out, char *what, size_t len);

struct hring_comm;
/* Pins the calling thread (and so the threads it starts later) as `mode`
 * says; logs the binding at INFO and a failure at WARN, never fails. */
void hring__topo_bind(struct hring_comm *comm, hring_bind_t mode);
/* CPUs the process could use before hring pinned it (the current count when
 * it never did), so that a second communicator does not mistake the first
 * one's pinning for oversubscription. */
int hring__topo_ncores(void);
/* The CPUs this process may run on: its affinity before hring first
 * pinned it (HRING_BIND), so every communicator sees the same set. */
void hring__topo_allowed(cpu_set_t *out);

#endif
