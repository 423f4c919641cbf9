/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The logger: formats one line into a stack buffer and writes it with a single
 * write(2), so lines from several threads never interleave.
 */
#include "common/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/assert.h"

enum slog_level slog_threshold = SLOG_INFO;

static const char *const level_names[] = {"ERROR", "WARN ", "INFO ", "DEBUG"};

void slog_set_level(enum slog_level level)
{
    slog_threshold = level;
}

int slog_parse_level(const char *name, enum slog_level *out)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (size_t i = 0; i < SL_ARRAY_LEN(names); i++) {
        if (strcmp(name, names[i]) == 0) {
            *out = (enum slog_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

void slog_write(enum slog_level level, const char *module, const char *fmt, ...)
{
    char line[1024];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);

    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     now.tv_nsec / 1000000, level_names[level], module);
    if (n < 0) {
        return;
    }
    size_t used = SL_MIN((size_t)n, sizeof(line) - 2);
    va_list ap;
    va_start(ap, fmt);
    n = vsnprintf(line + used, sizeof(line) - used - 1, fmt, ap);
    va_end(ap);
    if (n > 0) {
        used = SL_MIN(used + (size_t)n, sizeof(line) - 2);
    }
    line[used++] = '\n';
    /* Logging must never fail the caller; a short write to stderr is lost. */
    ssize_t written = write(STDERR_FILENO, line, used);
    (void)written;
}

_Noreturn void sl_assert_fail(const char *expr, const char *file, int line)
{
    slog_write(SLOG_ERROR, "assert", "assertion failed expr=\"%s\" at=%s:%d", expr, file, line);
    abort();
}
