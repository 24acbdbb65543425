/*
 * topo.c - topology detection, rank pinning (HRING_BIND), and the public
 * node queries (topo.h, docs/topology.md).
 *
 * Linux's own files are always read: they are cheap, they are the only
 * source of interface addresses, and they keep the feature alive where
 * libhwloc is absent.  When libhwloc can be loaded at run time, what it
 * knows better replaces them: cores and NUMA nodes (it applies the cgroup's
 * CPU set and the firmware tables), and the locality of PCI devices (it
 * walks the bridge tree where sysfs says numa_node -1).
 */
#include "core/topo.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <ifaddrs.h>
#include <limits.h>
#include <net/if.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/comm.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/visibility.h"
#include "core/wait.h"

/* ---- small file and text helpers ---- */

static int read_text(const char *path, char *buf, size_t len) {
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  char *ok = fgets(buf, (int)len, f);
  fclose(f);
  if (!ok) return -1;
  buf[strcspn(buf, "\n")] = '\0';
  return 0;
}

static int read_long(const char *path, long *v, int base) {
  char buf[64], *end;
  if (read_text(path, buf, sizeof buf) != 0) return -1;
  errno = 0;
  *v = strtol(buf, &end, base);
  return errno || end == buf ? -1 : 0;
}

/* "0-3,8,10-11" (the kernel's cpulist format). */
static int parse_cpulist(const char *s, cpu_set_t *set) {
  CPU_ZERO(set);
  while (*s) {
    char *end;
    long a = strtol(s, &end, 10), b = a;
    if (end == s) return -1;
    s = end;
    if (*s == '-') {
      b = strtol(s + 1, &end, 10);
      if (end == s + 1) return -1;
      s = end;
    }
    for (long c = a; c <= b && c < CPU_SETSIZE; c++)
      if (c >= 0) CPU_SET((int)c, set);
    if (*s == ',') s++;
    else if (*s) return -1;
  }
  return 0;
}

void hring__cpuset_str(const cpu_set_t *set, char *buf, size_t len) {
  size_t n = 0;
  buf[0] = '\0';
  for (int c = 0; c < CPU_SETSIZE && n < len; c++) {
    if (!CPU_ISSET(c, set)) continue;
    int e = c;
    while (e + 1 < CPU_SETSIZE && CPU_ISSET(e + 1, set)) e++;
    int w = e > c ? snprintf(buf + n, len - n, "%s%d-%d", n ? "," : "", c, e)
                  : snprintf(buf + n, len - n, "%s%d", n ? "," : "", c);
    if (w < 0) break;
    n += (size_t)w;
    c = e;
  }
  if (n == 0) snprintf(buf, len, "(none)");
}

/* The last path component shaped like a PCI address (dddd:bb:dd.f): the
 * device of a virtio NIC is a child of its PCI function. */
static void pci_of_path(const char *real, char *out, size_t len) {
  out[0] = '\0';
  const char *p = real;
  while ((p = strchr(p, '/')) != NULL) {
    p++;
    unsigned d, b, s, f;
    char tail;
    int n = sscanf(p, "%4x:%2x:%2x.%1x%c", &d, &b, &s, &f, &tail);
    if ((n == 4 || (n == 5 && tail == '/')) && strlen(p) >= 12)
      snprintf(out, len, "%04x:%02x:%02x.%x", d, b, s, f);
  }
}

int hring__topo_numa_of_cpu(const hring_topo_t *t, int cpu) {
  if (cpu < 0 || cpu >= CPU_SETSIZE) return -1;
  for (int i = 0; i < t->nnuma; i++)
    if (CPU_ISSET(cpu, &t->numa_cpus[i])) return i;
  return -1;
}

/* The node index of a kernel node number; with one node everything is on
 * it (sysfs says -1 for devices of machines without NUMA). */
static int numa_index(const hring_topo_t *t, long os) {
  for (int i = 0; i < t->nnuma; i++)
    if (t->numa_os[i] == os) return i;
  return t->nnuma == 1 ? 0 : -1;
}

/* ---- Linux ---- */

static void linux_cpus(hring_topo_t *t) {
  char buf[4096], path[128];
  cpu_set_t online;
  if (read_text("/sys/devices/system/cpu/online", buf, sizeof buf) != 0 ||
      parse_cpulist(buf, &online) != 0) {
    CPU_ZERO(&online);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    for (long c = 0; c < n && c < CPU_SETSIZE; c++) CPU_SET((int)c, &online);
  }
  /* Cores are numbered in the order of their lowest CPU, so the binding
   * order follows the kernel's CPU numbering. */
  long key[CPU_SETSIZE], pkgs[CPU_SETSIZE];
  t->ncpus = t->ncores = t->npackages = 0;
  for (int c = 0; c < CPU_SETSIZE; c++) {
    t->core_of[c] = -1;
    if (!CPU_ISSET(c, &online)) continue;
    t->ncpus++;
    long core = -1, pkg = 0;
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/core_id", c);
    if (read_long(path, &core, 10) != 0) core = -1 - c; /* unknown: a core of its own */
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/physical_package_id", c);
    if (read_long(path, &pkg, 10) != 0) pkg = 0;
    long k = pkg * 1000000 + core;
    int i = 0;
    while (i < t->ncores && key[i] != k) i++;
    if (i == t->ncores) key[t->ncores++] = k;
    t->core_of[c] = i;
    int j = 0;
    while (j < t->npackages && pkgs[j] != pkg) j++;
    if (j == t->npackages) pkgs[t->npackages++] = pkg;
  }
  /* NUMA nodes in the kernel's order; none listed (a kernel without NUMA):
   * one node holding every CPU. */
  t->nnuma = 0;
  DIR *d = opendir("/sys/devices/system/node");
  int ids[HRING_TOPO_MAX_NUMA];
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL && t->nnuma < HRING_TOPO_MAX_NUMA) {
    char *end;
    if (strncmp(e->d_name, "node", 4) != 0 || !isdigit((unsigned char)e->d_name[4])) continue;
    long id = strtol(e->d_name + 4, &end, 10);
    if (*end == '\0') ids[t->nnuma++] = (int)id;
  }
  if (d) closedir(d);
  for (int i = 1; i < t->nnuma; i++)
    for (int j = i; j > 0 && ids[j - 1] > ids[j]; j--) {
      int x = ids[j];
      ids[j] = ids[j - 1];
      ids[j - 1] = x;
    }
  for (int i = 0; i < t->nnuma; i++) {
    t->numa_os[i] = ids[i];
    snprintf(path, sizeof path, "/sys/devices/system/node/node%d/cpulist", ids[i]);
    if (read_text(path, buf, sizeof buf) != 0 || parse_cpulist(buf, &t->numa_cpus[i]) != 0)
      CPU_ZERO(&t->numa_cpus[i]);
  }
  if (t->nnuma == 0) {
    t->nnuma = 1;
    t->numa_os[0] = 0;
    t->numa_cpus[0] = online;
  }
}

static long pci_numa(const char *pci) {
  char path[128];
  long n = -1;
  snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/numa_node", pci);
  if (read_long(path, &n, 10) != 0) n = -1;
  return n;
}

static void linux_nics(hring_topo_t *t) {
  DIR *d = opendir("/sys/class/net");
  struct dirent *e;
  char path[PATH_MAX], real[PATH_MAX];
  t->nnics = 0;
  while (d && (e = readdir(d)) != NULL && t->nnics < HRING_TOPO_MAX_NICS) {
    if (e->d_name[0] == '.') continue;
    hring_topo_nic_t *n = &t->nics[t->nnics++];
    memset(n, 0, sizeof *n);
    snprintf(n->name, sizeof n->name, "%.31s", e->d_name);
    long v = 0;
    snprintf(path, sizeof path, "/sys/class/net/%s/type", n->name);
    n->loopback = read_long(path, &v, 10) == 0 && v == 772; /* ARPHRD_LOOPBACK */
    snprintf(path, sizeof path, "/sys/class/net/%s/flags", n->name);
    n->up = read_long(path, &v, 16) == 0 && (v & IFF_UP);
    snprintf(path, sizeof path, "/sys/class/net/%s/speed", n->name);
    n->speed_mbps = read_long(path, &v, 10) == 0 && v > 0 ? (int)v : -1;
    snprintf(path, sizeof path, "/sys/class/net/%s/device", n->name);
    n->numa = -1;
    if (realpath(path, real)) pci_of_path(real, n->pci, sizeof n->pci);
    if (n->pci[0]) {
      n->numa = numa_index(t, pci_numa(n->pci));
      /* An RDMA-capable NIC lists its verbs device under its PCI function. */
      snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/infiniband", n->pci);
      DIR *ib = opendir(path);
      struct dirent *x;
      while (ib && (x = readdir(ib)) != NULL)
        if (x->d_name[0] != '.') {
          snprintf(n->rdma, sizeof n->rdma, "%.31s", x->d_name);
          break;
        }
      if (ib) closedir(ib);
    }
  }
  if (d) closedir(d);
  /* Sorted by name, so hring-info's output is stable. */
  for (int i = 1; i < t->nnics; i++)
    for (int j = i; j > 0 && strcmp(t->nics[j - 1].name, t->nics[j].name) > 0; j--) {
      hring_topo_nic_t x = t->nics[j];
      t->nics[j] = t->nics[j - 1];
      t->nics[j - 1] = x;
    }
  struct ifaddrs *ifs = NULL;
  if (getifaddrs(&ifs) != 0) return;
  for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
    if (!i->ifa_addr || (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6))
      continue;
    for (int k = 0; k < t->nnics; k++) {
      hring_topo_nic_t *n = &t->nics[k];
      if (strcmp(n->name, i->ifa_name) != 0) continue;
      char a[INET6_ADDRSTRLEN] = "";
      const void *src = i->ifa_addr->sa_family == AF_INET
                            ? (const void *)&((struct sockaddr_in *)i->ifa_addr)->sin_addr
                            : (const void *)&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;
      inet_ntop(i->ifa_addr->sa_family, src, a, sizeof a);
      size_t used = strlen(n->addrs);
      snprintf(n->addrs + used, sizeof n->addrs - used, "%s%s", used ? " " : "", a);
    }
  }
  freeifaddrs(ifs);
}

/* Display and 3D controllers (PCI class 0x03): GPUs, and the emulated VGA
 * of a virtual machine, which the vendor tells apart. */
static void linux_gpus(hring_topo_t *t) {
  DIR *d = opendir("/sys/bus/pci/devices");
  struct dirent *e;
  char path[PATH_MAX];
  t->ngpus = 0;
  while (d && (e = readdir(d)) != NULL && t->ngpus < HRING_TOPO_MAX_GPUS) {
    if (e->d_name[0] == '.' || strlen(e->d_name) >= 16) continue;
    long cls = 0, ven = 0, dev = 0;
    snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/class", e->d_name);
    if (read_long(path, &cls, 16) != 0 || (cls >> 16) != 0x03) continue;
    snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/vendor", e->d_name);
    read_long(path, &ven, 16);
    snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/device", e->d_name);
    read_long(path, &dev, 16);
    hring_topo_gpu_t *g = &t->gpus[t->ngpus++];
    memset(g, 0, sizeof *g);
    snprintf(g->pci, sizeof g->pci, "%.15s", e->d_name);
    g->vendor = (unsigned)ven;
    g->device = (unsigned)dev;
    g->class_id = (unsigned)(cls >> 8);
    g->numa = numa_index(t, pci_numa(g->pci));
  }
  if (d) closedir(d);
}

/* ---- libhwloc, loaded at run time ---- */

#if HRING_HAVE_HWLOC_H
#include <hwloc.h>

/* The functions used, resolved by dlsym: the library is never linked, so
 * one build runs where libhwloc is absent.  The header fixes the object
 * layout; the run-time check below refuses a library of another ABI. */
typedef struct {
  unsigned (*api_version)(void);
  int (*init)(hwloc_topology_t *);
  int (*load)(hwloc_topology_t);
  void (*destroy)(hwloc_topology_t);
  int (*io_filter)(hwloc_topology_t, enum hwloc_type_filter_e);
  int (*type_depth)(hwloc_topology_t, hwloc_obj_type_t);
  unsigned (*nbobjs)(hwloc_topology_t, int);
  hwloc_obj_t (*obj)(hwloc_topology_t, int, unsigned);
  int (*first)(hwloc_const_bitmap_t);
  int (*next)(hwloc_const_bitmap_t, int);
} hw_api_t;

static int hw_open(hw_api_t *a, char *why, size_t len) {
  /* Soname 15 is the hwloc 2.x ABI. */
  void *h = dlopen("libhwloc.so.15", RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    snprintf(why, len, "libhwloc not loadable (%.120s)", dlerror());
    return -1;
  }
  struct {
    void **slot;
    const char *name;
  } sym[] = {{(void **)&a->api_version, "hwloc_get_api_version"},
             {(void **)&a->init, "hwloc_topology_init"},
             {(void **)&a->load, "hwloc_topology_load"},
             {(void **)&a->destroy, "hwloc_topology_destroy"},
             {(void **)&a->io_filter, "hwloc_topology_set_io_types_filter"},
             {(void **)&a->type_depth, "hwloc_get_type_depth"},
             {(void **)&a->nbobjs, "hwloc_get_nbobjs_by_depth"},
             {(void **)&a->obj, "hwloc_get_obj_by_depth"},
             {(void **)&a->first, "hwloc_bitmap_first"},
             {(void **)&a->next, "hwloc_bitmap_next"}};
  for (size_t i = 0; i < sizeof sym / sizeof sym[0]; i++)
    if (!(*sym[i].slot = dlsym(h, sym[i].name))) {
      snprintf(why, len, "libhwloc lacks %s", sym[i].name);
      return -1; /* the library stays loaded: it may be in use elsewhere */
    }
  unsigned v = a->api_version();
  if ((v >> 16) != (HWLOC_API_VERSION >> 16)) {
    snprintf(why, len, "libhwloc API 0x%x, built for 0x%x", v, (unsigned)HWLOC_API_VERSION);
    return -1;
  }
  return 0;
}

static void hw_cpus(const hw_api_t *a, hwloc_const_bitmap_t b, cpu_set_t *out) {
  CPU_ZERO(out);
  for (int c = b ? a->first(b) : -1; c >= 0; c = a->next(b, c))
    if (c < CPU_SETSIZE) CPU_SET(c, out);
}

/* The NUMA node of an I/O object: that of its nearest ancestor with CPUs,
 * when those CPUs lie on one node. */
static int hw_numa(const hw_api_t *a, const hring_topo_t *t, hwloc_obj_t o) {
  while (o && !o->cpuset) o = o->parent;
  if (!o) return -1;
  cpu_set_t s, x;
  hw_cpus(a, o->cpuset, &s);
  int found = -1;
  for (int i = 0; i < t->nnuma; i++) {
    CPU_AND(&x, &s, &t->numa_cpus[i]);
    if (CPU_COUNT(&x) == 0) continue;
    if (found >= 0) return -1;
    found = i;
  }
  return found;
}

static void hw_pci_str(hwloc_obj_t o, char *out, size_t len) {
  while (o && o->type != HWLOC_OBJ_PCI_DEVICE) {
    if (o->cpuset) {
      o = NULL;
      break;
    }
    o = o->parent;
  }
  if (!o) {
    out[0] = '\0';
    return;
  }
  snprintf(out, len, "%04x:%02x:%02x.%x", o->attr->pcidev.domain, o->attr->pcidev.bus,
           o->attr->pcidev.dev, o->attr->pcidev.func);
}

static int hw_detect(hring_topo_t *t, char *why, size_t len) {
  hw_api_t a;
  hwloc_topology_t topo;
  if (hw_open(&a, why, len) != 0) return -1;
  if (a.init(&topo) != 0) {
    snprintf(why, len, "hwloc_topology_init failed");
    return -1;
  }
  a.io_filter(topo, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
  if (a.load(topo) != 0) {
    snprintf(why, len, "hwloc_topology_load failed");
    a.destroy(topo);
    return -1;
  }
  int dpu = a.type_depth(topo, HWLOC_OBJ_PU), dcore = a.type_depth(topo, HWLOC_OBJ_CORE);
  int dpkg = a.type_depth(topo, HWLOC_OBJ_PACKAGE), dnuma = a.type_depth(topo, HWLOC_OBJ_NUMANODE);
  unsigned npu = dpu >= 0 ? a.nbobjs(topo, dpu) : 0;
  if (npu == 0) {
    snprintf(why, len, "hwloc found no processing unit");
    a.destroy(topo);
    return -1;
  }
  for (int c = 0; c < CPU_SETSIZE; c++) t->core_of[c] = -1;
  t->ncpus = (int)npu;
  t->ncores = dcore >= 0 ? (int)a.nbobjs(topo, dcore) : (int)npu;
  t->npackages = dpkg >= 0 ? (int)a.nbobjs(topo, dpkg) : 1;
  for (unsigned i = 0; i < npu; i++) {
    hwloc_obj_t pu = a.obj(topo, dpu, i), c = pu;
    while (c && c->type != HWLOC_OBJ_CORE) c = c->parent;
    if (pu->os_index < CPU_SETSIZE)
      t->core_of[pu->os_index] = c ? (int)c->logical_index : t->ncores + (int)i;
  }
  unsigned nn = a.nbobjs(topo, dnuma);
  if (nn > 0) {
    t->nnuma = nn < HRING_TOPO_MAX_NUMA ? (int)nn : HRING_TOPO_MAX_NUMA;
    for (int i = 0; i < t->nnuma; i++) {
      hwloc_obj_t o = a.obj(topo, dnuma, (unsigned)i);
      t->numa_os[i] = (int)o->os_index;
      hw_cpus(&a, o->cpuset, &t->numa_cpus[i]);
    }
  }
  /* I/O locality: the NIC and GPU lists stay Linux's (it has the addresses
   * and every interface, virtual ones included); hwloc places them. */
  int dos = a.type_depth(topo, HWLOC_OBJ_OS_DEVICE);
  unsigned nos = a.nbobjs(topo, dos);
  for (unsigned i = 0; i < nos; i++) {
    hwloc_obj_t o = a.obj(topo, dos, i);
    char pci[16];
    if (!o->name) continue;
    hw_pci_str(o->parent, pci, sizeof pci);
    int numa = hw_numa(&a, t, o);
    for (int k = 0; k < t->nnics; k++) {
      hring_topo_nic_t *n = &t->nics[k];
      if (o->attr->osdev.type == HWLOC_OBJ_OSDEV_NETWORK && strcmp(n->name, o->name) == 0) {
        if (numa >= 0) n->numa = numa;
        if (!n->pci[0]) snprintf(n->pci, sizeof n->pci, "%s", pci);
      } else if (o->attr->osdev.type == HWLOC_OBJ_OSDEV_OPENFABRICS && pci[0] &&
                 strcmp(n->pci, pci) == 0 && !n->rdma[0]) {
        snprintf(n->rdma, sizeof n->rdma, "%s", o->name);
      }
    }
    if (o->attr->osdev.type == HWLOC_OBJ_OSDEV_GPU || o->attr->osdev.type == HWLOC_OBJ_OSDEV_COPROC)
      for (int k = 0; k < t->ngpus; k++)
        if (pci[0] && strcmp(t->gpus[k].pci, pci) == 0) {
          if (numa >= 0) t->gpus[k].numa = numa;
          if (!t->gpus[k].name[0]) snprintf(t->gpus[k].name, sizeof t->gpus[k].name, "%s", o->name);
        }
  }
  a.destroy(topo);
  return 0;
}
#else
static int hw_detect(hring_topo_t *t, char *why, size_t len) {
  (void)t;
  snprintf(why, len, "built without hwloc.h (install libhwloc-dev and rebuild)");
  return -1;
}
#endif

/* ---- the process's topology ---- */

static pthread_mutex_t bind_lock = PTHREAD_MUTEX_INITIALIZER;
static cpu_set_t saved_allowed; /* before hring first pinned this process */
static int saved_valid;

void hring__topo_allowed(cpu_set_t *out) {
  pthread_mutex_lock(&bind_lock);
  if (saved_valid) *out = saved_allowed;
  else if (sched_getaffinity(0, sizeof *out, out) != 0) CPU_ZERO(out);
  pthread_mutex_unlock(&bind_lock);
}

void hring__topo_detect(hring_topo_t *t, int use_hwloc) {
  memset(t, 0, sizeof *t);
  linux_cpus(t);
  linux_nics(t);
  linux_gpus(t);
  hring__topo_allowed(&t->allowed);
  if (CPU_COUNT(&t->allowed) == 0)
    for (int c = 0; c < CPU_SETSIZE; c++)
      if (t->core_of[c] >= 0) CPU_SET(c, &t->allowed);
  char why[160] = "not asked for";
  if (use_hwloc && hw_detect(t, why, sizeof why) == 0) {
    t->hwloc = 1;
    snprintf(t->source, sizeof t->source, "hwloc (loaded at run time); addresses from Linux");
  } else {
    snprintf(t->source, sizeof t->source, "Linux sysfs; hwloc not used: %s", why);
  }
}

static pthread_once_t topo_once = PTHREAD_ONCE_INIT;
static hring_topo_t topo;

static void topo_load(void) {
  hring__topo_detect(&topo, 1);
  HRING_INFO(HRING_SUB_INIT, "topology: %d CPUs, %d cores, %d NUMA nodes, %d NICs, %d GPUs; from %s",
             topo.ncpus, topo.ncores, topo.nnuma, topo.nnics, topo.ngpus, topo.source);
}

const hring_topo_t *hring__topo_get(void) {
  pthread_once(&topo_once, topo_load);
  return &topo;
}

void hring__topo_near(const hring_topo_t *t, const cpu_set_t *cpus, char *buf, size_t len) {
  int numa = -1, span = 0;
  cpu_set_t x;
  for (int i = 0; i < t->nnuma; i++) {
    CPU_AND(&x, cpus, &t->numa_cpus[i]);
    if (CPU_COUNT(&x) > 0) {
      numa = i;
      span++;
    }
  }
  size_t n = 0;
  if (span == 1) n += (size_t)snprintf(buf, len, "NUMA node %d; NICs", t->numa_os[numa]);
  else n += (size_t)snprintf(buf, len, "%d NUMA nodes; NICs", span);
  int any = 0;
  for (int i = 0; i < t->nnics && n < len; i++) {
    const hring_topo_nic_t *c = &t->nics[i];
    if (c->loopback || !c->pci[0] || (span == 1 && c->numa != numa)) continue;
    n += (size_t)snprintf(buf + n, len - n, " %s%s%s%s", c->name, c->rdma[0] ? " (" : "", c->rdma,
                          c->rdma[0] ? ")" : "");
    any = 1;
  }
  if (!any && n < len) n += (size_t)snprintf(buf + n, len - n, " none");
  if (n < len) n += (size_t)snprintf(buf + n, len - n, "; GPUs");
  any = 0;
  for (int i = 0; i < t->ngpus && n < len; i++) {
    if (span == 1 && t->gpus[i].numa != numa) continue;
    n += (size_t)snprintf(buf + n, len - n, " %s", t->gpus[i].pci);
    any = 1;
  }
  if (!any && n < len) snprintf(buf + n, len - n, " none");
}

/* ---- binding ---- */

hring_result_t hring__topo_bind_mode(hring_bind_t *mode) {
  const char *s = hring__cfg_str(HRING_CFG_BIND);
  if (!s || strcmp(s, "none") == 0) *mode = HRING_BIND_NONE;
  else if (strcmp(s, "core") == 0) *mode = HRING_BIND_CORE;
  else if (strcmp(s, "numa") == 0) *mode = HRING_BIND_NUMA;
  else
    return hring__err(HRING_ERR_INVALID_ARGUMENT,
                      "HRING_BIND=%s: unknown binding (use none, core or numa)", s);
  return HRING_SUCCESS;
}

int hring__topo_bind_plan(const hring_topo_t *t, const cpu_set_t *allowed, hring_bind_t mode,
                          int local_rank, int local_size, cpu_set_t *out, char *what, size_t len) {
  CPU_ZERO(out);
  if (mode == HRING_BIND_CORE) {
    /* Cores holding an allowed CPU, in the order of their lowest one. */
    int order[CPU_SETSIZE];
    int n = 0;
    for (int c = 0; c < CPU_SETSIZE; c++) {
      int core = t->core_of[c];
      if (!CPU_ISSET(c, allowed)) continue;
      if (core < 0) core = t->ncores + c; /* hwloc hid it (cgroup): a core of its own */
      int k = 0;
      while (k < n && order[k] != core) k++;
      if (k == n) order[n++] = core;
    }
    if (n == 0) return -1;
    /* A core each while there are enough; else consecutive local ranks
     * (ring neighbours) share a core, so a ring crosses between cores
     * once per core instead of at every step (docs/topology.md). */
    int slot = local_size > n ? (int)((long)local_rank * n / local_size) : local_rank % n;
    int pick = order[slot];
    for (int c = 0; c < CPU_SETSIZE; c++)
      if (CPU_ISSET(c, allowed) &&
          (t->core_of[c] == pick || (t->core_of[c] < 0 && t->ncores + c == pick)))
        CPU_SET(c, out);
    snprintf(what, len, "core %d (%d of %d allowed cores)", pick, slot + 1, n);
    return 0;
  }
  if (mode == HRING_BIND_NUMA) {
    int nodes[HRING_TOPO_MAX_NUMA], n = 0;
    cpu_set_t x;
    for (int i = 0; i < t->nnuma; i++) {
      CPU_AND(&x, allowed, &t->numa_cpus[i]);
      if (CPU_COUNT(&x) > 0) nodes[n++] = i;
    }
    if (n == 0) return -1;
    int pick = nodes[local_rank % n];
    CPU_AND(out, allowed, &t->numa_cpus[pick]);
    snprintf(what, len, "NUMA node %d (%d of %d with allowed CPUs)", t->numa_os[pick],
             local_rank % n + 1, n);
    return 0;
  }
  return -1;
}

int hring__topo_ncores(void) {
  pthread_mutex_lock(&bind_lock);
  int n = saved_valid ? CPU_COUNT(&saved_allowed) : 0;
  pthread_mutex_unlock(&bind_lock);
  return n > 0 ? n : hring__ncores();
}

void hring__topo_bind(struct hring_comm *c, hring_bind_t mode) {
  if (mode == HRING_BIND_NONE) return;
  /* The set allowed before the first pinning is what every later
   * communicator divides, not the one core the first one left. */
  cpu_set_t allowed, set;
  pthread_mutex_lock(&bind_lock);
  if (!saved_valid && sched_getaffinity(0, sizeof saved_allowed, &saved_allowed) == 0)
    saved_valid = 1;
  allowed = saved_allowed;
  pthread_mutex_unlock(&bind_lock);
  const hring_topo_t *t = hring__topo_get();
  char what[96], cpus[256], near[512];
  if (hring__topo_bind_plan(t, &allowed, mode, c->local_rank, c->local_size, &set, what,
                            sizeof what) != 0) {
    HRING_WARN(HRING_SUB_INIT, "HRING_BIND=%s: no CPU to bind rank %d to; left unbound",
               mode == HRING_BIND_CORE ? "core" : "numa", c->rank);
    return;
  }
  hring__cpuset_str(&set, cpus, sizeof cpus);
  if (sched_setaffinity(0, sizeof set, &set) != 0) {
    HRING_WARN(HRING_SUB_INIT, "HRING_BIND: pinning rank %d to %s (CPUs %s) failed: %s; left unbound",
               c->rank, what, cpus, strerror(errno));
    return;
  }
  hring__topo_near(t, &set, near, sizeof near);
  HRING_INFO(HRING_SUB_INIT, "bind: rank %d (local %d/%d) pinned to %s, CPUs %s; near: %s", c->rank,
             c->local_rank, c->local_size, what, cpus, near);
}

/* ---- public calls ---- */

HRING_API hring_result_t hring_comm_local_rank(hring_comm_t comm, int *local_rank) {
  HRING_CHECK(hring__comm_check(comm, "hring_comm_local_rank"));
  if (!local_rank)
    return hring__err(HRING_ERR_INVALID_ARGUMENT, "hring_comm_local_rank: NULL pointer");
  *local_rank = comm->local_rank;
  return HRING_SUCCESS;
}

HRING_API hring_result_t hring_comm_local_size(hring_comm_t comm, int *local_size) {
  HRING_CHECK(hring__comm_check(comm, "hring_comm_local_size"));
  if (!local_size)
    return hring__err(HRING_ERR_INVALID_ARGUMENT, "hring_comm_local_size: NULL pointer");
  *local_size = comm->local_size;
  return HRING_SUCCESS;
}

HRING_API hring_result_t hring_comm_node(hring_comm_t comm, int *node) {
  HRING_CHECK(hring__comm_check(comm, "hring_comm_node"));
  if (!node) return hring__err(HRING_ERR_INVALID_ARGUMENT, "hring_comm_node: NULL pointer");
  *node = comm->node;
  return HRING_SUCCESS;
}

HRING_API hring_result_t hring_comm_node_count(hring_comm_t comm, int *nnodes) {
  HRING_CHECK(hring__comm_check(comm, "hring_comm_node_count"));
  if (!nnodes) return hring__err(HRING_ERR_INVALID_ARGUMENT, "hring_comm_node_count: NULL pointer");
  *nnodes = comm->nnodes;
  return HRING_SUCCESS;
}
