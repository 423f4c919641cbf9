/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Topic-level settings: parsing and formatting, with the same bounds as the
 * broker-wide keys they override (broker/config.c). max.message.bytes is also
 * bounded by what the shard's buffers can stage, which only log_open knows.
 */
#include "broker/topic_config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"

/* DescribeConfigs ConfigType values (KIP-569). */
#define TYPE_STRING 2
#define TYPE_INT    3
#define TYPE_LONG   5
#define TYPE_LIST   7

const struct topic_config_def topic_config_defs[TOPIC_CONFIG_COUNT] = {
    [TOPIC_CONFIG_RETENTION_MS] = {"retention.ms", "log.retention.ms", TYPE_LONG,
                                   "delete segments older than this (-1: never)"},
    [TOPIC_CONFIG_RETENTION_BYTES] = {"retention.bytes", "log.retention.bytes", TYPE_LONG,
                                      "keep at most this much per partition (-1: no limit)"},
    [TOPIC_CONFIG_SEGMENT_BYTES] = {"segment.bytes", "log.segment.bytes", TYPE_INT,
                                    "roll to a new segment past this size"},
    [TOPIC_CONFIG_SEGMENT_MS] = {"segment.ms", "log.roll.ms", TYPE_LONG,
                                 "roll a non-empty segment this old"},
    [TOPIC_CONFIG_INDEX_INTERVAL_BYTES] = {"index.interval.bytes", "log.index.interval.bytes",
                                           TYPE_INT, "bytes between sparse index entries"},
    [TOPIC_CONFIG_FLUSH_POLICY] = {"flush.policy", "log.flush.policy", TYPE_STRING,
                                   "always: ack after fdatasync; interval; never"},
    [TOPIC_CONFIG_FLUSH_INTERVAL_MS] = {"flush.interval.ms", "log.flush.interval.ms", TYPE_LONG,
                                        "sync period under flush.policy=interval"},
    [TOPIC_CONFIG_MAX_MESSAGE_BYTES] = {"max.message.bytes", "message.max.bytes", TYPE_INT,
                                        "largest record batch accepted"},
    [TOPIC_CONFIG_CLEANUP_POLICY] = {"cleanup.policy", "log.cleanup.policy", TYPE_LIST,
                                     "delete (segments by retention); compact is not served"},
    [TOPIC_CONFIG_DEDUP_WINDOW_MS] = {"dedup.window.ms", "dedup.window.ms", TYPE_LONG,
                                      "drop a record whose msg-id header this partition took "
                                      "within this window (0: off)"},
};

int topic_config_find(const char *name, size_t len)
{
    for (int k = 0; k < TOPIC_CONFIG_COUNT; k++) {
        if (strlen(topic_config_defs[k].name) == len &&
            memcmp(topic_config_defs[k].name, name, len) == 0) {
            return k;
        }
    }
    return -1;
}

/* A decimal integer filling the whole string, within [min, max]. */
static int parse_int(const char *value, size_t len, int64_t min, int64_t max, int64_t *out)
{
    char tmp[32];
    if (len == 0 || len >= sizeof(tmp)) {
        return -EINVAL;
    }
    memcpy(tmp, value, len);
    tmp[len] = '\0';
    char *end;
    errno = 0;
    long long v = strtoll(tmp, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) {
        return -EINVAL;
    }
    *out = v;
    return 0;
}

int topic_config_set(struct topic_settings *settings, enum topic_config_key key, const char *value,
                     size_t len)
{
    struct log_config *config = &settings->log;
    int64_t v = 0;
    int err = 0;
    switch (key) {
    case TOPIC_CONFIG_RETENTION_MS:
        err = parse_int(value, len, -1, INT64_MAX, &v);
        config->retention_ms = err == 0 ? v : config->retention_ms;
        return err;
    case TOPIC_CONFIG_RETENTION_BYTES:
        err = parse_int(value, len, -1, INT64_MAX, &v);
        config->retention_bytes = err == 0 ? v : config->retention_bytes;
        return err;
    case TOPIC_CONFIG_SEGMENT_BYTES:
        err = parse_int(value, len, 4096, INT32_MAX, &v);
        config->segment_bytes = err == 0 ? (uint64_t)v : config->segment_bytes;
        return err;
    case TOPIC_CONFIG_SEGMENT_MS:
        err = parse_int(value, len, 1, INT64_MAX, &v);
        config->segment_ms = err == 0 ? v : config->segment_ms;
        return err;
    case TOPIC_CONFIG_INDEX_INTERVAL_BYTES:
        err = parse_int(value, len, 1, INT32_MAX, &v);
        config->index_interval_bytes = err == 0 ? (uint32_t)v : config->index_interval_bytes;
        return err;
    case TOPIC_CONFIG_FLUSH_INTERVAL_MS:
        err = parse_int(value, len, 1, INT64_MAX, &v);
        config->flush_interval_ms = err == 0 ? v : config->flush_interval_ms;
        return err;
    case TOPIC_CONFIG_MAX_MESSAGE_BYTES:
        err = parse_int(value, len, 64, INT32_MAX, &v);
        config->max_message_bytes = err == 0 ? (uint32_t)v : config->max_message_bytes;
        return err;
    case TOPIC_CONFIG_FLUSH_POLICY: {
        char tmp[16];
        if (len == 0 || len >= sizeof(tmp)) {
            return -EINVAL;
        }
        memcpy(tmp, value, len);
        tmp[len] = '\0';
        return flush_policy_parse(tmp, &config->flush_policy) == 0 ? 0 : -EINVAL;
    }
    case TOPIC_CONFIG_CLEANUP_POLICY:
        /* Clients often state the default explicitly; compaction is not served. */
        return len == 6 && memcmp(value, "delete", 6) == 0 ? 0 : -EINVAL;
    case TOPIC_CONFIG_DEDUP_WINDOW_MS:
        err = parse_int(value, len, 0, INT64_MAX, &v);
        settings->dedup_window_ms = err == 0 ? v : settings->dedup_window_ms;
        return err;
    case TOPIC_CONFIG_COUNT:
        break;
    }
    SL_ASSERT(false); /* callers pass a key of the enum */
    return -EINVAL;
}

void topic_config_format(const struct topic_settings *settings, enum topic_config_key key,
                         char *out, size_t size)
{
    const struct log_config *config = &settings->log;
    int64_t v = 0;
    switch (key) {
    case TOPIC_CONFIG_RETENTION_MS:
        v = config->retention_ms;
        break;
    case TOPIC_CONFIG_RETENTION_BYTES:
        v = config->retention_bytes;
        break;
    case TOPIC_CONFIG_SEGMENT_BYTES:
        v = (int64_t)config->segment_bytes;
        break;
    case TOPIC_CONFIG_SEGMENT_MS:
        v = config->segment_ms;
        break;
    case TOPIC_CONFIG_INDEX_INTERVAL_BYTES:
        v = config->index_interval_bytes;
        break;
    case TOPIC_CONFIG_FLUSH_INTERVAL_MS:
        v = config->flush_interval_ms;
        break;
    case TOPIC_CONFIG_MAX_MESSAGE_BYTES:
        v = config->max_message_bytes;
        break;
    case TOPIC_CONFIG_FLUSH_POLICY:
        snprintf(out, size, "%s", flush_policy_name(config->flush_policy));
        return;
    case TOPIC_CONFIG_CLEANUP_POLICY:
        snprintf(out, size, "delete");
        return;
    case TOPIC_CONFIG_DEDUP_WINDOW_MS:
        v = settings->dedup_window_ms;
        break;
    case TOPIC_CONFIG_COUNT:
        SL_ASSERT(false); /* callers pass a key of the enum */
        break;
    }
    snprintf(out, size, "%" PRId64, v);
}
