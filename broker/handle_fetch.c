/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fetch and ListOffsets. A fetch reads every partition it names from the
 * storage (the batch cache, or the disk through the ring) up to the high
 * watermark, which on one node is the log's durable offset. When fewer than
 * min_bytes come back it parks until an append makes data readable (a
 * produce's completion wakes every parked fetch, which reads again) or until
 * max_wait_ms: never a timer-driven poll.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "common/assert.h"
#include "common/log.h"
#include "proto/errors.h"

struct fetch_part {
    struct fetch *f;
    struct log *log;
    int64_t offset;
    size_t max_bytes;
    struct kmsg_fetch_response_partition_data *out;
    struct buf data;
    struct log_read read;
};

struct fetch {
    struct handling *h;
    struct fetch *next; /* parked list */
    struct fetch *prev;
    struct fetch *live_next; /* broker's list of every unanswered fetch */
    struct fetch *live_prev;
    bool parked;
    bool orphaned; /* a part lost its log to a topic deletion */
    bool timer_started;
    ev_timer timer;
    unsigned reads_pending;
    struct kmsg_fetch_response resp;
    struct fetch_part *parts;
    int32_t nparts;
};

static void fetch_run(struct fetch *f);

static void fetch_unpark(struct fetch *f)
{
    struct broker *b = f->h->broker;
    if (!f->parked) {
        return;
    }
    if (f->prev != NULL) {
        f->prev->next = f->next;
    } else {
        b->parked = f->next;
    }
    if (f->next != NULL) {
        f->next->prev = f->prev;
    }
    f->next = f->prev = NULL;
    f->parked = false;
    b->parked_count--;
}

static void fetch_finish(struct fetch *f)
{
    struct broker *b = f->h->broker;
    fetch_unpark(f);
    if (f->live_prev != NULL) {
        f->live_prev->live_next = f->live_next;
    } else {
        b->fetches = f->live_next;
    }
    if (f->live_next != NULL) {
        f->live_next->live_prev = f->live_prev;
    }
    if (f->timer_started) {
        ev_timer_stop(b->loop, &f->timer);
    }
    for (int32_t i = 0; i < f->nparts; i++) {
        struct fetch_part *part = &f->parts[i];
        if (part->log == NULL) {
            continue; /* error already set */
        }
        part->out->records = (struct kbytes){part->data.data, (int32_t)part->data.len};
        part->out->high_watermark = log_durable_offset(part->log);
        part->out->last_stable_offset = part->out->high_watermark;
        part->out->log_start_offset = log_start_offset(part->log);
    }
    handling_respond(f->h, &f->resp); /* encodes the records: buffers are free after */
    for (int32_t i = 0; i < f->nparts; i++) {
        buf_deinit(&f->parts[i].data);
    }
    free(f->parts);
    free(f);
}

static void on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct fetch *f = SL_CONTAINER_OF(w, struct fetch, timer);
    fetch_finish(f);
}

/* Once every read of a round is in: answer, or park until data arrives. */
static void fetch_round_done(struct fetch *f)
{
    const struct kmsg_fetch_request *rq = f->h->req->handler_data;
    size_t total = 0;
    bool error = false;
    for (int32_t i = 0; i < f->nparts; i++) {
        total += f->parts[i].data.len;
        error = error || f->parts[i].out->error_code != KAFKA_ERR_NONE;
    }
    if (total >= (size_t)(rq->min_bytes > 0 ? rq->min_bytes : 1) || error || rq->max_wait_ms <= 0 ||
        !conn_open(f->h->req->conn)) {
        fetch_finish(f);
        return;
    }
    struct broker *b = f->h->broker;
    f->parked = true;
    f->next = b->parked;
    f->prev = NULL;
    if (b->parked != NULL) {
        b->parked->prev = f;
    }
    b->parked = f;
    b->parked_count++;
    if (!f->timer_started) {
        int32_t wait_ms = rq->max_wait_ms < b->config.fetch_max_wait_ms_max
                              ? rq->max_wait_ms
                              : b->config.fetch_max_wait_ms_max;
        ev_timer_init(&f->timer, on_timeout, wait_ms / 1000.0, 0);
        ev_timer_start(b->loop, &f->timer);
        f->timer_started = true;
    }
}

static void part_read_done(struct fetch_part *part, int status)
{
    if (status == -ERANGE) {
        part->out->error_code = KAFKA_ERR_OFFSET_OUT_OF_RANGE;
        LOG_INFO("broker", "fetch: offset out of range offset=%lld start=%lld end=%lld peer=%s",
                 (long long)part->offset, (long long)log_start_offset(part->log),
                 (long long)log_end_offset(part->log), conn_peer(part->f->h->req->conn));
    } else if (status < 0) {
        part->out->error_code = (int16_t)kafka_error_from_errno(status);
        LOG_WARN("broker", "fetch read failed offset=%lld err=%s", (long long)part->offset,
                 strerror(-status));
    }
}

static void on_read(void *opaque, int status)
{
    struct fetch_part *part = opaque;
    struct fetch *f = part->f;
    part_read_done(part, status);
    if (--f->reads_pending == 0) {
        fetch_round_done(f);
    }
}

static void fetch_run(struct fetch *f)
{
    f->reads_pending = 1; /* this function, until every read is started */
    for (int32_t i = 0; i < f->nparts; i++) {
        struct fetch_part *part = &f->parts[i];
        if (part->log == NULL || part->out->error_code != KAFKA_ERR_NONE) {
            continue;
        }
        buf_reset(&part->data);
        part->read = (struct log_read){
            .offset = part->offset,
            .max_offset = log_durable_offset(part->log),
            .max_bytes = part->max_bytes,
            .out = &part->data,
            .cb = on_read,
            .opaque = part,
        };
        int rc = log_read(part->log, &part->read);
        if (rc == LOG_PENDING) {
            f->reads_pending++;
        } else {
            part_read_done(part, rc);
        }
    }
    if (--f->reads_pending == 0) {
        fetch_round_done(f);
    }
}

static bool fetch_reads(const struct fetch *f, const struct log *log)
{
    for (int32_t i = 0; i < f->nparts; i++) {
        if (f->parts[i].log == log) {
            return true;
        }
    }
    return false;
}

void broker_data_arrived(struct broker *b, const struct log *log)
{
    /* Only the fetches that read this partition read again; one that still
     * lacks data parks again (at the head: the walk has already passed it). */
    struct fetch *f = b->parked;
    while (f != NULL) {
        struct fetch *next = f->next;
        if (fetch_reads(f, log)) {
            fetch_unpark(f);
            fetch_run(f);
        }
        f = next;
    }
}

void broker_release_fetches(struct broker *b)
{
    while (b->parked != NULL) {
        fetch_finish(b->parked);
    }
}

static bool topic_has_log(const struct topic *topic, const struct log *log)
{
    for (int32_t p = 0; p < topic->partition_count; p++) {
        SL_ASSERT(topic->partitions[p].log != NULL); /* a table topic has all its logs open */
        if (topic->partitions[p].log == log) {
            return true;
        }
    }
    return false;
}

void broker_topic_closing(struct broker *b, const struct topic *topic)
{
    for (struct fetch *f = b->fetches; f != NULL; f = f->live_next) {
        for (int32_t i = 0; i < f->nparts; i++) {
            struct fetch_part *part = &f->parts[i];
            if (part->log != NULL && topic_has_log(topic, part->log)) {
                part->log = NULL;
                part->out->error_code = KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION;
                f->orphaned = true;
            }
        }
    }
    /* Answered after the walk, one at a time from the head: a response may
     * dispatch its connection's next request, which may change the lists. */
    for (;;) {
        struct fetch *f = b->parked;
        while (f != NULL && !f->orphaned) {
            f = f->next;
        }
        if (f == NULL) {
            break;
        }
        fetch_finish(f);
    }
}

void handle_fetch(struct handling *h)
{
    struct broker *b = h->broker;
    const struct kmsg_fetch_request *rq = h->req->handler_data;
    struct fetch *f = calloc(1, sizeof(*f));
    int32_t nparts = 0;
    const struct kmsg_fetch_request_fetch_topic *topics = rq->topics.items;
    for (int32_t t = 0; t < rq->topics.count; t++) {
        nparts += topics[t].partitions.count > 0 ? topics[t].partitions.count : 0;
    }
    struct kmsg_fetch_response_fetchable_topic_response *rtopics =
        handling_alloc(h, (size_t)(rq->topics.count > 0 ? rq->topics.count : 1) * sizeof(*rtopics));
    struct kmsg_fetch_response_partition_data *rparts =
        handling_alloc(h, (size_t)(nparts > 0 ? nparts : 1) * sizeof(*rparts));
    if (f != NULL) {
        f->parts = calloc((size_t)(nparts > 0 ? nparts : 1), sizeof(*f->parts));
    }
    if (f == NULL || f->parts == NULL || rtopics == NULL || rparts == NULL) {
        free(f != NULL ? f->parts : NULL);
        free(f);
        LOG_ERROR("broker", "fetch does not fit in memory peer=%s", conn_peer(h->req->conn));
        server_close_after(h->req);
        return;
    }
    f->h = h;
    f->nparts = nparts;
    f->live_next = b->fetches;
    if (b->fetches != NULL) {
        b->fetches->live_prev = f;
    }
    b->fetches = f;
    kmsg_init(&kmsg_fetch_response_desc, &f->resp);
    f->resp.responses = (struct karray){rtopics, rq->topics.count > 0 ? rq->topics.count : 0};
    size_t budget = rq->max_bytes > 0 ? (size_t)rq->max_bytes : 0;
    int32_t k = 0;
    for (int32_t t = 0; t < rq->topics.count; t++) {
        kmsg_init(&kmsg_fetch_response_fetchable_topic_response_desc, &rtopics[t]);
        rtopics[t].topic = topics[t].topic;
        memcpy(rtopics[t].topic_id, topics[t].topic_id, 16);
        struct topic *topic = topics[t].topic.len > 0 ? topics_find(&b->topics, topics[t].topic.ptr,
                                                                    (size_t)topics[t].topic.len)
                                                      : NULL;
        int32_t np = topics[t].partitions.count > 0 ? topics[t].partitions.count : 0;
        rtopics[t].partitions = (struct karray){&rparts[k], np};
        const struct kmsg_fetch_request_fetch_partition *pin = topics[t].partitions.items;
        for (int32_t p = 0; p < np; p++, k++) {
            struct fetch_part *part = &f->parts[k];
            struct kmsg_fetch_response_partition_data *out = &rparts[k];
            kmsg_init(&kmsg_fetch_response_partition_data_desc, out);
            out->partition_index = pin[p].partition;
            out->aborted_transactions = (struct karray){NULL, 0};
            out->records = (struct kbytes){NULL, 0};
            part->f = f;
            part->out = out;
            part->offset = pin[p].fetch_offset;
            size_t want = pin[p].partition_max_bytes > 0 ? (size_t)pin[p].partition_max_bytes : 0;
            part->max_bytes = want < budget ? want : budget;
            budget -= part->max_bytes;
            /* Room for the first batch whole, even past max_bytes (KIP-74). */
            buf_init(&part->data, part->max_bytes + b->config.message_max_bytes + 4096u);
            if (h->version < 4) {
                out->error_code = KAFKA_ERR_UNSUPPORTED_VERSION; /* no RecordBatch v2 */
            } else if (topic == NULL || pin[p].partition < 0 ||
                       pin[p].partition >= topic->partition_count) {
                out->error_code = KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION;
            } else {
                part->log = topic->partitions[pin[p].partition].log;
            }
        }
    }
    fetch_run(f);
}

void handle_list_offsets(struct handling *h)
{
    struct broker *b = h->broker;
    const struct kmsg_list_offsets_request *rq = h->req->handler_data;
    struct kmsg_list_offsets_response resp;
    kmsg_init(&kmsg_list_offsets_response_desc, &resp);
    int32_t nt = rq->topics.count > 0 ? rq->topics.count : 0;
    struct kmsg_list_offsets_response_list_offsets_topic_response *topics =
        handling_alloc(h, (size_t)(nt > 0 ? nt : 1) * sizeof(*topics));
    const struct kmsg_list_offsets_request_list_offsets_topic *in = rq->topics.items;
    for (int32_t t = 0; topics != NULL && t < nt; t++) {
        kmsg_init(&kmsg_list_offsets_response_list_offsets_topic_response_desc, &topics[t]);
        topics[t].name = in[t].name;
        struct topic *topic = in[t].name.len > 0
                                  ? topics_find(&b->topics, in[t].name.ptr, (size_t)in[t].name.len)
                                  : NULL;
        int32_t np = in[t].partitions.count > 0 ? in[t].partitions.count : 0;
        struct kmsg_list_offsets_response_list_offsets_partition_response *parts =
            handling_alloc(h, (size_t)(np > 0 ? np : 1) * sizeof(*parts));
        int64_t *old = handling_alloc(h, (size_t)(np > 0 ? np : 1) * sizeof(*old));
        if (parts == NULL || old == NULL) {
            np = 0;
        }
        topics[t].partitions = (struct karray){parts, np};
        const struct kmsg_list_offsets_request_list_offsets_partition *pin = in[t].partitions.items;
        for (int32_t p = 0; p < np; p++) {
            struct kmsg_list_offsets_response_list_offsets_partition_response *out = &parts[p];
            kmsg_init(&kmsg_list_offsets_response_list_offsets_partition_response_desc, out);
            out->partition_index = pin[p].partition_index;
            out->old_style_offsets = (struct karray){&old[p], 0};
            if (topic == NULL || pin[p].partition_index < 0 ||
                pin[p].partition_index >= topic->partition_count) {
                out->error_code = KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            }
            struct log *log = topic->partitions[pin[p].partition_index].log;
            int64_t ts = pin[p].timestamp;
            if (ts == -1 || ts == -3) { /* latest; max timestamp answered as latest */
                out->offset = log_durable_offset(log);
            } else if (ts == -2) { /* earliest */
                out->offset = log_start_offset(log);
            } else {
                int64_t found_ts = -1;
                int err = log_offset_for_time(log, ts, &out->offset, &found_ts);
                if (err == -ENOENT) {
                    out->offset = -1;
                } else if (err != 0) {
                    out->error_code = (int16_t)kafka_error_from_errno(err);
                    continue;
                } else {
                    out->timestamp = found_ts;
                }
            }
            out->leader_epoch = 0;
            old[p] = out->offset;
            out->old_style_offsets.count = out->offset >= 0 ? 1 : 0;
        }
    }
    resp.topics = (struct karray){topics, topics != NULL ? nt : 0};
    handling_respond(h, &resp);
}
