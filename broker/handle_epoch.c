/* SPDX-License-Identifier: Apache-2.0 */
/*
 * OffsetForLeaderEpoch (v0-4) and the leader-epoch rules other requests share
 * (broker/leader_epoch.h): where a leader epoch ended, which consumers ask
 * after a leader change to detect a truncated log (KIP-320) and followers
 * before they fetch (KIP-101).
 *
 * Each partition has kept one epoch so far, partition->leader_epoch, from the
 * log's start on. Its history, as Kafka's LeaderEpochFileCache would hold it,
 * is one entry {epoch, log start offset}: the leader assigns its epoch's
 * start when it takes over, and retention moves the first entry's start up
 * with the log's (truncateFromStart). The answers below are that cache's.
 *
 * The asker's replica_id (v3+) does not change the answer: Kafka answers a
 * follower (>= 0), a consumer (-1) and a debugging tool (-2) alike, always as
 * the leader (fetchOnlyFromLeader), and one node leads every partition.
 */
#include <string.h>

#include "broker/broker.h"
#include "broker/leader_epoch.h"
#include "common/assert.h"
#include "common/log.h"
#include "proto/errors.h"

int16_t leader_epoch_check(const struct partition *partition, int32_t current_leader_epoch)
{
    SL_ASSERT(partition->leader_epoch >= 0); /* epochs start at 0 and only grow */
    if (current_leader_epoch == LEADER_EPOCH_NONE) {
        return KAFKA_ERR_NONE;
    }
    if (current_leader_epoch < partition->leader_epoch) {
        return KAFKA_ERR_FENCED_LEADER_EPOCH;
    }
    if (current_leader_epoch > partition->leader_epoch) {
        return KAFKA_ERR_UNKNOWN_LEADER_EPOCH;
    }
    return KAFKA_ERR_NONE;
}

void leader_epoch_end_offset(const struct partition *partition, int32_t requested, int32_t *epoch,
                             int64_t *end_offset)
{
    int32_t ours = partition->leader_epoch;
    SL_ASSERT(ours >= 0 && partition->log != NULL); /* an open partition of the table */
    if (requested == LEADER_EPOCH_UNDEFINED || requested > ours) {
        *epoch = LEADER_EPOCH_UNDEFINED;
        *end_offset = LEADER_EPOCH_OFFSET_UNDEFINED;
    } else if (requested == ours) {
        *epoch = ours;
        *end_offset = log_end_offset(partition->log);
    } else {
        /* Older than the first epoch kept: it ended where the first began. */
        *epoch = requested;
        *end_offset = log_start_offset(partition->log);
    }
    SL_ASSERT(*end_offset <= log_end_offset(partition->log));
}

/* One partition of the request, answered into out. */
static void
epoch_partition(struct handling *h, const struct topic *topic, struct kstr topic_name,
                const struct kmsg_offset_for_leader_epoch_request_offset_for_leader_partition *in,
                struct kmsg_offset_for_leader_epoch_response_epoch_end_offset *out)
{
    kmsg_init(&kmsg_offset_for_leader_epoch_response_epoch_end_offset_desc, out);
    out->partition = in->partition;
    if (topic == NULL || in->partition < 0 || in->partition >= topic->partition_count) {
        out->error_code = KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        LOG_INFO(
            "broker",
            "offset for leader epoch: unknown topic or partition topic=%.*s partition=%d peer=%s",
            topic_name.len > 0 ? topic_name.len : 0, topic_name.ptr, in->partition,
            conn_peer(h->req->conn));
        return;
    }
    const struct partition *partition = &topic->partitions[in->partition];
    if (log_error(partition->log) != 0) {
        out->error_code = KAFKA_ERR_KAFKA_STORAGE_ERROR; /* as Metadata reports it */
        return;
    }
    /* current_leader_epoch is -1 (its default) before v2. */
    out->error_code = leader_epoch_check(partition, in->current_leader_epoch);
    if (out->error_code != KAFKA_ERR_NONE) {
        LOG_INFO("broker",
                 "offset for leader epoch: %s topic=%s partition=%d current_leader_epoch=%d "
                 "ours=%d peer=%s",
                 kafka_error_name(out->error_code), topic->name, in->partition,
                 in->current_leader_epoch, partition->leader_epoch, conn_peer(h->req->conn));
        return;
    }
    leader_epoch_end_offset(partition, in->leader_epoch, &out->leader_epoch, &out->end_offset);
}

void handle_offset_for_leader_epoch(struct handling *h)
{
    struct broker *b = h->broker;
    const struct kmsg_offset_for_leader_epoch_request *rq = h->req->handler_data;
    struct kmsg_offset_for_leader_epoch_response resp;
    kmsg_init(&kmsg_offset_for_leader_epoch_response_desc, &resp);
    int32_t nt = rq->topics.count > 0 ? rq->topics.count : 0;
    struct kmsg_offset_for_leader_epoch_response_offset_for_leader_topic_result *topics =
        handling_alloc(h, (size_t)(nt > 0 ? nt : 1) * sizeof(*topics));
    if (topics == NULL) {
        /* Answered empty rather than not at all: the client retries. */
        LOG_ERROR("broker",
                  "offset for leader epoch response does not fit its arena topics=%d peer=%s", nt,
                  conn_peer(h->req->conn));
        handling_respond(h, &resp);
        return;
    }
    const struct kmsg_offset_for_leader_epoch_request_offset_for_leader_topic *in =
        rq->topics.items;
    for (int32_t t = 0; t < nt; t++) {
        kmsg_init(&kmsg_offset_for_leader_epoch_response_offset_for_leader_topic_result_desc,
                  &topics[t]);
        topics[t].topic = in[t].topic;
        const struct topic *topic =
            in[t].topic.len > 0 ? topics_find(&b->topics, in[t].topic.ptr, (size_t)in[t].topic.len)
                                : NULL;
        int32_t np = in[t].partitions.count > 0 ? in[t].partitions.count : 0;
        struct kmsg_offset_for_leader_epoch_response_epoch_end_offset *parts =
            handling_alloc(h, (size_t)(np > 0 ? np : 1) * sizeof(*parts));
        if (parts == NULL) {
            LOG_ERROR("broker", "offset for leader epoch response does not fit its arena peer=%s",
                      conn_peer(h->req->conn));
            np = 0;
        }
        topics[t].partitions = (struct karray){parts, np};
        const struct kmsg_offset_for_leader_epoch_request_offset_for_leader_partition *pin =
            in[t].partitions.items;
        for (int32_t p = 0; p < np; p++) {
            epoch_partition(h, topic, in[t].topic, &pin[p], &parts[p]);
        }
    }
    resp.topics = (struct karray){topics, nt};
    handling_respond(h, &resp);
}
