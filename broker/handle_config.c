/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DescribeConfigs (v0-4): the settings of a topic or of this broker, one
 * result per resource asked for, each with its own error code and message,
 * as Kafka answers.
 *
 * TOPIC (2): every topic-level key (broker/topic_config.h) with its effective
 * value. A key the topic overrides has source DYNAMIC_TOPIC_CONFIG; the others
 * come from the broker's defaults, STATIC_BROKER_CONFIG (the file or its
 * built-in value: the broker does not tell them apart). Synonyms (v1+, when
 * asked) are Kafka's: the topic's override if any, then the broker-wide key.
 * Topic keys are not read-only (AlterConfigs is the way to change them).
 *
 * BROKER (4): the resource name is this node's id, or empty (Kafka answers
 * an empty name with the cluster-wide dynamic defaults, of which this broker
 * has none; it answers the broker's own settings instead, as Redpanda does).
 * Every key of broker_config_keys, STATIC_BROKER_CONFIG and read-only: the
 * configuration is read once at start. Another id is INVALID_REQUEST, with
 * Kafka's message.
 *
 * v0 has is_default instead of config_source. Kafka sets it to "source is
 * DEFAULT_CONFIG", and clients read false on a topic as a topic override;
 * so a topic key is default when the topic does not override it, and a broker
 * key never is (it decodes back to STATIC_BROKER_CONFIG).
 *
 * configuration_keys null or empty means every key (Kafka 3.x+); a name no
 * resource has is left out, not an error. Everything is allocated from the
 * request's arena: a resource whose configs do not fit is answered with
 * UNKNOWN_SERVER_ERROR and a message, the others as usual.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/topic_config.h"
#include "common/assert.h"
#include "common/log.h"
#include "proto/errors.h"

/* ConfigResource.Type */
#define RESOURCE_TOPIC         2
#define RESOURCE_BROKER        4
#define RESOURCE_BROKER_LOGGER 8
/* DescribeConfigsResponse.ConfigSource */
#define SOURCE_TOPIC         1
#define SOURCE_STATIC_BROKER 4
/* DescribeConfigsResponse.ConfigType (KIP-569) */
#define TYPE_BOOLEAN 1
#define TYPE_STRING  2
#define TYPE_INT     3
#define TYPE_LONG    5
/* Text of a broker setting: listeners, paths (BROKER_PATH_BYTES) and numbers
 * fit (conf.c formats any value into as much). */
#define BROKER_VALUE_BYTES 4096

_Static_assert(BROKER_PATH_BYTES <= BROKER_VALUE_BYTES, "a path setting fits the value buffer");

/* A resource whose configs do not fit the request's arena. */
#define NO_ROOM                                                                                    \
    "The response does not fit this broker's memory for one request: ask for fewer resources "     \
    "or keys at a time"

/* A copy of s in the arena; null when it does not fit. */
static struct kstr arena_kstr(struct handling *h, const char *s, size_t len)
{
    char *copy = handling_alloc(h, len + 1);
    if (copy == NULL) {
        return (struct kstr){NULL, -1};
    }
    memcpy(copy, s, len);
    return (struct kstr){copy, (int32_t)len};
}

/* Whether the request asks for this key: all when its list is null or empty. */
static bool key_wanted(const struct kmsg_describe_configs_request_describe_configs_resource *res,
                       const char *name)
{
    if (res->configuration_keys.count <= 0) {
        return true;
    }
    size_t len = strlen(name);
    const struct kstr *keys = res->configuration_keys.items;
    for (int32_t i = 0; i < res->configuration_keys.count; i++) {
        if (keys[i].len == (int32_t)len && memcmp(keys[i].ptr, name, len) == 0) {
            return true;
        }
    }
    return false;
}

static void result_error(struct kmsg_describe_configs_response_describe_configs_result *out,
                         int16_t error, struct kstr message)
{
    out->error_code = error;
    out->error_message = message;
    out->configs = (struct karray){NULL, 0};
}

/* ------------------------------------------------------------- topics */

/* One topic key: the entry and, when asked, its synonyms. false when the
 * arena is full. */
static bool topic_entry(struct handling *h, const struct kmsg_describe_configs_request *rq,
                        const struct topic *topic, enum topic_config_key k,
                        struct kmsg_describe_configs_response_describe_configs_resource_result *e)
{
    const struct topic_config_def *def = &topic_config_defs[k];
    bool overridden = (topic->config_set & (1u << k)) != 0;
    char *value = handling_alloc(h, TOPIC_CONFIG_VALUE_BYTES);
    if (value == NULL) {
        return false;
    }
    topic_config_format(&topic->config, k, value, TOPIC_CONFIG_VALUE_BYTES);
    kmsg_init(&kmsg_describe_configs_response_describe_configs_resource_result_desc, e);
    e->name = kstr_cstr(def->name);
    e->value = kstr_cstr(value);
    e->read_only = false;
    e->is_default = !overridden;
    e->config_source = overridden ? SOURCE_TOPIC : SOURCE_STATIC_BROKER;
    e->is_sensitive = false;
    e->config_type = (int8_t)def->type;
    e->documentation = rq->include_documentation ? kstr_cstr(def->doc) : (struct kstr){NULL, -1};
    e->synonyms = (struct karray){NULL, 0};
    if (!rq->include_synonyms) {
        return true;
    }
    struct kmsg_describe_configs_response_describe_configs_synonym *syn =
        handling_alloc(h, 2 * sizeof(*syn));
    char *broker_value = handling_alloc(h, TOPIC_CONFIG_VALUE_BYTES);
    if (syn == NULL || broker_value == NULL) {
        return false;
    }
    topic_config_format(&h->broker->topics.config, k, broker_value, TOPIC_CONFIG_VALUE_BYTES);
    int32_t n = 0;
    if (overridden) {
        syn[n++] = (struct kmsg_describe_configs_response_describe_configs_synonym){
            e->name, e->value, SOURCE_TOPIC};
    }
    syn[n++] = (struct kmsg_describe_configs_response_describe_configs_synonym){
        kstr_cstr(def->broker_key), kstr_cstr(broker_value), SOURCE_STATIC_BROKER};
    e->synonyms = (struct karray){syn, n};
    return true;
}

static void
describe_topic(struct handling *h, const struct kmsg_describe_configs_request *rq,
               const struct kmsg_describe_configs_request_describe_configs_resource *res,
               struct kmsg_describe_configs_response_describe_configs_result *out)
{
    struct kstr name = res->resource_name;
    if (name.len <= 0 || !topic_name_valid(name.ptr, (size_t)name.len)) {
        result_error(out, KAFKA_ERR_INVALID_TOPIC_EXCEPTION,
                     handling_printf(h, "Topic name '%.*s' is illegal: 1 to %d of [a-zA-Z0-9._-]",
                                     name.len > 0 ? name.len : 0, name.len > 0 ? name.ptr : "",
                                     TOPIC_NAME_MAX));
        return;
    }
    const struct topic *topic = topics_find(&h->broker->topics, name.ptr, (size_t)name.len);
    if (topic == NULL) {
        result_error(out, KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION,
                     handling_printf(h, "Topic '%.*s' does not exist.", name.len, name.ptr));
        LOG_INFO("broker", "describe configs: unknown topic=%.*s peer=%s", name.len, name.ptr,
                 conn_peer(h->req->conn));
        return;
    }
    struct kmsg_describe_configs_response_describe_configs_resource_result *entries =
        handling_alloc(h, TOPIC_CONFIG_COUNT * sizeof(*entries));
    if (entries == NULL) {
        result_error(out, KAFKA_ERR_UNKNOWN_SERVER_ERROR, kstr_cstr(NO_ROOM));
        return;
    }
    int32_t n = 0;
    for (int k = 0; k < TOPIC_CONFIG_COUNT; k++) {
        if (!key_wanted(res, topic_config_defs[k].name)) {
            continue;
        }
        if (!topic_entry(h, rq, topic, (enum topic_config_key)k, &entries[n++])) {
            result_error(out, KAFKA_ERR_UNKNOWN_SERVER_ERROR, kstr_cstr(NO_ROOM));
            return;
        }
    }
    SL_ASSERT(n <= TOPIC_CONFIG_COUNT);
    out->configs = (struct karray){entries, n};
}

/* ------------------------------------------------------------ brokers */

static int8_t broker_key_type(const struct conf_key *key)
{
    switch (key->type) {
    case CONF_BOOL:
        return TYPE_BOOLEAN;
    case CONF_INT32:
        return TYPE_INT;
    case CONF_INT64:
        return TYPE_LONG;
    case CONF_STRING:
    case CONF_ENUM:
    case CONF_LISTENERS: /* a STRING in Kafka's own definition of listeners */
        return TYPE_STRING;
    }
    SL_ASSERT(false); /* every conf_type is listed above */
    return TYPE_STRING;
}

/* One broker key, as the entry and its one synonym. false when the arena is
 * full. */
static bool broker_entry(struct handling *h, const struct kmsg_describe_configs_request *rq,
                         const struct conf_key *key,
                         struct kmsg_describe_configs_response_describe_configs_resource_result *e)
{
    char text[BROKER_VALUE_BYTES];
    kmsg_init(&kmsg_describe_configs_response_describe_configs_resource_result_desc, e);
    e->name = kstr_cstr(key->name);
    e->value = (struct kstr){NULL, -1};
    if (conf_format(key, &h->broker->config, text, sizeof(text)) == 0) {
        e->value = arena_kstr(h, text, strlen(text));
        if (e->value.len < 0) {
            return false;
        }
    } else {
        LOG_WARN("broker", "describe configs: value of %s does not fit %d bytes: answered null",
                 key->name, BROKER_VALUE_BYTES);
    }
    e->read_only = true;
    e->is_default = false;
    e->config_source = SOURCE_STATIC_BROKER;
    e->is_sensitive = false;
    e->config_type = broker_key_type(key);
    e->documentation = rq->include_documentation ? kstr_cstr(key->doc) : (struct kstr){NULL, -1};
    e->synonyms = (struct karray){NULL, 0};
    if (rq->include_synonyms) {
        struct kmsg_describe_configs_response_describe_configs_synonym *syn =
            handling_alloc(h, sizeof(*syn));
        if (syn == NULL) {
            return false;
        }
        *syn = (struct kmsg_describe_configs_response_describe_configs_synonym){
            e->name, e->value, SOURCE_STATIC_BROKER};
        e->synonyms = (struct karray){syn, 1};
    }
    return true;
}

/* Java's Integer.parseInt: an optional sign and decimal digits, in int32. */
static bool parse_broker_id(struct kstr name, int32_t *id)
{
    char tmp[16];
    if (name.len <= 0 || (size_t)name.len >= sizeof(tmp)) {
        return false;
    }
    memcpy(tmp, name.ptr, (size_t)name.len);
    tmp[name.len] = '\0';
    const char *digits = tmp[0] == '+' || tmp[0] == '-' ? tmp + 1 : tmp;
    if (*digits < '0' || *digits > '9') {
        return false; /* strtoll would skip spaces and take an empty number */
    }
    char *end;
    errno = 0;
    long long v = strtoll(tmp, &end, 10);
    if (errno != 0 || *end != '\0' || v < INT32_MIN || v > INT32_MAX) {
        return false;
    }
    *id = (int32_t)v;
    return true;
}

static void
describe_broker(struct handling *h, const struct kmsg_describe_configs_request *rq,
                const struct kmsg_describe_configs_request_describe_configs_resource *res,
                struct kmsg_describe_configs_response_describe_configs_result *out)
{
    struct kstr name = res->resource_name;
    int32_t node_id = h->broker->config.node_id;
    int32_t id = node_id; /* the empty name: this broker */
    if (name.len > 0 && !parse_broker_id(name, &id)) {
        result_error(out, KAFKA_ERR_INVALID_REQUEST,
                     handling_printf(h, "Broker id must be an integer, but it is: %.*s", name.len,
                                     name.ptr));
        return;
    }
    if (id != node_id) {
        result_error(out, KAFKA_ERR_INVALID_REQUEST,
                     handling_printf(h,
                                     "Unexpected broker id, expected %" PRId32
                                     " or empty string, but received %.*s",
                                     node_id, name.len, name.ptr));
        LOG_INFO("broker", "describe configs: broker %.*s is not this one (%d) peer=%s", name.len,
                 name.ptr, node_id, conn_peer(h->req->conn));
        return;
    }
    struct kmsg_describe_configs_response_describe_configs_resource_result *entries =
        handling_alloc(h, broker_config_key_count * sizeof(*entries));
    if (entries == NULL) {
        result_error(out, KAFKA_ERR_UNKNOWN_SERVER_ERROR, kstr_cstr(NO_ROOM));
        return;
    }
    int32_t n = 0;
    for (size_t k = 0; k < broker_config_key_count; k++) {
        if (!key_wanted(res, broker_config_keys[k].name)) {
            continue;
        }
        if (!broker_entry(h, rq, &broker_config_keys[k], &entries[n++])) {
            result_error(out, KAFKA_ERR_UNKNOWN_SERVER_ERROR, kstr_cstr(NO_ROOM));
            return;
        }
    }
    out->configs = (struct karray){entries, n};
}

/* ------------------------------------------------------------ request */

static const char *resource_type_name(int8_t type)
{
    switch (type) {
    case RESOURCE_TOPIC:
        return "TOPIC";
    case RESOURCE_BROKER:
        return "BROKER";
    case RESOURCE_BROKER_LOGGER:
        return "BROKER_LOGGER";
    case 16:
        return "CLIENT_METRICS";
    case 32:
        return "GROUP";
    default:
        return "UNKNOWN";
    }
}

void handle_describe_configs(struct handling *h)
{
    const struct kmsg_describe_configs_request *rq = h->req->handler_data;
    struct kmsg_describe_configs_response resp;
    kmsg_init(&kmsg_describe_configs_response_desc, &resp);
    int32_t n = rq->resources.count > 0 ? rq->resources.count : 0;
    struct kmsg_describe_configs_response_describe_configs_result *results =
        handling_alloc(h, (size_t)(n > 0 ? n : 1) * sizeof(*results));
    if (results == NULL) {
        /* Answered empty rather than not at all: the client names each
         * resource missing from the answer. */
        LOG_ERROR("broker", "describe configs response does not fit its arena resources=%d peer=%s",
                  n, conn_peer(h->req->conn));
        handling_respond(h, &resp);
        return;
    }
    const struct kmsg_describe_configs_request_describe_configs_resource *in = rq->resources.items;
    for (int32_t i = 0; i < n; i++) {
        struct kmsg_describe_configs_response_describe_configs_result *out = &results[i];
        kmsg_init(&kmsg_describe_configs_response_describe_configs_result_desc, out);
        out->resource_type = in[i].resource_type;
        out->resource_name = in[i].resource_name;
        out->error_code = KAFKA_ERR_NONE;
        out->error_message = (struct kstr){NULL, -1};
        out->configs = (struct karray){NULL, 0};
        if (in[i].resource_type == RESOURCE_TOPIC) {
            describe_topic(h, rq, &in[i], out);
        } else if (in[i].resource_type == RESOURCE_BROKER) {
            describe_broker(h, rq, &in[i], out);
        } else {
            result_error(out, KAFKA_ERR_INVALID_REQUEST,
                         handling_printf(h,
                                         "Resource type %d (%s) is not supported: this broker "
                                         "describes TOPIC (2) and BROKER (4) configs",
                                         in[i].resource_type,
                                         resource_type_name(in[i].resource_type)));
            LOG_INFO("broker", "describe configs: resource type %d unsupported peer=%s",
                     in[i].resource_type, conn_peer(h->req->conn));
        }
    }
    resp.results = (struct karray){results, n};
    handling_respond(h, &resp);
}
