/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The topic table: an array in creation order with two open-addressing
 * indexes (by name and by id) for the request paths, kept in step with the
 * metadata image by topics_sync().
 *
 * Each partition directory holds partition.metadata, two text lines as Kafka
 * writes them:
 *
 *   version: 0
 *   topic_id: <the id in Kafka's base64url form, 22 characters>
 *
 * written before the log is opened. A directory whose file names another id
 * belongs to an earlier topic of the same name and is removed before the new
 * topic takes the name.
 *
 * A deletion first renames each partition directory to
 * <topic>-<n>.<stamp>-delete, a name never opened and removed at the next
 * start, so that a crash before the files are gone cannot bring them back.
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

#include "broker/metalog.h"
#include "broker/msgids.h"
#include "broker/topic_config.h"
#include "common/assert.h"
#include "common/clock.h"
#include "common/log.h"
#include "replication/metadata.h"

#define PARTITION_METADATA     "partition.metadata"
#define PARTITION_METADATA_MAX 128

_Static_assert(TOPIC_NAME_MAX == MD_TOPIC_NAME_MAX, "the table holds the image's names");

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

/* ------------------------------------------------------------ indexes */

static uint64_t hash_name(const char *name, size_t len)
{
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h = (h ^ (uint8_t)name[i]) * 0x100000001b3u;
    }
    return h;
}

static uint64_t hash_id(const uint8_t id[16])
{
    uint64_t h;
    memcpy(&h, id + 8, sizeof(h)); /* random bits (the version nibble is in the first half) */
    return h * 0x9e3779b97f4a7c15u;
}

static void index_insert(struct topic **slots, unsigned size, uint64_t h, struct topic *topic)
{
    unsigned i = (unsigned)h & (size - 1);
    while (slots[i] != NULL) {
        i = (i + 1) & (size - 1);
    }
    slots[i] = topic;
}

/* Rebuilds both indexes at a size for count entries. */
static int index_rebuild(struct topics *t, unsigned count)
{
    unsigned size = 64;
    while (size < 2 * count) {
        size *= 2;
    }
    struct topic **by_name = calloc(size, sizeof(*by_name));
    struct topic **by_id = calloc(size, sizeof(*by_id));
    if (by_name == NULL || by_id == NULL) {
        free(by_name);
        free(by_id);
        return -ENOMEM;
    }
    free(t->by_name);
    free(t->by_id);
    t->by_name = by_name;
    t->by_id = by_id;
    t->index_size = size;
    for (unsigned i = 0; i < t->count; i++) {
        struct topic *topic = t->list[i];
        index_insert(by_name, size, hash_name(topic->name, strlen(topic->name)), topic);
        index_insert(by_id, size, hash_id(topic->id), topic);
    }
    return 0;
}

struct topic *topics_find(const struct topics *t, const char *name, size_t len)
{
    if (t->index_size == 0) {
        return NULL;
    }
    unsigned i = (unsigned)hash_name(name, len) & (t->index_size - 1);
    for (struct topic *topic; (topic = t->by_name[i]) != NULL; i = (i + 1) & (t->index_size - 1)) {
        if (strlen(topic->name) == len && memcmp(topic->name, name, len) == 0) {
            return topic;
        }
    }
    return NULL;
}

struct topic *topics_find_id(const struct topics *t, const uint8_t id[16])
{
    if (t->index_size == 0) {
        return NULL;
    }
    unsigned i = (unsigned)hash_id(id) & (t->index_size - 1);
    for (struct topic *topic; (topic = t->by_id[i]) != NULL; i = (i + 1) & (t->index_size - 1)) {
        if (memcmp(topic->id, id, 16) == 0) {
            return topic;
        }
    }
    return NULL;
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
    if (2 * (t->count + 1) > t->index_size) {
        int err = index_rebuild(t, t->count + 1);
        if (err != 0) {
            return err;
        }
    }
    t->list[t->count++] = topic;
    index_insert(t->by_name, t->index_size, hash_name(topic->name, strlen(topic->name)), topic);
    index_insert(t->by_id, t->index_size, hash_id(topic->id), topic);
    return 0;
}

static void table_remove(struct topics *t, const struct topic *topic)
{
    unsigned i = 0;
    while (i < t->count && t->list[i] != topic) {
        i++;
    }
    SL_ASSERT(i < t->count); /* callers pass a topic of this table */
    memmove(&t->list[i], &t->list[i + 1], (t->count - i - 1) * sizeof(t->list[0]));
    t->count--;
    /* Open addressing without tombstones: rebuild at the same size (rare). */
    memset(t->by_name, 0, t->index_size * sizeof(*t->by_name));
    memset(t->by_id, 0, t->index_size * sizeof(*t->by_id));
    for (unsigned k = 0; k < t->count; k++) {
        struct topic *o = t->list[k];
        index_insert(t->by_name, t->index_size, hash_name(o->name, strlen(o->name)), o);
        index_insert(t->by_id, t->index_size, hash_id(o->id), o);
    }
}

/* ------------------------------------------------------------- files */

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

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Kafka's textual topic id: base64url of the 16 bytes, unpadded (22 chars). */
static void id_format(const uint8_t id[16], char out[23])
{
    unsigned o = 0;
    for (unsigned i = 0; i < 16; i += 3) {
        uint32_t v = (uint32_t)id[i] << 16;
        v |= i + 1 < 16 ? (uint32_t)id[i + 1] << 8 : 0;
        v |= i + 2 < 16 ? id[i + 2] : 0;
        unsigned chars = i + 2 < 16 ? 4 : 2; /* the last group holds one byte */
        for (unsigned k = 0; k < chars; k++) {
            out[o++] = b64url[(v >> (18 - 6 * k)) & 63];
        }
    }
    out[o] = '\0';
}

static int id_parse(const char *s, size_t len, uint8_t id[16])
{
    if (len != 22) {
        return -EBADMSG;
    }
    uint8_t bits[22];
    for (unsigned i = 0; i < 22; i++) {
        const char *c = memchr(b64url, s[i], 64);
        if (c == NULL || s[i] == '\0') {
            return -EBADMSG;
        }
        bits[i] = (uint8_t)(c - b64url);
    }
    for (unsigned i = 0, o = 0; i < 22; i += 4) {
        uint32_t v = (uint32_t)bits[i] << 18 | (uint32_t)bits[i + 1] << 12;
        if (i + 2 < 22) {
            v |= (uint32_t)bits[i + 2] << 6 | bits[i + 3];
        }
        id[o++] = (uint8_t)(v >> 16);
        if (o < 16) {
            id[o++] = (uint8_t)(v >> 8);
            id[o++] = (uint8_t)v;
        }
    }
    return 0;
}

/* Reads the topic id a partition directory belongs to: 0, -ENOENT, -EBADMSG. */
static int partition_metadata_read(const char *dir, uint8_t id[16])
{
    char path[1500];
    snprintf(path, sizeof(path), "%s/%s", dir, PARTITION_METADATA);
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        return -errno;
    }
    char text[PARTITION_METADATA_MAX + 1];
    size_t n = fread(text, 1, PARTITION_METADATA_MAX, f);
    fclose(f);
    text[n] = '\0';
    const char *p = strstr(text, "topic_id: ");
    if (strncmp(text, "version: 0\n", 11) != 0 || p == NULL) {
        return -EBADMSG;
    }
    p += strlen("topic_id: ");
    return id_parse(p, strcspn(p, "\n"), id);
}

/* Writes partition.metadata (through a temporary file, synced). */
static int partition_metadata_write(const char *dir, const uint8_t id[16])
{
    char tmp[1500], path[1500], text[PARTITION_METADATA_MAX], idtext[23];
    snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, PARTITION_METADATA);
    snprintf(path, sizeof(path), "%s/%s", dir, PARTITION_METADATA);
    id_format(id, idtext);
    int len = snprintf(text, sizeof(text), "version: 0\ntopic_id: %s\n", idtext);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        return -errno;
    }
    int err = write(fd, text, (size_t)len) == len && fdatasync(fd) == 0 ? 0 : -EIO;
    close(fd);
    if (err == 0 && rename(tmp, path) != 0) {
        err = -errno;
    }
    return err == 0 ? sync_dir(dir) : err;
}

/* ------------------------------------------------------- open, delete */

static void topic_free(struct topic *topic)
{
    if (topic == NULL) {
        return;
    }
    free(topic->partitions);
    free(topic);
}

static void partition_dir(const struct topics *t, const char *name, int32_t p, uint64_t stamp,
                          char *out, size_t size)
{
    if (stamp == 0) {
        snprintf(out, size, "%s/%s-%d", t->dir, name, p);
    } else {
        snprintf(out, size, "%s/%s-%d.%016" PRIx64 "-delete", t->dir, name, p, stamp);
    }
}

/* Nanoseconds since the epoch: a name that a later rename of a directory of
 * the same name cannot take. */
static uint64_t rename_stamp(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

/* Makes partition p's directory belong to the topic: a directory of an
 * earlier topic of this name goes first; a new one gets partition.metadata. */
static int claim_dir(struct topics *t, const struct topic *topic, int32_t p)
{
    char dir[1400];
    partition_dir(t, topic->name, p, 0, dir, sizeof(dir));
    uint8_t id[16];
    int err = partition_metadata_read(dir, id);
    if (err == 0 && memcmp(id, topic->id, 16) == 0) {
        return 0;
    }
    if (err == 0 || err == -EBADMSG) {
        LOG_INFO("topics", "removing a partition of an earlier topic of this name dir=%s", dir);
        err = remove_tree(dir);
        if (err != 0) {
            return err;
        }
    } else if (err != -ENOENT) {
        return err;
    }
    /* Missing: a new partition, or a directory from before partition.metadata
     * existed (or whose file a crash prevented): it is this topic's. */
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        return -errno;
    }
    err = partition_metadata_write(dir, topic->id);
    return err == 0 ? sync_dir(t->dir) : err;
}

static int open_partitions(struct topics *t, struct topic *topic)
{
    for (int32_t p = 0; p < topic->partition_count; p++) {
        char dir[1400];
        partition_dir(t, topic->name, p, 0, dir, sizeof(dir));
        int err = claim_dir(t, topic, p);
        topic->partitions[p].index = p;
        struct partition *part = &topic->partitions[p];
        part->log = err == 0 ? log_open(t->shard, dir, &topic->config.log, &err) : NULL;
        if (part->log != NULL) {
            char name[64];
            snprintf(name, sizeof(name), "%.40s-%d", topic->name, p);
            part->producers = producers_new(&t->producers, name);
            err = part->producers == NULL
                      ? -ENOMEM
                      : producers_load(part->producers, part->log, time_wall_ms());
            part->snapshot_base = log_active_base_offset(part->log);
            if (err == 0 && topic->config.dedup_window_ms > 0) {
                part->msgids = msgids_new(t->msgids_max, name);
                int64_t now = time_wall_ms();
                err = part->msgids == NULL
                          ? -ENOMEM
                          : msgids_load(part->msgids, part->log, now, topic->config.dedup_window_ms,
                                        MSGIDS_DECOMPRESSED_MAX);
            }
            if (err != 0) {
                msgids_free(part->msgids);
                part->msgids = NULL;
                producers_free(part->producers);
                part->producers = NULL;
                log_close(part->log);
                part->log = NULL;
            }
        }
        if (part->log == NULL) {
            LOG_ERROR("topics", "cannot open partition dir=%s err=%s", dir, strerror(-err));
            while (p-- > 0) {
                log_close(topic->partitions[p].log);
                producers_free(topic->partitions[p].producers);
                msgids_free(topic->partitions[p].msgids);
                topic->partitions[p] = (struct partition){0};
            }
            return err;
        }
    }
    return 0;
}

/* Closes a partition: its log (draining what is in flight), then a snapshot
 * of its producers as of the log's end, taken before closing since the
 * close completes the appends it holds. */
static int partition_close(struct partition *part, bool snapshot)
{
    int64_t end = log_end_offset(part->log);
    char dir[1400];
    snprintf(dir, sizeof(dir), "%s", log_dir(part->log));
    int err = log_close(part->log);
    if (snapshot && err == 0 && part->producers != NULL && producers_count(part->producers) > 0) {
        err = producers_snapshot(part->producers, dir, end);
    }
    producers_free(part->producers);
    msgids_free(part->msgids);
    *part = (struct partition){.index = part->index};
    return err;
}

/* The broker's defaults with the image's overrides. An override this
 * version cannot parse is logged and left out. */
static void topic_config_from(const struct topics *t, const struct md_topic *mt,
                              struct topic_settings *config, uint32_t *set)
{
    *config = t->config;
    *set = 0;
    for (unsigned i = 0; i < mt->config_count; i++) {
        const struct md_config *c = &mt->configs[i];
        int key = topic_config_find(c->name, strlen(c->name));
        if (key < 0 ||
            topic_config_set(config, (enum topic_config_key)key, c->value, strlen(c->value)) != 0) {
            LOG_WARN("topics", "topic setting ignored topic=%s key=%s value=%s", mt->name, c->name,
                     c->value);
            continue;
        }
        *set |= 1u << key;
    }
}

static int topic_open(struct topics *t, const struct md_topic *mt)
{
    struct topic *topic = calloc(1, sizeof(*topic));
    if (topic == NULL) {
        return -ENOMEM;
    }
    snprintf(topic->name, sizeof(topic->name), "%s", mt->name);
    memcpy(topic->id, mt->id, 16);
    topic->partition_count = mt->partitions;
    topic->partitions = calloc((size_t)mt->partitions, sizeof(*topic->partitions));
    topic_config_from(t, mt, &topic->config, &topic->config_set);
    int err = topic->partitions == NULL ? -ENOMEM : open_partitions(t, topic);
    if (err == 0) {
        err = table_add(t, topic);
        if (err != 0) {
            for (int32_t p = 0; p < topic->partition_count; p++) {
                partition_close(&topic->partitions[p], false);
            }
        }
    }
    if (err != 0) {
        topic_free(topic);
        return err;
    }
    LOG_INFO("topics", "topic open name=%s partitions=%d overrides=%u", topic->name,
             topic->partition_count, mt->config_count);
    return 0;
}

static int topic_delete(struct topics *t, struct topic *topic, topics_closing_cb *before_close,
                        void *opaque)
{
    table_remove(t, topic);
    uint64_t stamp = rename_stamp();
    int first = 0;
    char from[1400];
    char to[1400];
    /* Renamed first, while the logs are open (they reach their files through
     * their directory's fd): the name is free at once for a new topic. */
    for (int32_t p = 0; p < topic->partition_count; p++) {
        partition_dir(t, topic->name, p, 0, from, sizeof(from));
        partition_dir(t, topic->name, p, stamp, to, sizeof(to));
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
        err = partition_close(&topic->partitions[p], false);
        first = first != 0 ? first : err;
        partition_dir(t, topic->name, p, stamp, to, sizeof(to));
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

/* Applies changed overrides to an open topic's logs. */
static void topic_reconfigure(struct topics *t, struct topic *topic, const struct md_topic *mt)
{
    struct topic_settings config;
    uint32_t set;
    topic_config_from(t, mt, &config, &set);
    if (set == topic->config_set && memcmp(&config, &topic->config, sizeof(config)) == 0) {
        return;
    }
    for (int32_t p = 0; p < topic->partition_count; p++) {
        int err = log_set_config(topic->partitions[p].log, &config.log);
        if (err != 0) {
            LOG_WARN("topics", "settings refused by the log topic=%s partition=%d err=%s",
                     topic->name, p, strerror(-err));
            return;
        }
    }
    topic->config = config;
    topic->config_set = set;
}

int topics_sync(struct topics *t, const struct md_image *image, topics_closing_cb *before_close,
                void *opaque)
{
    int first = 0;
    for (unsigned i = t->count; i-- > 0;) {
        struct topic *topic = t->list[i];
        struct md_topic *mt = md_topic_find_id(image, topic->id);
        if (mt == NULL) {
            int err = topic_delete(t, topic, before_close, opaque);
            first = first != 0 ? first : err;
        } else {
            topic_reconfigure(t, topic, mt);
        }
    }
    for (unsigned i = 0; i < image->topic_count; i++) {
        const struct md_topic *mt = image->topics[i];
        if (topics_find_id(t, mt->id) == NULL) {
            int err = topic_open(t, mt);
            if (err != 0) {
                LOG_ERROR("topics", "topic not served name=%s err=%s", mt->name, strerror(-err));
                first = first != 0 ? first : err;
            }
        }
    }
    return first;
}

/* ------------------------------------------------------------- start */

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

static bool has_suffix(const char *entry, const char *suffix)
{
    size_t len = strlen(entry);
    size_t n = strlen(suffix);
    return len > n && strcmp(entry + len - n, suffix) == 0 && strchr(entry, '.') != NULL;
}

/* One directory entry of log.dirs at start. */
static void sweep_entry(struct topics *t, const char *entry)
{
    char path[1400];
    snprintf(path, sizeof(path), "%s/%s", t->dir, entry);
    if (has_suffix(entry, "-delete")) {
        int rm = remove_tree(path); /* a deletion that a crash interrupted */
        LOG_INFO("topics", "deleted partition removed dir=%s err=%d", path, rm);
        return;
    }
    size_t len;
    int32_t index;
    if (strcmp(entry, METALOG_DIR_NAME) == 0 || parse_partition_dir(entry, &len, &index) != 0) {
        return;
    }
    struct topic *topic = topics_find(t, entry, len);
    if (topic != NULL && index < topic->partition_count) {
        return;
    }
    uint8_t id[16];
    if (partition_metadata_read(path, id) == 0) {
        int rm = remove_tree(path);
        LOG_INFO("topics", "partition of a deleted topic removed dir=%s err=%d", path, rm);
        return;
    }
    char to[1500];
    snprintf(to, sizeof(to), "%s.%016" PRIx64 "-stray", path, rename_stamp());
    int err = rename(path, to) == 0 ? 0 : -errno;
    LOG_WARN("topics",
             "partition directory unknown to the metadata log set aside dir=%s to=%s err=%d", path,
             to, err);
}

void topics_sweep(struct topics *t)
{
    DIR *d = opendir(t->dir);
    if (d == NULL) {
        LOG_WARN("topics", "cannot list dir=%s err=%s", t->dir, strerror(errno));
        return;
    }
    /* Names first: removing while reading a directory may skip entries. */
    char(*names)[256] = NULL;
    size_t count = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN)) {
            continue;
        }
        if (count == cap) {
            cap = cap == 0 ? 64 : cap * 2;
            char(*more)[256] = realloc(names, cap * sizeof(*names));
            if (more == NULL) {
                break;
            }
            names = more;
        }
        snprintf(names[count++], sizeof(names[0]), "%s", e->d_name);
    }
    closedir(d);
    for (size_t i = 0; i < count; i++) {
        sweep_entry(t, names[i]);
    }
    free(names);
    sync_dir(t->dir);
}

int topics_init(struct topics *t, struct log_shard *shard, const char *dir,
                const struct log_config *config, const struct producers_config *producers,
                uint32_t msgids_max)
{
    *t = (struct topics){.shard = shard,
                         .config = {.log = *config},
                         .producers = *producers,
                         .msgids_max = msgids_max};
    snprintf(t->dir, sizeof(t->dir), "%s", dir);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        return -errno;
    }
    return index_rebuild(t, 0);
}

int topics_deinit(struct topics *t)
{
    int first = 0;
    for (unsigned i = 0; i < t->count; i++) {
        struct topic *topic = t->list[i];
        for (int32_t p = 0; p < topic->partition_count; p++) {
            int err = partition_close(&topic->partitions[p], true);
            first = first != 0 ? first : err;
        }
        topic_free(topic);
    }
    free(t->list);
    free(t->by_name);
    free(t->by_id);
    *t = (struct topics){0};
    return first;
}
