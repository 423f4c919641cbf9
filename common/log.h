/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One-line structured logs: time, level, module, message, key=value fields.
 *
 *   2026-11-22T05:40:00.123Z WARN  storage segment rolled base=0 bytes=1048576
 *
 * The level is the process's single piece of mutable global state: it is set
 * once at start-up (slog_set_level) and only read afterwards. Arguments are not
 * evaluated when the level is below the threshold.
 */
#ifndef SL_COMMON_LOG_H
#define SL_COMMON_LOG_H

enum slog_level {
    SLOG_ERROR = 0,
    SLOG_WARN = 1,
    SLOG_INFO = 2,
    SLOG_DEBUG = 3,
};

extern enum slog_level slog_threshold;

void slog_set_level(enum slog_level level);
/* Parses "error", "warn", "info" or "debug"; returns 0 or -EINVAL. */
int slog_parse_level(const char *name, enum slog_level *out);
void slog_write(enum slog_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define LOG_AT(level, module, ...)                                                                 \
    do {                                                                                           \
        if ((level) <= slog_threshold) {                                                           \
            slog_write((level), (module), __VA_ARGS__);                                            \
        }                                                                                          \
    } while (0)

#define LOG_ERROR(module, ...) LOG_AT(SLOG_ERROR, module, __VA_ARGS__)
#define LOG_WARN(module, ...)  LOG_AT(SLOG_WARN, module, __VA_ARGS__)
#define LOG_INFO(module, ...)  LOG_AT(SLOG_INFO, module, __VA_ARGS__)
#define LOG_DEBUG(module, ...) LOG_AT(SLOG_DEBUG, module, __VA_ARGS__)

#endif
