/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The group coordinator: consumer groups under Kafka's classic protocol
 * (JoinGroup, SyncGroup, Heartbeat, LeaveGroup; assignment stays client-side)
 * and committed offsets, both kept as records in the partitions of the
 * internal topic __consumer_offsets and rebuilt from them at start.
 *
 * A group lives on partition murmur2(group) % partitions of that topic. Its
 * states are Kafka's: Empty, PreparingRebalance, CompletingRebalance, Stable,
 * Dead. Calls that answer later (join, sync, commit, delete) take a callback
 * that fires exactly once, possibly before the call returns; the result's
 * pointers are valid during the callback only.
 */
#ifndef SL_BROKER_GROUPS_H
#define SL_BROKER_GROUPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/kmsg.h"

struct ev_loop;
struct log;

#define GROUPS_TOPIC "__consumer_offsets"

struct groups_config {
    int32_t partitions;                  /* offsets.topic.num.partitions */
    int32_t min_session_timeout_ms;      /* group.min.session.timeout.ms */
    int32_t max_session_timeout_ms;      /* group.max.session.timeout.ms */
    int32_t initial_rebalance_delay_ms;  /* group.initial.rebalance.delay.ms */
    int32_t max_size;                    /* group.max.size: members per group */
    int32_t groups_max;                  /* groups.max: groups at most */
    int32_t member_metadata_max_bytes;   /* group.member.metadata.max.bytes */
    int32_t offset_metadata_max_bytes;   /* offset.metadata.max.bytes */
    int64_t offsets_retention_ms;        /* offsets.retention.minutes, in ms */
    int64_t retention_check_interval_ms; /* offsets.retention.check.interval.ms */
    int64_t offsets_max;                 /* offsets.max: committed offsets kept at most */
    uint64_t rewrite_bytes_min;          /* rewrite a partition's live records past this */
    uint32_t batch_bytes_max; /* largest batch appended (the topic's max.message.bytes) */
};

struct groups;

/* Opens the coordinator over the topic's partition logs (borrowed; count =
 * config->partitions) and replays them. Runs the loop until the replay's
 * reads end: call at start-up. NULL with *err on failure. */
struct groups *groups_new(struct ev_loop *loop, const struct groups_config *config,
                          struct log *const *logs, int *err);
/* Answers every parked join and sync with NOT_COORDINATOR, and starts no
 * more compaction rewrite (shutdown: the logs close next). */
void groups_release(struct groups *gs);
/* Runs the loop until the coordinator's appends in flight are answered
 * (their callbacks, commits' included, fire here), then frees it; a parked
 * join or sync is dropped without a call (groups_release answers them).
 * The logs may be closed before or after. */
void groups_free(struct groups *gs);
/* Which partition of the topic holds a group. */
int32_t groups_partition_of(const struct groups *gs, const char *group, size_t len);

/* ------------------------------------------------------------ members */

struct group_protocol {
    struct kstr name;
    struct kbytes metadata;
};

struct join_args {
    struct kstr group;
    struct kstr member_id;   /* empty for a new member */
    struct kstr instance_id; /* len < 0: dynamic member */
    struct kstr client_id;
    struct kstr client_host;
    struct kstr protocol_type;
    int32_t session_timeout_ms;
    int32_t rebalance_timeout_ms;
    bool require_known_member_id; /* JoinGroup v4+: MEMBER_ID_REQUIRED first */
    const struct group_protocol *protocols;
    int32_t protocol_count;
};

struct join_member {
    const char *member_id;
    const char *instance_id; /* NULL for dynamic members */
    const uint8_t *metadata;
    int32_t metadata_len;
};

struct join_result {
    int16_t error;
    int32_t generation;
    const char *protocol_type; /* NULL when none */
    const char *protocol;      /* NULL when none */
    const char *leader;
    const char *member_id;
    const struct join_member *members; /* the leader's only */
    int32_t member_count;
};

typedef void groups_join_cb(void *opaque, const struct join_result *result);
void groups_join(struct groups *gs, const struct join_args *args, groups_join_cb *cb, void *opaque);

struct sync_args {
    struct kstr group;
    struct kstr member_id;
    struct kstr instance_id;
    struct kstr protocol_type; /* len < 0: not checked (SyncGroup < v5) */
    struct kstr protocol;
    int32_t generation;
    const struct kstr *assignment_members; /* the leader's assignment */
    const struct kbytes *assignments;
    int32_t assignment_count;
};

struct sync_result {
    int16_t error;
    const char *protocol_type;
    const char *protocol;
    const uint8_t *assignment;
    int32_t assignment_len;
};

typedef void groups_sync_cb(void *opaque, const struct sync_result *result);
void groups_sync(struct groups *gs, const struct sync_args *args, groups_sync_cb *cb, void *opaque);

/* Heartbeat: the error code (NONE, REBALANCE_IN_PROGRESS, ...). */
int16_t groups_heartbeat(struct groups *gs, struct kstr group, struct kstr member_id,
                         struct kstr instance_id, int32_t generation);
/* One member leaving (member_id may be empty when instance_id names it). */
int16_t groups_leave(struct groups *gs, struct kstr group, struct kstr member_id,
                     struct kstr instance_id);
/* Whether the group exists (for LeaveGroup's group-level error). */
bool groups_exists(const struct groups *gs, struct kstr group);

/* ------------------------------------------------------------ offsets */

struct commit_partition {
    struct kstr topic;
    int32_t partition;
    int64_t offset;
    int32_t leader_epoch;
    struct kstr metadata;
    int16_t error; /* in: NONE, or an error the caller already found; out: the result */
};

struct commit_args {
    struct kstr group;
    struct kstr member_id;
    struct kstr instance_id;
    int32_t generation;                  /* -1: a commit from outside the group (simple consumer) */
    struct commit_partition *partitions; /* borrowed until the callback */
    int32_t partition_count;
};

/* status: the error of the whole commit (each partition's is in args). */
typedef void groups_commit_cb(void *opaque, int16_t status);
void groups_commit(struct groups *gs, const struct commit_args *args, groups_commit_cb *cb,
                   void *opaque);

struct committed {
    const char *topic;
    int32_t partition;
    int64_t offset;
    int32_t leader_epoch;
    const char *metadata;
};

/* A committed offset, or NULL. */
const struct committed *groups_committed(const struct groups *gs, struct kstr group,
                                         struct kstr topic, int32_t partition);
/* Calls fn for each committed offset of a group; returns how many. */
int32_t groups_each_committed(const struct groups *gs, struct kstr group,
                              void (*fn)(void *opaque, const struct committed *c), void *opaque);

/* ------------------------------------------------------------- admin */

struct group_view {
    const char *id;
    const char *state; /* Kafka's names: "Empty", "Stable", ... */
    const char *protocol_type;
    const char *protocol;
};

struct member_view {
    const char *member_id;
    const char *instance_id;
    const char *client_id;
    const char *client_host;
    const uint8_t *metadata;
    int32_t metadata_len;
    const uint8_t *assignment;
    int32_t assignment_len;
};

/* Calls fn for each group; returns how many. */
int32_t groups_list(const struct groups *gs, void (*fn)(void *opaque, const struct group_view *g),
                    void *opaque);
/* Describes one group: its view and members through fn. false when unknown. */
bool groups_describe(const struct groups *gs, struct kstr group, struct group_view *view,
                     void (*fn)(void *opaque, const struct member_view *m), void *opaque);

typedef void groups_delete_cb(void *opaque, int16_t error);
/* Deletes an Empty group and its offsets (NON_EMPTY_GROUP, GROUP_ID_NOT_FOUND). */
void groups_delete(struct groups *gs, struct kstr group, groups_delete_cb *cb, void *opaque);

#endif
