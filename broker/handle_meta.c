/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ApiVersions and Metadata: what the broker speaks, and where topics live.
 * Metadata auto-creates the topics it is asked for (auto.create.topics.enable):
 * their records go to the metadata log first, and the response waits until
 * they are applied, so the client sees the new topic in this answer.
 */
#include <errno.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/groups.h"
#include "broker/metalog.h"
#include "common/log.h"
#include "proto/errors.h"

void handle_api_versions(struct handling *h)
{
    struct kmsg_api_versions_response resp;
    kmsg_init(&kmsg_api_versions_response_desc, &resp);
    int16_t asked = h->req->header.request_api_version;
    int16_t min;
    int16_t max;
    broker_api_range(KMSG_API_API_VERSIONS, &min, &max);
    resp.error_code = asked > max ? KAFKA_ERR_UNSUPPORTED_VERSION : KAFKA_ERR_NONE;
    struct kmsg_api_versions_response_api_version *keys =
        handling_alloc(h, KMSG_API_COUNT * sizeof(*keys));
    int32_t n = 0;
    for (int i = 0; keys != NULL && i < KMSG_API_COUNT; i++) {
        if (broker_api_range(kmsg_apis[i].key, &min, &max)) {
            keys[n++] = (struct kmsg_api_versions_response_api_version){kmsg_apis[i].key, min, max};
        }
    }
    resp.api_keys = (struct karray){keys, n};
    handling_respond(h, &resp);
}

void broker_endpoint(const struct broker *b, const char **host, int32_t *port)
{
    const struct conf_listeners *l = b->config.advertised_listeners.count > 0
                                         ? &b->config.advertised_listeners
                                         : &b->config.listeners;
    *host = l->list[0].host[0] != '\0' ? l->list[0].host : "127.0.0.1";
    *port = l->list[0].port != 0 ? l->list[0].port : (int32_t)server_port(b->server);
}

static void describe_topic(struct handling *h,
                           struct kmsg_metadata_response_metadata_response_topic *out,
                           const struct topic *topic)
{
    int32_t node = h->broker->config.node_id;
    struct kmsg_metadata_response_metadata_response_partition *parts =
        handling_alloc(h, (size_t)topic->partition_count * sizeof(*parts));
    int32_t *nodes = handling_alloc(h, sizeof(*nodes));
    if (parts == NULL || nodes == NULL) {
        out->error_code = KAFKA_ERR_UNKNOWN_SERVER_ERROR;
        return;
    }
    nodes[0] = node;
    for (int32_t p = 0; p < topic->partition_count; p++) {
        kmsg_init(&kmsg_metadata_response_metadata_response_partition_desc, &parts[p]);
        parts[p].partition_index = p;
        parts[p].leader_id = node;
        parts[p].leader_epoch = topic->partitions[p].leader_epoch;
        parts[p].replica_nodes = (struct karray){nodes, 1};
        parts[p].isr_nodes = (struct karray){nodes, 1};
        parts[p].offline_replicas = (struct karray){NULL, 0};
        int err = log_error(topic->partitions[p].log);
        parts[p].error_code = err != 0 ? KAFKA_ERR_KAFKA_STORAGE_ERROR : KAFKA_ERR_NONE;
    }
    out->error_code = KAFKA_ERR_NONE;
    out->name = kstr_cstr(topic->name);
    out->is_internal = strcmp(topic->name, GROUPS_TOPIC) == 0;
    memcpy(out->topic_id, topic->id, sizeof(out->topic_id));
    out->partitions = (struct karray){parts, topic->partition_count};
}

/* A Metadata request waiting for the topics it creates. */
struct metadata_op {
    struct handling *h;
    int32_t pending;
};

static void metadata_respond(struct handling *h);

static void metadata_created(void *opaque, int status)
{
    struct metadata_op *op = opaque;
    if (status != 0) {
        LOG_WARN("broker", "auto-create failed err=%s", strerror(-status));
    }
    if (--op->pending == 0) {
        metadata_respond(op->h);
    }
}

static bool auto_create_allowed(const struct handling *h, const struct kmsg_metadata_request *rq)
{
    return h->broker->config.auto_create_topics_enable &&
           (h->version < 4 || rq->allow_auto_topic_creation) && rq->topics.count > 0;
}

/* Commits the records of the asked topics that do not exist, one change per
 * METALOG_TXN_RECORDS_MAX of them. Returns the changes in flight (the
 * response waits for them) or 0 when there is nothing to wait for. */
static int32_t auto_create(struct handling *h, const struct kmsg_metadata_request *rq)
{
    struct broker *b = h->broker;
    if (!auto_create_allowed(h, rq)) {
        return 0;
    }
    struct metadata_op *op = handling_alloc(h, sizeof(*op));
    if (op == NULL) {
        return 0;
    }
    op->h = h;
    op->pending = 1;
    const struct kmsg_metadata_request_metadata_request_topic *want = rq->topics.items;
    struct metalog_txn txn;
    metalog_txn_init(&txn);
    for (int32_t i = 0; i <= rq->topics.count; i++) {
        bool last = i == rq->topics.count;
        if (!last) {
            struct kstr name = want[i].name;
            uint8_t id[16];
            if (name.len <= 0 || !topic_name_valid(name.ptr, (size_t)name.len) ||
                (name.len == (int32_t)strlen(METALOG_TOPIC) &&
                 memcmp(name.ptr, METALOG_TOPIC, strlen(METALOG_TOPIC)) == 0) ||
                topics_find(&b->topics, name.ptr, (size_t)name.len) != NULL ||
                md_new_topic_id(&b->image, id) != 0) {
                continue;
            }
            /* A name asked twice gets two records: the second is skipped. */
            int err =
                md_put_topic(&txn.bytes, name.ptr, (size_t)name.len, id, b->config.num_partitions);
            err = err != 0 ? err : metalog_txn_mark(&txn);
            if (err != 0) {
                break;
            }
            LOG_INFO("broker", "metadata: auto-creating topic=%.*s partitions=%d peer=%s", name.len,
                     name.ptr, b->config.num_partitions, conn_peer(h->req->conn));
        }
        if (txn.count > 0 && (last || txn.count == METALOG_TXN_RECORDS_MAX)) {
            int err = metalog_commit(b->metalog, &txn, metadata_created, op);
            if (err != 0) {
                LOG_WARN("broker", "auto-create not recorded err=%s", strerror(-err));
            } else {
                op->pending++;
            }
            buf_reset(&txn.bytes);
            txn.count = 0;
        }
    }
    metalog_txn_deinit(&txn);
    return --op->pending;
}

void handle_metadata(struct handling *h)
{
    if (auto_create(h, h->req->handler_data) == 0) {
        metadata_respond(h);
    }
}

static void metadata_respond(struct handling *h)

{
    struct broker *b = h->broker;
    const struct kmsg_metadata_request *rq = h->req->handler_data;
    struct kmsg_metadata_response resp;
    kmsg_init(&kmsg_metadata_response_desc, &resp);
    struct kmsg_metadata_response_metadata_response_broker *me = handling_alloc(h, sizeof(*me));
    if (me == NULL) {
        handling_respond(h, &resp);
        return;
    }
    kmsg_init(&kmsg_metadata_response_metadata_response_broker_desc, me);
    const char *host;
    broker_endpoint(b, &host, &me->port);
    me->node_id = b->config.node_id;
    me->host = kstr_cstr(host);
    resp.brokers = (struct karray){me, 1};
    resp.cluster_id = kstr_cstr(b->config.cluster_id);
    resp.controller_id = b->config.node_id;

    /* v0: an empty list means every topic; v1+: null means every topic. */
    bool all = rq->topics.count < 0 || (h->version == 0 && rq->topics.count == 0);
    int32_t n = all ? (int32_t)b->topics.count : rq->topics.count;
    struct kmsg_metadata_response_metadata_response_topic *topics =
        handling_alloc(h, (size_t)(n > 0 ? n : 1) * sizeof(*topics));
    if (topics == NULL) {
        handling_respond(h, &resp);
        return;
    }
    bool create = auto_create_allowed(h, rq);
    for (int32_t i = 0; i < n; i++) {
        kmsg_init(&kmsg_metadata_response_metadata_response_topic_desc, &topics[i]);
        if (all) {
            describe_topic(h, &topics[i], b->topics.list[i]);
            continue;
        }
        const struct kmsg_metadata_request_metadata_request_topic *want =
            &((const struct kmsg_metadata_request_metadata_request_topic *)rq->topics.items)[i];
        topics[i].name = want->name;
        if (want->name.len < 0 || !topic_name_valid(want->name.ptr, (size_t)want->name.len)) {
            topics[i].error_code = KAFKA_ERR_INVALID_TOPIC_EXCEPTION;
            LOG_INFO("broker", "metadata: invalid topic name peer=%s", conn_peer(h->req->conn));
            continue;
        }
        struct topic *topic = topics_find(&b->topics, want->name.ptr, (size_t)want->name.len);
        if (topic == NULL) {
            topics[i].error_code = KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION;
            LOG_INFO("broker", "metadata: unknown topic=%.*s auto_create=%d peer=%s",
                     want->name.len, want->name.ptr, create, conn_peer(h->req->conn));
            continue;
        }
        describe_topic(h, &topics[i], topic);
    }
    resp.topics = (struct karray){topics, n};
    handling_respond(h, &resp);
}
