/*
 * hring-info - what this build of hring has and sees.
 *
 *   hring-info            features, CPU kernels, topology, transports, config
 *   hring-info -L         the same, with the topology read from Linux only
 *                         (not hwloc), to compare the two
 *   hring-info -b N       also where HRING_BIND=core and =numa would pin
 *                         local ranks 0..N-1 of a communicator
 *   hring-info -c         the configuration table only
 *   hring-info -c -m      the configuration table as markdown (for the README)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "algos/reduce.h"
#include "core/config.h"
#include "core/cuda.h"
#include "core/pmix.h"
#include "core/socket.h"
#include "core/topo.h"
#include "hring.h"

#ifndef HRING_FOUND_VERBS
#define HRING_FOUND_VERBS 0
#define HRING_FOUND_PMIX 0
#define HRING_FOUND_HWLOC 0
#endif

static void features(void) {
  int v = 0;
  hring_get_version(&v);
  printf("hring %d.%d.%d\n", v / 10000, (v / 100) % 100, v % 100);
  printf("features:\n");
  printf("  host reduction kernels : %s\n", hring__reduce_isa());
  printf("  transports             : shm, tcp\n");
  /* CUDA is found at run time (the plugin, then a device). */
  printf("  CUDA                   : %s\n", hring__cuda_status());
  const hring_cuda_api_t *cu = hring__cuda();
  char name[256];
  for (int d = 0; cu && cu->device_name(d, name, sizeof name) == 0; d++)
    printf("    device %d             : %s\n", d, name);
  /* verbs: found at build time means the headers were there; the
   * transport itself is not part of this version yet. */
  printf("  %-23s: not supported yet (headers %s at build time)\n", "verbs (RDMA)",
         HRING_FOUND_VERBS ? "found" : "not found");
  const char *pmix = hring__pmix_status();
  printf("  %-23s: %s\n", "PMIx", strncmp(pmix, "PMIx: ", 6) == 0 ? pmix + 6 : pmix);
  printf("  %-23s: headers %s at build time; loaded at run time when present\n", "hwloc",
         HRING_FOUND_HWLOC ? "found" : "not found");
}

static const char *vendor_name(unsigned v) {
  switch (v) {
    case 0x10de: return "NVIDIA";
    case 0x1002: return "AMD";
    case 0x8086: return "Intel";
    case 0x1af4: return "virtio";
    case 0x1234: return "QEMU";
    case 0x1414: return "Microsoft";
    case 0x15ad: return "VMware";
    default: return "vendor";
  }
}

/* The interface whose address is `a`, from the topology's NIC list. */
static const char *nic_of_addr(const hring_topo_t *t, const struct sockaddr_storage *a) {
  char text[INET6_ADDRSTRLEN] = "";
  if (a->ss_family == AF_INET6)
    inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)a)->sin6_addr, text, sizeof text);
  else
    inet_ntop(AF_INET, &((const struct sockaddr_in *)a)->sin_addr, text, sizeof text);
  for (int i = 0; i < t->nnics; i++) {
    const char *p = t->nics[i].addrs;
    size_t n = strlen(text);
    while ((p = strstr(p, text)) != NULL) {
      if ((p == t->nics[i].addrs || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
        return t->nics[i].name;
      p += n;
    }
  }
  return "?";
}

static void tcp_choice(const hring_topo_t *t) {
  struct sockaddr_storage a;
  const char *ifname = hring__cfg_str(HRING_CFG_SOCKET_IFNAME);
  if (hring__sock_local_addr(NULL, &a) != HRING_SUCCESS) {
    printf("  tcp interface          : none: %s\n", hring_last_error());
    return;
  }
  char addr[80];
  snprintf(addr, sizeof addr, "%s", hring__addr_str(&a));
  addr[strlen(addr) - 2] = '\0'; /* the ":0" of an unbound port */
  printf("  tcp interface          : %s %s (%s)\n", nic_of_addr(t, &a), addr,
         ifname && *ifname ? "HRING_SOCKET_IFNAME"
                           : "root's choice: first up IPv4 interface that is not loopback; "
                             "other ranks use the address that routes to the root");
}

static void topology(int use_hwloc, int plan_ranks) {
  hring_topo_t *t = malloc(sizeof *t);
  if (!t) return;
  hring__topo_detect(t, use_hwloc);
  char host[256] = "", buf[1024];
  gethostname(host, sizeof host - 1);
  printf("topology (%s):\n", t->source);
  printf("  host                   : %s\n", host);
  hring__cpuset_str(&t->allowed, buf, sizeof buf);
  printf("  CPUs                   : %d online in %d cores, %d package%s; this process may use "
         "%d: %s\n", t->ncpus, t->ncores, t->npackages, t->npackages > 1 ? "s" : "",
         CPU_COUNT(&t->allowed), buf);
  for (int i = 0; i < t->nnuma; i++) {
    hring__cpuset_str(&t->numa_cpus[i], buf, sizeof buf);
    printf("  NUMA node %-13d: CPUs %s\n", t->numa_os[i], buf);
  }
  int rdma = 0;
  printf("  NICs                   : %d\n", t->nnics);
  for (int i = 0; i < t->nnics; i++) {
    const hring_topo_nic_t *n = &t->nics[i];
    char numa[16] = "?";
    if (n->numa >= 0) snprintf(numa, sizeof numa, "%d", t->numa_os[n->numa]);
    printf("    %-10s %-4s %-8s pci %-12s NUMA %-2s speed %s%s rdma %s  addresses %s\n", n->name,
           n->up ? "up" : "down", n->loopback ? "loopback" : (n->pci[0] ? "device" : "virtual"),
           n->pci[0] ? n->pci : "-", numa,
           n->speed_mbps > 0 ? (snprintf(buf, sizeof buf, "%d", n->speed_mbps), buf) : "?",
           n->speed_mbps > 0 ? " Mb/s" : "", n->rdma[0] ? n->rdma : "-",
           n->addrs[0] ? n->addrs : "(none)");
    rdma += n->rdma[0] != 0;
  }
  if (!rdma) printf("    (no NIC has an RDMA device: the ib transport would have nothing to use)\n");
  printf("  GPUs (PCI class 03)    : %d\n", t->ngpus);
  for (int i = 0; i < t->ngpus; i++) {
    const hring_topo_gpu_t *g = &t->gpus[i];
    char numa[16] = "?";
    if (g->numa >= 0) snprintf(numa, sizeof numa, "%d", t->numa_os[g->numa]);
    printf("    %s %s %04x:%04x class %04x NUMA %s%s%s\n", g->pci, vendor_name(g->vendor), g->vendor,
           g->device, g->class_id, numa, g->name[0] ? " " : "", g->name);
  }
  tcp_choice(t);
  for (int r = 0; r < plan_ranks; r++) {
    static const struct {
      hring_bind_t mode;
      const char *name;
    } m[] = {{HRING_BIND_CORE, "core"}, {HRING_BIND_NUMA, "numa"}};
    for (int k = 0; k < 2; k++) {
      cpu_set_t set;
      char what[96], cpus[256], near[512];
      if (hring__topo_bind_plan(t, &t->allowed, m[k].mode, r, plan_ranks, &set, what,
                                sizeof what) != 0) {
        printf("  HRING_BIND=%s local %-3d: no CPU\n", m[k].name, r);
        continue;
      }
      hring__cpuset_str(&set, cpus, sizeof cpus);
      hring__topo_near(t, &set, near, sizeof near);
      printf("  HRING_BIND=%s local %-3d: %s, CPUs %s; near: %s\n", m[k].name, r, what, cpus, near);
    }
  }
  free(t);
}

int main(int argc, char **argv) {
  int only_cfg = 0, markdown = 0, use_hwloc = 1, plan = 0;
  for (int i = 1; i < argc; i++) {
    char *end = NULL;
    if (strcmp(argv[i], "-c") == 0) only_cfg = 1;
    else if (strcmp(argv[i], "-m") == 0) markdown = 1;
    else if (strcmp(argv[i], "-L") == 0) use_hwloc = 0;
    else if (strcmp(argv[i], "-b") == 0 && i + 1 < argc &&
             (plan = (int)strtol(argv[++i], &end, 10)) >= 0 && plan <= 4096 && !*end)
      continue;
    else {
      fprintf(stderr, "usage: %s [-L] [-b local_ranks] | -c [-m]\n", argv[0]);
      return 2;
    }
  }
  if (!only_cfg) {
    features();
    topology(use_hwloc, plan);
  }
  if (!markdown) printf("configuration (environment):\n");
  hring__cfg_print(stdout, markdown);
  return 0;
}
