/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Configuration parser: defaults, then a file, then overrides, all through one
 * value parser driven by the caller's table of key descriptors.
 *
 * File grammar, one setting per physical line (no continuations, no escapes,
 * no quoting, unlike Java's .properties, because no Kafka setting needs them):
 *
 *   line    = ws* [ key ws* "=" ws* value ws* ] [ comment ]
 *   comment = "#" anything, at the start of the line or after whitespace
 *   ws      = space, tab, CR, FF, VT
 *
 * The first '=' splits key from value, so a value may hold '='; a '#' that
 * follows a non-space byte is part of the value (`a#b`). A UTF-8 byte order
 * mark at the start of the file is skipped. Lines end with LF or CRLF.
 *
 * Invariants: a value is parsed completely (into a union on the stack, or a
 * length check for strings) before its field is written, so a refused value
 * never leaves a field half set; string fields are zeroed past their NUL, so
 * two configs loaded from equal settings compare equal byte for byte.
 *
 * Messages follow one shape so an operator can grep them:
 *   config: KEY = "VALUE" (ORIGIN): REASON; allowed WHAT
 *   config: ORIGIN: REASON                   (a line that is not a setting)
 * where ORIGIN is FILE:LINE, "--set" (or the caller's source) or "default".
 */
#include "common/conf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/assert.h"

/* Values are quoted in messages up to this many bytes, so that a long value
 * cannot push the reason and the allowed values out of errstr. */
#define CONF_QUOTE_BYTES_MAX 64
/* A reason with its list of allowed values (enum choices are bounded by the
 * name limit, but a table may have many). */
#define CONF_REASON_BYTES 1024
/* An origin: a path and a line number, or a label. */
#define CONF_ORIGIN_BYTES (PATH_MAX + 16)
/* Text of any non-string value: the longest is a full listener list. */
#define CONF_VALUE_TEXT_BYTES 4096
/* An edit distance at most this far from a known key earns a suggestion. */
#define CONF_SUGGEST_DISTANCE_MAX 2

_Static_assert(CONF_VALUE_TEXT_BYTES >=
                   CONF_LISTENERS_MAX *
                       (CONF_LISTENER_NAME_BYTES + CONF_HOST_BYTES + sizeof("://[]:65535,")),
               "conf_dump formats a full listener list into one buffer");

/* Where a value came from: a line of a file, or a label ("--set", "default"). */
struct origin {
    const char *path; /* NULL for a label */
    unsigned line;
    const char *label;
};

/* What one call works on. first_line is set only while a file is read: the
 * line that first set each key (0: not yet), to refuse duplicates. */
struct conf_ctx {
    const struct conf_key *keys;
    size_t nkeys;
    void *config;
    char *errstr;
    size_t errstr_size;
    unsigned *first_line;
};

union conf_value {
    bool boolean;
    int32_t int32;
    int64_t int64;
    int choice;
    struct conf_listeners listeners;
};

/* ------------------------------------------------------------ messages */

__attribute__((format(printf, 3, 4))) static int fail(const struct conf_ctx *ctx, int err,
                                                      const char *fmt, ...)
{
    if (ctx->errstr_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ctx->errstr, ctx->errstr_size, fmt, ap);
        va_end(ap);
    }
    return err;
}

static void origin_text(const struct origin *origin, char *buf, size_t size)
{
    if (origin->path != NULL) {
        snprintf(buf, size, "%s:%u", origin->path, origin->line);
    } else {
        snprintf(buf, size, "%s", origin->label);
    }
}

/* A value as shown in messages: cut at CONF_QUOTE_BYTES_MAX, control bytes
 * replaced, so that a message stays one readable line. */
static void quote(const char *s, char *buf, size_t size)
{
    SL_ASSERT(size >= CONF_QUOTE_BYTES_MAX + sizeof("..."));
    size_t n = strnlen(s, CONF_QUOTE_BYTES_MAX + 1);
    bool cut = n > CONF_QUOTE_BYTES_MAX;
    if (cut) {
        n = CONF_QUOTE_BYTES_MAX - 3;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    strcpy(buf + n, cut ? "..." : "");
}

static int value_fail(const struct conf_ctx *ctx, const struct origin *origin, const char *name,
                      const char *value, const char *reason)
{
    char where[CONF_ORIGIN_BYTES];
    char name_text[CONF_QUOTE_BYTES_MAX + 4];
    char value_text[CONF_QUOTE_BYTES_MAX + 4];
    origin_text(origin, where, sizeof(where));
    quote(name, name_text, sizeof(name_text));
    quote(value, value_text, sizeof(value_text));
    return fail(ctx, -EINVAL, "config: %s = \"%s\" (%s): %s", name_text, value_text, where, reason);
}

static int64_t key_min(const struct conf_key *key)
{
    if (key->min != 0 || key->max != 0) {
        return key->min;
    }
    return key->type == CONF_INT32 ? INT32_MIN : INT64_MIN;
}

static int64_t key_max(const struct conf_key *key)
{
    if (key->min != 0 || key->max != 0) {
        return key->max;
    }
    return key->type == CONF_INT32 ? INT32_MAX : INT64_MAX;
}

/* Appends the choices, ", "-separated, to buf (which holds a string). */
static void append_choices(const struct conf_key *key, char *buf, size_t size)
{
    size_t used = strlen(buf);
    for (size_t i = 0; key->choices[i] != NULL && used < size; i++) {
        int n = snprintf(buf + used, size - used, "%s%s", i > 0 ? ", " : "", key->choices[i]);
        used += n < 0 ? 0 : (size_t)n;
    }
}

/* Writes "REASON; allowed WHAT" for a refused value of key. */
static void reason_allowed(const struct conf_key *key, const char *why, char *buf, size_t size)
{
    switch (key->type) {
    case CONF_BOOL:
        snprintf(buf, size, "%s; allowed true, false", why);
        break;
    case CONF_INT32:
    case CONF_INT64:
        snprintf(buf, size, "%s; allowed %" PRId64 "..%" PRId64, why, key_min(key), key_max(key));
        break;
    case CONF_STRING:
        snprintf(buf, size, "%s; allowed at most %zu bytes", why, key->size - 1);
        break;
    case CONF_ENUM:
        snprintf(buf, size, "%s; allowed ", why);
        append_choices(key, buf, size);
        break;
    case CONF_LISTENERS:
        snprintf(buf, size,
                 "%s; allowed NAME://HOST:PORT, comma-separated (at most %d), IPv6 hosts in "
                 "brackets",
                 why, CONF_LISTENERS_MAX);
        break;
    }
}

/* ----------------------------------------------------- the key table */

static size_t type_field_size(enum conf_type type)
{
    switch (type) {
    case CONF_BOOL:
        return sizeof(bool);
    case CONF_INT32:
        return sizeof(int32_t);
    case CONF_INT64:
        return sizeof(int64_t);
    case CONF_ENUM:
        return sizeof(int);
    case CONF_LISTENERS:
        return sizeof(struct conf_listeners);
    case CONF_STRING:
        break;
    }
    return 0;
}

/* The rules of conf.h for one descriptor; breaking them is a bug in the table. */
static void check_key(const struct conf_key *key)
{
    SL_ASSERT(key->name != NULL && key->name[0] != '\0');
    SL_ASSERT(strlen(key->name) < CONF_NAME_BYTES_MAX);
    SL_ASSERT((unsigned)key->type <= CONF_LISTENERS);
    if (key->type == CONF_STRING) {
        SL_ASSERT(key->size >= 1); /* room for the NUL */
    } else {
        SL_ASSERT(key->size == type_field_size(key->type)); /* CONF_FIELD names the wrong field */
    }
    if (key->type == CONF_INT32 || key->type == CONF_INT64) {
        SL_ASSERT(key_min(key) <= key_max(key));
        SL_ASSERT(key->type == CONF_INT64 ||
                  (key_min(key) >= INT32_MIN && key_max(key) <= INT32_MAX));
    }
    if (key->type == CONF_ENUM) {
        SL_ASSERT(key->choices != NULL && key->choices[0] != NULL);
        for (size_t i = 0; key->choices[i] != NULL; i++) {
            SL_ASSERT(strlen(key->choices[i]) < CONF_NAME_BYTES_MAX);
        }
    }
}

static int count_choices(const struct conf_key *key)
{
    int n = 0;
    while (key->choices[n] != NULL) {
        n++;
    }
    return n;
}

static void check_keys(const struct conf_key *keys, size_t nkeys)
{
    SL_ASSERT(nkeys <= CONF_KEYS_MAX);
    for (size_t i = 0; i < nkeys; i++) {
        check_key(&keys[i]);
        for (size_t j = 0; j < i; j++) {
            SL_ASSERT(strcmp(keys[i].name, keys[j].name) != 0); /* a key listed twice */
        }
    }
}

const struct conf_key *conf_find(const struct conf_key *keys, size_t nkeys, const char *name)
{
    for (size_t i = 0; i < nkeys; i++) {
        if (strcmp(keys[i].name, name) == 0) {
            return &keys[i];
        }
    }
    return NULL;
}

/* Optimal string alignment distance: insertions, deletions, substitutions and
 * swaps of neighbours each cost one, since a swap is the commonest typo. */
static unsigned edit_distance(const char *a, size_t alen, const char *b, size_t blen)
{
    SL_ASSERT(alen < CONF_NAME_BYTES_MAX && blen < CONF_NAME_BYTES_MAX);
    unsigned rows[3][CONF_NAME_BYTES_MAX + 1];
    unsigned *before = rows[0], *prev = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= blen; j++) {
        prev[j] = (unsigned)j;
    }
    for (size_t i = 1; i <= alen; i++) {
        cur[0] = (unsigned)i;
        for (size_t j = 1; j <= blen; j++) {
            unsigned cost = a[i - 1] != b[j - 1];
            unsigned best = SL_MIN(prev[j] + 1, cur[j - 1] + 1);
            best = SL_MIN(best, prev[j - 1] + cost);
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
                best = SL_MIN(best, before[j - 2] + 1);
            }
            cur[j] = best;
        }
        unsigned *oldest = before;
        before = prev;
        prev = cur;
        cur = oldest;
    }
    return prev[blen];
}

/* The known key nearest to name within CONF_SUGGEST_DISTANCE_MAX edits (the
 * first in the table on a tie), or NULL. */
static const char *suggest(const struct conf_ctx *ctx, const char *name)
{
    size_t len = strlen(name);
    if (len >= CONF_NAME_BYTES_MAX) {
        return NULL;
    }
    const char *best = NULL;
    unsigned best_distance = CONF_SUGGEST_DISTANCE_MAX + 1;
    for (size_t i = 0; i < ctx->nkeys; i++) {
        const char *known = ctx->keys[i].name;
        size_t known_len = strlen(known);
        size_t gap = known_len > len ? known_len - len : len - known_len;
        if (gap > CONF_SUGGEST_DISTANCE_MAX) {
            continue; /* the distance is at least the difference in length */
        }
        unsigned distance = edit_distance(name, len, known, known_len);
        if (distance < best_distance) {
            best = known;
            best_distance = distance;
        }
    }
    return best;
}

/* ------------------------------------------------------------ values */

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static char to_upper(char c)
{
    return (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
}

/* Kafka's integers: an optional sign and decimal digits, nothing else (no
 * spaces, no hex, no units). Returns 0, -EINVAL (not an integer) or -ERANGE. */
static int parse_integer(const char *s, int64_t *out)
{
    bool negative = s[0] == '-';
    const char *p = (s[0] == '-' || s[0] == '+') ? s + 1 : s;
    if (*p == '\0') {
        return -EINVAL;
    }
    uint64_t magnitude = 0;
    bool overflow = false;
    for (; *p != '\0'; p++) {
        if (!is_digit(*p)) {
            return -EINVAL; /* checked to the end: "99999999999999999999x" is not an integer */
        }
        unsigned digit = (unsigned)(*p - '0');
        if (magnitude > (UINT64_MAX - digit) / 10) {
            overflow = true;
        } else {
            magnitude = magnitude * 10 + digit;
        }
    }
    uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    if (overflow || magnitude > limit) {
        return -ERANGE;
    }
    /* -(m - 1) - 1 reaches INT64_MIN without overflowing. */
    *out = (negative && magnitude > 0) ? -(int64_t)(magnitude - 1) - 1 : (int64_t)magnitude;
    return 0;
}

static int parse_number(const struct conf_key *key, const char *value, int64_t *out, char *reason,
                        size_t reason_size)
{
    int rc = parse_integer(value, out);
    if (rc == -EINVAL) {
        reason_allowed(key, "not an integer", reason, reason_size);
        return rc;
    }
    if (rc == -ERANGE || *out < key_min(key) || *out > key_max(key)) {
        reason_allowed(key, "out of range", reason, reason_size);
        return -ERANGE;
    }
    return 0;
}

static int parse_choice(const struct conf_key *key, const char *value, int *out, char *reason,
                        size_t reason_size)
{
    for (int i = 0; key->choices[i] != NULL; i++) {
        if (strcmp(key->choices[i], value) == 0) {
            *out = i;
            return 0;
        }
    }
    reason_allowed(key, "unknown value", reason, reason_size);
    return -EINVAL;
}

/* Kafka's host characters; ':' only inside brackets, where it separates the
 * groups of an IPv6 address instead of the port. */
static int check_host(const char *host, size_t len, bool bracketed, unsigned index, char *why,
                      size_t why_size)
{
    for (size_t i = 0; i < len; i++) {
        char c = host[i];
        if (c == ':' && !bracketed) {
            snprintf(why, why_size, "listener %u has an IPv6 host without brackets", index);
            return -EINVAL;
        }
        if (!is_alnum(c) && c != '.' && c != '-' && c != '_' && c != '%' && c != ':') {
            snprintf(why, why_size,
                     "listener %u host has a byte other than letters, digits, '.', '-', '_', "
                     "'%%' and ':'",
                     index);
            return -EINVAL;
        }
    }
    if (bracketed && len == 0) {
        snprintf(why, why_size, "listener %u has empty brackets", index);
        return -EINVAL;
    }
    if (len >= CONF_HOST_BYTES) {
        snprintf(why, why_size, "listener %u host is longer than %d bytes", index,
                 CONF_HOST_BYTES - 1);
        return -EINVAL;
    }
    return 0;
}

/* Decimal digits only, 0..65535 (0: the kernel picks a free port, for tests). */
static int parse_port(const char *s, size_t len, uint16_t *out)
{
    unsigned number = 0;
    if (len == 0) {
        return -EINVAL;
    }
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(s[i])) {
            return -EINVAL;
        }
        number = number * 10 + (unsigned)(s[i] - '0');
        if (number > UINT16_MAX) {
            return -EINVAL; /* stops before the sum can overflow */
        }
    }
    *out = (uint16_t)number;
    return 0;
}

/* Splits HOST:PORT (HOST may be [IPv6]) into out->host and out->port. */
static int parse_host_port(const char *s, size_t len, unsigned index, struct conf_listener *out,
                           char *why, size_t why_size)
{
    const char *host = s, *port;
    size_t host_len;
    bool bracketed = len > 0 && s[0] == '[';
    if (bracketed) {
        const char *close = memchr(s, ']', len);
        if (close == NULL) {
            snprintf(why, why_size, "listener %u has '[' without ']'", index);
            return -EINVAL;
        }
        host = s + 1;
        host_len = (size_t)(close - host);
        if (close + 1 == s + len || close[1] != ':') {
            snprintf(why, why_size, "listener %u has no \":PORT\" after ']'", index);
            return -EINVAL;
        }
        port = close + 2;
    } else {
        /* The last ':' so that an unbracketed IPv6 host is reported as such. */
        const char *colon = memrchr(s, ':', len);
        if (colon == NULL) {
            snprintf(why, why_size, "listener %u has no \":PORT\"", index);
            return -EINVAL;
        }
        host_len = (size_t)(colon - s);
        port = colon + 1;
    }
    int rc = check_host(host, host_len, bracketed, index, why, why_size);
    if (rc < 0) {
        return rc;
    }
    if (parse_port(port, (size_t)(s + len - port), &out->port) < 0) {
        snprintf(why, why_size, "listener %u port is not a number 0..65535", index);
        return -EINVAL;
    }
    memcpy(out->host, host, host_len);
    out->host[host_len] = '\0';
    return 0;
}

/* One NAME://HOST:PORT, already trimmed; index counts from 1 for messages. */
static int parse_listener(const char *s, size_t len, unsigned index, struct conf_listener *out,
                          char *why, size_t why_size)
{
    if (len == 0) {
        snprintf(why, why_size, "listener %u is empty", index);
        return -EINVAL;
    }
    const char *sep = memmem(s, len, "://", 3);
    if (sep == NULL) {
        snprintf(why, why_size, "listener %u has no \"://\"", index);
        return -EINVAL;
    }
    size_t name_len = (size_t)(sep - s);
    if (name_len == 0) {
        snprintf(why, why_size, "listener %u has no name before \"://\"", index);
        return -EINVAL;
    }
    if (name_len >= sizeof(out->name)) {
        snprintf(why, why_size, "listener %u name is longer than %zu bytes", index,
                 sizeof(out->name) - 1);
        return -EINVAL;
    }
    for (size_t i = 0; i < name_len; i++) {
        if (!is_alnum(s[i]) && s[i] != '_' && s[i] != '-') {
            snprintf(why, why_size,
                     "listener %u name has a byte other than letters, digits, '_' "
                     "and '-'",
                     index);
            return -EINVAL;
        }
        /* Kafka compares listener names upper-cased (ListenerName.normalised). */
        out->name[i] = to_upper(s[i]);
    }
    out->name[name_len] = '\0';
    return parse_host_port(sep + 3, len - name_len - 3, index, out, why, why_size);
}

static int parse_listeners(const char *value, struct conf_listeners *out, char *why,
                           size_t why_size)
{
    memset(out, 0, sizeof(*out));
    const char *p = value;
    while (is_space(*p)) {
        p++;
    }
    if (*p == '\0') {
        return 0; /* no listeners: the broker decides whether that is allowed */
    }
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *end = comma != NULL ? comma : p + strlen(p);
        while (p < end && is_space(*p)) {
            p++;
        }
        while (end > p && is_space(end[-1])) {
            end--;
        }
        unsigned index = out->count + 1;
        if (out->count == CONF_LISTENERS_MAX) {
            snprintf(why, why_size, "more than %d listeners", CONF_LISTENERS_MAX);
            return -EINVAL;
        }
        struct conf_listener *listener = &out->list[out->count];
        int rc = parse_listener(p, (size_t)(end - p), index, listener, why, why_size);
        if (rc < 0) {
            return rc;
        }
        for (uint32_t i = 0; i < out->count; i++) {
            if (strcmp(out->list[i].name, listener->name) == 0) {
                snprintf(why, why_size, "listeners %u and %u are both named %s", i + 1, index,
                         listener->name);
                return -EINVAL;
            }
        }
        out->count++;
        if (comma == NULL) {
            return 0;
        }
        p = comma + 1;
    }
}

/* Parses value for key into *out (strings are only measured); on refusal
 * writes "REASON; allowed WHAT" into reason. */
static int parse_value(const struct conf_key *key, const char *value, union conf_value *out,
                       char *reason, size_t reason_size)
{
    int64_t number = 0;
    int rc = 0;
    char why[CONF_REASON_BYTES / 2];
    switch (key->type) {
    case CONF_BOOL:
        if (strcasecmp(value, "true") != 0 && strcasecmp(value, "false") != 0) {
            reason_allowed(key, "not a boolean", reason, reason_size);
            return -EINVAL;
        }
        out->boolean = strcasecmp(value, "true") == 0;
        return 0;
    case CONF_INT32:
        rc = parse_number(key, value, &number, reason, reason_size);
        if (rc == 0) {
            out->int32 = (int32_t)number; /* in range: check_key bounds INT32 keys */
        }
        return rc;
    case CONF_INT64:
        rc = parse_number(key, value, &number, reason, reason_size);
        if (rc == 0) {
            out->int64 = number;
        }
        return rc;
    case CONF_STRING:
        if (strlen(value) >= key->size) {
            snprintf(why, sizeof(why), "too long (%zu bytes)", strlen(value));
            reason_allowed(key, why, reason, reason_size);
            return -EINVAL;
        }
        return 0;
    case CONF_ENUM:
        return parse_choice(key, value, &out->choice, reason, reason_size);
    case CONF_LISTENERS:
        rc = parse_listeners(value, &out->listeners, why, sizeof(why));
        if (rc < 0) {
            reason_allowed(key, why, reason, reason_size);
        }
        return rc;
    }
    SL_ASSERT(!"unknown conf_type"); /* check_key admits only the types above */
    return -EINVAL;
}

static void store_value(const struct conf_key *key, void *config, const union conf_value *v,
                        const char *value)
{
    char *field = (char *)config + key->offset;
    switch (key->type) {
    case CONF_BOOL:
        memcpy(field, &v->boolean, sizeof(v->boolean));
        break;
    case CONF_INT32:
        memcpy(field, &v->int32, sizeof(v->int32));
        break;
    case CONF_INT64:
        memcpy(field, &v->int64, sizeof(v->int64));
        break;
    case CONF_STRING:
        SL_ASSERT(strlen(value) < key->size); /* parse_value measured it */
        memset(field, 0, key->size);
        memcpy(field, value, strlen(value));
        break;
    case CONF_ENUM:
        memcpy(field, &v->choice, sizeof(v->choice));
        break;
    case CONF_LISTENERS:
        memcpy(field, &v->listeners, sizeof(v->listeners));
        break;
    }
}

static int apply(const struct conf_ctx *ctx, const struct conf_key *key,
                 const struct origin *origin, const char *value)
{
    union conf_value parsed;
    char reason[CONF_REASON_BYTES];
    check_key(key);
    memset(&parsed, 0, sizeof(parsed));
    if (parse_value(key, value, &parsed, reason, sizeof(reason)) < 0) {
        return value_fail(ctx, origin, key->name, value, reason);
    }
    store_value(key, ctx->config, &parsed, value);
    return 0;
}

/* ------------------------------------------------------------- lines */

/* Sets key name to value, refusing unknown keys and, within a file, keys
 * already set by an earlier line. */
static int assign(const struct conf_ctx *ctx, const struct origin *origin, const char *name,
                  const char *value)
{
    const struct conf_key *key = conf_find(ctx->keys, ctx->nkeys, name);
    if (key == NULL) {
        const char *near = suggest(ctx, name);
        char reason[CONF_REASON_BYTES];
        snprintf(reason, sizeof(reason), "unknown key%s%s%s", near != NULL ? "; did you mean " : "",
                 near != NULL ? near : "", near != NULL ? "?" : "");
        return value_fail(ctx, origin, name, value, reason);
    }
    if (ctx->first_line != NULL) {
        unsigned *first = &ctx->first_line[key - ctx->keys];
        SL_ASSERT(origin->path != NULL); /* duplicates are tracked within a file only */
        if (*first != 0) {
            char reason[CONF_ORIGIN_BYTES + 64];
            snprintf(reason, sizeof(reason), "duplicate key; first set at %s:%u", origin->path,
                     *first);
            return value_fail(ctx, origin, name, value, reason);
        }
        *first = origin->line;
    }
    return apply(ctx, key, origin, value);
}

static char *trim(char *s)
{
    while (is_space(*s)) {
        s++;
    }
    size_t len = strlen(s);
    while (len > 0 && is_space(s[len - 1])) {
        s[--len] = '\0';
    }
    return s;
}

/* Cuts a trailing comment: a '#' at the start or after whitespace. */
static void cut_comment(char *s)
{
    for (char *p = s; *p != '\0'; p++) {
        if (*p == '#' && (p == s || is_space(p[-1]))) {
            *p = '\0';
            return;
        }
    }
}

/* Applies one line of text (modified in place): blank, comment or key = value. */
static int assign_line(const struct conf_ctx *ctx, const struct origin *origin, char *text,
                       bool comments)
{
    char where[CONF_ORIGIN_BYTES];
    char shown[CONF_QUOTE_BYTES_MAX + 4];
    if (comments) {
        cut_comment(text);
    }
    char *line = trim(text);
    if (comments && line[0] == '\0') {
        return 0;
    }
    char *eq = strchr(line, '=');
    if (eq == NULL || eq == line) {
        origin_text(origin, where, sizeof(where));
        quote(line, shown, sizeof(shown));
        return fail(ctx, -EINVAL, "config: %s: %s, got \"%s\"", where,
                    eq == NULL ? "expected key = value" : "no key before '='", shown);
    }
    *eq = '\0';
    return assign(ctx, origin, trim(line), trim(eq + 1));
}

/* Applies every line of text[0, len); text[len] must be writable. */
static int parse_text(const struct conf_ctx *ctx, const char *path, char *text, size_t len)
{
    char *p = text, *end = text + len;
    struct origin origin = {.path = path, .line = 0};
    if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0) {
        p += 3; /* a UTF-8 byte order mark, as some editors write */
    }
    while (p < end) {
        origin.line++;
        char *newline = memchr(p, '\n', (size_t)(end - p));
        char *line_end = newline != NULL ? newline : end;
        size_t line_len = (size_t)(line_end - p);
        if (line_len > CONF_LINE_BYTES_MAX) {
            return fail(ctx, -EINVAL, "config: %s:%u: line longer than %d bytes", path, origin.line,
                        CONF_LINE_BYTES_MAX);
        }
        if (memchr(p, '\0', line_len) != NULL) {
            return fail(ctx, -EINVAL, "config: %s:%u: NUL byte; not a text file", path,
                        origin.line);
        }
        *line_end = '\0';
        int rc = assign_line(ctx, &origin, p, true);
        if (rc < 0) {
            return rc;
        }
        p = line_end + 1;
    }
    return 0;
}

/* Reads at most CONF_FILE_BYTES_MAX + 1 bytes of path into buf: one more than
 * allowed is enough to know the file is too large, without trusting st_size
 * (the path may be a pipe). Returns 0, -EFBIG or -errno. */
static int read_file(const char *path, char *buf, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    size_t total = 0;
    int rc = 0;
    while (total <= CONF_FILE_BYTES_MAX) {
        ssize_t n = read(fd, buf + total, CONF_FILE_BYTES_MAX + 1 - total);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            rc = -errno;
            break;
        }
        if (n == 0) {
            break;
        }
        total += (size_t)n;
    }
    close(fd);
    if (rc == 0 && total > CONF_FILE_BYTES_MAX) {
        rc = -EFBIG;
    }
    *len = total;
    return rc;
}

static int load_file(const struct conf_ctx *ctx, const char *path)
{
    /* One byte more than the limit to detect a larger file, one for a NUL
     * after a last line without a newline. */
    char *buf = malloc(CONF_FILE_BYTES_MAX + 2);
    if (buf == NULL) {
        return fail(ctx, -ENOMEM, "config: cannot read %s: out of memory", path);
    }
    size_t len = 0;
    int rc = read_file(path, buf, &len);
    if (rc == -EFBIG) {
        rc = fail(ctx, rc, "config: %s is larger than %d bytes", path, CONF_FILE_BYTES_MAX);
    } else if (rc < 0) {
        char text[128];
        rc = fail(ctx, rc, "config: cannot read %s: %s", path, strerror_r(-rc, text, sizeof(text)));
    } else {
        rc = parse_text(ctx, path, buf, len);
    }
    free(buf);
    return rc;
}

/* ---------------------------------------------------------- public API */

static void clear_errstr(char *errstr, size_t errstr_size)
{
    if (errstr_size > 0) {
        errstr[0] = '\0';
    }
}

int conf_set(const struct conf_key *keys, size_t nkeys, void *config, const char *assignment,
             const char *source, char *errstr, size_t errstr_size)
{
    SL_ASSERT(source != NULL);
    struct conf_ctx ctx = {.keys = keys,
                           .nkeys = nkeys,
                           .config = config,
                           .errstr = errstr,
                           .errstr_size = errstr_size};
    struct origin origin = {.label = source};
    clear_errstr(errstr, errstr_size);
    size_t len = strlen(assignment);
    if (len > CONF_LINE_BYTES_MAX) {
        return fail(&ctx, -EINVAL, "config: %s: longer than %d bytes", source, CONF_LINE_BYTES_MAX);
    }
    /* A copy to trim in place; the bound above keeps it on the stack. */
    char line[CONF_LINE_BYTES_MAX + 1];
    memcpy(line, assignment, len + 1);
    return assign_line(&ctx, &origin, line, false);
}

int conf_set_value(const struct conf_key *keys, size_t nkeys, void *config, const char *name,
                   const char *value, const char *source, char *errstr, size_t errstr_size)
{
    SL_ASSERT(source != NULL);
    struct conf_ctx ctx = {.keys = keys,
                           .nkeys = nkeys,
                           .config = config,
                           .errstr = errstr,
                           .errstr_size = errstr_size};
    struct origin origin = {.label = source};
    clear_errstr(errstr, errstr_size);
    return assign(&ctx, &origin, name, value);
}

int conf_load(const struct conf_key *keys, size_t nkeys, void *config, const char *path,
              const char *const *overrides, size_t noverrides, char *errstr, size_t errstr_size)
{
    check_keys(keys, nkeys);
    clear_errstr(errstr, errstr_size);
    struct conf_ctx ctx = {.keys = keys,
                           .nkeys = nkeys,
                           .config = config,
                           .errstr = errstr,
                           .errstr_size = errstr_size};
    struct origin defaults = {.label = "default"};
    for (size_t i = 0; i < nkeys; i++) {
        int rc = apply(&ctx, &keys[i], &defaults, keys[i].def != NULL ? keys[i].def : "");
        if (rc < 0) {
            return rc;
        }
    }
    if (path != NULL) {
        unsigned first_line[CONF_KEYS_MAX] = {0};
        ctx.first_line = first_line;
        int rc = load_file(&ctx, path);
        ctx.first_line = NULL;
        if (rc < 0) {
            return rc;
        }
    }
    for (size_t i = 0; i < noverrides; i++) {
        int rc = conf_set(keys, nkeys, config, overrides[i], "--set", errstr, errstr_size);
        if (rc < 0) {
            return rc;
        }
    }
    return 0;
}

/* ------------------------------------------------------------- output */

static int format_listeners(const struct conf_listeners *listeners, char *buf, size_t buf_size)
{
    size_t used = 0;
    SL_ASSERT(listeners->count <= CONF_LISTENERS_MAX);
    if (buf_size == 0) {
        return -ENOBUFS;
    }
    buf[0] = '\0';
    for (uint32_t i = 0; i < listeners->count; i++) {
        const struct conf_listener *l = &listeners->list[i];
        bool ipv6 = strchr(l->host, ':') != NULL; /* brackets keep the port apart */
        int n = snprintf(buf + used, buf_size - used, "%s%s://%s%s%s:%u", i > 0 ? "," : "", l->name,
                         ipv6 ? "[" : "", l->host, ipv6 ? "]" : "", l->port);
        if (n < 0 || (size_t)n >= buf_size - used) {
            return -ENOBUFS;
        }
        used += (size_t)n;
    }
    return 0;
}

int conf_format(const struct conf_key *key, const void *config, char *buf, size_t buf_size)
{
    const char *field = (const char *)config + key->offset;
    union conf_value v;
    int n = 0;
    check_key(key);
    switch (key->type) {
    case CONF_BOOL:
        memcpy(&v.boolean, field, sizeof(v.boolean));
        n = snprintf(buf, buf_size, "%s", v.boolean ? "true" : "false");
        break;
    case CONF_INT32:
        memcpy(&v.int32, field, sizeof(v.int32));
        n = snprintf(buf, buf_size, "%" PRId32, v.int32);
        break;
    case CONF_INT64:
        memcpy(&v.int64, field, sizeof(v.int64));
        n = snprintf(buf, buf_size, "%" PRId64, v.int64);
        break;
    case CONF_STRING:
        n = snprintf(buf, buf_size, "%.*s", (int)strnlen(field, key->size), field);
        break;
    case CONF_ENUM:
        memcpy(&v.choice, field, sizeof(v.choice));
        /* Only parse_choice writes the field, with an index into choices. */
        SL_ASSERT(v.choice >= 0 && v.choice < count_choices(key));
        n = snprintf(buf, buf_size, "%s", key->choices[v.choice]);
        break;
    case CONF_LISTENERS:
        return format_listeners((const struct conf_listeners *)(const void *)field, buf, buf_size);
    }
    return (n < 0 || (size_t)n >= buf_size) ? -ENOBUFS : 0;
}

void conf_dump(const struct conf_key *keys, size_t nkeys, const void *config, FILE *out)
{
    char text[CONF_VALUE_TEXT_BYTES];
    for (size_t i = 0; i < nkeys; i++) {
        const struct conf_key *key = &keys[i];
        if (key->type == CONF_STRING) {
            /* Strings may be longer than the buffer; print them from the field. */
            const char *field = (const char *)config + key->offset;
            int len = (int)strnlen(field, key->size);
            fprintf(out, "%s =%s%.*s\n", key->name, len > 0 ? " " : "", len, field);
            continue;
        }
        int rc = conf_format(key, config, text, sizeof(text));
        SL_ASSERT(rc == 0); /* CONF_VALUE_TEXT_BYTES holds any non-string value */
        fprintf(out, "%s =%s%s\n", key->name, text[0] != '\0' ? " " : "", text);
    }
}
