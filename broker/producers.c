/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A partition's idempotent producers (producers.h): an open-addressing
 * table by producer id, each producer with a ring of its last `window`
 * batches, and the snapshot files that carry the table over restarts.
 *
 * Snapshot file, <offset:020>.snapshot, big-endian:
 *
 *    0  u32  magic "SLPS"
 *    4  u16  version (1)
 *    6  u16  reserved (0)
 *    8  u32  producers
 *   12  u32  CRC-32C of every byte from 16 to the end
 *   16  per producer: i64 producer_id, i16 epoch, i64 last_ms (wall clock),
 *       u8 batches, then per batch (oldest first): i32 first_seq,
 *       i32 last_seq, i64 first_offset, i64 last_offset, i64 timestamp_ms
 *
 * Written to a temporary name, synced, renamed, directory synced.
 */
#include "broker/producers.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/assert.h"
#include "common/buf.h"
#include "common/bytes.h"
#include "common/crc32c.h"
#include "common/log.h"
#include "proto/batch.h"
#include "proto/errors.h"
#include "storage/log.h"

#define SNAPSHOT_MAGIC        0x534c5053u /* "SLPS" */
#define SNAPSHOT_VERSION      1
#define SNAPSHOT_HEADER_BYTES 16
#define SNAPSHOT_BATCH_BYTES  32
#define SNAPSHOT_ENTRY_BYTES  19
#define SNAPSHOTS_KEPT        2
/* Expiry scans the table at most this often. */
#define EXPIRE_EVERY_MS 1000

_Static_assert(SNAPSHOT_BATCH_BYTES == 4 + 4 + 8 + 8 + 8, "batch entry layout");
_Static_assert(SNAPSHOT_ENTRY_BYTES == 8 + 2 + 8 + 1, "producer entry layout");

struct producer {
    int64_t id;
    int16_t epoch;
    int64_t last_ms;
    uint32_t count; /* batches in the ring */
    uint32_t head;  /* the next slot to write */
    struct producer_batch batches[];
};

struct producers {
    struct producers_config config;
    char name[64]; /* for log lines: topic-partition */
    struct producer **slots;
    uint32_t size; /* a power of two, at least twice count */
    uint32_t count;
    int64_t last_expire_ms;
};

/* ------------------------------------------------------------- table */

static uint32_t slot_of(const struct producers *ps, int64_t id)
{
    uint64_t h = (uint64_t)id * 0x9e3779b97f4a7c15u;
    return (uint32_t)(h >> 32) & (ps->size - 1);
}

static struct producer **find_slot(const struct producers *ps, int64_t id)
{
    uint32_t i = slot_of(ps, id);
    while (ps->slots[i] != NULL && ps->slots[i]->id != id) {
        i = (i + 1) & (ps->size - 1);
    }
    return &ps->slots[i];
}

static struct producer *find(const struct producers *ps, int64_t id)
{
    return *find_slot(ps, id);
}

static int resize(struct producers *ps, uint32_t size)
{
    struct producer **old = ps->slots;
    uint32_t old_size = ps->size;
    struct producer **slots = calloc(size, sizeof(*slots));
    if (slots == NULL) {
        return -ENOMEM;
    }
    ps->slots = slots;
    ps->size = size;
    for (uint32_t i = 0; i < old_size; i++) {
        if (old[i] != NULL) {
            *find_slot(ps, old[i]->id) = old[i];
        }
    }
    free(old);
    return 0;
}

static void remove_at(struct producers *ps, struct producer **slot)
{
    free(*slot);
    *slot = NULL;
    ps->count--;
    /* Reinsert the run after the hole (linear probing without tombstones). */
    uint32_t i = (uint32_t)(slot - ps->slots);
    for (uint32_t j = (i + 1) & (ps->size - 1); ps->slots[j] != NULL;
         j = (j + 1) & (ps->size - 1)) {
        struct producer *p = ps->slots[j];
        ps->slots[j] = NULL;
        *find_slot(ps, p->id) = p;
    }
}

struct producers *producers_new(const struct producers_config *config, const char *name)
{
    struct producers *ps = calloc(1, sizeof(*ps));
    if (ps == NULL) {
        return NULL;
    }
    ps->config = *config;
    SL_ASSERT(config->window >= 1 && config->window <= PRODUCERS_WINDOW_MAX); /* config bounds */
    snprintf(ps->name, sizeof(ps->name), "%s", name);
    if (resize(ps, 16) != 0) {
        free(ps);
        return NULL;
    }
    return ps;
}

void producers_free(struct producers *ps)
{
    if (ps == NULL) {
        return;
    }
    for (uint32_t i = 0; i < ps->size; i++) {
        free(ps->slots[i]);
    }
    free(ps->slots);
    free(ps);
}

uint32_t producers_count(const struct producers *ps)
{
    return ps->count;
}

/* ------------------------------------------------------------- rules */

static const struct producer_batch *batch_at(const struct producer *p, uint32_t window,
                                             uint32_t age)
{
    /* age 0 = newest */
    return &p->batches[(p->head + window - 1 - age) % window];
}

int32_t producers_last_seq(int32_t base_seq, int32_t last_offset_delta)
{
    /* Kafka's DefaultRecordBatch.incrementSequence: wraps past INT32_MAX to 0. */
    if (base_seq > INT32_MAX - last_offset_delta) {
        return last_offset_delta - (INT32_MAX - base_seq) - 1;
    }
    return base_seq + last_offset_delta;
}

static bool in_sequence(int32_t last_seq, int32_t first_seq)
{
    return first_seq == (last_seq == INT32_MAX ? 0 : last_seq + 1);
}

int producers_check(const struct producers *ps, int64_t producer_id, int16_t epoch,
                    int32_t first_seq, int32_t last_seq, const struct producer_batch **dup)
{
    const struct producer *p = find(ps, producer_id);
    if (p == NULL) {
        return PRODUCERS_APPEND;
    }
    if (epoch < p->epoch) {
        return -KAFKA_ERR_INVALID_PRODUCER_EPOCH;
    }
    if (epoch > p->epoch) {
        return first_seq == 0 ? PRODUCERS_APPEND : -KAFKA_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
    }
    for (uint32_t age = 0; age < p->count; age++) {
        const struct producer_batch *b = batch_at(p, ps->config.window, age);
        if (b->first_seq == first_seq && b->last_seq == last_seq) {
            *dup = b;
            return PRODUCERS_DUPLICATE;
        }
    }
    if (p->count == 0) {
        return PRODUCERS_APPEND;
    }
    const struct producer_batch *last = batch_at(p, ps->config.window, 0);
    return in_sequence(last->last_seq, first_seq) ? PRODUCERS_APPEND
                                                  : -KAFKA_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
}

/* The producer idle longest (none with an append in flight), for eviction. */
static struct producer **idlest(struct producers *ps)
{
    struct producer **best = NULL;
    for (uint32_t i = 0; i < ps->size; i++) {
        struct producer *p = ps->slots[i];
        bool busy = false;
        for (uint32_t age = 0; p != NULL && age < p->count; age++) {
            busy = busy || batch_at(p, ps->config.window, age)->inflight != NULL;
        }
        if (p != NULL && !busy && (best == NULL || p->last_ms < (*best)->last_ms)) {
            best = &ps->slots[i];
        }
    }
    return best;
}

static struct producer *producer_add(struct producers *ps, int64_t id, int64_t now_ms)
{
    if (ps->count >= ps->config.max) {
        struct producer **victim = idlest(ps);
        if (victim == NULL) {
            return NULL;
        }
        LOG_WARN("producers",
                 "producer state evicted: table full partition=%s producer_id=%" PRId64
                 " idle_ms=%" PRId64 " max=%u",
                 ps->name, (*victim)->id, now_ms - (*victim)->last_ms, ps->config.max);
        remove_at(ps, victim);
    }
    if (2 * (ps->count + 1) > ps->size && resize(ps, ps->size * 2) != 0) {
        return NULL;
    }
    struct producer *p = calloc(1, sizeof(*p) + ps->config.window * sizeof(struct producer_batch));
    if (p == NULL) {
        return NULL;
    }
    p->id = id;
    p->epoch = -1;
    *find_slot(ps, id) = p;
    ps->count++;
    return p;
}

struct producer_batch *producers_record(struct producers *ps, int64_t producer_id, int16_t epoch,
                                        const struct producer_batch *batch, int64_t now_ms)
{
    if (now_ms - ps->last_expire_ms >= EXPIRE_EVERY_MS) {
        producers_expire(ps, now_ms);
    }
    struct producer *p = find(ps, producer_id);
    if (p == NULL) {
        p = producer_add(ps, producer_id, now_ms);
        if (p == NULL) {
            return NULL;
        }
    }
    if (epoch != p->epoch) {
        /* A new epoch starts a new sequence: the old window means nothing. */
        p->epoch = epoch;
        p->count = 0;
        p->head = 0;
    }
    struct producer_batch *slot = &p->batches[p->head];
    *slot = *batch;
    p->head = (p->head + 1) % ps->config.window;
    p->count = p->count < ps->config.window ? p->count + 1 : p->count;
    p->last_ms = now_ms;
    return slot;
}

struct producer_batch *producers_find(struct producers *ps, int64_t producer_id, int16_t epoch,
                                      int32_t first_seq)
{
    struct producer *p = find(ps, producer_id);
    for (uint32_t age = 0; p != NULL && p->epoch == epoch && age < p->count; age++) {
        struct producer_batch *b =
            &p->batches[(p->head + ps->config.window - 1 - age) % ps->config.window];
        if (b->first_seq == first_seq) {
            return b;
        }
    }
    return NULL;
}

void producers_forget(struct producers *ps, int64_t producer_id, int16_t epoch, int32_t first_seq)
{
    struct producer *p = find(ps, producer_id);
    if (p == NULL || p->epoch != epoch || p->count == 0) {
        return;
    }
    uint32_t w = ps->config.window;
    if (batch_at(p, w, 0)->first_seq != first_seq) {
        return; /* not the newest: a later batch of the producer went in after it */
    }
    p->head = (p->head + w - 1) % w;
    p->count--;
}

void producers_expire(struct producers *ps, int64_t now_ms)
{
    ps->last_expire_ms = now_ms;
    for (uint32_t i = 0; i < ps->size;) {
        struct producer *p = ps->slots[i];
        bool busy = false;
        for (uint32_t age = 0; p != NULL && age < p->count; age++) {
            busy = busy || batch_at(p, ps->config.window, age)->inflight != NULL;
        }
        if (p != NULL && !busy && now_ms - p->last_ms > ps->config.expiration_ms) {
            LOG_DEBUG("producers", "producer expired partition=%s producer_id=%" PRId64, ps->name,
                      p->id);
            remove_at(ps, &ps->slots[i]);
            continue; /* the slot may hold a moved entry now */
        }
        i++;
    }
}

/* ---------------------------------------------------------- snapshots */

static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    int err = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return err;
}

/* Offsets of the snapshots in dir, newest first; returns how many (<= max). */
static int list_snapshots(const char *dir, int64_t *offsets, int max)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        return -errno;
    }
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end;
        long long v = strtoll(e->d_name, &end, 10);
        if (end != e->d_name + 20 || strcmp(end, ".snapshot") != 0 || v < 0) {
            continue;
        }
        if (n < max) {
            offsets[n++] = v;
        } else {
            /* Keep the newest max: replace the smallest if this is newer. */
            int low = 0;
            for (int i = 1; i < n; i++) {
                low = offsets[i] < offsets[low] ? i : low;
            }
            if (v > offsets[low]) {
                offsets[low] = v;
            }
        }
    }
    closedir(d);
    for (int i = 1; i < n; i++) { /* insertion sort, descending */
        int64_t v = offsets[i];
        int j = i;
        for (; j > 0 && offsets[j - 1] < v; j--) {
            offsets[j] = offsets[j - 1];
        }
        offsets[j] = v;
    }
    return n;
}

static void snapshot_path(const char *dir, int64_t offset, char *out, size_t size)
{
    snprintf(out, size, "%s/%020" PRId64 ".snapshot", dir, offset);
}

/* Removes every snapshot but the newest `keep`. */
static void prune_snapshots(const char *dir, int keep)
{
    int64_t offsets[64];
    for (;;) {
        DIR *d = opendir(dir);
        if (d == NULL) {
            return;
        }
        int total = 0;
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            size_t len = strlen(e->d_name);
            total += len == 29 && strcmp(e->d_name + 20, ".snapshot") == 0;
        }
        closedir(d);
        if (total <= keep) {
            return;
        }
        int n = list_snapshots(dir, offsets, (int)(sizeof(offsets) / sizeof(offsets[0])));
        if (n <= keep) {
            return;
        }
        char path[1400];
        snapshot_path(dir, offsets[n - 1], path, sizeof(path));
        if (unlink(path) != 0) {
            return;
        }
    }
}

int producers_snapshot(const struct producers *ps, const char *dir, int64_t offset)
{
    struct buf b;
    buf_init(&b, (size_t)SNAPSHOT_HEADER_BYTES +
                     (size_t)ps->count *
                         (SNAPSHOT_ENTRY_BYTES + ps->config.window * SNAPSHOT_BATCH_BYTES));
    int err = buf_put_be32(&b, SNAPSHOT_MAGIC);
    err = err != 0 ? err : buf_put_be16(&b, SNAPSHOT_VERSION);
    err = err != 0 ? err : buf_put_be16(&b, 0);
    err = err != 0 ? err : buf_put_be32(&b, ps->count);
    err = err != 0 ? err : buf_put_be32(&b, 0); /* the CRC, filled below */
    for (uint32_t i = 0; err == 0 && i < ps->size; i++) {
        const struct producer *p = ps->slots[i];
        if (p == NULL) {
            continue;
        }
        err = buf_put_be64(&b, (uint64_t)p->id);
        err = err != 0 ? err : buf_put_be16(&b, (uint16_t)p->epoch);
        err = err != 0 ? err : buf_put_be64(&b, (uint64_t)p->last_ms);
        err = err != 0 ? err : buf_put_u8(&b, (uint8_t)p->count);
        for (uint32_t age = p->count; err == 0 && age-- > 0;) {
            const struct producer_batch *x = batch_at(p, ps->config.window, age);
            err = buf_put_be32(&b, (uint32_t)x->first_seq);
            err = err != 0 ? err : buf_put_be32(&b, (uint32_t)x->last_seq);
            err = err != 0 ? err : buf_put_be64(&b, (uint64_t)x->first_offset);
            err = err != 0 ? err : buf_put_be64(&b, (uint64_t)x->last_offset);
            err = err != 0 ? err : buf_put_be64(&b, (uint64_t)x->timestamp_ms);
        }
    }
    if (err != 0) {
        buf_deinit(&b);
        return err;
    }
    be32_put(b.data + 12, crc32c(0, b.data + SNAPSHOT_HEADER_BYTES, b.len - SNAPSHOT_HEADER_BYTES));
    char tmp[1500], path[1400];
    snapshot_path(dir, offset, path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    err = fd < 0 ? -errno : write_all(fd, b.data, b.len);
    if (err == 0 && fdatasync(fd) != 0) {
        err = -errno;
    }
    if (fd >= 0) {
        close(fd);
    }
    if (err == 0 && rename(tmp, path) != 0) {
        err = -errno;
    }
    err = err != 0 ? err : sync_dir(dir);
    buf_deinit(&b);
    if (err != 0) {
        unlink(tmp);
        LOG_WARN("producers", "snapshot not written dir=%s offset=%" PRId64 " err=%s", dir, offset,
                 strerror(-err));
        return err;
    }
    prune_snapshots(dir, SNAPSHOTS_KEPT);
    return 0;
}

/* Reads one snapshot into the table; -EBADMSG when it does not check out. */
static int snapshot_read(struct producers *ps, const char *path)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        return -errno;
    }
    uint8_t hdr[SNAPSHOT_HEADER_BYTES];
    int err = fread(hdr, 1, sizeof(hdr), f) == sizeof(hdr) ? 0 : -EBADMSG;
    uint32_t count = err == 0 ? be32_get(hdr + 8) : 0;
    if (err == 0 && (be32_get(hdr) != SNAPSHOT_MAGIC || be16_get(hdr + 4) != SNAPSHOT_VERSION ||
                     count > ps->config.max)) {
        err = -EBADMSG;
    }
    size_t max_body = (size_t)count * (SNAPSHOT_ENTRY_BYTES + 255 * SNAPSHOT_BATCH_BYTES);
    uint8_t *body = err == 0 ? malloc(max_body + 1) : NULL;
    size_t len = body != NULL ? fread(body, 1, max_body + 1, f) : 0;
    fclose(f);
    if (err == 0 &&
        (body == NULL || len > max_body || crc32c(0, body, len) != be32_get(hdr + 12))) {
        err = body == NULL ? -ENOMEM : -EBADMSG;
    }
    size_t pos = 0;
    for (uint32_t i = 0; err == 0 && i < count; i++) {
        if (len - pos < SNAPSHOT_ENTRY_BYTES) {
            err = -EBADMSG;
            break;
        }
        int64_t id = (int64_t)be64_get(body + pos);
        int16_t epoch = (int16_t)be16_get(body + pos + 8);
        int64_t last_ms = (int64_t)be64_get(body + pos + 10);
        uint32_t nb = body[pos + 18];
        pos += SNAPSHOT_ENTRY_BYTES;
        if (len - pos < (size_t)nb * SNAPSHOT_BATCH_BYTES) {
            err = -EBADMSG;
            break;
        }
        for (uint32_t k = 0; k < nb; k++, pos += SNAPSHOT_BATCH_BYTES) {
            struct producer_batch x = {
                .first_seq = (int32_t)be32_get(body + pos),
                .last_seq = (int32_t)be32_get(body + pos + 4),
                .first_offset = (int64_t)be64_get(body + pos + 8),
                .last_offset = (int64_t)be64_get(body + pos + 16),
                .timestamp_ms = (int64_t)be64_get(body + pos + 24),
            };
            if (producers_record(ps, id, epoch, &x, last_ms) == NULL) {
                err = -ENOMEM;
                break;
            }
        }
        struct producer *p = find(ps, id);
        if (err == 0 && p == NULL && nb == 0) {
            p = producer_add(ps, id, last_ms);
            err = p == NULL ? -ENOMEM : 0;
            if (p != NULL) {
                p->epoch = epoch;
            }
        }
        if (p != NULL) {
            p->last_ms = last_ms;
        }
    }
    free(body);
    return err;
}

struct replay {
    struct producers *ps;
    int64_t now_ms;
};

static int replay_batch(void *opaque, const uint8_t *batch, size_t len,
                        const struct batch_header *h)
{
    struct replay *r = opaque;
    (void)batch;
    (void)len;
    if (h->producer_id < 0 || h->record_count <= 0) {
        return 0;
    }
    const struct producer *p = find(r->ps, h->producer_id);
    if (p != NULL && h->producer_epoch < p->epoch) {
        return 0; /* written before a fencing the table already knows */
    }
    struct producer_batch x = {
        .first_seq = h->base_sequence,
        .last_seq = producers_last_seq(h->base_sequence, h->last_offset_delta),
        .first_offset = h->base_offset,
        .last_offset = batch_last_offset(h),
        .timestamp_ms = h->max_timestamp,
    };
    return producers_record(r->ps, h->producer_id, h->producer_epoch, &x, r->now_ms) != NULL
               ? 0
               : -ENOMEM;
}

int producers_load(struct producers *ps, struct log *log, int64_t now_ms)
{
    const char *dir = log_dir(log);
    int64_t offsets[SNAPSHOTS_KEPT + 8];
    int n = list_snapshots(dir, offsets, (int)(sizeof(offsets) / sizeof(offsets[0])));
    int64_t from = log_start_offset(log);
    for (int i = 0; i < n; i++) {
        if (offsets[i] > log_end_offset(log)) {
            /* Taken before a crash cut the log's tail: it may name batches
             * that are not there. Never used. */
            continue;
        }
        char path[1400];
        snapshot_path(dir, offsets[i], path, sizeof(path));
        int err = snapshot_read(ps, path);
        if (err == 0) {
            from = SL_MAX(offsets[i], log_start_offset(log));
            break;
        }
        LOG_WARN("producers", "snapshot skipped path=%s err=%s", path, strerror(-err));
        /* Start over from an empty table for the next candidate. */
        for (uint32_t k = 0; k < ps->size; k++) {
            free(ps->slots[k]);
            ps->slots[k] = NULL;
        }
        ps->count = 0;
    }
    struct replay r = {ps, now_ms};
    int err = log_scan(log, from, replay_batch, &r);
    if (err == 0 && (ps->count > 0 || n > 0)) {
        LOG_INFO("producers", "producer state loaded partition=%s producers=%u from=%" PRId64,
                 ps->name, ps->count, from);
    }
    return err;
}
