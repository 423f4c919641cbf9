/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The shard's table of topics and their open partitions, each partition one
 * storage log in <log.dirs>/<topic>-<partition>/. The table follows the
 * metadata image (replication/metadata.h): topics_sync() opens what the image
 * has and deletes what it no longer has. Each partition directory holds a
 * partition.metadata file naming the topic id it belongs to, so that a
 * directory left by an earlier topic of the same name is never taken for the
 * new one's.
 */
#ifndef SL_BROKER_TOPICS_H
#define SL_BROKER_TOPICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/producers.h"
#include "broker/topic_config.h"
#include "storage/log.h"

#define TOPIC_NAME_MAX 249
#define TOPICS_MAX     100000

struct msgids;
struct produce_part;

struct partition {
    int32_t index;
    int32_t leader_epoch; /* bumped at each leadership change; 0 on a single node */
    struct log *log;
    struct producers *producers;          /* idempotent producers' state */
    struct msgids *msgids;                /* msg-id dedup window, when the topic sets one */
    struct produce_part *durable_waiters; /* answered once the log is durable past their offset */
    struct produce_part *parked_head;     /* batches waiting for room in the log, in order */
    struct produce_part *parked_tail;
    struct partition *next_blocked; /* the broker's list of partitions with parked ones */
    int64_t snapshot_base;          /* active segment when producers were last snapshot */
};

struct topic {
    char name[TOPIC_NAME_MAX + 1];
    uint8_t id[16];
    int32_t partition_count;
    struct partition *partitions;
    struct topic_settings config; /* effective: the broker's defaults and the overrides */
    uint32_t config_set;          /* bit k: key k of enum topic_config_key overridden */
};

struct topics {
    struct log_shard *shard;
    struct topic_settings config; /* the broker's defaults for every topic */
    struct producers_config producers;
    uint32_t msgids_max; /* dedup.window.ids.max: msg-ids per partition */
    char dir[1024];
    struct topic **list; /* in creation order */
    unsigned count;
    unsigned cap;
    struct topic **by_name; /* open addressing, index_size slots, NULL = free */
    struct topic **by_id;
    unsigned index_size; /* a power of two, at least twice count */
};

struct md_image;

/* An empty table for the partitions under dir (created if missing). */
int topics_init(struct topics *t, struct log_shard *shard, const char *dir,
                const struct log_config *config, const struct producers_config *producers,
                uint32_t msgids_max);
/* Closes every log cleanly and snapshots its producers; returns the first error. */
int topics_deinit(struct topics *t);
struct topic *topics_find(const struct topics *t, const char *name, size_t len);
/* The topic with this id, or NULL. */
struct topic *topics_find_id(const struct topics *t, const uint8_t id[16]);
/* Kafka's rules: 1..249 of [a-zA-Z0-9._-], not "." or "..". */
bool topic_name_valid(const char *name, size_t len);

/* Called with a topic being deleted, out of the table, before its logs close. */
typedef void topics_closing_cb(void *opaque, const struct topic *topic);

/*
 * Makes the table what the metadata image says: opens (creating) the
 * partitions of every topic the image has and the table lacks, deletes every
 * topic the table has and the image does not (or has under another id), and
 * applies changed setting overrides to the open logs. A deleted topic leaves
 * the table, its directories are renamed to <topic>-<n>.<stamp>-delete (never
 * opened, removed at the next start if need be), before_close sees it, then
 * its logs close and its directories go. Synchronous file I/O (opening and
 * closing logs): metadata changes are rare. Returns 0 or the first error met;
 * a topic that could not be opened is left out of the table and logged.
 */
int topics_sync(struct topics *t, const struct md_image *image, topics_closing_cb *before_close,
                void *opaque);

/*
 * At start, after the first topics_sync: removes what interrupted deletions
 * left (*-delete), and partition directories the image does not know: those
 * carrying a partition.metadata file were this broker's (their topic was
 * deleted) and are removed; others are renamed to <name>.<stamp>-stray and
 * kept for the operator, with a warning.
 */
void topics_sweep(struct topics *t);

#endif
