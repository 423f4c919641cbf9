/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SL_ASSERT: invariants that stay checked in release builds.
 *
 * Assert what the code guarantees (offsets only grow, the high watermark never
 * passes the end offset); check and refuse what the outside sends. A failed
 * assertion logs the expression, file and line, then aborts: continuing with
 * broken invariants could acknowledge data that is not there.
 */
#ifndef SL_COMMON_ASSERT_H
#define SL_COMMON_ASSERT_H

_Noreturn void sl_assert_fail(const char *expr, const char *file, int line);

#define SL_ASSERT(expr)                                                                            \
    do {                                                                                           \
        if (__builtin_expect(!(expr), 0)) {                                                        \
            sl_assert_fail(#expr, __FILE__, __LINE__);                                             \
        }                                                                                          \
    } while (0)

#define SL_ARRAY_LEN(a)                    (sizeof(a) / sizeof((a)[0]))
#define SL_MIN(a, b)                       ((a) < (b) ? (a) : (b))
#define SL_MAX(a, b)                       ((a) > (b) ? (a) : (b))
#define SL_ALIGN_UP(x, a)                  (((x) + (a)-1) / (a) * (a))
#define SL_ALIGN_DOWN(x, a)                ((x) / (a) * (a))
#define SL_CONTAINER_OF(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

#endif
