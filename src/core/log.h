/*
 * log.h - leveled logging.  HRING_DEBUG=WARN|INFO|TRACE selects the level
 * (default WARN), HRING_DEBUG_SUBSYS a comma list of subsystems (INIT, NET,
 * SHM, COLL, ALL; default ALL), HRING_DEBUG_FILE a file name where %h is the
 * host and %p the pid (default stderr).  The level is checked before any
 * formatting, and errno is preserved across a log call.
 */
#ifndef HRING_CORE_LOG_H
#define HRING_CORE_LOG_H

enum { HRING_LOG_NONE = 0, HRING_LOG_WARN = 1, HRING_LOG_INFO = 2, HRING_LOG_TRACE = 3 };
enum {
  HRING_SUB_INIT = 1 << 0,
  HRING_SUB_NET = 1 << 1,
  HRING_SUB_SHM = 1 << 2,
  HRING_SUB_COLL = 1 << 3,
  HRING_SUB_ALL = 0xff
};

extern int hring__log_level; /* -1 until read from the environment */
extern int hring__log_subsys;

void hring__log_init(void);
void hring__log_emit(int level, int subsys, const char *file, int line,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Rank shown in log lines of this thread (-1: unknown yet). */
void hring__log_set_rank(int rank);

#define HRING_LOG(level, subsys, ...)                                         \
  do {                                                                        \
    if (__builtin_expect(hring__log_level < 0, 0)) hring__log_init();         \
    if (hring__log_level >= (level) && (hring__log_subsys & (subsys)))        \
      hring__log_emit((level), (subsys), __FILE__, __LINE__, __VA_ARGS__);    \
  } while (0)

#define HRING_WARN(subsys, ...) HRING_LOG(HRING_LOG_WARN, subsys, __VA_ARGS__)
#define HRING_INFO(subsys, ...) HRING_LOG(HRING_LOG_INFO, subsys, __VA_ARGS__)
#define HRING_TRACE(subsys, ...) HRING_LOG(HRING_LOG_TRACE, subsys, __VA_ARGS__)

#endif
