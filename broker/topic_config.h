/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The settings a topic may override (Kafka's topic-level names), how each is
 * parsed into the storage's struct log_config and shown back as text. The
 * metadata log keeps a topic's overrides as name/value strings; this is the
 * one place that turns them into settings and back.
 */
#ifndef SL_BROKER_TOPIC_CONFIG_H
#define SL_BROKER_TOPIC_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "storage/log.h"

enum topic_config_key {
    TOPIC_CONFIG_RETENTION_MS = 0,
    TOPIC_CONFIG_RETENTION_BYTES,
    TOPIC_CONFIG_SEGMENT_BYTES,
    TOPIC_CONFIG_SEGMENT_MS,
    TOPIC_CONFIG_INDEX_INTERVAL_BYTES,
    TOPIC_CONFIG_FLUSH_POLICY,
    TOPIC_CONFIG_FLUSH_INTERVAL_MS,
    TOPIC_CONFIG_MAX_MESSAGE_BYTES,
    TOPIC_CONFIG_CLEANUP_POLICY,
    TOPIC_CONFIG_DEDUP_WINDOW_MS,
    TOPIC_CONFIG_COUNT
};

/* A topic's settings: the storage's, and the broker's own. */
struct topic_settings {
    struct log_config log;
    int64_t dedup_window_ms; /* dedup.window.ms: msg-id deduplication, 0 = off */
};

/* A value as text, long enough for any key's. */
#define TOPIC_CONFIG_VALUE_BYTES 24

struct topic_config_def {
    const char *name;       /* the topic-level key, e.g. "retention.ms" */
    const char *broker_key; /* the broker-wide default's key, e.g. "log.retention.ms" */
    uint8_t type;           /* DescribeConfigs v3+ ConfigType: 3 int, 5 long, 2 string, 7 list */
    const char *doc;
};

extern const struct topic_config_def topic_config_defs[TOPIC_CONFIG_COUNT];

/* The key of a name, or -1 when no topic setting has it. */
int topic_config_find(const char *name, size_t len);
/* Parses value (len bytes) into config. 0, or -EINVAL when the value is out
 * of the key's range or of the wrong form. */
int topic_config_set(struct topic_settings *config, enum topic_config_key key, const char *value,
                     size_t len);
/* The value of key in config, as text (NUL-terminated, at most size bytes). */
void topic_config_format(const struct topic_settings *config, enum topic_config_key key, char *out,
                         size_t size);

#endif
