/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The topic table: a small sorted-by-insertion array (lookups by name are a
 * linear scan; a hash comes with the metadata image), the discovery of
 * topics from partition directories at start, and their creation and deletion.
 *
 * A deletion first renames each partition directory to
 * <topic>-<n>.<stamp>-delete, a name topics_init never opens but removes, so
 * that a crash before the files are gone cannot bring the topic back.
 */
#include "broker/topics.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

struct topic *topics_find_id(const struct topics *t, const uint8_t id[16])
{
    for (unsigned i = 0; i < t->count; i++) {
        if (memcmp(t->list[i]->id, id, 16) == 0) {
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

static int open_partitions(struct topics *t, struct topic *topic, const struct log_config *config)
{
    for (int32_t p = 0; p < topic->partition_count; p++) {
        char dir[1400];
        snprintf(dir, sizeof(dir), "%s/%s-%d", t->dir, topic->name, p);
        int err = 0;
        topic->partitions[p].index = p;
        topic->partitions[p].log = log_open(t->shard, dir, config, &err);
        if (topic->partitions[p].log == NULL) {
            return err;
        }
    }
    return 0;
}

static int remove_tree(const char *path);

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
                  const struct log_config *config, struct topic **out)
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
    /* Per-topic settings live only in the open logs for now: after a restart
     * the broker default applies again, until the metadata log records them. */
    topic->config = config != NULL ? *config : t->config;
    int err = open_partitions(t, topic, &topic->config);
    if (err == 0) {
        err = table_add(t, topic);
    }
    if (err != 0) {
        /* The directories made so far go too: topics_init would otherwise
         * bring back a topic whose creation was refused. */
        for (int32_t p = 0; p < partitions && topic->partitions[p].log != NULL; p++) {
            char dir[1400];
            log_close(topic->partitions[p].log);
            snprintf(dir, sizeof(dir), "%s/%s-%d", t->dir, topic->name, p);
            remove_tree(dir);
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

/* ------------------------------------------------------------ deletion */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 ? 0 : -errno;
}

/* Removes a directory and everything under it, without following links. */
static int remove_tree(const char *path)
{
    int rc = nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc == -1 ? -errno : rc;
}

static bool is_deleted_dir(const char *entry)
{
    static const char suffix[] = "-delete";
    size_t len = strlen(entry);
    size_t n = sizeof(suffix) - 1;
    return len > n && strcmp(entry + len - n, suffix) == 0 && strchr(entry, '.') != NULL;
}

static int sync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    int err = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return err;
}

/* Partition p's directory, live or renamed for deletion. */
static void partition_dir(const struct topics *t, const struct topic *topic, int32_t p,
                          uint64_t stamp, char *out, size_t size)
{
    if (stamp == 0) {
        snprintf(out, size, "%s/%s-%d", t->dir, topic->name, p);
    } else {
        snprintf(out, size, "%s/%s-%d.%016" PRIx64 "-delete", t->dir, topic->name, p, stamp);
    }
}

static void table_remove(struct topics *t, const struct topic *topic)
{
    for (unsigned i = 0; i < t->count; i++) {
        if (t->list[i] == topic) {
            memmove(&t->list[i], &t->list[i + 1], (t->count - i - 1) * sizeof(t->list[0]));
            t->count--;
            return;
        }
    }
    SL_ASSERT(false); /* callers pass a topic of this table */
}

int topics_delete(struct topics *t, struct topic *topic, topics_closing_cb *before_close,
                  void *opaque)
{
    table_remove(t, topic);
    /* Nanoseconds since the epoch: a name of this deletion that a later one
     * of the same topic cannot take, should a removal have failed. */
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t stamp = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
    int first = 0;
    char from[1400];
    char to[1400];
    /* Renamed first, while the logs are open (they reach their files through
     * their directory's fd): the name is free at once for a new topic. */
    for (int32_t p = 0; p < topic->partition_count; p++) {
        partition_dir(t, topic, p, 0, from, sizeof(from));
        partition_dir(t, topic, p, stamp, to, sizeof(to));
        if (rename(from, to) != 0) {
            first = first != 0 ? first : -errno;
            LOG_ERROR("topics", "cannot rename for deletion dir=%s err=%s", from, strerror(errno));
        }
    }
    int err = sync_dir(t->dir);
    first = first != 0 ? first : err;
    if (before_close != NULL) {
        before_close(opaque, topic);
    }
    /* A clean close, not log_abandon: appends and reads in flight must end
     * before the memory they use goes. Its marker files are removed next. */
    for (int32_t p = 0; p < topic->partition_count; p++) {
        err = log_close(topic->partitions[p].log);
        first = first != 0 ? first : err;
        partition_dir(t, topic, p, stamp, to, sizeof(to));
        err = remove_tree(to);
        if (err != 0 && err != -ENOENT) {
            first = first != 0 ? first : err;
            LOG_ERROR("topics", "cannot remove dir=%s err=%s", to, strerror(-err));
        }
    }
    LOG_INFO("topics", "topic deleted name=%s partitions=%d err=%d", topic->name,
             topic->partition_count, first);
    topic_free(topic);
    return first;
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
        if (e->d_name[0] != '.' && is_deleted_dir(e->d_name)) {
            /* A deletion that a crash interrupted: finish it. */
            char path[1400];
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            int rm = remove_tree(path);
            LOG_INFO("topics", "deleted partition removed dir=%s err=%d", path, rm);
            continue;
        }
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
        topic->config = t->config;
        err = topic->partitions == NULL ? -ENOMEM : open_partitions(t, topic, &topic->config);
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
