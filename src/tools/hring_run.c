/*
 * hring_run.c - hring-run, the built-in local launcher.
 *
 * usage: hring-run -n N [--no-prefix] [--grace SECS] [--timeout SECS]
 *                  [--bind auto|cores|none] [--] prog [args...]
 *
 * Starts N copies of prog on this machine with the environment that
 * hring_comm_init_env() reads (HRING_RANK, HRING_NRANKS, HRING_LOCAL_RANK,
 * HRING_LOCAL_SIZE, HRING_ROOT, HRING_SECRET), forwards their output line by
 * line with "[R] " prefixes, and stops the whole job on the first failure.
 * With --bind cores each rank is pinned to cores of its own when they are
 * enough, and consecutive ranks share a core when they are not; with the
 * default --bind auto only in the second case (run_bind.h; HRING_BIND set
 * for the library leaves that out).
 *
 * The program is standalone: it uses nothing from the library, so a job can be
 * launched (and its failure reported) even when the library is broken.
 *
 * Exit status: 0 when every rank exited 0; the first failing rank's status
 * (128 + signal number when it was killed by a signal); 124 after --timeout;
 * 128 + signal number when the launcher was stopped by SIGINT, SIGTERM or
 * SIGHUP; 2 for bad usage or a program that cannot be executed; 1 when the
 * launcher itself could not set the job up (pipes, fork, file limit).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tools/run_bind.h"

#define RUN_MAX_RANKS 4096
#define RUN_EXIT_INTERNAL 1
#define RUN_EXIT_USAGE 2
/* The status timeout(1) uses, so scripts can tell a timeout from a failure. */
#define RUN_EXIT_TIMEOUT 124
/* The status a shell gives a command it cannot execute. */
#define RUN_EXIT_EXEC 127
#define RUN_DEFAULT_GRACE_S 3.0
/* Bytes read from one pipe per poll round: one pipe's default capacity, so a
 * busy rank is emptied in one read while the others still get their turn. */
#define RUN_READ_CHUNK 65536
/* A line longer than this is printed in pieces (only its first piece gets the
 * prefix), so a rank that never writes a newline cannot exhaust memory. */
#define RUN_LINE_MAX ((size_t)16 << 20)
/* Reads done on the pipes of a rank that has exited: enough for everything a
 * pipe can hold, bounded in case a leftover child keeps writing into it. */
#define RUN_DRAIN_READS 32
/* Open files the launcher needs besides two per rank: stdio, the signalfd and
 * the three pipes of the rank being started. */
#define RUN_FD_SLACK 16

/* One output stream of one rank: the pipe it writes into and the part of its
 * current line that has not been printed yet. */
struct stream {
  int fd;       /* read end of the pipe; -1 once closed */
  FILE *to;     /* the launcher's stdout or stderr */
  char *buf;    /* unprinted start of the current line */
  size_t len, cap;
  int midline;  /* part of the current line was printed already */
  char tag[16]; /* the "[R] " prefix */
  size_t taglen;
};

struct rank {
  pid_t pid;
  int alive;    /* started and not yet reaped */
  struct stream out, err;
};

struct job {
  int n;
  int prefix;
  double grace_s;
  double timeout_s;       /* 0: no timeout */
  char **argv;
  struct rank *ranks;
  cpu_set_t *cpus;        /* [n] each rank's CPUs; NULL: unpinned */
  int nalive;
  pid_t pgid;             /* process group of all ranks; 0 before rank 0 */
  int sigfd;
  sigset_t orig_mask;     /* restored in each rank before exec */
  struct rlimit orig_nofile;
  int exit_code;          /* -1 until the job's outcome is decided */
  int stopping;           /* the ranks were asked to stop */
  int killed;             /* SIGKILL was sent */
  double start, kill_at;
};

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Prints one launcher message on stderr.  Rank output already queued on
 * stdout goes first, so the message follows what the ranks printed. */
static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...) {
  va_list ap;
  fflush(stdout);
  fputs("hring-run: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  fflush(stderr);
}

static void usage(FILE *to) {
  fputs("usage: hring-run -n N [options] [--] prog [args...]\n"
        "Starts N ranks of prog on this machine.\n"
        "\n"
        "  -n N            number of ranks (1..4096)\n"
        "  --no-prefix     pass the ranks' output through without \"[R] \" prefixes\n"
        "  --grace SECS    wait this long after SIGTERM before SIGKILL (default 3)\n"
        "  --timeout SECS  stop the job and exit 124 after SECS (default: none)\n"
        "  --bind MODE     auto (default): with more ranks than cores, pin\n"
        "                  consecutive ranks to one core, in blocks, else leave them\n"
        "                  unpinned; cores: pin each rank to cores of its own, or in\n"
        "                  blocks when they are too few; none: never pin (not when\n"
        "                  HRING_BIND is set: the library pins them then)\n"
        "  -h, --help      print this help\n"
        "\n"
        "Each rank gets HRING_RANK, HRING_NRANKS, HRING_LOCAL_RANK, HRING_LOCAL_SIZE,\n"
        "HRING_ROOT=127.0.0.1:PORT and HRING_SECRET (kept from the environment when\n"
        "set).  The first rank to fail stops the job; its status is the exit status.\n",
        to);
}

static const char *signal_name(int sig) {
  switch (sig) {
#define RUN_SIG(s) case s: return #s;
    RUN_SIG(SIGHUP) RUN_SIG(SIGINT) RUN_SIG(SIGQUIT) RUN_SIG(SIGILL)
    RUN_SIG(SIGTRAP) RUN_SIG(SIGABRT) RUN_SIG(SIGBUS) RUN_SIG(SIGFPE)
    RUN_SIG(SIGKILL) RUN_SIG(SIGUSR1) RUN_SIG(SIGSEGV) RUN_SIG(SIGUSR2)
    RUN_SIG(SIGPIPE) RUN_SIG(SIGALRM) RUN_SIG(SIGTERM) RUN_SIG(SIGCHLD)
    RUN_SIG(SIGCONT) RUN_SIG(SIGSTOP) RUN_SIG(SIGTSTP) RUN_SIG(SIGTTIN)
    RUN_SIG(SIGTTOU) RUN_SIG(SIGURG) RUN_SIG(SIGXCPU) RUN_SIG(SIGXFSZ)
    RUN_SIG(SIGVTALRM) RUN_SIG(SIGPROF) RUN_SIG(SIGWINCH) RUN_SIG(SIGIO)
    RUN_SIG(SIGPWR) RUN_SIG(SIGSYS)
#undef RUN_SIG
    default: break;
  }
  if (sig >= SIGRTMIN && sig <= SIGRTMAX) return "SIGRT";
  return "unknown signal";
}

/* ---- Argument parsing ---------------------------------------------------- */

static int parse_int(const char *s, long *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end) return -1;
  *out = v;
  return 0;
}

/* Seconds as a decimal number, 0 to a billion (which also rejects NaN). */
static int parse_secs(const char *s, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !(v >= 0.0 && v <= 1e9)) return -1;
  *out = v;
  return 0;
}

/* Finds prog the way execvp() will, so that a misspelt program is a usage
 * error reported once, before any rank starts.  Returns 0 or an errno. */
static int find_program(const char *prog) {
  struct stat st;
  if (strchr(prog, '/')) {
    if (stat(prog, &st) != 0) return errno;
    if (!S_ISREG(st.st_mode)) return EACCES;
    return access(prog, X_OK) == 0 ? 0 : errno;
  }
  const char *path = getenv("PATH");
  if (!path || !*path) path = "/usr/local/bin:/usr/bin:/bin";
  size_t plen = strlen(prog);
  int err = ENOENT;
  for (const char *p = path;; ) {
    const char *colon = strchr(p, ':');
    size_t dlen = colon ? (size_t)(colon - p) : strlen(p);
    char full[PATH_MAX];
    /* An empty PATH entry means the current directory, as in execvp(). */
    if (dlen + 1 + plen + 1 <= sizeof full) {
      if (dlen == 0) snprintf(full, sizeof full, "./%s", prog);
      else snprintf(full, sizeof full, "%.*s/%s", (int)dlen, p, prog);
      if (stat(full, &st) == 0 && S_ISREG(st.st_mode)) {
        if (access(full, X_OK) == 0) return 0;
        err = EACCES;
      }
    }
    if (!colon) break;
    p = colon + 1;
  }
  return err;
}

/* ---- Job environment ----------------------------------------------------- */

/* Picks a free TCP port on the loopback address for the bootstrap root: the
 * kernel chooses it for a bind to port 0, and rank 0 binds it again later. */
static int pick_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t alen = sizeof a;
  int port = -1;
  if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
      getsockname(fd, (struct sockaddr *)&a, &alen) == 0)
    port = ntohs(a.sin_port);
  close(fd);
  return port;
}

static int random_bytes(unsigned char *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t k = getrandom(buf + got, n - got, 0);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) break;
    got += (size_t)k;
  }
  if (got == n) return 0;
  /* Kernels older than getrandom(): fall back to the device. */
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  got = 0;
  while (got < n) {
    ssize_t k = read(fd, buf + got, n - got);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) break;
    got += (size_t)k;
  }
  close(fd);
  return got == n ? 0 : -1;
}

/* Sets HRING_ROOT and HRING_SECRET in the launcher's own environment, which
 * every rank inherits, unless the caller already set them. */
static int setup_job_env(void) {
  const char *root = getenv("HRING_ROOT");
  if (!root || !*root) {
    int port = pick_port();
    if (port <= 0) {
      note("cannot pick a free TCP port on 127.0.0.1: %s", strerror(errno));
      return -1;
    }
    char val[32];
    snprintf(val, sizeof val, "127.0.0.1:%d", port);
    if (setenv("HRING_ROOT", val, 1) != 0) return -1;
  }
  const char *secret = getenv("HRING_SECRET");
  if (!secret || !*secret) {
    unsigned char raw[16];
    char hex[2 * sizeof raw + 1];
    if (random_bytes(raw, sizeof raw) != 0) {
      note("cannot read random bytes for the job secret: %s", strerror(errno));
      return -1;
    }
    for (size_t i = 0; i < sizeof raw; i++) snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    if (setenv("HRING_SECRET", hex, 1) != 0) return -1;
  }
  return 0;
}

/* Each rank keeps two pipes open in the launcher; raise the soft open-file
 * limit when N needs it.  The ranks get the original limit back. */
static int raise_fd_limit(struct job *job) {
  rlim_t need = (rlim_t)job->n * 2 + RUN_FD_SLACK;
  if (getrlimit(RLIMIT_NOFILE, &job->orig_nofile) != 0) return 0;
  if (job->orig_nofile.rlim_cur == RLIM_INFINITY || job->orig_nofile.rlim_cur >= need)
    return 0;
  struct rlimit r = job->orig_nofile;
  if (r.rlim_max != RLIM_INFINITY && r.rlim_max < need) {
    note("-n %d needs %lu open files; the hard limit is %lu", job->n,
         (unsigned long)need, (unsigned long)r.rlim_max);
    return -1;
  }
  r.rlim_cur = need;
  if (setrlimit(RLIMIT_NOFILE, &r) != 0) {
    note("cannot raise the open-file limit to %lu: %s", (unsigned long)need,
         strerror(errno));
    return -1;
  }
  return 0;
}

/* ---- Output forwarding --------------------------------------------------- */

static void stream_put(const struct job *job, struct stream *s,
                       const char *p, size_t n, int ends_line) {
  if (n == 0) return;
  if (job->prefix && !s->midline) fwrite_unlocked(s->tag, 1, s->taglen, s->to);
  fwrite_unlocked(p, 1, n, s->to);
  s->midline = !ends_line;
}

/* Prints every complete line in data and keeps the rest for later.  Without
 * prefixes the bytes go through as they come. */
static void stream_feed(const struct job *job, struct stream *s,
                        const char *data, size_t n) {
  if (!job->prefix) {
    fwrite(data, 1, n, s->to);
    return;
  }
  while (n > 0) {
    const char *nl = memchr(data, '\n', n);
    if (!nl) break;
    size_t k = (size_t)(nl - data) + 1;
    stream_put(job, s, s->buf, s->len, 0);
    s->len = 0;
    stream_put(job, s, data, k, 1);
    data += k;
    n -= k;
  }
  if (n == 0) return;
  if (s->len + n > s->cap && s->len + n <= RUN_LINE_MAX) {
    size_t cap = s->cap ? s->cap : 256;
    while (cap < s->len + n) cap *= 2;
    char *b = realloc(s->buf, cap);
    if (b) {
      s->buf = b;
      s->cap = cap;
    }
  }
  if (s->len + n > s->cap) {
    /* Too long to hold (or no memory): print what there is, unfinished. */
    stream_put(job, s, s->buf, s->len, 0);
    s->len = 0;
    stream_put(job, s, data, n, 0);
    return;
  }
  memcpy(s->buf + s->len, data, n);
  s->len += n;
}

/* At end of file: prints the unfinished last line, ended with a newline when
 * prefixing so the next rank's line starts on a line of its own. */
static void stream_close(const struct job *job, struct stream *s) {
  if (s->fd < 0) return;
  stream_put(job, s, s->buf, s->len, 0);
  s->len = 0;
  if (job->prefix && s->midline) fputc('\n', s->to);
  s->midline = 0;
  close(s->fd);
  s->fd = -1;
  free(s->buf);
  s->buf = NULL;
  s->cap = 0;
}

/* One read from a rank's pipe.  Returns 1 when data came, 0 otherwise (no
 * data now, or end of file, after which the stream is closed). */
static int stream_read(const struct job *job, struct stream *s) {
  static char chunk[RUN_READ_CHUNK];
  if (s->fd < 0) return 0;
  ssize_t k = read(s->fd, chunk, sizeof chunk);
  if (k > 0) {
    stream_feed(job, s, chunk, (size_t)k);
    return 1;
  }
  if (k < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
  stream_close(job, s);
  return 0;
}

/* Empties the pipes of an exited rank.  Everything it wrote is in them; a
 * pipe still held open by a child of the rank stays in the poll set. */
static void rank_drain(const struct job *job, int r) {
  struct rank *rk = &job->ranks[r];
  for (int i = 0; i < RUN_DRAIN_READS && stream_read(job, &rk->out); i++) {}
  for (int i = 0; i < RUN_DRAIN_READS && stream_read(job, &rk->err); i++) {}
}

/* ---- Stopping ------------------------------------------------------------ */

/* Signals every rank: the group reaches the ranks' own children too, and the
 * per-pid kill reaches a rank even if it left the group.  Unreaped pids
 * cannot have been reused. */
static void signal_all(const struct job *job, int sig) {
  if (job->pgid > 0) kill(-job->pgid, sig);
  for (int r = 0; r < job->n; r++)
    if (job->ranks[r].alive) kill(job->ranks[r].pid, sig);
}

static void kill_all(struct job *job) {
  signal_all(job, SIGKILL);
  job->killed = 1;
}

/* Decides the job's exit status and asks the ranks to stop with sig; SIGKILL
 * follows after the grace period. */
static void stop_job(struct job *job, int code, int sig) {
  job->exit_code = code;
  job->stopping = 1;
  signal_all(job, sig);
  job->kill_at = now_s() + job->grace_s;
  if (job->grace_s <= 0.0) kill_all(job);
}

static void report_exit(const struct job *job, int r, int status) {
  const struct rank *rk = &job->ranks[r];
  if (WIFEXITED(status)) {
    note("rank %d (pid %d) exited with status %d", r, (int)rk->pid,
         WEXITSTATUS(status));
  } else {
    int sig = WTERMSIG(status);
    note("rank %d (pid %d) killed by signal %d (%s)%s", r, (int)rk->pid, sig,
         signal_name(sig), WCOREDUMP(status) ? ", core dumped" : "");
  }
}

static void reap_ranks(struct job *job) {
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    int r = 0;
    while (r < job->n && !(job->ranks[r].alive && job->ranks[r].pid == pid)) r++;
    if (r == job->n) continue;
    job->ranks[r].alive = 0;
    job->nalive--;
    rank_drain(job, r);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) continue;
    /* The first failure decides; the ranks stopped because of it are quiet. */
    if (job->exit_code >= 0) continue;
    report_exit(job, r, status);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    stop_job(job, code, SIGTERM);
  }
}

/* SIGINT, SIGTERM or SIGHUP sent to the launcher: passed on to the ranks, so
 * they can shut down cleanly; a second one kills at once. */
static void on_stop_signal(struct job *job, int sig) {
  if (job->stopping && !job->killed) {
    note("%s received while stopping; killing all ranks", signal_name(sig));
    kill_all(job);
    return;
  }
  if (job->stopping) return;
  note("%s received; passing it to all ranks", signal_name(sig));
  stop_job(job, 128 + sig, sig);
}

static void read_signals(struct job *job) {
  struct signalfd_siginfo si;
  while (read(job->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
    if ((int)si.ssi_signo == SIGCHLD) reap_ranks(job);
    else on_stop_signal(job, (int)si.ssi_signo);
  }
  /* Coalesced SIGCHLDs: reaping again is cheap and misses nothing. */
  reap_ranks(job);
}

/* ---- Starting ranks ------------------------------------------------------ */

/* In the child: sets up the rank and executes prog; never returns. */
static void rank_exec(struct job *job, int r, int out_w, int err_w, int status_w,
                      pid_t launcher) {
  /* The launcher's stderr, for an exec failure: fd 2 becomes the pipe. */
  int errfd = fcntl(2, F_DUPFD_CLOEXEC, 3);
  /* A rank must not outlive a launcher that was killed; the check after the
   * prctl covers a launcher that died before it. */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != launcher) _exit(RUN_EXIT_INTERNAL);
  setpgid(0, job->pgid);
  int devnull = open("/dev/null", O_RDONLY);
  if (devnull >= 0 && devnull != 0) {
    dup2(devnull, 0);
    close(devnull);
  }
  dup2(out_w, 1);
  dup2(err_w, 2);
  char v[16];
  snprintf(v, sizeof v, "%d", r);
  setenv("HRING_RANK", v, 1);
  setenv("HRING_LOCAL_RANK", v, 1);
  snprintf(v, sizeof v, "%d", job->n);
  setenv("HRING_NRANKS", v, 1);
  setenv("HRING_LOCAL_SIZE", v, 1);
  setrlimit(RLIMIT_NOFILE, &job->orig_nofile);
  sigprocmask(SIG_SETMASK, &job->orig_mask, NULL);
  if (job->cpus && sched_setaffinity(0, sizeof job->cpus[r], &job->cpus[r]) != 0 && errfd >= 0)
    dprintf(errfd, "hring-run: rank %d left unpinned: %s\n", r, strerror(errno));
  execvp(job->argv[0], job->argv);
  int e = errno;
  if (errfd >= 0) dprintf(errfd, "hring-run: cannot execute %s: %s\n", job->argv[0], strerror(e));
  if (write(status_w, &e, sizeof e) < 0) {
    /* Nothing left to tell: the launcher sees the exit status. */
  }
  _exit(RUN_EXIT_EXEC);
}

/* Starts rank r.  Returns 0, 1 when exec failed in the child, -1 when the
 * launcher could not fork or make pipes. */
static int rank_start(struct job *job, int r) {
  struct rank *rk = &job->ranks[r];
  int outp[2], errp[2], stp[2], err;
  if (pipe2(outp, O_CLOEXEC) != 0) {
    err = errno;
    goto err;
  }
  if (pipe2(errp, O_CLOEXEC) != 0) {
    err = errno;
    goto err_out;
  }
  /* Closed by a successful exec, so a read of 0 bytes means "started". */
  if (pipe2(stp, O_CLOEXEC) != 0) {
    err = errno;
    goto err_err;
  }
  pid_t launcher = getpid();
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    err = errno;
    goto err_st;
  }
  if (pid == 0) rank_exec(job, r, outp[1], errp[1], stp[1], launcher);
  if (r == 0) job->pgid = pid;
  /* Also done here so the group exists before the next rank joins it; the
   * child may have exec'd already, and then this fails harmlessly. */
  setpgid(pid, job->pgid);
  close(outp[1]);
  close(errp[1]);
  close(stp[1]);
  rk->pid = pid;
  rk->alive = 1;
  job->nalive++;
  fcntl(outp[0], F_SETFL, O_NONBLOCK);
  fcntl(errp[0], F_SETFL, O_NONBLOCK);
  rk->out = (struct stream){.fd = outp[0], .to = stdout};
  rk->err = (struct stream){.fd = errp[0], .to = stderr};
  rk->out.taglen = (size_t)snprintf(rk->out.tag, sizeof rk->out.tag, "[%d] ", r);
  memcpy(rk->err.tag, rk->out.tag, sizeof rk->err.tag);
  rk->err.taglen = rk->out.taglen;
  int e;
  ssize_t k;
  do k = read(stp[0], &e, sizeof e);
  while (k < 0 && errno == EINTR);
  close(stp[0]);
  return k > 0 ? 1 : 0;

err_st:
  close(stp[0]);
  close(stp[1]);
err_err:
  close(errp[0]);
  close(errp[1]);
err_out:
  close(outp[0]);
  close(outp[1]);
err:
  note("cannot start rank %d: %s", r, strerror(err));
  return -1;
}

/* Signals the launcher handles through a signalfd.  A stop signal that was
 * ignored when the launcher started (nohup, a background job of a script)
 * stays ignored, for the launcher and for the ranks. */
static int setup_signals(struct job *job) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  const int stops[] = {SIGINT, SIGTERM, SIGHUP};
  for (size_t i = 0; i < sizeof stops / sizeof stops[0]; i++) {
    struct sigaction sa;
    if (sigaction(stops[i], NULL, &sa) == 0 && sa.sa_handler == SIG_IGN) continue;
    sigaddset(&set, stops[i]);
  }
  if (sigprocmask(SIG_BLOCK, &set, &job->orig_mask) != 0) return -1;
  job->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  return job->sigfd < 0 ? -1 : 0;
}

/* Makes sure fds 0-2 are open, so no pipe lands on them and a rank's
 * output cannot end up on a descriptor it did not expect. */
static void ensure_std_fds(void) {
  for (int fd = 0; fd < 3; fd++) {
    if (fcntl(fd, F_GETFD) != -1) continue;
    int n = open("/dev/null", O_RDWR);
    if (n >= 0 && n != fd) close(n);
  }
}

/* ---- Main loop ----------------------------------------------------------- */

static void run_loop(struct job *job) {
  size_t maxfds = 1 + 2 * (size_t)job->n;
  struct pollfd *pfd = calloc(maxfds, sizeof *pfd);
  int *who = calloc(maxfds, sizeof *who); /* 2*rank + (0 out, 1 err) */
  if (!pfd || !who) {
    note("out of memory");
    if (job->exit_code < 0) job->exit_code = RUN_EXIT_INTERNAL;
    kill_all(job);
  }
  while (job->nalive > 0) {
    nfds_t nfds = 0;
    if (pfd) {
      pfd[nfds++] = (struct pollfd){.fd = job->sigfd, .events = POLLIN};
      for (int r = 0; r < job->n; r++) {
        struct rank *rk = &job->ranks[r];
        if (rk->out.fd >= 0) {
          who[nfds] = 2 * r;
          pfd[nfds++] = (struct pollfd){.fd = rk->out.fd, .events = POLLIN};
        }
        if (rk->err.fd >= 0) {
          who[nfds] = 2 * r + 1;
          pfd[nfds++] = (struct pollfd){.fd = rk->err.fd, .events = POLLIN};
        }
      }
    }
    /* Sleep until the next deadline (the timeout, or the end of the grace
     * period), or without limit when there is none. */
    double t = now_s(), deadline = -1.0;
    if (job->timeout_s > 0.0 && !job->stopping) deadline = job->start + job->timeout_s;
    if (job->stopping && !job->killed) deadline = job->kill_at;
    int ms = -1;
    if (deadline >= 0.0) {
      double wait_s = deadline - t;
      ms = wait_s <= 0.0 ? 0 : wait_s > 1e6 ? 1000000000 : (int)(wait_s * 1000.0) + 1;
    }
    if (pfd) {
      int k = poll(pfd, nfds, ms);
      if (k < 0 && errno != EINTR) {
        note("poll failed: %s", strerror(errno));
        if (job->exit_code < 0) job->exit_code = RUN_EXIT_INTERNAL;
        kill_all(job);
      }
      if (k > 0) {
        if (pfd[0].revents) read_signals(job);
        /* One read per ready pipe per round, so no rank can hold the rest up. */
        for (nfds_t i = 1; i < nfds; i++) {
          if (!pfd[i].revents) continue;
          struct rank *rk = &job->ranks[who[i] / 2];
          stream_read(job, who[i] % 2 ? &rk->err : &rk->out);
        }
      }
    } else {
      /* Without memory for the poll set, only wait for the ranks to die. */
      struct pollfd one = {.fd = job->sigfd, .events = POLLIN};
      if (poll(&one, 1, 100) > 0) read_signals(job);
    }
    t = now_s();
    if (job->timeout_s > 0.0 && !job->stopping && t >= job->start + job->timeout_s) {
      note("timeout after %g s; stopping all ranks", job->timeout_s);
      stop_job(job, RUN_EXIT_TIMEOUT, SIGTERM);
    }
    if (job->stopping && !job->killed && t >= job->kill_at) {
      note("%d rank(s) still running %g s after being asked to stop; sending SIGKILL",
           job->nalive, job->grace_s);
      kill_all(job);
    }
    fflush(stdout);
    fflush(stderr);
  }
  /* Every rank is gone: print what is left in the pipes and finish the
   * unfinished lines.  Pipes still held open by leftover children of the
   * ranks are not waited for. */
  for (int r = 0; r < job->n; r++) {
    rank_drain(job, r);
    stream_close(job, &job->ranks[r].out);
    stream_close(job, &job->ranks[r].err);
  }
  fflush(stdout);
  fflush(stderr);
  free(pfd);
  free(who);
}

int main(int argc, char **argv) {
  static const struct option longopts[] = {
      {"help", no_argument, NULL, 'h'},
      {"no-prefix", no_argument, NULL, 'P'},
      {"grace", required_argument, NULL, 'g'},
      {"timeout", required_argument, NULL, 't'},
      {"bind", required_argument, NULL, 'b'},
      {NULL, 0, NULL, 0},
  };
  struct job job = {.n = 0, .prefix = 1, .grace_s = RUN_DEFAULT_GRACE_S,
                    .exit_code = -1, .sigfd = -1};
  long n = 0;
  int opt, have_n = 0, bind = RUN_BIND_AUTO;

  ensure_std_fds();
  /* Whole lines are written at once; flushed after every poll round. */
  setvbuf(stdout, NULL, _IOFBF, 1 << 16);
  setvbuf(stderr, NULL, _IOFBF, 1 << 16);
  /* "+": options end at the program's name, which keeps its own options. */
  while ((opt = getopt_long(argc, argv, "+hn:", longopts, NULL)) != -1) {
    switch (opt) {
      case 'h':
        usage(stdout);
        fflush(stdout);
        return 0;
      case 'n':
        if (parse_int(optarg, &n) != 0 || n < 1 || n > RUN_MAX_RANKS) {
          note("-n wants a number of ranks from 1 to %d, not '%s'", RUN_MAX_RANKS, optarg);
          return RUN_EXIT_USAGE;
        }
        have_n = 1;
        break;
      case 'P':
        job.prefix = 0;
        break;
      case 'g':
        if (parse_secs(optarg, &job.grace_s) != 0) {
          note("--grace wants seconds (0 or more), not '%s'", optarg);
          return RUN_EXIT_USAGE;
        }
        break;
      case 't':
        if (parse_secs(optarg, &job.timeout_s) != 0 || job.timeout_s <= 0.0) {
          note("--timeout wants seconds (more than 0), not '%s'", optarg);
          return RUN_EXIT_USAGE;
        }
        break;
      case 'b':
        if (!strcmp(optarg, "auto")) bind = RUN_BIND_AUTO;
        else if (!strcmp(optarg, "cores")) bind = RUN_BIND_CORES;
        else if (!strcmp(optarg, "none")) bind = RUN_BIND_NONE;
        else {
          note("--bind wants auto, cores or none, not '%s'", optarg);
          return RUN_EXIT_USAGE;
        }
        break;
      default:
        fputs("Try 'hring-run --help'.\n", stderr);
        fflush(stderr);
        return RUN_EXIT_USAGE;
    }
  }
  if (!have_n) {
    note("missing -n N (the number of ranks)");
    usage(stderr);
    fflush(stderr);
    return RUN_EXIT_USAGE;
  }
  if (optind >= argc) {
    note("no program to run");
    usage(stderr);
    fflush(stderr);
    return RUN_EXIT_USAGE;
  }
  job.n = (int)n;
  job.argv = argv + optind;
  int e = find_program(job.argv[0]);
  if (e != 0) {
    if (e == ENOENT && !strchr(job.argv[0], '/'))
      note("cannot find program '%s' in PATH", job.argv[0]);
    else
      note("cannot execute %s: %s", job.argv[0], strerror(e));
    return RUN_EXIT_USAGE;
  }

  if (raise_fd_limit(&job) != 0 || setup_job_env() != 0) return RUN_EXIT_INTERNAL;
  job.ranks = calloc((size_t)job.n, sizeof *job.ranks);
  if (!job.ranks) {
    note("out of memory");
    return RUN_EXIT_INTERNAL;
  }
  for (int r = 0; r < job.n; r++) job.ranks[r].out.fd = job.ranks[r].err.fd = -1;
  const char *lib_bind = getenv("HRING_BIND");
  cpu_set_t allowed;
  if (bind != RUN_BIND_NONE && !(lib_bind && *lib_bind) &&
      sched_getaffinity(0, sizeof allowed, &allowed) == 0) {
    job.cpus = calloc((size_t)job.n, sizeof *job.cpus);
    int cores = job.cpus ? run_bind_plan(&allowed, job.n, job.cpus) : 0;
    if (cores == 0 || (bind == RUN_BIND_AUTO && cores >= job.n)) {
      free(job.cpus); /* auto with a core per rank: the scheduler places them */
      job.cpus = NULL;
    }
  }
  if (setup_signals(&job) != 0) {
    note("cannot set up signal handling: %s", strerror(errno));
    return RUN_EXIT_INTERNAL;
  }

  job.start = now_s();
  for (int r = 0; r < job.n; r++) {
    int rc = rank_start(&job, r);
    if (rc == 0) continue;
    /* The child printed why exec failed; the ranks already running are
     * stopped, since the job cannot form without this one. */
    if (rc > 0) stop_job(&job, RUN_EXIT_USAGE, SIGTERM);
    else stop_job(&job, RUN_EXIT_INTERNAL, SIGTERM);
    break;
  }
  run_loop(&job);
  free(job.cpus);
  free(job.ranks);
  close(job.sigfd);
  return job.exit_code >= 0 ? job.exit_code : 0;
}
