/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sluice consume TOPIC: reads every partition of a topic (or one, -p N)
 * from -o beginning|end|OFFSET|@TIMESTAMP with a consumer of manual
 * assignment, or, with -g GROUP, the partitions the group gives this member
 * from the group's committed offsets (-o beginning|end: where a partition
 * without one starts), committing what it printed as it goes and when it
 * stops; and prints each record: by default its value and a
 * newline; with -f FORMAT as kcat's -f does; with --json as one JSON object
 * a line. -e stops once every partition read has reached its end (the high
 * watermark as of the fetch that got there), -n COUNT after COUNT records.
 *
 * Before reading, it asks for the topic's partitions, so an unreachable
 * broker or a missing topic fails at once (exit 3 or 4). A partition that
 * stops on an error (auto.offset.reset = none and an offset out of range, a
 * batch that does not decode) is reported on stderr and counts as read to
 * its end for -e; the exit code is then 1. Ctrl-C stops with exit 0.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/cli/cli.h"

#define CMD "consume"
/* How long the start waits for the topic's metadata. */
#define METADATA_WAIT_MS 15000
/* sl_consume's wait, so that Ctrl-C is seen. */
#define CONSUME_SLICE_MS 200
/* Partitions read at once (a topic's, all of them). */
#define PARTITIONS_MAX 65536
/* -g: how long the last commit and LeaveGroup may take at the end. */
#define CLOSE_TIMEOUT_MS 10000
/* Output buffer of stdout. */
#define STDOUT_BUFFER_BYTES (1u << 20)

struct options {
    struct cli_common common;
    const char *topic;
    int32_t partition; /* -1: every partition */
    int64_t start;     /* an sl_assign offset */
    bool exit_at_end;
    int64_t count_max; /* -1: no limit */
    const char *format;
    bool format_set;
    bool json;
    const char *group; /* -g: a member of this group */
    bool offset_set;
    bool partition_set;
};

struct state {
    bool *at_end; /* per partition: reached its end (or stopped) */
    int32_t partitions;
    int32_t ends_due; /* partitions read that are not at their end yet */
    int64_t printed;
    bool failed;
    bool all_down;
    bool assigned; /* -g: the group has given this member its partitions */
};

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void help(FILE *out)
{
    fprintf(
        out,
        "usage: sluice consume TOPIC [OPTIONS]\n\n"
        "Prints the records of a topic's partitions: every partition (or -p N), or\n"
        "with -g GROUP the partitions the group assigns to this member.\n\n"
        "  -b, --brokers HOST:PORT[,...]  brokers (default $SLUICE_BROKERS, else "
        "" CLI_DEFAULT_BROKERS ")\n"
        "  -X, --set KEY=VALUE        any libsluice setting, repeatable (docs/client.md)\n"
        "  -g, --group GROUP          join GROUP: read the partitions it assigns, from\n"
        "                             its committed offsets, committing what is printed\n"
        "                             (every 5 s, at each rebalance and at the end)\n"
        "  -p, --partition N          read partition N only (default: every partition)\n"
        "  -o, --offset WHERE         beginning (default), end, an offset, or @TIMESTAMP\n"
        "                             (ms since the epoch: the first record at or after);\n"
        "                             with -g: beginning (default) or end, for partitions\n"
        "                             the group has no committed offset of\n"
        "  -e, --exit                 exit once every partition read is at its end\n"
        "                             (with -g: every partition assigned)\n"
        "  -n, --count COUNT          exit after COUNT records\n"
        "  -f, --format FORMAT        print each record as FORMAT (kcat's): %%t topic,\n"
        "                             %%p partition, %%o offset, %%T timestamp (ms),\n"
        "                             %%k key, %%K key length, %%s or %%v value, %%S value\n"
        "                             length (-1 for null), %%h headers (n=v,...),\n"
        "                             %%%% a %%; \\n \\r \\t \\\\ escapes (default \"%%s\\n\")\n"
        "  -J, --json                 one JSON object a line: topic, partition, offset,\n"
        "                             timestamp, timestamp_type, key, value, headers;\n"
        "                             bytes that are not UTF-8 as base64, with\n"
        "                             \"key_encoding\"/\"value_encoding\": \"base64\"\n"
        "  -h, --help                 this text\n\n"
        "Exit codes: 0 success (or Ctrl-C), 1 a partition stopped on an error,\n"
        "2 bad usage, 3 no broker reachable, 4 no such topic or partition.\n");
}

static bool parse_int(const char *opt, const char *arg, int64_t min, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(arg, &end, 10);
    if (errno != 0 || *end != '\0' || end == arg || v < min) {
        cli_err(CMD, "%s %s: not a number >= %" PRId64, opt, arg, min);
        return false;
    }
    *out = v;
    return true;
}

static bool parse_offset(struct options *o, const char *arg)
{
    if (strcmp(arg, "beginning") == 0) {
        o->start = SL_OFFSET_BEGINNING;
        return true;
    }
    if (strcmp(arg, "end") == 0) {
        o->start = SL_OFFSET_END;
        return true;
    }
    int64_t v;
    if (arg[0] == '@') {
        if (!parse_int("-o", arg + 1, 0, &v) || v >= -SL_OFFSET_TIMESTAMP_BASE) {
            return false;
        }
        o->start = SL_OFFSET_TIMESTAMP(v);
        return true;
    }
    if (!parse_int("-o", arg, 0, &v)) {
        cli_err(CMD, "-o: expected beginning, end, an offset or @TIMESTAMP");
        return false;
    }
    o->start = v;
    return true;
}

/* One option of consume's own; false after printing why. */
static bool own_option(void *opaque, int opt, const char *arg)
{
    struct options *o = opaque;
    int64_t v;
    switch (opt) {
    case 'p':
        if (!parse_int("-p", arg, 0, &v) || v > INT32_MAX) {
            return false;
        }
        o->partition = (int32_t)v;
        o->partition_set = true;
        return true;
    case 'o':
        o->offset_set = true;
        return parse_offset(o, arg);
    case 'g':
        o->group = arg;
        return true;
    case 'e':
        o->exit_at_end = true;
        return true;
    case 'n':
        return parse_int("-n", arg, 1, &o->count_max);
    case 'f':
        o->format = arg;
        o->format_set = true;
        return true;
    case 'J':
        o->json = true;
        return true;
    default:
        return false;
    }
}

/* Returns -1 when the options are good, else the exit code. */
static int parse(struct options *o, int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONGOPTS,
        {"group", required_argument, NULL, 'g'},
        {"partition", required_argument, NULL, 'p'},
        {"offset", required_argument, NULL, 'o'},
        {"exit", no_argument, NULL, 'e'},
        {"count", required_argument, NULL, 'n'},
        {"format", required_argument, NULL, 'f'},
        {"json", no_argument, NULL, 'J'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    o->partition = -1;
    o->start = SL_OFFSET_BEGINNING; /* as kcat: the whole partition unless told */
    o->count_max = -1;
    o->format = "%s\\n";
    int rc = cli_parse_topic_command(argc, argv, CLI_COMMON_SHORTOPTS "g:p:o:en:f:Jh", longopts,
                                     &o->common, CMD, own_option, o, help, &o->topic);
    if (rc != -1) {
        return rc;
    }
    if (o->json && o->format_set) {
        cli_err(CMD, "-f and --json exclude each other");
        return CLI_EXIT_USAGE;
    }
    if (o->group != NULL && o->partition_set) {
        cli_err(CMD, "-g and -p exclude each other: the group assigns the partitions");
        return CLI_EXIT_USAGE;
    }
    if (o->group != NULL && o->offset_set && o->start != SL_OFFSET_BEGINNING &&
        o->start != SL_OFFSET_END) {
        cli_err(CMD, "with -g, -o takes beginning or end (where a partition without a "
                     "committed offset starts); use `sluice group seek` to move a group");
        return CLI_EXIT_USAGE;
    }
    return -1;
}

/* ================================================================ printing */

static void put_bytes(const void *p, size_t len)
{
    if (len > 0) {
        fwrite(p, 1, len, stdout);
    }
}

static void put_headers(const sl_record *r)
{
    for (size_t i = 0; i < r->header_count; i++) {
        if (i > 0) {
            putchar(',');
        }
        fputs(r->headers[i].name, stdout);
        putchar('=');
        put_bytes(r->headers[i].value, r->headers[i].value_len);
    }
}

/* One % directive; returns false for an unknown one (printed as is). */
static bool put_directive(char d, const sl_record *r)
{
    switch (d) {
    case 't':
        fputs(r->topic, stdout);
        return true;
    case 'p':
        printf("%" PRId32, r->partition);
        return true;
    case 'o':
        printf("%" PRId64, r->offset);
        return true;
    case 'T':
        printf("%" PRId64, r->timestamp);
        return true;
    case 'k':
        put_bytes(r->key, r->key_len);
        return true;
    case 'K':
        printf("%lld", r->key != NULL ? (long long)r->key_len : -1LL);
        return true;
    case 's':
    case 'v':
        put_bytes(r->value, r->value_len);
        return true;
    case 'S':
        printf("%lld", r->value != NULL ? (long long)r->value_len : -1LL);
        return true;
    case 'h':
        put_headers(r);
        return true;
    case '%':
        putchar('%');
        return true;
    default:
        return false;
    }
}

static void print_format(const char *f, const sl_record *r)
{
    for (; *f != '\0'; f++) {
        if (*f == '%' && f[1] != '\0') {
            f++;
            if (!put_directive(*f, r)) {
                putchar('%');
                putchar(*f);
            }
        } else if (*f == '\\' && f[1] != '\0') {
            f++;
            putchar(*f == 'n' ? '\n' : *f == 't' ? '\t' : *f == 'r' ? '\r' : *f);
        } else {
            putchar(*f);
        }
    }
}

/* The length of the well-formed UTF-8 sequence at p (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *p, size_t len)
{
    unsigned char lo = 0x80, hi = 0xBF; /* the second byte's range */
    size_t n;
    if (p[0] >= 0xC2 && p[0] <= 0xDF) {
        n = 2;
    } else if (p[0] >= 0xE0 && p[0] <= 0xEF) {
        n = 3;
        lo = p[0] == 0xE0 ? 0xA0 : 0x80;
        hi = p[0] == 0xED ? 0x9F : 0xBF;
    } else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
        n = 4;
        lo = p[0] == 0xF0 ? 0x90 : 0x80;
        hi = p[0] == 0xF4 ? 0x8F : 0xBF;
    } else {
        return 0;
    }
    if (n > len || p[1] < lo || p[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) {
            return 0;
        }
    }
    return n;
}

static bool utf8_valid(const unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len;) {
        size_t n = p[i] < 0x80 ? 1 : utf8_len(p + i, len - i);
        if (n == 0) {
            return false;
        }
        i += n;
    }
    return true;
}

/* A JSON string of valid UTF-8 bytes. */
static void put_json_text(const unsigned char *p, size_t len)
{
    putchar('"');
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = p[i];
        if (ch == '"' || ch == '\\') {
            putchar('\\');
            putchar(ch);
        } else if (ch == '\n') {
            fputs("\\n", stdout);
        } else if (ch == '\t') {
            fputs("\\t", stdout);
        } else if (ch == '\r') {
            fputs("\\r", stdout);
        } else if (ch < 0x20 || ch == 0x7F) {
            printf("\\u%04x", ch);
        } else {
            putchar(ch);
        }
    }
    putchar('"');
}

static void put_base64(const unsigned char *p, size_t len)
{
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    putchar('"');
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        v |= i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0;
        v |= i + 2 < len ? p[i + 2] : 0;
        putchar(digits[(v >> 18) & 63]);
        putchar(digits[(v >> 12) & 63]);
        putchar(i + 1 < len ? digits[(v >> 6) & 63] : '=');
        putchar(i + 2 < len ? digits[v & 63] : '=');
    }
    putchar('"');
}

/* "name":VALUE of bytes: null for NULL, a string when they are UTF-8, else
 * their base64 and "name_encoding":"base64", so that any bytes round-trip. */
static void put_json_field(const char *name, const void *v, size_t len)
{
    printf("\"%s\":", name);
    if (v == NULL) {
        fputs("null", stdout);
    } else if (utf8_valid(v, len)) {
        put_json_text(v, len);
    } else {
        put_base64(v, len);
        printf(",\"%s_encoding\":\"base64\"", name);
    }
}

static void print_json(const sl_record *r)
{
    putchar('{');
    put_json_field("topic", r->topic, strlen(r->topic));
    printf(",\"partition\":%" PRId32 ",\"offset\":%" PRId64 ",\"timestamp\":%" PRId64
           ",\"timestamp_type\":\"%s\",",
           r->partition, r->offset, r->timestamp,
           r->timestamp_type == 1 ? "LogAppendTime" : "CreateTime");
    put_json_field("key", r->key, r->key_len);
    putchar(',');
    put_json_field("value", r->value, r->value_len);
    fputs(",\"headers\":[", stdout);
    for (size_t i = 0; i < r->header_count; i++) {
        fputs(i > 0 ? ",{" : "{", stdout);
        put_json_field("key", r->headers[i].name, strlen(r->headers[i].name));
        putchar(',');
        put_json_field("value", r->headers[i].value, r->headers[i].value_len);
        putchar('}');
    }
    fputs("]}\n", stdout);
}

/* ================================================================ consuming */

static void on_error(void *opaque, sl_err err, const char *reason)
{
    struct state *s = opaque;
    if (err == SL_ERR_ALL_BROKERS_DOWN) {
        s->all_down = true;
    }
    fprintf(stderr, "sluice %s: %s (%s)\n", CMD, reason, sl_err_name(err));
}

/* Waits for the topic's partitions; -1 when ready, else the exit code. */
static int check_topic(sl_client *c, const struct options *o, int32_t *count)
{
    sl_err err = sl_topic_partitions(c, o->topic, METADATA_WAIT_MS, count);
    switch (err) {
    case SL_OK:
        if (o->partition >= *count) {
            cli_err(CMD, "topic %s has no partition %d (it has %d)", o->topic, o->partition,
                    *count);
            return CLI_EXIT_NO_TOPIC;
        }
        if (*count > PARTITIONS_MAX) {
            cli_err(CMD, "topic %s has %d partitions: more than %d", o->topic, *count,
                    PARTITIONS_MAX);
            return CLI_EXIT_USAGE;
        }
        return -1;
    case SL_ERR_ALL_BROKERS_DOWN:
        cli_err(CMD, "no broker reachable at %s", cli_brokers(&o->common));
        return CLI_EXIT_UNREACHABLE;
    case SL_ERR_TIMED_OUT:
        cli_err(CMD, "no metadata from %s within %d ms", cli_brokers(&o->common), METADATA_WAIT_MS);
        return CLI_EXIT_UNREACHABLE;
    case SL_ERR_UNKNOWN_TOPIC_OR_PARTITION:
        cli_err(CMD, "topic %s does not exist", o->topic);
        return CLI_EXIT_NO_TOPIC;
    default:
        cli_err(CMD, "topic %s: %s", o->topic, sl_err_str(err));
        return CLI_EXIT_NO_TOPIC;
    }
}

/* A partition is done for -e: at its end, or stopped. */
static void partition_done(struct state *s, int32_t partition)
{
    if (partition >= 0 && partition < s->partitions && !s->at_end[partition]) {
        s->at_end[partition] = true;
        s->ends_due--;
    }
}

/* Handles one record or event; false when consuming should stop. */
static bool handle(const struct options *o, struct state *s, const sl_record *r)
{
    if (r->err == SL_ERR_PARTITION_EOF) {
        partition_done(s, r->partition);
        return !(o->exit_at_end && s->ends_due == 0);
    }
    if (r->err != SL_OK) {
        fprintf(stderr, "sluice %s: %s [%d] at offset %" PRId64 ": %s; partition stopped\n", CMD,
                r->topic, r->partition, r->offset, sl_err_str(r->err));
        s->failed = true;
        partition_done(s, r->partition);
        return !(o->exit_at_end && s->ends_due == 0);
    }
    if (o->json) {
        print_json(r);
    } else {
        print_format(o->format, r);
    }
    s->printed++;
    return o->count_max < 0 || s->printed < o->count_max;
}

/* -g: the group's assignment decides which partitions -e waits for. */
static void on_rebalance(void *opaque, sl_rebalance kind, const sl_topic_partition *parts,
                         size_t count)
{
    struct state *s = opaque;
    for (int32_t p = 0; p < s->partitions; p++) {
        s->at_end[p] = true;
    }
    s->ends_due = 0;
    fprintf(stderr, "sluice %s: %s", CMD, kind == SL_REBALANCE_ASSIGN ? "assigned" : "revoked");
    for (size_t i = 0; i < count; i++) {
        fprintf(stderr, "%s %s [%d]", i > 0 ? "," : "", parts[i].topic, parts[i].partition);
        if (kind == SL_REBALANCE_ASSIGN && parts[i].partition < s->partitions) {
            s->at_end[parts[i].partition] = false;
            s->ends_due++;
        }
    }
    fprintf(stderr, "%s\n", count == 0 ? " nothing" : "");
    s->assigned = kind == SL_REBALANCE_ASSIGN;
}

static int consume(sl_client *c, const struct options *o, struct state *s)
{
    if (o->group != NULL) {
        const char *topics[] = {o->topic};
        sl_err err = sl_subscribe(c, topics, 1);
        if (err != SL_OK) {
            cli_err(CMD, "subscribe to %s: %s", o->topic, sl_err_str(err));
            return CLI_EXIT_USAGE;
        }
    }
    for (int32_t p = 0; o->group == NULL && p < s->partitions; p++) {
        if (o->partition >= 0 && p != o->partition) {
            continue;
        }
        sl_err err = sl_assign(c, o->topic, p, o->start);
        if (err != SL_OK) {
            cli_err(CMD, "%s [%d]: %s", o->topic, p, sl_err_str(err));
            return CLI_EXIT_USAGE;
        }
        s->ends_due++;
    }
    while (!interrupted) {
        if (o->group != NULL && o->exit_at_end && s->assigned && s->ends_due == 0) {
            break; /* a member given nothing, or all of it read */
        }
        sl_record *r = sl_consume(c, CONSUME_SLICE_MS);
        if (r == NULL) {
            /* Nothing more for now: what was printed goes out, so that a
             * reader of a pipe or file sees it without waiting for the end. */
            fflush(stdout);
            if (o->exit_at_end && s->all_down) {
                cli_err(CMD, "no broker reachable at %s", cli_brokers(&o->common));
                return CLI_EXIT_UNREACHABLE;
            }
            continue;
        }
        s->all_down = false;
        if (o->group != NULL && r->err == SL_ERR_PARTITION_EOF && !s->assigned) {
            sl_record_free(r);
            continue;
        }
        bool more = handle(o, s, r);
        sl_record_free(r);
        if (!more) {
            break;
        }
    }
    return s->failed ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}

static int run(const struct options *o, struct state *s)
{
    char group[300];
    const char *extra[3];
    size_t n = 0;
    if (o->exit_at_end) {
        extra[n++] = "enable.partition.eof=true";
    }
    if (o->group != NULL) {
        snprintf(group, sizeof(group), "group.id=%s", o->group);
        extra[n++] = group;
        extra[n++] =
            o->start == SL_OFFSET_END ? "auto.offset.reset=latest" : "auto.offset.reset=earliest";
    }
    sl_conf *conf = cli_conf(&o->common, CMD, extra, n);
    if (conf == NULL) {
        return CLI_EXIT_USAGE;
    }
    sl_conf_set_error_cb(conf, on_error);
    if (o->group != NULL) {
        sl_conf_set_rebalance_cb(conf, on_rebalance);
    }
    sl_conf_set_opaque(conf, s);
    char errstr[512];
    sl_client *c = sl_consumer_new(conf, errstr, sizeof(errstr));
    if (c == NULL) {
        cli_err(CMD, "%s", errstr);
        sl_conf_free(conf);
        return CLI_EXIT_USAGE;
    }
    int32_t count = 0;
    int rc = check_topic(c, o, &count);
    if (rc < 0) {
        s->partitions = count;
        s->at_end = calloc((size_t)count, sizeof(*s->at_end));
        if (s->at_end == NULL) {
            cli_err(CMD, "out of memory");
            rc = CLI_EXIT_FAILED;
        } else {
            rc = consume(c, o, s);
        }
    }
    fflush(stdout);
    /* A group member commits what it printed and leaves the group. */
    sl_close(c, o->group != NULL ? CLOSE_TIMEOUT_MS : 0);
    free(s->at_end);
    return rc;
}

int cli_consume(int argc, char **argv)
{
    struct options o = {0};
    int rc = parse(&o, argc, argv);
    if (rc >= 0) {
        return rc;
    }
    static char out_buffer[STDOUT_BUFFER_BYTES];
    if (!isatty(STDOUT_FILENO)) {
        setvbuf(stdout, out_buffer, _IOFBF, sizeof(out_buffer)); /* a pipe: fewer writes */
    }
    struct sigaction sa = {.sa_handler = on_sigint};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    struct state s = {0};
    rc = run(&o, &s);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_err(CMD, "writing stdout: %s", strerror(errno));
        return CLI_EXIT_FAILED;
    }
    return rc;
}
