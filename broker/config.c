/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The table of the broker's configuration keys: name, type, bounds, default,
 * and the line of documentation `sluiced --print-config` shows. config/
 * sluice.conf documents the same keys for operators.
 */
#include "broker/config.h"

#include <stddef.h>

#include "common/log.h"

#define KEY(n, t, member, d, lo, hi, doc_)                                                         \
    {                                                                                              \
        .name = (n), .type = (t), CONF_FIELD(struct broker_config, member), .def = (d),            \
        .min = (lo), .max = (hi), .doc = (doc_)                                                    \
    }
#define ENUM(n, member, d, choices_, doc_)                                                         \
    {                                                                                              \
        .name = (n), .type = CONF_ENUM, CONF_FIELD(struct broker_config, member), .def = (d),      \
        .choices = (choices_), .doc = (doc_)                                                       \
    }

static const char *const flush_policies[] = {"always", "interval", "never", NULL};
static const char *const storage_ios[] = {"direct", "buffered", NULL};
static const char *const ring_backends[] = {"auto", "uring", "threads", NULL};
static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};

#define GIB    (1024LL * 1024 * 1024)
#define DAY_MS (24LL * 3600 * 1000)

const struct conf_key broker_config_keys[] = {
    KEY("listeners", CONF_LISTENERS, listeners, "PLAINTEXT://127.0.0.1:9092", 0, 0,
        "where clients connect: NAME://HOST:PORT, comma-separated"),
    KEY("advertised.listeners", CONF_LISTENERS, advertised_listeners, "", 0, 0,
        "what Metadata tells clients to connect to (empty: listeners)"),
    KEY("log.dirs", CONF_STRING, log_dirs, "./data", 0, 0, "directory of the partitions"),
    KEY("node.id", CONF_INT32, node_id, "1", 0, INT32_MAX, "this node's id"),
    KEY("process.roles", CONF_STRING, process_roles, "broker,controller", 0, 0,
        "broker, controller, or both"),
    KEY("cluster.id", CONF_STRING, cluster_id, "sluice-cluster", 0, 0,
        "cluster id reported in Metadata"),
    KEY("num.partitions", CONF_INT32, num_partitions, "1", 1, 10000,
        "partitions of an auto-created topic"),
    KEY("auto.create.topics.enable", CONF_BOOL, auto_create_topics_enable, "true", 0, 0,
        "create a topic when a client asks for one that does not exist"),
    KEY("max.connections", CONF_INT32, max_connections, "10000", 1, 1000000,
        "open client connections at most"),
    KEY("socket.request.max.bytes", CONF_INT32, socket_request_max_bytes, "104857600", 1024,
        INT32_MAX, "largest request frame; a larger one closes the connection"),
    KEY("connection.requests.max", CONF_INT32, connection_requests_max, "64", 1, 100000,
        "requests in flight per connection before reading pauses"),
    KEY("connection.response.queue.bytes", CONF_INT64, connection_response_queue_bytes, "67108864",
        65536, 16 * GIB, "response bytes queued per connection before reading pauses"),
    KEY("fetch.max.wait.ms.max", CONF_INT32, fetch_max_wait_ms_max, "30000", 0, 3600000,
        "longest a Fetch may wait for data, whatever the client asks"),
    KEY("offsets.topic.num.partitions", CONF_INT32, offsets_topic_num_partitions, "16", 1, 1000,
        "partitions of __consumer_offsets (fixed once the topic exists)"),
    KEY("offsets.topic.segment.bytes", CONF_INT64, offsets_topic_segment_bytes, "104857600", 4096,
        INT32_MAX, "segment size of __consumer_offsets: compaction keeps about two per partition"),
    KEY("offsets.retention.minutes", CONF_INT32, offsets_retention_minutes, "10080", 1, INT32_MAX,
        "offsets of a group without members expire this long after their commit"),
    KEY("offsets.retention.check.interval.ms", CONF_INT64, offsets_retention_check_interval_ms,
        "600000", 1, INT64_MAX, "how often expired offsets are looked for"),
    KEY("offset.metadata.max.bytes", CONF_INT32, offset_metadata_max_bytes, "4096", 0, 1048576,
        "largest metadata string of a commit"),
    KEY("offsets.max", CONF_INT64, offsets_max, "1000000", 1, INT64_MAX,
        "committed offsets kept at most, all groups together"),
    KEY("group.min.session.timeout.ms", CONF_INT32, group_min_session_timeout_ms, "6000", 1,
        INT32_MAX, "shortest session timeout a member may ask for"),
    KEY("group.max.session.timeout.ms", CONF_INT32, group_max_session_timeout_ms, "1800000", 1,
        INT32_MAX, "longest session timeout a member may ask for"),
    KEY("group.initial.rebalance.delay.ms", CONF_INT32, group_initial_rebalance_delay_ms, "3000", 0,
        INT32_MAX, "a new group waits this long for more members before its first rebalance"),
    KEY("group.max.size", CONF_INT32, group_max_size, "1000", 1, 100000,
        "members per group at most"),
    KEY("groups.max", CONF_INT32, groups_max, "100000", 1, 10000000, "groups at most"),
    KEY("group.member.metadata.max.bytes", CONF_INT32, group_member_metadata_max_bytes, "65536",
        1024, 16777216, "protocol metadata of one member at most"),
    KEY("producer.dedup.window", CONF_INT32, producer_dedup_window, "5", 1, 64,
        "batches remembered per idempotent producer and partition (Kafka: 5)"),
    KEY("producer.id.expiration.ms", CONF_INT64, producer_id_expiration_ms, "86400000", 1,
        INT64_MAX, "an idle producer's state is dropped after this long"),
    KEY("producer.id.max.per.partition", CONF_INT32, producer_id_max_per_partition, "10000", 1,
        10000000, "producers remembered per partition; past it the idlest is evicted"),
    KEY("dedup.window.ids.max", CONF_INT32, dedup_window_ids_max, "100000", 1, 100000000,
        "msg-ids remembered per partition of a topic with dedup.window.ms"),
    KEY("log.segment.bytes", CONF_INT64, log_segment_bytes, "1073741824", 4096, INT32_MAX,
        "roll to a new segment past this size"),
    KEY("log.roll.ms", CONF_INT64, log_roll_ms, "604800000", 1, INT64_MAX,
        "roll a non-empty segment this old"),
    KEY("log.index.interval.bytes", CONF_INT32, log_index_interval_bytes, "4096", 1, INT32_MAX,
        "bytes between sparse index entries"),
    KEY("log.retention.bytes", CONF_INT64, log_retention_bytes, "-1", -1, INT64_MAX,
        "keep at most this much per partition (-1: no limit)"),
    KEY("log.retention.ms", CONF_INT64, log_retention_ms, "604800000", -1, INT64_MAX,
        "delete segments older than this (-1: never)"),
    KEY("log.retention.check.interval.ms", CONF_INT64, log_retention_check_interval_ms, "300000", 1,
        INT64_MAX, "how often retention runs"),
    ENUM("log.flush.policy", log_flush_policy, "always", flush_policies,
         "always: ack after fdatasync; interval: sync every log.flush.interval.ms; never"),
    KEY("log.flush.interval.ms", CONF_INT64, log_flush_interval_ms, "1000", 1, INT64_MAX,
        "sync period under log.flush.policy=interval"),
    KEY("message.max.bytes", CONF_INT32, message_max_bytes, "1048588", 64, INT32_MAX,
        "largest record batch accepted"),
    KEY("log.preallocate.bytes", CONF_INT64, log_preallocate_bytes, "16777216", 4096, GIB,
        "segments grow in fallocate steps of this size"),
    KEY("log.checkpoint.interval.ms", CONF_INT64, log_checkpoint_interval_ms, "10000", 1, INT64_MAX,
        "how often the recovery checkpoint is written"),
    KEY("log.checkpoint.bytes", CONF_INT64, log_checkpoint_bytes, "134217728", 4096, INT64_MAX,
        "also write it after this much more is flushed"),
    ENUM("storage.io", storage_io, "direct", storage_ios,
         "direct: O_DIRECT writes; buffered: through the page cache (tmpfs)"),
    ENUM("storage.ring", storage_ring, "auto", ring_backends,
         "auto: io_uring, falling back to threads; uring; threads"),
    KEY("storage.buffer.bytes", CONF_INT64, storage_buffer_bytes, "131072", 4096, GIB,
        "one write/cache buffer (multiple of 4096)"),
    KEY("storage.memory.bytes", CONF_INT64, storage_memory_bytes, "268435456", 1048576, 64 * GIB,
        "write buffers and batch cache together"),
    KEY("storage.write.max.bytes", CONF_INT64, storage_write_max_bytes, "1048576", 4096, GIB,
        "a partition's write backlog goes out in writes of about this size, cut at batches"),
    KEY("storage.ring.entries", CONF_INT32, storage_ring_entries, "256", 8, RING_ENTRIES_MAX,
        "disk operations in flight"),
    KEY("storage.ring.threads", CONF_INT32, storage_ring_threads, "4", 1, RING_THREADS_MAX,
        "threads of the fallback pool"),
    ENUM("log.level", log_level, "info", log_levels, "error, warn, info or debug"),
};

const size_t broker_config_key_count = sizeof(broker_config_keys) / sizeof(broker_config_keys[0]);

int broker_config_load(struct broker_config *config, const char *path, const char *const *overrides,
                       size_t noverrides, char *errstr, size_t errstr_size)
{
    return conf_load(broker_config_keys, broker_config_key_count, config, path, overrides,
                     noverrides, errstr, errstr_size);
}

void broker_log_config(const struct broker_config *c, struct log_config *out)
{
    log_config_default(out);
    out->segment_bytes = (uint64_t)c->log_segment_bytes;
    out->segment_ms = c->log_roll_ms;
    out->index_interval_bytes = (uint32_t)c->log_index_interval_bytes;
    out->retention_bytes = c->log_retention_bytes;
    out->retention_ms = c->log_retention_ms;
    out->retention_check_interval_ms = c->log_retention_check_interval_ms;
    out->flush_policy = (enum flush_policy)c->log_flush_policy;
    out->flush_interval_ms = c->log_flush_interval_ms;
    out->max_message_bytes = (uint32_t)c->message_max_bytes;
    out->preallocate_bytes = (uint64_t)c->log_preallocate_bytes;
    out->checkpoint_interval_ms = c->log_checkpoint_interval_ms;
    out->checkpoint_bytes = (uint64_t)c->log_checkpoint_bytes;
    out->io = (enum storage_io)c->storage_io;
    out->write_max_bytes = (uint64_t)c->storage_write_max_bytes;
}

void broker_producers_config(const struct broker_config *c, struct producers_config *out)
{
    *out = (struct producers_config){
        .window = (uint32_t)c->producer_dedup_window,
        .expiration_ms = c->producer_id_expiration_ms,
        .max = (uint32_t)c->producer_id_max_per_partition,
    };
}

void broker_shard_config(const struct broker_config *c, struct log_shard_config *out)
{
    log_shard_config_default(out);
    out->buffer_bytes = (size_t)c->storage_buffer_bytes;
    out->memory_bytes = (size_t)c->storage_memory_bytes;
}

void broker_ring_config(const struct broker_config *c, struct ring_config *out)
{
    static const enum ring_backend backends[] = {RING_AUTO, RING_URING, RING_THREADS};
    *out = (struct ring_config){
        .backend = backends[c->storage_ring],
        .entries = (unsigned)c->storage_ring_entries,
        .threads = (unsigned)c->storage_ring_threads,
    };
}
