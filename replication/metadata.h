/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The cluster metadata image: what the cluster knows about itself (topics,
 * their ids, partition counts and setting overrides; the producer ids handed
 * out), built by applying the records of the __cluster_metadata log in order.
 * Pure: no I/O. Whoever owns the log appends records and applies them here;
 * nothing changes the image in any other way.
 *
 * A record is the value of one Kafka record in a RecordBatch of that log (the
 * key is null). Layout, big-endian; str16 is a u16 length then the bytes:
 *
 *   0  u8   type        (enum md_record_type)
 *   1  u8   version     (0)
 *   2  ...  fields of the type:
 *
 *   TOPIC         id[16] name:str16 partitions:i32
 *   CONFIG        resource_type:u8 (2 topic) resource:str16 name:str16
 *                 value: i16 length (-1: the override is removed) then bytes
 *   REMOVE_TOPIC  id[16]
 *   PRODUCER_IDS  node:i32 next_producer_id:i64 (ids below it are taken)
 *
 * A batch of records is atomic: it is appended, made durable and applied as
 * one. Applying is deterministic: a record that does not fit the image (a
 * TOPIC whose name or id exists, a CONFIG of an unknown topic, a REMOVE_TOPIC
 * of an unknown id) changes nothing and is counted as skipped, so that a
 * replay after a restart builds the same image.
 */
#ifndef SL_REPLICATION_METADATA_H
#define SL_REPLICATION_METADATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define MD_TOPIC_NAME_MAX   249
#define MD_CONFIG_NAME_MAX  255
#define MD_CONFIG_VALUE_MAX 4096
/* Overrides per topic at most (each a known key: a handful in practice). */
#define MD_TOPIC_CONFIGS_MAX 64
#define MD_PARTITIONS_MAX    100000
#define MD_TOPICS_MAX        100000

#define MD_RESOURCE_TOPIC 2

enum md_record_type {
    MD_TOPIC = 1,
    MD_CONFIG = 2,
    MD_REMOVE_TOPIC = 3,
    MD_PRODUCER_IDS = 4,
};

struct md_config {
    char *name;
    char *value;
};

struct md_topic {
    char name[MD_TOPIC_NAME_MAX + 1];
    uint8_t id[16];
    int32_t partitions;
    unsigned config_count;
    struct md_config *configs; /* config_count of them, at most MD_TOPIC_CONFIGS_MAX */
};

struct md_image {
    struct md_topic **topics;
    unsigned topic_count;
    unsigned topic_cap;
    int64_t next_producer_id; /* ids below this were handed out */
    uint64_t applied;         /* records applied */
    uint64_t skipped;         /* records that did not fit the image */
};

void md_image_init(struct md_image *image);
void md_image_deinit(struct md_image *image);

struct md_topic *md_topic_find(const struct md_image *image, const char *name, size_t len);
struct md_topic *md_topic_find_id(const struct md_image *image, const uint8_t id[16]);
/* The value of a topic's override, or NULL. */
const char *md_topic_config(const struct md_topic *topic, const char *name);

/* ---------------------------------------------------------- records */

/* Each appends one record (its value bytes) to out: 0 or -ENOBUFS. */
int md_put_topic(struct buf *out, const char *name, size_t len, const uint8_t id[16],
                 int32_t partitions);
int md_put_config(struct buf *out, const char *topic, size_t topic_len, const char *name,
                  size_t name_len, const char *value, int32_t value_len);
int md_put_remove_topic(struct buf *out, const uint8_t id[16]);
int md_put_producer_ids(struct buf *out, int32_t node, int64_t next_producer_id);

/*
 * Applies one record (its value bytes). Returns 1 when applied, 0 when it did
 * not fit the image (skipped, see above), -EBADMSG when it is malformed or of
 * an unknown type or version, -ENOMEM. The image is unchanged unless 1.
 */
int md_apply(struct md_image *image, const uint8_t *p, size_t len);

/*
 * Applies every record of one stored RecordBatch (uncompressed, as the owner
 * of the log writes them). Returns the number applied or -EBADMSG / -ENOMEM
 * (records before the bad one stay applied: the log's owner treats that as
 * corruption it cannot serve past).
 */
int md_apply_batch(struct md_image *image, const uint8_t *batch, size_t len);

/* A fresh random topic id: never all zero (Kafka's "no id") and not in use. */
int md_new_topic_id(const struct md_image *image, uint8_t id[16]);

#endif
