/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Configuration: a file of `key = value` lines and `--set key=value` overrides,
 * read into a plain C struct that a table of key descriptors lays out.
 *
 * The caller owns the struct and the table; this module keeps nothing between
 * calls (no globals, no allocation that outlives a call), so every function is
 * reentrant. Each descriptor names a key (Kafka's name where Kafka has the
 * setting), its type, the field it fills (offset and size, see CONF_FIELD),
 * its default as text, and for numbers the allowed range. Parsing writes the
 * fields directly: strings are copied into fixed char arrays inside the
 * struct, so there is nothing to free.
 *
 * Field types, by key type:
 *   CONF_BOOL       bool             true | false (any case)
 *   CONF_INT32      int32_t          plain decimal integer, optional sign, in [min, max]
 *   CONF_INT64      int64_t          the same
 *   CONF_STRING     char[size]       at most size - 1 bytes, stored NUL-terminated
 *   CONF_ENUM       int              index of the value in `choices` (exact match)
 *   CONF_LISTENERS  struct conf_listeners   NAME://HOST:PORT[,NAME://HOST:PORT...]
 *
 * For the numeric types, min == max == 0 means the whole range of the type.
 * An enum field may be declared with the caller's own enum type when that type
 * has the size of an int and its values are the indexes of the choices, in order.
 *
 * Every refusal returns a negative errno and writes one line into errstr
 * (librdkafka's errstr/errstr_size convention; errstr may be NULL when
 * errstr_size is 0) naming the key, the value, where it came from and what is
 * allowed, for example
 *   config: log.segment.bytes = "12x" (sluice.conf:14): not an integer; allowed 14..2147483647
 * A descriptor table that breaks the rules above (wrong field size, min > max,
 * an enum without choices, two keys of one name) is a programmer error and
 * aborts through SL_ASSERT.
 */
#ifndef SL_COMMON_CONF_H
#define SL_COMMON_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* A configuration is a page or two of text; a megabyte means a wrong file
 * (a log, a binary), refused before it is parsed line by line. */
#ifndef CONF_FILE_BYTES_MAX
#define CONF_FILE_BYTES_MAX (1024 * 1024)
#endif
/* The longest line of a file or --set argument, without its newline. Long
 * enough for eight listeners with DNS names; a longer line is a mistake. */
#ifndef CONF_LINE_BYTES_MAX
#define CONF_LINE_BYTES_MAX 4096
#endif
/* Keys in one table. Bounds the duplicate-key bookkeeping that conf_load keeps
 * on its stack (4 bytes per key); Kafka's broker has about 250 settings. */
#ifndef CONF_KEYS_MAX
#define CONF_KEYS_MAX 512
#endif
/* A key name or an enum choice, with its NUL. Bounds the edit-distance rows of
 * the "did you mean" suggestion. */
#define CONF_NAME_BYTES_MAX 128
/* Listeners in one list: a broker has one per interface and role. */
#define CONF_LISTENERS_MAX 8
/* A listener name (PLAINTEXT, CONTROLLER, ...) with its NUL. */
#define CONF_LISTENER_NAME_BYTES 32
/* A host with its NUL: DNS names have at most 253 bytes. */
#define CONF_HOST_BYTES 256

_Static_assert(CONF_FILE_BYTES_MAX <= 64 * 1024 * 1024, "conf_load reads the file into memory");
_Static_assert(CONF_LINE_BYTES_MAX >= 256 && CONF_LINE_BYTES_MAX <= 65536,
               "conf_set copies a line onto the stack");
_Static_assert(CONF_KEYS_MAX <= 4096, "conf_load keeps a line number per key on the stack");

enum conf_type {
    CONF_BOOL,
    CONF_INT32,
    CONF_INT64,
    CONF_STRING,
    CONF_ENUM,
    CONF_LISTENERS,
};

/* One listener of `listeners`: the name upper-cased as Kafka does, the host
 * without IPv6 brackets (empty: every interface), the port (0: any free one). */
struct conf_listener {
    char name[CONF_LISTENER_NAME_BYTES];
    char host[CONF_HOST_BYTES];
    uint16_t port;
};

struct conf_listeners {
    uint32_t count;
    struct conf_listener list[CONF_LISTENERS_MAX];
};

struct conf_key {
    const char *name;           /* e.g. "log.segment.bytes" */
    enum conf_type type;        /* decides the field's C type, see above */
    size_t offset;              /* of the field in the caller's struct */
    size_t size;                /* of the field; for strings the capacity with the NUL */
    const char *def;            /* default, parsed like a value from the file; NULL = "" */
    int64_t min;                /* numbers: smallest allowed */
    int64_t max;                /* numbers: largest allowed */
    const char *const *choices; /* enums: allowed names, NULL-terminated */
    const char *doc;            /* one line for operators */
};

/* Fills .offset and .size of a descriptor from the struct and member, so the
 * size check against the key's type catches a table that names the wrong field:
 *   {.name = "node.id", .type = CONF_INT32, CONF_FIELD(struct broker_config, node_id), ...} */
#define CONF_FIELD(type, member)                                                                   \
    .offset = offsetof(type, member), .size = sizeof(((type *)0)->member)

/*
 * Sets every key of the table in config: first to its default, then as the
 * file at path says (skipped when path is NULL), then as each of the
 * overrides ("key=value", as given to `--set`) says, in order, so a later
 * override wins. A key may appear only once in the file; an unknown key is
 * refused, with a suggestion when a known key is within two edits.
 *
 * Returns 0, or on refusal -EINVAL (a bad line or value), -ENOENT, -EACCES,
 * ... (the file cannot be read), -EFBIG (the file is over CONF_FILE_BYTES_MAX)
 * or -ENOMEM, with the reason in errstr; config is then partly set and must
 * not be used. Borrows keys, path and overrides for the call.
 */
int conf_load(const struct conf_key *keys, size_t nkeys, void *config, const char *path,
              const char *const *overrides, size_t noverrides, char *errstr, size_t errstr_size);

/*
 * Applies one "key=value" assignment (whitespace around key and value is
 * trimmed, no comments). source names its origin in messages, e.g. "--set".
 * Returns 0 or -EINVAL with errstr set; on failure config is unchanged.
 */
int conf_set(const struct conf_key *keys, size_t nkeys, void *config, const char *assignment,
             const char *source, char *errstr, size_t errstr_size);

/*
 * Sets key name to value, both taken exactly as given (for settings that
 * arrive as pairs, such as topic configs in CreateTopics). Returns 0 or
 * -EINVAL with errstr set; on failure config is unchanged.
 */
int conf_set_value(const struct conf_key *keys, size_t nkeys, void *config, const char *name,
                   const char *value, const char *source, char *errstr, size_t errstr_size);

/* The descriptor of key name, or NULL. */
const struct conf_key *conf_find(const struct conf_key *keys, size_t nkeys, const char *name);

/*
 * Writes the effective value of key in config as text that parses back to the
 * same value (listeners in canonical form, IPv6 hosts in brackets). Returns 0,
 * or -ENOBUFS when buf_size is too small (buf then holds a truncated string
 * when buf_size > 0).
 */
int conf_format(const struct conf_key *key, const void *config, char *buf, size_t buf_size);

/* Prints every key of the table as "key = value", one per line in table order:
 * the effective configuration, itself a configuration file that loads back to
 * the same values (except a string that starts or ends with whitespace or holds
 * " #", which only conf_set and conf_set_value can set). */
void conf_dump(const struct conf_key *keys, size_t nkeys, const void *config, FILE *out);

#endif
