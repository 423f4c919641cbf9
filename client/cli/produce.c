/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sluice produce TOPIC: one record per input line (stdin, or -f FILE), the
 * line's bytes without its newline; -k SEP splits a key off the front at the
 * first SEP (a line without SEP has a null key), as kcat -K does. Headers
 * (-H, repeatable), partition (-p), acks and compression apply to every
 * record.
 *
 * Before reading, it asks for the topic's partitions, so that an unreachable
 * broker or a missing topic fails at once with a clear message (exit 3 or 4)
 * instead of after delivery.timeout.ms. Then it produces as fast as the
 * client's queue allows (a full queue is waited out with sl_poll), flushes,
 * and prints a summary on stderr: records, bytes, rate, and the errors by
 * kind. On a terminal, a progress line is redrawn a few times a second.
 * Ctrl-C stops reading; what was read is still delivered or reported.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/cli/cli.h"

#define CMD "produce"
/* -H options. */
#define HEADERS_MAX 64
/* Kinds of errors counted apart in the summary. */
#define ERROR_KINDS_MAX 8
/* Lines between two sl_poll calls while reading: often enough to keep
 * batches moving, rarely enough not to cost a syscall per line. */
#define LINES_PER_POLL    1024
#define PROGRESS_EVERY_NS (250 * 1000000LL)
/* How long the start waits for the topic's metadata. */
#define METADATA_WAIT_MS 15000
/* After Ctrl-C, how long what was read may still take. */
#define INTERRUPT_FLUSH_MS 5000

struct options {
    struct cli_common common;
    const char *topic;
    const char *file;
    const char *key_sep;
    size_t key_sep_len;
    sl_header headers[HEADERS_MAX];
    size_t header_count;
    int32_t partition;
    const char *settings[2]; /* --acks, -z as key=value */
    size_t setting_count;
    char setting_text[2][64];
    bool quiet;
};

struct stats {
    uint64_t read;      /* lines read */
    uint64_t delivered; /* records acknowledged */
    uint64_t failed;    /* records refused or not delivered */
    uint64_t bytes;     /* key + value bytes delivered */
    int64_t start_ns;
    int64_t progress_ns;
    bool tty;
    bool progress_shown;
    struct {
        sl_err err;
        uint64_t count;
    } kinds[ERROR_KINDS_MAX];
};

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void help(FILE *out)
{
    fprintf(out, "usage: sluice produce TOPIC [OPTIONS]\n\n"
                 "Produces one record per line of stdin (or FILE), without the newline.\n\n"
                 "  -b, --brokers HOST:PORT[,...]  brokers (default $SLUICE_BROKERS, else "
                 "" CLI_DEFAULT_BROKERS ")\n"
                 "  -X, --set KEY=VALUE        any libsluice setting, repeatable (docs/client.md)\n"
                 "  -f, --file FILE            read FILE instead of stdin\n"
                 "  -k, --key-delimiter SEP    the key is what precedes the first SEP in a line\n"
                 "  -H, --header NAME=VALUE    add a header to every record, repeatable\n"
                 "  -p, --partition N          produce to partition N (default: by key, sticky\n"
                 "                             for lines without a key)\n"
                 "      --acks 0|1|all         acknowledgements (default all; 0 or 1 turn\n"
                 "                             idempotence off)\n"
                 "  -z, --compression none|zstd  batch compression (default none)\n"
                 "  -q, --quiet                no progress line and no summary\n"
                 "  -h, --help                 this text\n\n"
                 "Exit codes: 0 all delivered, 1 some records not delivered, 2 bad usage,\n"
                 "3 no broker reachable, 4 no such topic or partition, 5 input unreadable.\n");
}

static bool add_header(struct options *o, const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (eq == NULL || eq == arg || o->header_count == HEADERS_MAX) {
        cli_err(CMD, eq == NULL || eq == arg ? "-H %s: expected NAME=VALUE" : "-H %s: too many",
                arg);
        return false;
    }
    char *name = strndup(arg, (size_t)(eq - arg));
    if (name == NULL) {
        cli_err(CMD, "out of memory");
        return false;
    }
    o->headers[o->header_count++] = (sl_header){name, eq + 1, strlen(eq + 1)};
    return true;
}

static bool add_setting(struct options *o, const char *key, const char *value)
{
    size_t i = o->setting_count;
    int n = snprintf(o->setting_text[i], sizeof(o->setting_text[i]), "%s=%s", key, value);
    if (n < 0 || (size_t)n >= sizeof(o->setting_text[i])) {
        cli_err(CMD, "%s %s: value too long", key, value);
        return false;
    }
    o->settings[o->setting_count++] = o->setting_text[i];
    return true;
}

static bool parse_partition(struct options *o, const char *arg)
{
    char *end;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (errno != 0 || *end != '\0' || end == arg || v < 0 || v > INT32_MAX) {
        cli_err(CMD, "-p %s: not a partition number", arg);
        return false;
    }
    o->partition = (int32_t)v;
    return true;
}

/* One option of produce's own; false after printing why. */
static bool own_option(void *opaque, int opt, const char *arg)
{
    struct options *o = opaque;
    switch (opt) {
    case 'f':
        o->file = arg;
        return true;
    case 'k':
        o->key_sep = arg;
        o->key_sep_len = strlen(arg);
        if (o->key_sep_len == 0) {
            cli_err(CMD, "-k: the delimiter is empty");
            return false;
        }
        return true;
    case 'H':
        return add_header(o, arg);
    case 'p':
        return parse_partition(o, arg);
    case 'a':
        return add_setting(o, "acks", arg);
    case 'z':
        return add_setting(o, "compression.type", arg);
    case 'q':
        o->quiet = true;
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
        {"file", required_argument, NULL, 'f'},
        {"key-delimiter", required_argument, NULL, 'k'},
        {"header", required_argument, NULL, 'H'},
        {"partition", required_argument, NULL, 'p'},
        {"acks", required_argument, NULL, 'a'},
        {"compression", required_argument, NULL, 'z'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    o->partition = SL_PARTITION_ANY;
    int rc = cli_parse_topic_command(argc, argv, CLI_COMMON_SHORTOPTS "f:k:H:p:z:qh", longopts,
                                     &o->common, CMD, own_option, o, help, &o->topic);
    if (rc != -1) {
        return rc;
    }
    return -1;
}

/* ================================================================ reporting */

static void count_error(struct stats *s, sl_err err)
{
    s->failed++;
    for (size_t i = 0; i < ERROR_KINDS_MAX; i++) {
        if (s->kinds[i].count == 0 || s->kinds[i].err == err) {
            s->kinds[i].err = err;
            s->kinds[i].count++;
            return;
        }
    }
}

static void clear_progress(struct stats *s)
{
    if (s->progress_shown) {
        fputs("\r\033[K", stderr);
        s->progress_shown = false;
    }
}

static void progress(struct stats *s, bool force)
{
    int64_t now = now_ns();
    if (!s->tty || (!force && now - s->progress_ns < PROGRESS_EVERY_NS)) {
        return;
    }
    s->progress_ns = now;
    double secs = (double)(now - s->start_ns) / 1e9;
    fprintf(stderr, "\r\033[K%llu read, %llu delivered, %llu failed, %.0f records/s",
            (unsigned long long)s->read, (unsigned long long)s->delivered,
            (unsigned long long)s->failed, secs > 0 ? (double)s->delivered / secs : 0.0);
    s->progress_shown = true;
}

static void on_delivery(void *opaque, const sl_delivery *d)
{
    struct stats *s = opaque;
    if (d->err == SL_OK) {
        s->delivered++;
        s->bytes += (uintptr_t)d->msg_opaque;
    } else {
        count_error(s, d->err);
    }
}

static void on_error(void *opaque, sl_err err, const char *reason)
{
    struct stats *s = opaque;
    clear_progress(s);
    fprintf(stderr, "sluice %s: %s (%s)\n", CMD, reason, sl_err_name(err));
}

static void summary(struct stats *s, const char *topic)
{
    clear_progress(s);
    double secs = (double)(now_ns() - s->start_ns) / 1e9;
    fprintf(stderr,
            "sluice %s: %llu records (%llu bytes) to %s in %.2f s: %.0f records/s, "
            "%.2f MB/s; %llu errors\n",
            CMD, (unsigned long long)s->delivered, (unsigned long long)s->bytes, topic, secs,
            secs > 0 ? (double)s->delivered / secs : 0.0,
            secs > 0 ? (double)s->bytes / secs / 1e6 : 0.0, (unsigned long long)s->failed);
    for (size_t i = 0; i < ERROR_KINDS_MAX && s->kinds[i].count > 0; i++) {
        fprintf(stderr, "  %llu x %s\n", (unsigned long long)s->kinds[i].count,
                sl_err_str(s->kinds[i].err));
    }
}

/* ================================================================ producing */

/* Waits for the topic's partitions; -1 when ready, else the exit code. */
static int check_topic(sl_client *p, const struct options *o)
{
    int32_t count = 0;
    sl_err err = sl_topic_partitions(p, o->topic, METADATA_WAIT_MS, &count);
    switch (err) {
    case SL_OK:
        if (o->partition >= count) {
            cli_err(CMD, "topic %s has no partition %d (it has %d)", o->topic, o->partition, count);
            return CLI_EXIT_NO_TOPIC;
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

/* Produces one line, waiting while the queue is full. */
static void produce_line(sl_client *p, const struct options *o, struct stats *s, char *line,
                         size_t len)
{
    sl_msg m = {.topic = o->topic,
                .partition = o->partition,
                .value = line,
                .value_len = len,
                .headers = o->headers,
                .header_count = o->header_count};
    if (o->key_sep != NULL) {
        char *sep = memmem(line, len, o->key_sep, o->key_sep_len);
        if (sep != NULL) {
            m.key = line;
            m.key_len = (size_t)(sep - line);
            m.value = sep + o->key_sep_len;
            m.value_len = len - m.key_len - o->key_sep_len;
        }
    }
    m.opaque = (void *)(uintptr_t)(m.key_len + m.value_len);
    sl_err err;
    while ((err = sl_produce(p, &m)) == SL_ERR_QUEUE_FULL && !interrupted) {
        sl_poll(p, 100);
        progress(s, false);
    }
    if (err != SL_OK) {
        count_error(s, err);
    }
}

/* Reads and produces every line; the exit code when reading failed, else -1. */
static int produce_input(sl_client *p, const struct options *o, struct stats *s, FILE *in)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while (!interrupted && (n = getline(&line, &cap, in)) >= 0) {
        size_t len = (size_t)n;
        if (len > 0 && line[len - 1] == '\n') {
            len--;
        }
        s->read++;
        produce_line(p, o, s, line, len);
        if (s->read % LINES_PER_POLL == 0) {
            sl_poll(p, 0);
            progress(s, false);
        }
    }
    int rc = -1;
    if (!interrupted && ferror(in)) {
        clear_progress(s);
        cli_err(CMD, "reading %s: %s", o->file != NULL ? o->file : "stdin", strerror(errno));
        rc = CLI_EXIT_INPUT;
    }
    free(line);
    return rc;
}

static int run(const struct options *o, struct stats *s, FILE *in)
{
    sl_conf *conf = cli_conf(&o->common, CMD, o->settings, o->setting_count);
    if (conf == NULL) {
        return CLI_EXIT_USAGE;
    }
    sl_conf_set_delivery_cb(conf, on_delivery);
    sl_conf_set_error_cb(conf, on_error);
    sl_conf_set_opaque(conf, s);
    char errstr[512];
    sl_client *p = sl_producer_new(conf, errstr, sizeof(errstr));
    if (p == NULL) {
        cli_err(CMD, "%s", errstr);
        sl_conf_free(conf);
        return CLI_EXIT_USAGE;
    }
    int rc = check_topic(p, o);
    if (rc < 0) {
        s->start_ns = now_ns();
        rc = produce_input(p, o, s, in);
        int64_t deadline = interrupted ? now_ns() + INTERRUPT_FLUSH_MS * 1000000LL : INT64_MAX;
        /* Bounded by delivery.timeout.ms: every message ends by then. */
        while (sl_flush(p, 200) == SL_ERR_TIMED_OUT && now_ns() < deadline) {
            progress(s, false);
        }
    }
    sl_close(p, 0); /* reports what is left, if anything */
    if (rc < 0 && !o->quiet) {
        summary(s, o->topic);
    }
    return rc >= 0 ? rc : s->failed > 0 ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}

int cli_produce(int argc, char **argv)
{
    struct options o = {0};
    int rc = parse(&o, argc, argv);
    if (rc < 0) {
        FILE *in = stdin;
        if (o.file != NULL && (in = fopen(o.file, "r")) == NULL) {
            cli_err(CMD, "%s: %s", o.file, strerror(errno));
            rc = CLI_EXIT_INPUT;
        } else {
            struct stats s = {.tty = !o.quiet && isatty(STDERR_FILENO)};
            struct sigaction sa = {.sa_handler = on_sigint};
            sigaction(SIGINT, &sa, NULL); /* no SA_RESTART: a read returns */
            rc = run(&o, &s, in);
            if (in != stdin) {
                fclose(in);
            }
        }
    }
    for (size_t i = 0; i < o.header_count; i++) {
        free((char *)o.headers[i].name);
    }
    return rc;
}
