/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fetch and ListOffsets. A fetch reads every partition it names from the
 * storage (the batch cache, or the disk through the ring) up to the high
 * watermark, which on one node is the log's durable offset. When fewer than
 * min_bytes come back it parks until an append makes data readable (a
 * produce's completion wakes every parked fetch, which reads again) or until
 * max_wait_ms: never a timer-driven poll.
 *
 * Versions. Fetch v4-17 is served field for field; v0-3 carry no RecordBatch
 * v2 and answer UNSUPPORTED_VERSION per partition. From v13 topics are named
 * by id (an unknown id is UNKNOWN_TOPIC_ID). Fetch sessions (v7+, KIP-227):
 * this broker keeps none, so a full fetch (session epoch -1, or 0 asking for
 * a new session) is answered with session id 0, which tells the client to keep
 * sending full fetches, and any other epoch, which continues a session, is
 * FETCH_SESSION_ID_NOT_FOUND, as Kafka answers an unknown session.
 * current_leader_epoch (v9+) is checked as Kafka does (leader_epoch.h); a
 * fenced partition names the leader and its epoch (current_leader, v12+, and
 * node_endpoints, v16+). last_fetched_epoch (v12+) is checked against the
 * epoch history: a fetch whose log diverged gets no records and the
 * diverging_epoch to truncate to. The replica id (replica_id, replica_state)
 * and replica_directory_id (v17) are not used: there are no followers yet.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/leader_epoch.h"
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
    bool diverged; /* the fetcher's log diverged: answered without reading */
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
        error = error || f->parts[i].out->error_code != KAFKA_ERR_NONE || f->parts[i].diverged;
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
        if (part->log == NULL || part->out->error_code != KAFKA_ERR_NONE || part->diverged) {
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

/*
 * Kafka's divergence check (Partition.readRecords) of a fetch that names the
 * epoch of the last record it has: OFFSET_OUT_OF_RANGE when that epoch has no
 * end here or the offset is below the log's start, else diverged when the
 * epoch ended before the fetch offset (or only an older one is known).
 */
static int16_t check_divergence(struct fetch_part *part, const struct partition *partition,
                                int32_t last_fetched_epoch)
{
    int32_t epoch;
    int64_t end_offset;
    leader_epoch_end_offset(partition, last_fetched_epoch, &epoch, &end_offset);
    if (epoch == LEADER_EPOCH_UNDEFINED || end_offset == LEADER_EPOCH_OFFSET_UNDEFINED ||
        part->offset < log_start_offset(partition->log)) {
        return KAFKA_ERR_OFFSET_OUT_OF_RANGE;
    }
    if (epoch < last_fetched_epoch || end_offset < part->offset) {
        part->out->diverging_epoch.epoch = epoch;
        part->out->diverging_epoch.end_offset = end_offset;
        part->diverged = true;
    }
    return KAFKA_ERR_NONE;
}

/* Sets up one partition of the request: its log to read, or its error. */
static void fetch_part_init(struct fetch *f, struct fetch_part *part, const struct topic *topic,
                            const struct kmsg_fetch_request_fetch_partition *in)
{
    struct handling *h = f->h;
    struct kmsg_fetch_response_partition_data *out = part->out;
    if (h->version < 4) {
        out->error_code = KAFKA_ERR_UNSUPPORTED_VERSION; /* no RecordBatch v2 */
    } else if (topic == NULL) {
        /* By id (v13+) Kafka cannot tell the topic's name, and says so. */
        out->error_code =
            h->version >= 13 ? KAFKA_ERR_UNKNOWN_TOPIC_ID : KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    } else if (in->partition < 0 || in->partition >= topic->partition_count) {
        out->error_code = KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    } else {
        const struct partition *partition = &topic->partitions[in->partition];
        out->error_code = leader_epoch_check(partition, in->current_leader_epoch);
        if (out->error_code == KAFKA_ERR_FENCED_LEADER_EPOCH) {
            out->current_leader.leader_id = h->broker->config.node_id;
            out->current_leader.leader_epoch = partition->leader_epoch;
        } else if (out->error_code == KAFKA_ERR_NONE &&
                   in->last_fetched_epoch != LEADER_EPOCH_NONE) {
            out->error_code = check_divergence(part, partition, in->last_fetched_epoch);
        }
        if (out->error_code == KAFKA_ERR_NONE) {
            part->log = partition->log;
            return;
        }
        LOG_INFO("broker",
                 "fetch: %s topic=%s partition=%d current_leader_epoch=%d last_fetched_epoch=%d "
                 "ours=%d peer=%s",
                 kafka_error_name(out->error_code), topic->name, in->partition,
                 in->current_leader_epoch, in->last_fetched_epoch, partition->leader_epoch,
                 conn_peer(h->req->conn));
    }
    out->high_watermark = -1; /* Kafka's INVALID_HIGH_WATERMARK beside an error */
}

/* The topic a request names: by name before v13, by id from v13 on. */
static struct topic *fetch_topic(const struct handling *h,
                                 const struct kmsg_fetch_request_fetch_topic *in)
{
    const struct topics *topics = &h->broker->topics;
    if (h->version >= 13) {
        return topics_find_id(topics, in->topic_id);
    }
    return in->topic.len > 0 ? topics_find(topics, in->topic.ptr, (size_t)in->topic.len) : NULL;
}

/* Fenced partitions name their leader's endpoint (v16+, KIP-951). */
static void fetch_node_endpoints(struct fetch *f)
{
    struct handling *h = f->h;
    bool fenced = false;
    for (int32_t i = 0; i < f->nparts && !fenced; i++) {
        fenced = f->parts[i].out->error_code == KAFKA_ERR_FENCED_LEADER_EPOCH;
    }
    struct kmsg_fetch_response_node_endpoint *ep = fenced ? handling_alloc(h, sizeof(*ep)) : NULL;
    if (ep == NULL) {
        return; /* none fenced, or no room: the field is optional */
    }
    kmsg_init(&kmsg_fetch_response_node_endpoint_desc, ep);
    const char *host;
    broker_endpoint(h->broker, &host, &ep->port);
    ep->node_id = h->broker->config.node_id;
    ep->host = (struct kstr){host, (int32_t)strlen(host)};
    f->resp.node_endpoints = (struct karray){ep, 1};
}

/* A request that continues a fetch session (KIP-227): none exists here. */
static bool fetch_session_unknown(struct handling *h, const struct kmsg_fetch_request *rq)
{
    /* Before v7 the epoch holds its default, -1: no session. */
    if (rq->session_epoch == -1 || rq->session_epoch == 0) {
        return false;
    }
    LOG_INFO("broker", "fetch: unknown fetch session id=%d epoch=%d peer=%s", rq->session_id,
             rq->session_epoch, conn_peer(h->req->conn));
    struct kmsg_fetch_response resp;
    kmsg_init(&kmsg_fetch_response_desc, &resp);
    resp.error_code = KAFKA_ERR_FETCH_SESSION_ID_NOT_FOUND;
    resp.session_id = 0;
    resp.responses = (struct karray){NULL, 0};
    handling_respond(h, &resp);
    return true;
}

void handle_fetch(struct handling *h)
{
    struct broker *b = h->broker;
    const struct kmsg_fetch_request *rq = h->req->handler_data;
    if (fetch_session_unknown(h, rq)) {
        return;
    }
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
        handling_close(h);
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
        const struct topic *topic = fetch_topic(h, &topics[t]);
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
            fetch_part_init(f, part, topic, &pin[p]);
        }
    }
    fetch_node_endpoints(f);
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
            const struct partition *partition = &topic->partitions[pin[p].partition_index];
            /* current_leader_epoch is -1 (its default) before v4. */
            out->error_code = leader_epoch_check(partition, pin[p].current_leader_epoch);
            if (out->error_code != KAFKA_ERR_NONE) {
                LOG_INFO("broker",
                         "list offsets: %s topic=%s partition=%d current_leader_epoch=%d ours=%d "
                         "peer=%s",
                         kafka_error_name(out->error_code), topic->name, pin[p].partition_index,
                         pin[p].current_leader_epoch, partition->leader_epoch,
                         conn_peer(h->req->conn));
                continue;
            }
            struct log *log = partition->log;
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
            /* One epoch so far: every offset of the log is in it. */
            out->leader_epoch = out->offset >= 0 ? partition->leader_epoch : -1;
            old[p] = out->offset;
            out->old_style_offsets.count = out->offset >= 0 ? 1 : 0;
        }
    }
    resp.topics = (struct karray){topics, topics != NULL ? nt : 0};
    handling_respond(h, &resp);
}
