/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The shard's table of topics and their partitions, each partition one
 * storage log in <log.dirs>/<topic>-<partition>/. For now the table is
 * rebuilt at start from those directories; the __cluster_metadata log will
 * become its source of truth.
 */
#ifndef SL_BROKER_TOPICS_H
#define SL_BROKER_TOPICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/log.h"

#define TOPIC_NAME_MAX 249
#define TOPICS_MAX     100000

struct partition {
    int32_t index;
    int32_t leader_epoch; /* bumped at each leadership change; 0 on a single node */
    struct log *log;
};

struct topic {
    char name[TOPIC_NAME_MAX + 1];
    uint8_t id[16];
    int32_t partition_count;
    struct partition *partitions;
    struct log_config config; /* effective: the broker's defaults and the overrides */
    uint32_t config_set;      /* bit k: key k of enum topic_config_key overridden */
};

struct topics {
    struct log_shard *shard;
    struct log_config config;
    char dir[1024];
    struct topic **list;
    unsigned count;
    unsigned cap;
};

/* Opens every partition found under dir. */
int topics_init(struct topics *t, struct log_shard *shard, const char *dir,
                const struct log_config *config);
/* Closes every log cleanly; returns the first error. */
int topics_deinit(struct topics *t);
struct topic *topics_find(const struct topics *t, const char *name, size_t len);
/* Kafka's rules: 1..249 of [a-zA-Z0-9._-], not "." or "..". */
bool topic_name_valid(const char *name, size_t len);
/* Creates a topic (its partition directories and logs) with config, or the
 * broker's default when config is NULL (copied). -EEXIST, -EINVAL (name, count
 * or a config the log refuses), -ENOSPC (table full) or the storage's error. */
int topics_create(struct topics *t, const char *name, size_t len, int32_t partitions,
                  const struct log_config *config, struct topic **out);

struct topic;
/* Called with a topic being deleted, out of the table, before its logs close. */
typedef void topics_closing_cb(void *opaque, const struct topic *topic);

/*
 * Deletes a topic: it leaves the table, its partition directories are renamed
 * to <topic>-<n>.<stamp>-delete (which topics_init never opens, and removes),
 * before_close (may be NULL) sees the topic, then the logs close and the
 * directories are removed. Synchronous: closing drains the ring and removal
 * is file by file. The topic is freed and gone from the table whatever the
 * result; returns 0 or the first error met.
 */
int topics_delete(struct topics *t, struct topic *topic, topics_closing_cb *before_close,
                  void *opaque);
/* The topic with this id, or NULL. */
struct topic *topics_find_id(const struct topics *t, const uint8_t id[16]);

#endif
