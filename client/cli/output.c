/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Output of the admin commands: tables with aligned columns for people
 * (cells collected first, widths measured, then printed two spaces apart,
 * the last column unpadded), and JSON strings escaped for scripts (every
 * byte below 0x20, quote and backslash escaped; other bytes pass, so valid
 * UTF-8 stays valid).
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/cli/cli.h"

void cli_table_init(struct cli_table *t, size_t cols)
{
    *t = (struct cli_table){.cols = cols};
}

void cli_table_cell(struct cli_table *t, const char *fmt, ...)
{
    if (t->truncated) {
        return;
    }
    if (t->count == t->cap) {
        size_t cap = t->cap == 0 ? 64 : t->cap * 2;
        char **more = cap <= CLI_TABLE_CELLS_MAX ? realloc(t->cells, cap * sizeof(*more)) : NULL;
        if (more == NULL) {
            t->truncated = true;
            return;
        }
        t->cells = more;
        t->cap = cap;
    }
    va_list ap;
    va_start(ap, fmt);
    char *cell = NULL;
    if (vasprintf(&cell, fmt, ap) < 0) {
        cell = NULL;
    }
    va_end(ap);
    t->cells[t->count++] = cell; /* NULL (no memory) prints as empty */
}

void cli_table_print(struct cli_table *t, FILE *out)
{
    size_t *width = calloc(t->cols, sizeof(*width));
    for (size_t i = 0; width != NULL && i < t->count; i++) {
        size_t len = t->cells[i] != NULL ? strlen(t->cells[i]) : 0;
        width[i % t->cols] = len > width[i % t->cols] ? len : width[i % t->cols];
    }
    for (size_t i = 0; i < t->count; i++) {
        size_t col = i % t->cols;
        const char *cell = t->cells[i] != NULL ? t->cells[i] : "";
        bool last = col == t->cols - 1 || i == t->count - 1;
        if (last || width == NULL) {
            fprintf(out, "%s\n", cell);
        } else {
            fprintf(out, "%-*s  ", (int)width[col], cell);
        }
        free(t->cells[i]);
    }
    if (t->truncated) {
        fprintf(out, "... (more rows than this table holds)\n");
    }
    free(width);
    free(t->cells);
    *t = (struct cli_table){.cols = t->cols};
}

void cli_json_str(FILE *out, const char *s)
{
    if (s == NULL) {
        fputs("null", out);
        return;
    }
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\') {
            fputc('\\', out);
            fputc(*p, out);
        } else if (*p == '\n') {
            fputs("\\n", out);
        } else if (*p == '\t') {
            fputs("\\t", out);
        } else if (*p == '\r') {
            fputs("\\r", out);
        } else if (*p < 0x20 || *p == 0x7F) {
            fprintf(out, "\\u%04x", *p);
        } else {
            fputc(*p, out);
        }
    }
    fputc('"', out);
}

void cli_json_ids(FILE *out, const int32_t *ids, size_t n)
{
    fputc('[', out);
    for (size_t i = 0; i < n; i++) {
        fprintf(out, i > 0 ? ",%d" : "%d", ids[i]);
    }
    fputc(']', out);
}

const char *cli_ids_str(char *buf, size_t size, const int32_t *ids, size_t n)
{
    size_t off = 0;
    int w = snprintf(buf, size, "[");
    off = w > 0 ? (size_t)w : 0;
    for (size_t i = 0; i < n && off < size; i++) {
        w = snprintf(buf + off, size - off, i > 0 ? ",%d" : "%d", ids[i]);
        off += w > 0 ? (size_t)w : 0;
    }
    if (off < size) {
        snprintf(buf + off, size - off, "]");
    }
    return buf;
}
