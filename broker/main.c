/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sluiced: the broker daemon. Reads its configuration, opens the partitions
 * under log.dirs, serves the Kafka protocol on the first listener, and on
 * SIGTERM or SIGINT stops accepting, finishes what is in flight, flushes
 * every partition, writes their clean-shutdown markers and exits 0.
 */
#include <errno.h>
#include <ev.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/groups.h"
#include "broker/metalog.h"
#include "common/assert.h"
#include "common/log.h"

#define OVERRIDES_MAX 256

static void usage(FILE *out)
{
    fprintf(out, "usage: sluiced [-c FILE] [--set key=value]... [--print-config]\n"
                 "  -c FILE          configuration file (key = value lines)\n"
                 "  --set key=value  override one key (after the file; repeatable)\n"
                 "  --print-config   print every key with its effective value and exit\n"
                 "exit codes: 0 clean shutdown, 1 runtime failure, 2 bad usage or config\n");
}

struct shutdown {
    struct broker *b;
    ev_signal sigterm;
    ev_signal sigint;
    ev_check check;
    bool stopping;
};

static void on_check(struct ev_loop *loop, ev_check *w, int revents)
{
    (void)revents;
    struct shutdown *s = SL_CONTAINER_OF(w, struct shutdown, check);
    if (s->stopping && server_stopped(s->b->server)) {
        ev_break(loop, EVBREAK_ALL);
    }
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop;
    (void)revents;
    struct shutdown *s = w->data;
    if (s->stopping) {
        return;
    }
    LOG_INFO("sluiced", "shutting down signal=%d", w->signum);
    s->stopping = true;
    server_stop(s->b->server);
    broker_release_fetches(s->b);
    groups_release(s->b->groups);
}

static void change_done(void *opaque, int status)
{
    int *result = opaque;
    *result = status;
}

/* __consumer_offsets, created at the first start through the metadata log:
 * its partitions keep committed offsets and group metadata. */
static int ensure_offsets_topic(struct broker *b)
{
    if (topics_find(&b->topics, GROUPS_TOPIC, strlen(GROUPS_TOPIC)) != NULL) {
        return 0;
    }
    static const char *const settings[][2] = {{"retention.ms", "-1"}, {"retention.bytes", "-1"}};
    char segment[32];
    snprintf(segment, sizeof(segment), "%lld", (long long)b->config.offsets_topic_segment_bytes);
    uint8_t id[16];
    struct metalog_txn txn;
    metalog_txn_init(&txn);
    int err = md_new_topic_id(&b->image, id);
    err = err != 0 ? err
                   : md_put_topic(&txn.bytes, GROUPS_TOPIC, strlen(GROUPS_TOPIC), id,
                                  b->config.offsets_topic_num_partitions);
    err = err != 0 ? err : metalog_txn_mark(&txn);
    for (size_t i = 0; err == 0 && i < sizeof(settings) / sizeof(settings[0]); i++) {
        err =
            md_put_config(&txn.bytes, GROUPS_TOPIC, strlen(GROUPS_TOPIC), settings[i][0],
                          strlen(settings[i][0]), settings[i][1], (int32_t)strlen(settings[i][1]));
        err = err != 0 ? err : metalog_txn_mark(&txn);
    }
    err = err != 0 ? err
                   : md_put_config(&txn.bytes, GROUPS_TOPIC, strlen(GROUPS_TOPIC), "segment.bytes",
                                   strlen("segment.bytes"), segment, (int32_t)strlen(segment));
    err = err != 0 ? err : metalog_txn_mark(&txn);
    int result = 1;
    err = err != 0 ? err : metalog_commit(b->metalog, &txn, change_done, &result);
    metalog_txn_deinit(&txn);
    while (err == 0 && result == 1) {
        ev_run(b->loop, EVRUN_ONCE);
    }
    err = err != 0 ? err : result;
    if (err == 0 && topics_find(&b->topics, GROUPS_TOPIC, strlen(GROUPS_TOPIC)) == NULL) {
        err = -EIO; /* recorded but its partitions did not open: the log said why */
    }
    return err;
}

static int start_groups(struct broker *b)
{
    int err = ensure_offsets_topic(b);
    if (err != 0) {
        LOG_ERROR("sluiced", "cannot create %s err=%s", GROUPS_TOPIC, strerror(-err));
        return err;
    }
    const struct topic *t = topics_find(&b->topics, GROUPS_TOPIC, strlen(GROUPS_TOPIC));
    if (t->partition_count != b->config.offsets_topic_num_partitions) {
        LOG_WARN("sluiced",
                 "%s keeps the partition count it was created with partitions=%d "
                 "offsets.topic.num.partitions=%d",
                 GROUPS_TOPIC, t->partition_count, b->config.offsets_topic_num_partitions);
    }
    struct log **logs = calloc((size_t)t->partition_count, sizeof(*logs));
    if (logs == NULL) {
        return -ENOMEM;
    }
    for (int32_t p = 0; p < t->partition_count; p++) {
        logs[p] = t->partitions[p].log;
    }
    const struct broker_config *c = &b->config;
    struct groups_config gc = {
        .partitions = t->partition_count,
        .min_session_timeout_ms = c->group_min_session_timeout_ms,
        .max_session_timeout_ms = c->group_max_session_timeout_ms,
        .initial_rebalance_delay_ms = c->group_initial_rebalance_delay_ms,
        .max_size = c->group_max_size,
        .groups_max = c->groups_max,
        .member_metadata_max_bytes = c->group_member_metadata_max_bytes,
        .offset_metadata_max_bytes = c->offset_metadata_max_bytes,
        .offsets_retention_ms = (int64_t)c->offsets_retention_minutes * 60000,
        .retention_check_interval_ms = c->offsets_retention_check_interval_ms,
        .offsets_max = c->offsets_max,
        .rewrite_bytes_min = (uint64_t)t->config.log.segment_bytes,
        .batch_bytes_max = t->config.log.max_message_bytes,
    };
    b->groups = groups_new(b->loop, &gc, logs, &err);
    free(logs);
    return b->groups != NULL ? 0 : err;
}

static int start(struct broker *b)
{
    int err = 0;
    struct ring_config rc;
    broker_ring_config(&b->config, &rc);
    b->ring = ring_new(b->loop, &rc, &err);
    if (b->ring == NULL) {
        LOG_ERROR("sluiced", "ring setup failed err=%s", strerror(-err));
        return err;
    }
    struct log_shard_config sc;
    broker_shard_config(&b->config, &sc);
    b->shard = log_shard_new(b->loop, b->ring, &sc, &err);
    if (b->shard == NULL) {
        LOG_ERROR("sluiced",
                  "storage setup failed err=%s (storage.buffer.bytes, "
                  "storage.memory.bytes, storage.ring.entries)",
                  strerror(-err));
        return err;
    }
    struct log_config lc;
    broker_log_config(&b->config, &lc);
    struct producers_config pc;
    broker_producers_config(&b->config, &pc);
    err = topics_init(&b->topics, b->shard, b->config.log_dirs, &lc, &pc,
                      (uint32_t)b->config.dedup_window_ids_max);
    if (err != 0) {
        LOG_ERROR("sluiced", "cannot open the partitions dir=%s err=%s", b->config.log_dirs,
                  strerror(-err));
        return err;
    }
    md_image_init(&b->image);
    b->metalog = metalog_open(b->loop, b->shard, b->config.log_dirs, &b->image,
                              broker_metadata_applied, b, &err);
    if (b->metalog == NULL) {
        LOG_ERROR("sluiced", "cannot open the metadata log dir=%s err=%s", b->config.log_dirs,
                  strerror(-err));
        return err;
    }
    /* Ids below the watermark may have been handed out before: none is held. */
    b->pid_next = b->pid_end = b->image.next_producer_id;
    /* The partitions the metadata names, then whatever else lies in log.dirs. */
    err = topics_sync(&b->topics, &b->image, NULL, NULL);
    if (err != 0) {
        LOG_WARN("sluiced", "some topics are not served err=%s", strerror(-err));
    }
    topics_sweep(&b->topics);
    err = start_groups(b);
    if (err != 0) {
        return err;
    }
    const struct conf_listener *l = &b->config.listeners.list[0];
    struct server_config svc = {
        .host = l->host,
        .port = l->port,
        .max_connections = (uint32_t)b->config.max_connections,
        .request_max_bytes = (uint32_t)b->config.socket_request_max_bytes,
        .in_flight_max = (uint32_t)b->config.connection_requests_max,
        .response_queue_max_bytes = (uint32_t)b->config.connection_response_queue_bytes,
    };
    b->server = server_new(b->loop, &svc, broker_dispatch, b, &err);
    if (b->server == NULL) {
        LOG_ERROR("sluiced", "cannot listen host=%s port=%u err=%s", l->host, l->port,
                  strerror(-err));
        return err;
    }
    LOG_INFO("sluiced", "started node=%d listener=%s://%s:%u log.dirs=%s ring=%s topics=%u",
             b->config.node_id, l->name, l->host[0] ? l->host : "0.0.0.0", server_port(b->server),
             b->config.log_dirs, ring_backend_name(ring_backend_of(b->ring)), b->topics.count);
    return 0;
}

static int stop(struct broker *b)
{
    int err = 0;
    if (b->shard != NULL) {
        err = metalog_close(b->metalog);
        int topics_err = topics_deinit(&b->topics); /* flush, checkpoint, clean-shutdown markers */
        err = err != 0 ? err : topics_err;
        groups_free(b->groups); /* after the logs: their last completions reach it */
        md_image_deinit(&b->image);
    }
    server_free(b->server);
    log_shard_free(b->shard);
    ring_free(b->ring);
    return err;
}

/*
 * Request frames (a megabyte each under a fast producer) are malloc'd as they
 * arrive and freed once answered. glibc would serve each from a fresh mmap,
 * or trim the heap once a few are freed, and the broker then spent a fifth of
 * its time in page faults zeroing the same megabytes again (perf, 1 KiB
 * produce at 500 MB/s), which lengthens every request's round trip. Kept in
 * the heap instead: allocations below 32 MiB (glibc's dynamic ceiling) come
 * from it, and up to 64 MiB of freed memory at its top stays mapped.
 */
#define MALLOC_MMAP_BYTES_MIN (32 << 20)
#define MALLOC_TRIM_BYTES_MIN (64 << 20)

static void malloc_tune(void)
{
    /* Advice only: if glibc refuses, allocation still works, just slower. */
    if (mallopt(M_MMAP_THRESHOLD, MALLOC_MMAP_BYTES_MIN) != 1 ||
        mallopt(M_TRIM_THRESHOLD, MALLOC_TRIM_BYTES_MIN) != 1) {
        LOG_INFO("sluiced", "mallopt refused; request buffers will be mapped per request");
    }
}

int main(int argc, char **argv)
{
    static struct broker b;
    const char *path = NULL;
    const char *overrides[OVERRIDES_MAX] = {0};
    size_t noverrides = 0;
    bool print = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
            path = argv[++i];
        } else if (strcmp(argv[i], "--set") == 0 && i + 1 < argc && noverrides < OVERRIDES_MAX) {
            overrides[noverrides++] = argv[++i];
        } else if (strcmp(argv[i], "--print-config") == 0) {
            print = true;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    char errstr[512];
    if (broker_config_load(&b.config, path, overrides, noverrides, errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "sluiced: %s\n", errstr);
        return 2;
    }
    if (print) {
        conf_dump(broker_config_keys, broker_config_key_count, &b.config, stdout);
        return 0;
    }
    if (b.config.listeners.count == 0) {
        fprintf(stderr, "sluiced: config: listeners is empty; allowed NAME://HOST:PORT\n");
        return 2;
    }
    slog_set_level((enum slog_level)b.config.log_level);
    malloc_tune();
    signal(SIGPIPE, SIG_IGN);
    b.loop = ev_default_loop(EVFLAG_AUTO);
    broker_produce_init(&b);
    int err = start(&b);
    if (err == 0) {
        static struct shutdown s;
        s.b = &b;
        ev_signal_init(&s.sigterm, on_signal, SIGTERM);
        ev_signal_init(&s.sigint, on_signal, SIGINT);
        s.sigterm.data = s.sigint.data = &s;
        ev_signal_start(b.loop, &s.sigterm);
        ev_signal_start(b.loop, &s.sigint);
        ev_check_init(&s.check, on_check);
        ev_check_start(b.loop, &s.check);
        ev_run(b.loop, 0);
    }
    int stop_err = stop(&b);
    if (err == 0 && stop_err == 0) {
        LOG_INFO("sluiced", "stopped cleanly");
        return 0;
    }
    return 1;
}
