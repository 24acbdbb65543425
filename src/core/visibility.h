/* visibility.h - marks the symbols the shared library exports (everything
 * else is built with -fvisibility=hidden). */
#ifndef HRING_CORE_VISIBILITY_H
#define HRING_CORE_VISIBILITY_H
#define HRING_API __attribute__((visibility("default")))
#endif
