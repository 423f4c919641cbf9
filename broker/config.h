/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The broker's configuration: every key sluiced reads, with Kafka's names
 * where Kafka has the setting, filled from a file and --set overrides by
 * common/conf. Read-only once the broker starts.
 */
#ifndef SL_BROKER_CONFIG_H
#define SL_BROKER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/producers.h"
#include "common/conf.h"
#include "storage/log.h"
#include "storage/ring.h"

#define BROKER_PATH_BYTES 1024

struct broker_config {
    struct conf_listeners listeners;
    struct conf_listeners advertised_listeners;
    char log_dirs[BROKER_PATH_BYTES];
    int32_t node_id;
    char process_roles[64];
    char cluster_id[64];
    int32_t num_partitions;
    bool auto_create_topics_enable;
    int32_t max_connections;
    int32_t socket_request_max_bytes;
    int32_t connection_requests_max;
    int64_t connection_response_queue_bytes;
    int32_t fetch_max_wait_ms_max;
    /* groups and committed offsets */
    int32_t offsets_topic_num_partitions;
    int64_t offsets_topic_segment_bytes;
    int32_t offsets_retention_minutes;
    int64_t offsets_retention_check_interval_ms;
    int32_t offset_metadata_max_bytes;
    int64_t offsets_max;
    int32_t group_min_session_timeout_ms;
    int32_t group_max_session_timeout_ms;
    int32_t group_initial_rebalance_delay_ms;
    int32_t group_max_size;
    int32_t groups_max;
    int32_t group_member_metadata_max_bytes;
    /* idempotent producers */
    int32_t producer_dedup_window;
    int64_t producer_id_expiration_ms;
    int32_t producer_id_max_per_partition;
    int32_t dedup_window_ids_max;
    /* storage (docs/storage.md) */
    int64_t log_segment_bytes;
    int64_t log_roll_ms;
    int32_t log_index_interval_bytes;
    int64_t log_retention_bytes;
    int64_t log_retention_ms;
    int64_t log_retention_check_interval_ms;
    int log_flush_policy; /* enum flush_policy */
    int64_t log_flush_interval_ms;
    int32_t message_max_bytes;
    int64_t log_preallocate_bytes;
    int64_t log_checkpoint_interval_ms;
    int64_t log_checkpoint_bytes;
    int storage_io;   /* enum storage_io */
    int storage_ring; /* index into "auto", "uring", "threads" */
    int64_t storage_buffer_bytes;
    int64_t storage_memory_bytes;
    int64_t storage_write_max_bytes;
    int32_t storage_ring_entries;
    int32_t storage_ring_threads;
    int log_level; /* enum slog_level */
};

extern const struct conf_key broker_config_keys[];
extern const size_t broker_config_key_count;

/* Defaults, then the file (path may be NULL), then the overrides. 0 or -errno
 * with the reason in errstr. */
int broker_config_load(struct broker_config *config, const char *path, const char *const *overrides,
                       size_t noverrides, char *errstr, size_t errstr_size);
/* The storage settings as the log and the shard take them. */
void broker_log_config(const struct broker_config *config, struct log_config *out);
void broker_shard_config(const struct broker_config *config, struct log_shard_config *out);
void broker_producers_config(const struct broker_config *config, struct producers_config *out);
void broker_ring_config(const struct broker_config *config, struct ring_config *out);

#endif
