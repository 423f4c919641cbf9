/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A consumer group member on libsluice's public API, as an application would
 * write one: subscribe, consume, commit (after every record, synchronously
 * or asynchronously, or leave it to auto-commit), and react to rebalances.
 * tests/integration/client_groups.sh drives it to check the calls a CLI
 * member does not make: sl_commit both ways, the commit callback, and
 * sl_seek from the assign callback.
 *
 *   group_consumer BROKERS GROUP TOPIC [--commit auto|sync|async]
 *                  [--seek-on-assign OFFSET] [--count N] [--idle-ms MS]
 *
 * Prints "partition offset value" per record on stdout, and on stderr one
 * line per rebalance ("assign: 0@5 1@-1") and per commit outcome ("commit:
 * OK 0@6"). Exits after --count records, or once nothing came for --idle-ms
 * (default 5000) after the first assignment; then closes (final commit and
 * LeaveGroup within 10 s). Exit 0, or 1 when a commit failed, 2 on bad usage.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/sluice.h"

enum commit_mode { COMMIT_AUTO, COMMIT_SYNC, COMMIT_ASYNC };

struct app {
    sl_client *consumer;
    int64_t seek_to; /* -1: keep the committed offsets */
    bool assigned;
    int commit_failures;
};

static void print_parts(const char *what, const sl_topic_partition *parts, size_t count)
{
    fprintf(stderr, "%s:", what);
    for (size_t i = 0; i < count; i++) {
        fprintf(stderr, " %d@%lld", parts[i].partition, (long long)parts[i].offset);
    }
    fputc('\n', stderr);
}

static void on_rebalance(void *opaque, sl_rebalance kind, const sl_topic_partition *parts,
                         size_t count)
{
    struct app *app = opaque;
    print_parts(kind == SL_REBALANCE_ASSIGN   ? "assign"
                : kind == SL_REBALANCE_REVOKE ? "revoke"
                                              : "lost",
                parts, count);
    if (kind != SL_REBALANCE_ASSIGN) {
        return;
    }
    app->assigned = true;
    for (size_t i = 0; app->seek_to >= 0 && i < count; i++) {
        sl_err err = sl_seek(app->consumer, parts[i].topic, parts[i].partition, app->seek_to);
        if (err != SL_OK) {
            fprintf(stderr, "seek: %s\n", sl_err_str(err));
        }
    }
}

static void on_commit(void *opaque, sl_err err, const sl_topic_partition *offsets, size_t count)
{
    struct app *app = opaque;
    fprintf(stderr, "commit: %s", err == SL_OK ? "OK" : sl_err_name(err));
    print_parts("", offsets, count);
    app->commit_failures += err != SL_OK;
}

static void on_error(void *opaque, sl_err err, const char *reason)
{
    (void)opaque;
    fprintf(stderr, "error: %s: %s\n", sl_err_name(err), reason);
}

static int usage(void)
{
    fprintf(stderr, "usage: group_consumer BROKERS GROUP TOPIC [--commit auto|sync|async] "
                    "[--seek-on-assign OFFSET] [--count N] [--idle-ms MS]\n");
    return 2;
}

static bool set(sl_conf *conf, const char *key, const char *value)
{
    char err[512];
    if (sl_conf_set(conf, key, value, err, sizeof(err)) != SL_OK) {
        fprintf(stderr, "%s\n", err);
        return false;
    }
    return true;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        return usage();
    }
    enum commit_mode mode = COMMIT_AUTO;
    struct app app = {.seek_to = -1};
    long long count_max = -1, idle_ms = 5000;
    for (int i = 4; i < argc; i += 2) {
        if (i + 1 >= argc) {
            return usage();
        }
        if (strcmp(argv[i], "--commit") == 0) {
            mode = strcmp(argv[i + 1], "sync") == 0    ? COMMIT_SYNC
                   : strcmp(argv[i + 1], "async") == 0 ? COMMIT_ASYNC
                                                       : COMMIT_AUTO;
        } else if (strcmp(argv[i], "--seek-on-assign") == 0) {
            app.seek_to = atoll(argv[i + 1]);
        } else if (strcmp(argv[i], "--count") == 0) {
            count_max = atoll(argv[i + 1]);
        } else if (strcmp(argv[i], "--idle-ms") == 0) {
            idle_ms = atoll(argv[i + 1]);
        } else {
            return usage();
        }
    }
    sl_conf *conf = sl_conf_new();
    if (conf == NULL || !set(conf, "bootstrap.servers", argv[1]) ||
        !set(conf, "group.id", argv[2]) || !set(conf, "auto.offset.reset", "earliest") ||
        !set(conf, "session.timeout.ms", "6000") || !set(conf, "heartbeat.interval.ms", "500") ||
        !set(conf, "enable.auto.commit", mode == COMMIT_AUTO ? "true" : "false")) {
        sl_conf_free(conf);
        return 2;
    }
    sl_conf_set_rebalance_cb(conf, on_rebalance);
    sl_conf_set_commit_cb(conf, on_commit);
    sl_conf_set_error_cb(conf, on_error);
    sl_conf_set_opaque(conf, &app);
    char err[512];
    app.consumer = sl_consumer_new(conf, err, sizeof(err));
    if (app.consumer == NULL) {
        fprintf(stderr, "%s\n", err);
        sl_conf_free(conf);
        return 2;
    }
    const char *topics[] = {argv[3]};
    if (sl_subscribe(app.consumer, topics, 1) != SL_OK) {
        sl_close(app.consumer, 0);
        return 2;
    }
    long long consumed = 0, idle = 0;
    while (count_max < 0 || consumed < count_max) {
        sl_record *r = sl_consume(app.consumer, 100);
        if (r == NULL) {
            idle += 100;
            if (app.assigned && idle >= idle_ms) {
                break;
            }
            continue;
        }
        idle = 0;
        if (r->err == SL_OK) {
            printf("%d %lld %.*s\n", r->partition, (long long)r->offset, (int)r->value_len,
                   r->value != NULL ? (const char *)r->value : "");
            fflush(stdout);
            consumed++;
            if (mode != COMMIT_AUTO) {
                sl_err rc = sl_commit(app.consumer, NULL, 0, mode == COMMIT_ASYNC);
                if (mode == COMMIT_SYNC) {
                    fprintf(stderr, "commit: %s %d@%lld\n", rc == SL_OK ? "OK" : sl_err_name(rc),
                            r->partition, (long long)r->offset + 1);
                    app.commit_failures += rc != SL_OK;
                }
            }
        }
        sl_record_free(r);
    }
    sl_close(app.consumer, 10000);
    return app.commit_failures > 0 ? 1 : 0;
}
