/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sl_conf: the client's settings, set by name as text, validated through
 * common/conf's table-driven parser (so a refusal reads like the broker's:
 * the key, the value, and what is allowed), plus the rules that span keys,
 * checked when a client is made.
 *
 * The table below is the single list of keys: their names (Kafka's, or
 * librdkafka's where Java has none), defaults and ranges. sluice.h and
 * docs/client.md repeat it for readers; tests/unit/test_client_conf.c checks
 * the defaults.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/internal.h"
#include "common/assert.h"
#include "common/conf.h"

static const char *const acks_choices[] = {"all", "-1", "0", "1", NULL};
static const char *const compression_choices[] = {"none", "zstd", NULL};
static const char *const partitioner_choices[] = {"murmur2", "crc32", NULL};
static const char *const reset_choices[] = {"earliest", "latest", "none", NULL};

#define KEY(name_, type_, member, def_, min_, max_, choices_, doc_)                                \
    {                                                                                              \
        .name = name_, .type = type_, CONF_FIELD(struct sl_conf, member), .def = def_,             \
        .min = min_, .max = max_, .choices = choices_, .doc = doc_                                 \
    }

static const struct conf_key keys[] = {
    KEY("bootstrap.servers", CONF_STRING, bootstrap_servers, "", 0, 0, NULL,
        "HOST:PORT[,HOST:PORT...] to ask for metadata first"),
    KEY("client.id", CONF_STRING, client_id, "sluice", 0, 0, NULL, "sent with every request"),
    KEY("acks", CONF_ENUM, acks, "all", 0, 0, acks_choices, "replicas that must have a batch"),
    KEY("linger.ms", CONF_INT32, linger_ms, "5", 0, 900000, NULL, "how long a batch waits to fill"),
    KEY("batch.size", CONF_INT32, batch_size, "1000000", 1, 1 << 30, NULL,
        "bytes of a batch, uncompressed, header included"),
    KEY("compression.type", CONF_ENUM, compression_type, "none", 0, 0, compression_choices,
        "codec of batches"),
    KEY("compression.level", CONF_INT32, compression_level, "-1", -1, 22, NULL,
        "zstd level; -1 = zstd's default"),
    KEY("partitioner", CONF_ENUM, partitioner, "murmur2", 0, 0, partitioner_choices,
        "partition of keyed messages"),
    KEY("enable.idempotence", CONF_BOOL, enable_idempotence, "true", 0, 0, NULL,
        "exactly once, in order, per partition"),
    KEY("delivery.timeout.ms", CONF_INT32, delivery_timeout_ms, "120000", 1, INT32_MAX, NULL,
        "a message not delivered by then fails"),
    KEY("request.timeout.ms", CONF_INT32, request_timeout_ms, "30000", 1, 900000, NULL,
        "an unanswered request closes its connection"),
    KEY("retry.backoff.ms", CONF_INT32, retry_backoff_ms, "100", 1, 300000, NULL,
        "first backoff before a retry"),
    KEY("retry.backoff.max.ms", CONF_INT32, retry_backoff_max_ms, "1000", 1, 300000, NULL,
        "backoff ceiling"),
    KEY("max.in.flight.requests.per.connection", CONF_INT32, max_in_flight, "5", 1,
        SLC_INFLIGHT_PER_PARTITION_MAX, NULL, "Produce requests in flight per broker"),
    KEY("queue.buffering.max.messages", CONF_INT32, queue_max_messages, "100000", 1, 10000000, NULL,
        "messages held before sl_produce refuses"),
    KEY("queue.buffering.max.kbytes", CONF_INT32, queue_max_kbytes, "1048576", 1, 2097151, NULL,
        "KiB of messages held before sl_produce refuses"),
    KEY("metadata.max.age.ms", CONF_INT32, metadata_max_age_ms, "300000", 1, 86400000, NULL,
        "metadata refresh interval"),
    KEY("message.max.bytes", CONF_INT32, message_max_bytes, "1000000", 1, 1000000000, NULL,
        "largest message: key + value + headers"),
    KEY("max.request.size", CONF_INT32, max_request_size, "1048576", 1024, 1000000000, NULL,
        "largest Produce request"),
    KEY("receive.message.max.bytes", CONF_INT32, receive_message_max_bytes, "104857600", 1000,
        INT32_MAX - 4, NULL, "largest response accepted"),
    KEY("socket.connection.setup.timeout.ms", CONF_INT32, connect_timeout_ms, "10000", 1, 3600000,
        NULL, "connect and ApiVersions deadline"),
    KEY("auto.offset.reset", CONF_ENUM, auto_offset_reset, "latest", 0, 0, reset_choices,
        "where a position outside the log moves"),
    KEY("fetch.min.bytes", CONF_INT32, fetch_min_bytes, "1", 0, 100000000, NULL,
        "bytes a Fetch answer waits for"),
    KEY("fetch.max.wait.ms", CONF_INT32, fetch_max_wait_ms, "500", 0, 300000, NULL,
        "longest wait of a Fetch answer"),
    KEY("fetch.max.bytes", CONF_INT32, fetch_max_bytes, "52428800", 1, 2147483135, NULL,
        "bytes of one Fetch answer"),
    KEY("max.partition.fetch.bytes", CONF_INT32, max_partition_fetch_bytes, "1048576", 1,
        1000000000, NULL, "bytes per partition of one Fetch answer"),
    KEY("queued.max.messages.kbytes", CONF_INT32, queued_max_kbytes, "65536", 1, 2097151, NULL,
        "KiB of records queued before fetching pauses"),
    KEY("enable.partition.eof", CONF_BOOL, enable_partition_eof, "false", 0, 0, NULL,
        "an event when a partition reaches its end"),
    KEY("group.id", CONF_STRING, group_id, "", 0, 0, NULL, "the consumer group"),
    KEY("group.instance.id", CONF_STRING, group_instance_id, "", 0, 0, NULL,
        "static membership: the member's lasting name"),
    KEY("session.timeout.ms", CONF_INT32, session_timeout_ms, "45000", 1, 3600000, NULL,
        "a silent member is dropped after this"),
    KEY("heartbeat.interval.ms", CONF_INT32, heartbeat_interval_ms, "3000", 1, 3600000, NULL,
        "heartbeats to the coordinator"),
    KEY("max.poll.interval.ms", CONF_INT32, max_poll_interval_ms, "300000", 1, 86400000, NULL,
        "longest gap between sl_consume calls in a group"),
    KEY("partition.assignment.strategy", CONF_STRING, assignment_strategy, "range,roundrobin", 0, 0,
        NULL, "assignors offered: range, roundrobin"),
    KEY("enable.auto.commit", CONF_BOOL, enable_auto_commit, "true", 0, 0, NULL,
        "commit consumed offsets in the background"),
    KEY("auto.commit.interval.ms", CONF_INT32, auto_commit_interval_ms, "5000", 1, 86400000, NULL,
        "how often"),
};

/* Messages name where a value came from; for us, always this call. */
#define SOURCE "sl_conf_set"

sl_conf *sl_conf_new(void)
{
    sl_conf *conf = calloc(1, sizeof(*conf));
    if (conf == NULL) {
        return NULL;
    }
    int rc = conf_load(keys, SL_ARRAY_LEN(keys), conf, NULL, NULL, 0, NULL, 0);
    /* The defaults are ours: one that does not parse is a bug in the table. */
    SL_ASSERT(rc == 0);
    return conf;
}

sl_conf *sl_conf_dup(const sl_conf *conf)
{
    sl_conf *copy = malloc(sizeof(*copy));
    if (copy != NULL) {
        *copy = *conf;
    }
    return copy;
}

void sl_conf_free(sl_conf *conf)
{
    free(conf);
}

sl_err sl_conf_set(sl_conf *conf, const char *name, const char *value, char *errstr,
                   size_t errstr_size)
{
    if (conf == NULL || name == NULL || value == NULL) {
        if (errstr_size > 0) {
            snprintf(errstr, errstr_size, "sl_conf_set: NULL argument");
        }
        return SL_ERR_INVALID_ARG;
    }
    bool known = conf_find(keys, SL_ARRAY_LEN(keys), name) != NULL;
    /* Unknown keys go through the parser too: it writes the "did you mean". */
    int rc =
        conf_set_value(keys, SL_ARRAY_LEN(keys), conf, name, value, SOURCE, errstr, errstr_size);
    if (rc != 0) {
        return known ? SL_ERR_CONF_INVALID : SL_ERR_CONF_UNKNOWN;
    }
    if (strcmp(name, "acks") == 0) {
        conf->set_keys |= SLC_SET_ACKS;
    } else if (strcmp(name, "enable.idempotence") == 0) {
        conf->set_keys |= SLC_SET_IDEMPOTENCE;
    }
    return SL_OK;
}

sl_err sl_conf_get(const sl_conf *conf, const char *name, char *buf, size_t buf_size)
{
    const struct conf_key *key = conf_find(keys, SL_ARRAY_LEN(keys), name);
    if (key == NULL) {
        return SL_ERR_CONF_UNKNOWN;
    }
    return conf_format(key, conf, buf, buf_size) == 0 ? SL_OK : SL_ERR_INVALID_ARG;
}

void sl_conf_set_delivery_cb(sl_conf *conf, sl_delivery_cb *cb)
{
    conf->delivery_cb = cb;
}

void sl_conf_set_error_cb(sl_conf *conf, sl_error_cb *cb)
{
    conf->error_cb = cb;
}

void sl_conf_set_rebalance_cb(sl_conf *conf, sl_rebalance_cb *cb)
{
    conf->rebalance_cb = cb;
}

void sl_conf_set_commit_cb(sl_conf *conf, sl_commit_cb *cb)
{
    conf->commit_cb = cb;
}

void sl_conf_set_opaque(sl_conf *conf, void *opaque)
{
    conf->opaque = opaque;
}

int16_t slc_conf_acks(const sl_conf *conf)
{
    static const int16_t values[] = {-1, -1, 0, 1}; /* in the order of acks_choices */
    SL_ASSERT(conf->acks >= 0 && (size_t)conf->acks < SL_ARRAY_LEN(values));
    return values[conf->acks];
}

bool slc_conf_idempotent(const sl_conf *conf)
{
    /* Java's rule: acks other than all turns the default idempotence off;
     * an explicit enable.idempotence=true with them is refused instead. */
    if (!(conf->set_keys & SLC_SET_IDEMPOTENCE) && slc_conf_acks(conf) != -1) {
        return false;
    }
    return conf->enable_idempotence;
}

static void say(char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(char *errstr, size_t errstr_size, const char *fmt, ...)
{
    if (errstr_size == 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errstr, errstr_size, fmt, ap);
    va_end(ap);
}

/* Every entry of bootstrap.servers must parse: a typo fails now, not as an
 * endless reconnect later. */
static int check_bootstrap(const sl_conf *conf, char *errstr, size_t errstr_size)
{
    const char *s = conf->bootstrap_servers;
    if (*s == '\0') {
        say(errstr, errstr_size, "config: bootstrap.servers is not set; allowed HOST:PORT[,...]");
        return -EINVAL;
    }
    while (*s != '\0') {
        size_t len = strcspn(s, ",");
        char host[SLC_HOST_BYTES];
        uint16_t port;
        if (slc_hostport_parse(s, len, host, sizeof(host), &port) != 0) {
            say(errstr, errstr_size,
                "config: bootstrap.servers entry \"%.*s\": not HOST:PORT (IPv6 hosts in "
                "brackets, port 1..65535)",
                (int)SL_MIN(len, 128), s);
            return -EINVAL;
        }
        s += len;
        s += *s == ',';
    }
    return 0;
}

int slc_conf_check(const sl_conf *conf, char *errstr, size_t errstr_size)
{
    if (check_bootstrap(conf, errstr, errstr_size) != 0) {
        return -EINVAL;
    }
    if ((conf->set_keys & SLC_SET_IDEMPOTENCE) && conf->enable_idempotence &&
        slc_conf_acks(conf) != -1) {
        say(errstr, errstr_size, "config: enable.idempotence = true needs acks = all (acks is %s)",
            acks_choices[conf->acks]);
        return -EINVAL;
    }
    if (conf->retry_backoff_ms > conf->retry_backoff_max_ms) {
        say(errstr, errstr_size, "config: retry.backoff.ms (%d) is above retry.backoff.max.ms (%d)",
            conf->retry_backoff_ms, conf->retry_backoff_max_ms);
        return -EINVAL;
    }
    /* Java's rule: a message must be able to wait out its linger and one
     * request before it is given up. */
    if ((int64_t)conf->delivery_timeout_ms < (int64_t)conf->linger_ms + conf->request_timeout_ms) {
        say(errstr, errstr_size,
            "config: delivery.timeout.ms (%d) must be at least linger.ms + request.timeout.ms "
            "(%d + %d)",
            conf->delivery_timeout_ms, conf->linger_ms, conf->request_timeout_ms);
        return -EINVAL;
    }
    if (conf->message_max_bytes > conf->max_request_size) {
        say(errstr, errstr_size,
            "config: message.max.bytes (%d) is above max.request.size (%d): such a message "
            "could never be sent",
            conf->message_max_bytes, conf->max_request_size);
        return -EINVAL;
    }
    return 0;
}

int slc_conf_check_consumer(const sl_conf *conf, char *errstr, size_t errstr_size)
{
    if (check_bootstrap(conf, errstr, errstr_size) != 0) {
        return -EINVAL;
    }
    if (conf->retry_backoff_ms > conf->retry_backoff_max_ms) {
        say(errstr, errstr_size, "config: retry.backoff.ms (%d) is above retry.backoff.max.ms (%d)",
            conf->retry_backoff_ms, conf->retry_backoff_max_ms);
        return -EINVAL;
    }
    /* A Fetch answer waits up to fetch.max.wait.ms: the request must not
     * time out before the broker may answer. */
    if (conf->fetch_max_wait_ms >= conf->request_timeout_ms) {
        say(errstr, errstr_size,
            "config: fetch.max.wait.ms (%d) must be below request.timeout.ms (%d)",
            conf->fetch_max_wait_ms, conf->request_timeout_ms);
        return -EINVAL;
    }
    /* The answer must fit what a connection accepts, with room for framing. */
    if ((int64_t)conf->fetch_max_bytes + 65536 > conf->receive_message_max_bytes ||
        (int64_t)conf->max_partition_fetch_bytes + 65536 > conf->receive_message_max_bytes) {
        say(errstr, errstr_size,
            "config: fetch.max.bytes (%d) and max.partition.fetch.bytes (%d) must be at least "
            "64 KiB below receive.message.max.bytes (%d)",
            conf->fetch_max_bytes, conf->max_partition_fetch_bytes,
            conf->receive_message_max_bytes);
        return -EINVAL;
    }
    return 0;
}

/* Ports are 1..65535, all digits. */
static int parse_port(const char *s, size_t len, uint16_t *port)
{
    if (len == 0 || len > 5) {
        return -EINVAL;
    }
    uint32_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -EINVAL;
        }
        v = v * 10 + (uint32_t)(s[i] - '0');
    }
    if (v == 0 || v > 65535) {
        return -EINVAL;
    }
    *port = (uint16_t)v;
    return 0;
}

int slc_hostport_parse(const char *s, size_t len, char *host, size_t host_size, uint16_t *port)
{
    /* Kafka lists allow spaces after commas. */
    while (len > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t')) {
        len--;
    }
    const char *colon;
    const char *h = s;
    size_t hlen;
    if (len > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (close == NULL || close + 1 >= s + len || close[1] != ':') {
            return -EINVAL;
        }
        h = s + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = memrchr(s, ':', len);
        if (colon == NULL || memchr(s, ':', (size_t)(colon - s)) != NULL) {
            return -EINVAL; /* none, or an IPv6 address without brackets */
        }
        hlen = (size_t)(colon - s);
    }
    if (hlen == 0 || hlen >= host_size) {
        return -EINVAL;
    }
    if (parse_port(colon + 1, (size_t)(s + len - colon - 1), port) != 0) {
        return -EINVAL;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    return 0;
}
