/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The topic table: a small sorted-by-insertion array (lookups by name are a
 * linear scan; a hash comes with the metadata image), and the discovery of
 * topics from partition directories at start.
 */
#include "broker/topics.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/assert.h"
#include "common/crc32c.h"
#include "common/log.h"

bool topic_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > TOPIC_NAME_MAX || (len == 1 && name[0] == '.') ||
        (len == 2 && name[0] == '.' && name[1] == '.')) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

struct topic *topics_find(const struct topics *t, const char *name, size_t len)
{
    for (unsigned i = 0; i < t->count; i++) {
        if (strlen(t->list[i]->name) == len && memcmp(t->list[i]->name, name, len) == 0) {
            return t->list[i];
        }
    }
    return NULL;
}

static void topic_free(struct topic *topic)
{
    if (topic == NULL) {
        return;
    }
    free(topic->partitions);
    free(topic);
}

/* A stable id from the name, until the metadata log assigns real ones. */
static void topic_make_id(struct topic *topic)
{
    size_t len = strlen(topic->name);
    for (int i = 0; i < 4; i++) {
        uint32_t h = crc32c((uint32_t)i * 0x9e3779b9u, topic->name, len);
        memcpy(topic->id + 4 * i, &h, 4);
    }
}

static int open_partitions(struct topics *t, struct topic *topic)
{
    for (int32_t p = 0; p < topic->partition_count; p++) {
        char dir[1400];
        snprintf(dir, sizeof(dir), "%s/%s-%d", t->dir, topic->name, p);
        int err = 0;
        topic->partitions[p].index = p;
        topic->partitions[p].log = log_open(t->shard, dir, &t->config, &err);
        if (topic->partitions[p].log == NULL) {
            return err;
        }
    }
    return 0;
}

static int table_add(struct topics *t, struct topic *topic)
{
    if (t->count == TOPICS_MAX) {
        return -ENOSPC;
    }
    if (t->count == t->cap) {
        unsigned cap = t->cap == 0 ? 16 : t->cap * 2;
        struct topic **list = realloc(t->list, cap * sizeof(*list));
        if (list == NULL) {
            return -ENOMEM;
        }
        t->list = list;
        t->cap = cap;
    }
    t->list[t->count++] = topic;
    return 0;
}

static struct topic *topic_alloc(const char *name, size_t len, int32_t partitions)
{
    struct topic *topic = calloc(1, sizeof(*topic));
    if (topic == NULL) {
        return NULL;
    }
    memcpy(topic->name, name, len);
    topic->partition_count = partitions;
    topic->partitions = calloc((size_t)partitions, sizeof(*topic->partitions));
    if (topic->partitions == NULL) {
        free(topic);
        return NULL;
    }
    topic_make_id(topic);
    return topic;
}

int topics_create(struct topics *t, const char *name, size_t len, int32_t partitions,
                  struct topic **out)
{
    if (!topic_name_valid(name, len) || partitions < 1 || partitions > 100000) {
        return -EINVAL;
    }
    if (topics_find(t, name, len) != NULL) {
        return -EEXIST;
    }
    struct topic *topic = topic_alloc(name, len, partitions);
    if (topic == NULL) {
        return -ENOMEM;
    }
    int err = open_partitions(t, topic);
    if (err == 0) {
        err = table_add(t, topic);
    }
    if (err != 0) {
        for (int32_t p = 0; p < partitions; p++) {
            log_close(topic->partitions[p].log);
        }
        topic_free(topic);
        return err;
    }
    LOG_INFO("topics", "topic created name=%s partitions=%d", topic->name, partitions);
    if (out != NULL) {
        *out = topic;
    }
    return 0;
}

/* "<topic>-<n>" -> topic length and n, or -1. */
static int parse_partition_dir(const char *entry, size_t *topic_len, int32_t *index)
{
    const char *dash = strrchr(entry, '-');
    if (dash == NULL || dash == entry || dash[1] == '\0') {
        return -1;
    }
    long n = 0;
    for (const char *p = dash + 1; *p != '\0'; p++) {
        if (*p < '0' || *p > '9' || n > 100000) {
            return -1;
        }
        n = n * 10 + (*p - '0');
    }
    *topic_len = (size_t)(dash - entry);
    *index = (int32_t)n;
    return topic_name_valid(entry, *topic_len) ? 0 : -1;
}

int topics_init(struct topics *t, struct log_shard *shard, const char *dir,
                const struct log_config *config)
{
    *t = (struct topics){.shard = shard, .config = *config};
    snprintf(t->dir, sizeof(t->dir), "%s", dir);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        return -errno;
    }
    DIR *d = opendir(dir);
    if (d == NULL) {
        return -errno;
    }
    /* First pass: the partition count of each topic (highest index + 1). */
    struct dirent *e;
    int err = 0;
    while (err == 0 && (e = readdir(d)) != NULL) {
        size_t len;
        int32_t index;
        if (e->d_name[0] == '.' || parse_partition_dir(e->d_name, &len, &index) != 0) {
            continue;
        }
        struct topic *topic = topics_find(t, e->d_name, len);
        if (topic == NULL) {
            topic = topic_alloc(e->d_name, len, 1);
            err = topic == NULL ? -ENOMEM : table_add(t, topic);
            if (err != 0) {
                topic_free(topic);
                break;
            }
        }
        if (index + 1 > topic->partition_count) {
            topic->partition_count = index + 1;
        }
    }
    closedir(d);
    for (unsigned i = 0; err == 0 && i < t->count; i++) {
        struct topic *topic = t->list[i];
        free(topic->partitions);
        topic->partitions = calloc((size_t)topic->partition_count, sizeof(*topic->partitions));
        err = topic->partitions == NULL ? -ENOMEM : open_partitions(t, topic);
    }
    if (err == 0 && t->count > 0) {
        LOG_INFO("topics", "topics loaded count=%u dir=%s", t->count, dir);
    }
    return err;
}

int topics_deinit(struct topics *t)
{
    int first = 0;
    for (unsigned i = 0; i < t->count; i++) {
        struct topic *topic = t->list[i];
        for (int32_t p = 0; p < topic->partition_count; p++) {
            int err = log_close(topic->partitions[p].log);
            first = first != 0 ? first : err;
        }
        topic_free(topic);
    }
    free(t->list);
    *t = (struct topics){0};
    return first;
}
