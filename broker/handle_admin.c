/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CreateTopics and DeleteTopics: the topic table changed from the wire, one
 * topic at a time, each with its own error code and message, as Kafka
 * answers. A change is a batch of metadata records (the topic and its setting
 * overrides, or its removal) appended to the __cluster_metadata log; once it
 * is durable it is applied to the image, the topic table follows the image
 * (topics_sync opens or deletes the partitions), and the topic's result is
 * filled in. The response goes when every topic of the request is settled.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/metalog.h"
#include "broker/topic_config.h"
#include "common/log.h"
#include "proto/errors.h"

/* DescribeConfigs' ConfigSource: a setting of this topic, or the broker's
 * file (or its built-in default), which is where a topic's default comes from. */
#define CONFIG_SOURCE_TOPIC         1
#define CONFIG_SOURCE_STATIC_BROKER 4
/* A topic's partitions at most: the bound the metadata image enforces. */
#define PARTITIONS_MAX 100000

static const uint8_t zero_id[16];

/* ------------------------------------------------------------ configs */

/*
 * Applies one topic setting to config and marks it in *set. Returns
 * KAFKA_ERR_NONE, or INVALID_CONFIG with *message saying which and why.
 */
static int16_t apply_config(struct handling *h,
                            const struct kmsg_create_topics_request_creatable_topic_config *c,
                            struct topic_settings *config, uint32_t *set, struct kstr *message)
{
    if (c->value.len < 0) {
        *message = handling_printf(h, "Null value not supported for topic configs: %.*s",
                                   c->name.len, c->name.ptr);
        return KAFKA_ERR_INVALID_CONFIG;
    }
    int key = c->name.len > 0 ? topic_config_find(c->name.ptr, (size_t)c->name.len) : -1;
    if (key < 0) {
        *message = handling_printf(h, "Unknown topic config name: %.*s", c->name.len, c->name.ptr);
        return KAFKA_ERR_INVALID_CONFIG;
    }
    if (topic_config_set(config, (enum topic_config_key)key, c->value.ptr, (size_t)c->value.len) !=
        0) {
        *message = handling_printf(h, "Invalid value %.*s for configuration %.*s", c->value.len,
                                   c->value.ptr, c->name.len, c->name.ptr);
        return KAFKA_ERR_INVALID_CONFIG;
    }
    *set |= 1u << key;
    return KAFKA_ERR_NONE;
}

/* The topic's settings as CreateTopics v5+ reports them. */
static void describe_configs(struct handling *h, const struct topic_settings *config, uint32_t set,
                             struct kmsg_create_topics_response_creatable_topic_result *out)
{
    struct kmsg_create_topics_response_creatable_topic_configs *cs =
        handling_alloc(h, TOPIC_CONFIG_COUNT * sizeof(*cs));
    char *values = handling_alloc(h, TOPIC_CONFIG_COUNT * TOPIC_CONFIG_VALUE_BYTES);
    if (cs == NULL || values == NULL) {
        return; /* the array stays empty: the topic's result matters more */
    }
    for (int k = 0; k < TOPIC_CONFIG_COUNT; k++) {
        char *v = values + k * TOPIC_CONFIG_VALUE_BYTES;
        topic_config_format(config, (enum topic_config_key)k, v, TOPIC_CONFIG_VALUE_BYTES);
        kmsg_init(&kmsg_create_topics_response_creatable_topic_configs_desc, &cs[k]);
        cs[k].name = kstr_cstr(topic_config_defs[k].name);
        cs[k].value = kstr_cstr(v);
        cs[k].config_source =
            (set & (1u << k)) != 0 ? CONFIG_SOURCE_TOPIC : CONFIG_SOURCE_STATIC_BROKER;
    }
    out->configs = (struct karray){cs, TOPIC_CONFIG_COUNT};
}

/* --------------------------------------------------------- duplicates */

/* A topic as a request names it: by name (kind 0) or by id (kind 1). */
struct topic_key {
    const void *ptr;
    int32_t len;
    int32_t kind;
    int32_t index; /* in the request */
};

static int topic_key_cmp(const void *pa, const void *pb)
{
    const struct topic_key *a = pa;
    const struct topic_key *b = pb;
    if (a->kind != b->kind) {
        return a->kind < b->kind ? -1 : 1;
    }
    if (a->len != b->len) {
        return a->len < b->len ? -1 : 1;
    }
    return a->len > 0 ? memcmp(a->ptr, b->ptr, (size_t)a->len) : 0;
}

/*
 * Marks every entry whose key appears more than once: Kafka refuses all of
 * them (INVALID_REQUEST), not only the later ones. Sorting keeps this
 * O(n log n) however many topics a request names. NULL when the arena is full.
 */
static bool *mark_repeated(struct handling *h, struct topic_key *keys, int32_t n)
{
    bool *repeated = handling_alloc(h, (size_t)(n > 0 ? n : 1) * sizeof(*repeated));
    if (repeated == NULL || keys == NULL) {
        return NULL;
    }
    qsort(keys, (size_t)n, sizeof(*keys), topic_key_cmp);
    for (int32_t i = 1; i < n; i++) {
        if (topic_key_cmp(&keys[i - 1], &keys[i]) == 0) {
            repeated[keys[i - 1].index] = true;
            repeated[keys[i].index] = true;
        }
    }
    return repeated;
}

/* ------------------------------------------------------- CreateTopics */

/* Checks one topic of the request, in Kafka's order; fills *config. */
static int16_t create_check(struct handling *h, const struct kmsg_create_topics_request *rq,
                            int32_t i, int32_t *partitions, struct topic_settings *config,
                            uint32_t *set, struct kstr *message)
{
    struct broker *b = h->broker;
    const struct kmsg_create_topics_request_creatable_topic *in =
        &((const struct kmsg_create_topics_request_creatable_topic *)rq->topics.items)[i];
    if (in->name.len <= 0 || !topic_name_valid(in->name.ptr, (size_t)in->name.len)) {
        *message = handling_printf(h, "Topic name '%.*s' is illegal: 1 to %d of [a-zA-Z0-9._-]",
                                   in->name.len > 0 ? in->name.len : 0,
                                   in->name.ptr != NULL ? in->name.ptr : "", TOPIC_NAME_MAX);
        return KAFKA_ERR_INVALID_TOPIC_EXCEPTION;
    }
    if (in->name.len == (int32_t)strlen(METALOG_TOPIC) &&
        memcmp(in->name.ptr, METALOG_TOPIC, strlen(METALOG_TOPIC)) == 0) {
        *message = handling_printf(h, "Topic name '%s' is reserved", METALOG_TOPIC);
        return KAFKA_ERR_INVALID_TOPIC_EXCEPTION;
    }
    if (topics_find(&b->topics, in->name.ptr, (size_t)in->name.len) != NULL) {
        *message = handling_printf(h, "Topic '%.*s' already exists.", in->name.len, in->name.ptr);
        return KAFKA_ERR_TOPIC_ALREADY_EXISTS;
    }
    if (in->assignments.count > 0) {
        *message = handling_printf(h, "Replica assignments are not supported: give num_partitions");
        return KAFKA_ERR_INVALID_REQUEST;
    }
    *partitions = in->num_partitions == -1 ? b->config.num_partitions : in->num_partitions;
    if (*partitions < 1 || *partitions > PARTITIONS_MAX) {
        *message = handling_printf(h, "Number of partitions must be 1 to %d (or -1), not %d",
                                   PARTITIONS_MAX, in->num_partitions);
        return KAFKA_ERR_INVALID_PARTITIONS;
    }
    if (in->replication_factor != -1 && in->replication_factor != 1) {
        *message = handling_printf(h,
                                   "Replication factor %d cannot be reached: this cluster has one "
                                   "broker",
                                   in->replication_factor);
        return KAFKA_ERR_INVALID_REPLICATION_FACTOR;
    }
    *config = b->topics.config;
    const struct kmsg_create_topics_request_creatable_topic_config *c = in->configs.items;
    for (int32_t k = 0; k < in->configs.count; k++) {
        int16_t err = apply_config(h, &c[k], config, set, message);
        if (err != KAFKA_ERR_NONE) {
            return err;
        }
    }
    return KAFKA_ERR_NONE;
}

/* A CreateTopics request while its topics' changes are in the log. */
struct create_op {
    struct handling *h;
    struct kmsg_create_topics_response resp;
    int32_t pending; /* topics not settled, plus one while they are started */
};

/* One topic of it, from the commit of its records to its result. */
struct create_one {
    struct create_op *op;
    struct kmsg_create_topics_response_creatable_topic_result *out;
    uint8_t id[16];
    int32_t partitions;
};

static void create_settled(struct create_op *op)
{
    if (--op->pending == 0) {
        handling_respond(op->h, &op->resp);
    }
}

static void create_done(void *opaque, int status)
{
    struct create_one *one = opaque;
    struct handling *h = one->op->h;
    struct broker *b = h->broker;
    struct kmsg_create_topics_response_creatable_topic_result *out = one->out;
    const struct topic *topic = status == 0 ? topics_find_id(&b->topics, one->id) : NULL;
    if (status != 0) {
        out->error_code = (int16_t)kafka_error_from_errno(status);
        out->error_message =
            handling_printf(h, "The metadata log refused the change: %s", strerror(-status));
    } else if (topic == NULL && md_topic_find_id(&b->image, one->id) != NULL) {
        out->error_code = KAFKA_ERR_KAFKA_STORAGE_ERROR;
        out->error_message =
            handling_printf(h, "The topic was created but its partitions could not "
                               "be opened (see the broker's log)");
    } else if (topic == NULL) {
        /* Another request created the name first: our record was skipped. */
        out->error_code = KAFKA_ERR_TOPIC_ALREADY_EXISTS;
        out->error_message =
            handling_printf(h, "Topic '%.*s' already exists.", out->name.len, out->name.ptr);
    } else {
        memcpy(out->topic_id, topic->id, sizeof(out->topic_id));
        out->num_partitions = topic->partition_count;
        out->replication_factor = 1;
        describe_configs(h, &topic->config, topic->config_set, out);
    }
    create_settled(one->op);
}

/* The topic's records: the topic, then each override. */
static int create_records(const struct kmsg_create_topics_request_creatable_topic *in,
                          const uint8_t id[16], int32_t partitions, struct metalog_txn *txn)
{
    int err = md_put_topic(&txn->bytes, in->name.ptr, (size_t)in->name.len, id, partitions);
    err = err != 0 ? err : metalog_txn_mark(txn);
    const struct kmsg_create_topics_request_creatable_topic_config *c = in->configs.items;
    for (int32_t k = 0; err == 0 && k < in->configs.count; k++) {
        err = md_put_config(&txn->bytes, in->name.ptr, (size_t)in->name.len, c[k].name.ptr,
                            (size_t)c[k].name.len, c[k].value.ptr, c[k].value.len);
        err = err != 0 ? err : metalog_txn_mark(txn);
    }
    return err;
}

static void create_topic(struct create_op *op, const struct kmsg_create_topics_request *rq,
                         int32_t i, const bool *repeated,
                         struct kmsg_create_topics_response_creatable_topic_result *out)
{
    struct handling *h = op->h;
    struct broker *b = h->broker;
    const struct kmsg_create_topics_request_creatable_topic *in =
        &((const struct kmsg_create_topics_request_creatable_topic *)rq->topics.items)[i];
    struct kstr message = {NULL, -1};
    int32_t partitions = 0;
    struct topic_settings config;
    uint32_t set = 0;
    out->name = in->name;
    out->error_message = message;
    out->error_code = repeated[i] ? KAFKA_ERR_INVALID_REQUEST
                                  : create_check(h, rq, i, &partitions, &config, &set, &message);
    if (repeated[i]) {
        message = handling_printf(h, "Topic '%.*s' appears more than once in the request",
                                  in->name.len, in->name.ptr);
    }
    if (out->error_code != KAFKA_ERR_NONE) {
        out->error_message = message;
        return;
    }
    if (rq->validate_only) {
        out->num_partitions = partitions;
        out->replication_factor = 1;
        describe_configs(h, &config, set, out);
        return;
    }
    struct create_one *one = handling_alloc(h, sizeof(*one));
    struct metalog_txn txn;
    metalog_txn_init(&txn);
    int err = one == NULL ? -ENOBUFS : md_new_topic_id(&b->image, one->id);
    err = err != 0 ? err : create_records(in, one->id, partitions, &txn);
    if (err == 0) {
        one->op = op;
        one->out = out;
        one->partitions = partitions;
        err = metalog_commit(b->metalog, &txn, create_done, one);
    }
    metalog_txn_deinit(&txn);
    if (err != 0) {
        out->error_code = (int16_t)kafka_error_from_errno(err);
        out->error_message =
            handling_printf(h, "The topic could not be recorded: %s", strerror(-err));
        LOG_WARN("broker", "create topic failed topic=%.*s err=%s", in->name.len, in->name.ptr,
                 strerror(-err));
        return;
    }
    op->pending++;
}

void handle_create_topics(struct handling *h)
{
    const struct kmsg_create_topics_request *rq = h->req->handler_data;
    int32_t nt = rq->topics.count > 0 ? rq->topics.count : 0;
    struct kmsg_create_topics_response_creatable_topic_result *results =
        handling_alloc(h, (size_t)(nt > 0 ? nt : 1) * sizeof(*results));
    struct create_op *op = handling_alloc(h, sizeof(*op));
    if (results == NULL || op == NULL) {
        LOG_ERROR("broker", "create topics response does not fit its arena peer=%s",
                  conn_peer(h->req->conn));
        handling_close(h);
        return;
    }
    const struct kmsg_create_topics_request_creatable_topic *in = rq->topics.items;
    struct topic_key *keys = handling_alloc(h, (size_t)(nt > 0 ? nt : 1) * sizeof(*keys));
    for (int32_t i = 0; keys != NULL && i < nt; i++) {
        keys[i] = (struct topic_key){in[i].name.ptr, in[i].name.len, 0, i};
    }
    const bool *repeated = mark_repeated(h, keys, nt);
    if (repeated == NULL) {
        LOG_ERROR("broker", "create topics request does not fit its arena peer=%s",
                  conn_peer(h->req->conn));
        handling_close(h);
        return;
    }
    op->h = h;
    op->pending = 1;
    kmsg_init(&kmsg_create_topics_response_desc, &op->resp);
    for (int32_t i = 0; i < nt; i++) {
        kmsg_init(&kmsg_create_topics_response_creatable_topic_result_desc, &results[i]);
        create_topic(op, rq, i, repeated, &results[i]);
    }
    op->resp.topics = (struct karray){results, nt};
    create_settled(op);
}

/* ------------------------------------------------------- DeleteTopics */

static void topic_closing(void *opaque, const struct topic *topic)
{
    broker_topic_closing(opaque, topic);
    broker_produce_closing(opaque, topic);
}

void broker_metadata_applied(void *opaque, int replay)
{
    struct broker *b = opaque;
    if (replay) {
        return; /* the table is built once, after the whole replay */
    }
    int err = topics_sync(&b->topics, &b->image, topic_closing, b);
    if (err != 0) {
        LOG_WARN("broker", "topic table not fully in step with the metadata err=%s",
                 strerror(-err));
    }
}

/* A DeleteTopics request while its removals are in the log. */
struct delete_op {
    struct handling *h;
    struct kmsg_delete_topics_response resp;
    int32_t pending;
};

struct delete_one {
    struct delete_op *op;
    struct kmsg_delete_topics_response_deletable_topic_result *out;
};

static void delete_settled(struct delete_op *op)
{
    if (--op->pending == 0) {
        handling_respond(op->h, &op->resp);
    }
}

static void delete_done(void *opaque, int status)
{
    struct delete_one *one = opaque;
    if (status != 0) {
        one->out->error_code = (int16_t)kafka_error_from_errno(status);
        one->out->error_message = handling_printf(
            one->op->h, "The metadata log refused the change: %s", strerror(-status));
    }
    delete_settled(one->op);
}

/* One name or id of the request, v0-5 (names) or v6+ (either). */
struct delete_want {
    struct kstr name;
    const uint8_t *id; /* NULL when by name */
};

static struct delete_want delete_want_at(const struct handling *h,
                                         const struct kmsg_delete_topics_request *rq, int32_t i)
{
    if (h->version < 6) {
        return (struct delete_want){((const struct kstr *)rq->topic_names.items)[i], NULL};
    }
    const struct kmsg_delete_topics_request_delete_topic_state *s = rq->topics.items;
    return (struct delete_want){s[i].name, s[i].name.len < 0 ? s[i].topic_id : NULL};
}

static void delete_topic(struct delete_op *op, const struct kmsg_delete_topics_request *rq,
                         int32_t i, bool repeated,
                         struct kmsg_delete_topics_response_deletable_topic_result *out)
{
    struct handling *h = op->h;
    struct broker *b = h->broker;
    struct delete_want want = delete_want_at(h, rq, i);
    const struct kmsg_delete_topics_request_delete_topic_state *s = rq->topics.items;
    out->name = want.name;
    out->error_message = (struct kstr){NULL, -1};
    if (h->version >= 6) {
        memcpy(out->topic_id, s[i].topic_id, 16); /* echoed, as asked */
    }
    struct topic *topic = NULL;
    if (h->version >= 6 && s[i].name.len >= 0 && memcmp(s[i].topic_id, zero_id, 16) != 0) {
        out->error_code = KAFKA_ERR_INVALID_REQUEST;
        out->error_message = kstr_cstr("You may not specify both topic name and topic id.");
    } else if (want.id != NULL && memcmp(want.id, zero_id, 16) == 0) {
        out->error_code = KAFKA_ERR_INVALID_REQUEST;
        out->error_message = kstr_cstr("Neither topic name nor id were specified.");
    } else if (repeated) {
        out->error_code = KAFKA_ERR_INVALID_REQUEST;
        out->error_message = kstr_cstr("Duplicate topic name or id.");
    } else if (want.id != NULL) {
        topic = topics_find_id(&b->topics, want.id);
        out->error_code = topic == NULL ? KAFKA_ERR_UNKNOWN_TOPIC_ID : KAFKA_ERR_NONE;
    } else {
        topic = want.name.len > 0 ? topics_find(&b->topics, want.name.ptr, (size_t)want.name.len)
                                  : NULL;
        out->error_code = topic == NULL ? KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION : KAFKA_ERR_NONE;
    }
    if (topic == NULL) {
        return;
    }
    /* The response outlives the topic: its name and id are copied. Once the
     * removal is applied, topics_sync deletes the partitions. */
    memcpy(out->topic_id, topic->id, 16);
    out->name = handling_printf(h, "%s", topic->name);
    struct delete_one *one = handling_alloc(h, sizeof(*one));
    struct metalog_txn txn;
    metalog_txn_init(&txn);
    int err = one == NULL ? -ENOBUFS : md_put_remove_topic(&txn.bytes, topic->id);
    err = err != 0 ? err : metalog_txn_mark(&txn);
    if (err == 0) {
        *one = (struct delete_one){op, out};
        err = metalog_commit(b->metalog, &txn, delete_done, one);
    }
    metalog_txn_deinit(&txn);
    if (err != 0) {
        out->error_code = (int16_t)kafka_error_from_errno(err);
        out->error_message =
            handling_printf(h, "The removal could not be recorded: %s", strerror(-err));
        LOG_WARN("broker", "delete topic failed topic=%s err=%s", topic->name, strerror(-err));
        return;
    }
    op->pending++;
}

void handle_delete_topics(struct handling *h)
{
    const struct kmsg_delete_topics_request *rq = h->req->handler_data;
    int32_t n = h->version < 6 ? rq->topic_names.count : rq->topics.count;
    n = n > 0 ? n : 0;
    struct kmsg_delete_topics_response_deletable_topic_result *results =
        handling_alloc(h, (size_t)(n > 0 ? n : 1) * sizeof(*results));
    if (results == NULL) {
        LOG_ERROR("broker", "delete topics response does not fit its arena peer=%s",
                  conn_peer(h->req->conn));
        handling_close(h);
        return;
    }
    struct topic_key *keys = handling_alloc(h, (size_t)(n > 0 ? n : 1) * sizeof(*keys));
    for (int32_t i = 0; keys != NULL && i < n; i++) {
        struct delete_want want = delete_want_at(h, rq, i);
        keys[i] = want.id != NULL ? (struct topic_key){want.id, 16, 1, i}
                                  : (struct topic_key){want.name.ptr, want.name.len, 0, i};
    }
    const bool *repeated = mark_repeated(h, keys, n);
    if (repeated == NULL) {
        LOG_ERROR("broker", "delete topics request does not fit its arena peer=%s",
                  conn_peer(h->req->conn));
        handling_close(h);
        return;
    }
    struct delete_op *op = handling_alloc(h, sizeof(*op));
    if (op == NULL) {
        LOG_ERROR("broker", "delete topics request does not fit its arena peer=%s",
                  conn_peer(h->req->conn));
        handling_close(h);
        return;
    }
    op->h = h;
    op->pending = 1;
    kmsg_init(&kmsg_delete_topics_response_desc, &op->resp);
    for (int32_t i = 0; i < n; i++) {
        kmsg_init(&kmsg_delete_topics_response_deletable_topic_result_desc, &results[i]);
        delete_topic(op, rq, i, repeated[i], &results[i]);
    }
    op->resp.responses = (struct karray){results, n};
    delete_settled(op);
}
