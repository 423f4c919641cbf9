/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The cluster metadata image and its records (layout in metadata.h). Topics
 * sit in an array in creation order; lookups scan it, which serves the
 * admin paths that use the image (the broker's hot paths look topics up in
 * its own hashed table).
 */
#include "replication/metadata.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/assert.h"
#include "common/bytes.h"
#include "proto/batch.h"

#define RECORD_VERSION 0

static const uint8_t zero_id[16];

void md_image_init(struct md_image *image)
{
    *image = (struct md_image){.next_producer_id = 0};
}

static void topic_free(struct md_topic *topic)
{
    for (unsigned i = 0; i < topic->config_count; i++) {
        free(topic->configs[i].name);
        free(topic->configs[i].value);
    }
    free(topic->configs);
    free(topic);
}

void md_image_deinit(struct md_image *image)
{
    for (unsigned i = 0; i < image->topic_count; i++) {
        topic_free(image->topics[i]);
    }
    free(image->topics);
    *image = (struct md_image){0};
}

struct md_topic *md_topic_find(const struct md_image *image, const char *name, size_t len)
{
    for (unsigned i = 0; i < image->topic_count; i++) {
        struct md_topic *t = image->topics[i];
        if (strlen(t->name) == len && memcmp(t->name, name, len) == 0) {
            return t;
        }
    }
    return NULL;
}

struct md_topic *md_topic_find_id(const struct md_image *image, const uint8_t id[16])
{
    for (unsigned i = 0; i < image->topic_count; i++) {
        if (memcmp(image->topics[i]->id, id, 16) == 0) {
            return image->topics[i];
        }
    }
    return NULL;
}

const char *md_topic_config(const struct md_topic *topic, const char *name)
{
    for (unsigned i = 0; i < topic->config_count; i++) {
        if (strcmp(topic->configs[i].name, name) == 0) {
            return topic->configs[i].value;
        }
    }
    return NULL;
}

int md_new_topic_id(const struct md_image *image, uint8_t id[16])
{
    do {
        if (getrandom(id, 16, 0) != 16) {
            return -errno;
        }
        /* A version 4 UUID, as Kafka's Uuid.randomUuid() makes. */
        id[6] = (uint8_t)((id[6] & 0x0f) | 0x40);
        id[8] = (uint8_t)((id[8] & 0x3f) | 0x80);
    } while (memcmp(id, zero_id, 16) == 0 || md_topic_find_id(image, id) != NULL);
    return 0;
}

/* ---------------------------------------------------------- encoding */

static int put_header(struct buf *out, enum md_record_type type)
{
    int err = buf_put_u8(out, (uint8_t)type);
    return err != 0 ? err : buf_put_u8(out, RECORD_VERSION);
}

static int put_str16(struct buf *out, const char *s, size_t len)
{
    SL_ASSERT(len <= UINT16_MAX); /* callers bound names well below */
    int err = buf_put_be16(out, (uint16_t)len);
    return err != 0 ? err : buf_put(out, s, len);
}

int md_put_topic(struct buf *out, const char *name, size_t len, const uint8_t id[16],
                 int32_t partitions)
{
    int err = put_header(out, MD_TOPIC);
    err = err != 0 ? err : buf_put(out, id, 16);
    err = err != 0 ? err : put_str16(out, name, len);
    return err != 0 ? err : buf_put_be32(out, (uint32_t)partitions);
}

int md_put_config(struct buf *out, const char *topic, size_t topic_len, const char *name,
                  size_t name_len, const char *value, int32_t value_len)
{
    int err = put_header(out, MD_CONFIG);
    err = err != 0 ? err : buf_put_u8(out, MD_RESOURCE_TOPIC);
    err = err != 0 ? err : put_str16(out, topic, topic_len);
    err = err != 0 ? err : put_str16(out, name, name_len);
    err = err != 0 ? err : buf_put_be16(out, (uint16_t)(int16_t)(value_len < 0 ? -1 : value_len));
    return err != 0 || value_len <= 0 ? err : buf_put(out, value, (size_t)value_len);
}

int md_put_remove_topic(struct buf *out, const uint8_t id[16])
{
    int err = put_header(out, MD_REMOVE_TOPIC);
    return err != 0 ? err : buf_put(out, id, 16);
}

int md_put_producer_ids(struct buf *out, int32_t node, int64_t next_producer_id)
{
    int err = put_header(out, MD_PRODUCER_IDS);
    err = err != 0 ? err : buf_put_be32(out, (uint32_t)node);
    return err != 0 ? err : buf_put_be64(out, (uint64_t)next_producer_id);
}

/* ---------------------------------------------------------- decoding */

static const char *take_str16(struct reader *r, size_t *len)
{
    const uint8_t *p = reader_take(r, 2);
    *len = p != NULL ? be16_get(p) : 0;
    return (const char *)reader_take(r, *len);
}

static char *dup_n(const char *s, size_t len)
{
    char *d = malloc(len + 1);
    if (d != NULL) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

/* ---------------------------------------------------------- applying */

static int apply_topic(struct md_image *image, struct reader *r)
{
    const uint8_t *id = reader_take(r, 16);
    size_t len;
    const char *name = take_str16(r, &len);
    int32_t partitions = reader_i32(r);
    if (r->bad || r->left != 0 || len == 0 || len > MD_TOPIC_NAME_MAX || partitions < 1 ||
        partitions > MD_PARTITIONS_MAX || memcmp(id, zero_id, 16) == 0) {
        return -EBADMSG;
    }
    if (md_topic_find(image, name, len) != NULL || md_topic_find_id(image, id) != NULL ||
        image->topic_count == MD_TOPICS_MAX) {
        return 0;
    }
    if (image->topic_count == image->topic_cap) {
        unsigned cap = image->topic_cap == 0 ? 16 : image->topic_cap * 2;
        struct md_topic **topics = realloc(image->topics, cap * sizeof(*topics));
        if (topics == NULL) {
            return -ENOMEM;
        }
        image->topics = topics;
        image->topic_cap = cap;
    }
    struct md_topic *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return -ENOMEM;
    }
    memcpy(t->name, name, len);
    memcpy(t->id, id, 16);
    t->partitions = partitions;
    image->topics[image->topic_count++] = t;
    return 1;
}

/* Sets, replaces or (value NULL) removes one override of a topic. */
static int topic_set_config(struct md_topic *t, const char *name, size_t name_len,
                            const char *value, int32_t value_len)
{
    unsigned i = 0;
    while (i < t->config_count && !(strlen(t->configs[i].name) == name_len &&
                                    memcmp(t->configs[i].name, name, name_len) == 0)) {
        i++;
    }
    if (value_len < 0) {
        if (i == t->config_count) {
            return 0;
        }
        free(t->configs[i].name);
        free(t->configs[i].value);
        t->configs[i] = t->configs[--t->config_count];
        return 1;
    }
    char *v = dup_n(value, (size_t)value_len);
    if (v == NULL) {
        return -ENOMEM;
    }
    if (i < t->config_count) {
        free(t->configs[i].value);
        t->configs[i].value = v;
        return 1;
    }
    if (t->config_count == MD_TOPIC_CONFIGS_MAX) {
        free(v);
        return 0;
    }
    struct md_config *configs = realloc(t->configs, (t->config_count + 1) * sizeof(*configs));
    char *n = dup_n(name, name_len);
    if (configs == NULL || n == NULL) {
        t->configs = configs != NULL ? configs : t->configs;
        free(n);
        free(v);
        return -ENOMEM;
    }
    t->configs = configs;
    t->configs[t->config_count++] = (struct md_config){n, v};
    return 1;
}

static int apply_config(struct md_image *image, struct reader *r)
{
    uint8_t type = reader_u8(r);
    size_t res_len, name_len;
    const char *res = take_str16(r, &res_len);
    const char *name = take_str16(r, &name_len);
    const uint8_t *lp = reader_take(r, 2);
    int32_t value_len = lp != NULL ? (int16_t)be16_get(lp) : 0;
    const char *value = value_len > 0 ? (const char *)reader_take(r, (size_t)value_len) : "";
    if (r->bad || r->left != 0 || type != MD_RESOURCE_TOPIC || name_len == 0 ||
        name_len > MD_CONFIG_NAME_MAX || value_len < -1 || value_len > MD_CONFIG_VALUE_MAX) {
        return -EBADMSG;
    }
    struct md_topic *t = md_topic_find(image, res, res_len);
    return t == NULL ? 0 : topic_set_config(t, name, name_len, value, value_len);
}

static int apply_remove_topic(struct md_image *image, struct reader *r)
{
    const uint8_t *id = reader_take(r, 16);
    if (r->bad || r->left != 0) {
        return -EBADMSG;
    }
    for (unsigned i = 0; i < image->topic_count; i++) {
        if (memcmp(image->topics[i]->id, id, 16) == 0) {
            topic_free(image->topics[i]);
            memmove(&image->topics[i], &image->topics[i + 1],
                    (image->topic_count - i - 1) * sizeof(image->topics[0]));
            image->topic_count--;
            return 1;
        }
    }
    return 0;
}

static int apply_producer_ids(struct md_image *image, struct reader *r)
{
    (void)reader_i32(r); /* the node the block went to: one node for now */
    int64_t next = reader_i64(r);
    if (r->bad || r->left != 0 || next < 0) {
        return -EBADMSG;
    }
    if (next <= image->next_producer_id) {
        return 0; /* ids only grow: a block is never handed out twice */
    }
    image->next_producer_id = next;
    return 1;
}

int md_apply(struct md_image *image, const uint8_t *p, size_t len)
{
    struct reader r = {p, len, false};
    uint8_t type = reader_u8(&r);
    uint8_t version = reader_u8(&r);
    if (r.bad || version != RECORD_VERSION) {
        return -EBADMSG;
    }
    int rc;
    switch (type) {
    case MD_TOPIC:
        rc = apply_topic(image, &r);
        break;
    case MD_CONFIG:
        rc = apply_config(image, &r);
        break;
    case MD_REMOVE_TOPIC:
        rc = apply_remove_topic(image, &r);
        break;
    case MD_PRODUCER_IDS:
        rc = apply_producer_ids(image, &r);
        break;
    default:
        return -EBADMSG;
    }
    if (rc == 1) {
        image->applied++;
    } else if (rc == 0) {
        image->skipped++;
    }
    return rc;
}

int md_apply_batch(struct md_image *image, const uint8_t *batch, size_t len)
{
    struct batch_record_iter it;
    struct batch_record_header slots[1];
    int err = batch_record_iter_init(&it, batch, len, slots, 1);
    if (err != 0) {
        return err == -ENOTSUP ? -EBADMSG : err;
    }
    int applied = 0;
    struct batch_record rec;
    while ((err = batch_record_iter_next(&it, &rec)) == 1) {
        if (rec.value_len < 0) {
            return -EBADMSG;
        }
        int rc = md_apply(image, rec.value, (size_t)rec.value_len);
        if (rc < 0) {
            return rc;
        }
        applied += rc;
    }
    return err == 0 ? applied : -EBADMSG;
}
