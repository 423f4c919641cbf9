/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The msg-id table of a partition (msgids.h): entries in a ring in append
 * order, each numbered by a sequence (seq % cap is its slot), and an
 * open-addressing index of those sequences by id hash, with backward-shift
 * deletion so that expiry at the old end and rollback at the new end never
 * leave tombstones behind.
 */
#include "broker/msgids.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/bytes.h"
#include "common/log.h"
#include "proto/batch.h"
#include "proto/compress.h"
#include "storage/log.h"

#define HEADER_SLOTS    256
#define EVICT_LOG_EVERY 10000 /* ms between two eviction log lines */

struct entry {
    uint8_t *id;
    uint16_t len;
    uint64_t hash;
    int64_t offset;
    int64_t time_ms;
};

struct msgids {
    char name[64];
    uint32_t max;
    struct entry *ring;
    uint32_t cap;
    uint64_t head;   /* sequence of the oldest entry */
    uint64_t tail;   /* sequence of the next entry */
    uint64_t *slots; /* sequence + 1 of an entry, 0 = free */
    uint32_t nslots; /* a power of two, at least twice cap */
    uint64_t evicted;
    int64_t last_evict_log_ms;
};

static uint64_t hash_id(const uint8_t *id, size_t len)
{
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h = (h ^ id[i]) * 0x100000001b3u;
    }
    return h;
}

static struct entry *entry_of(const struct msgids *m, uint64_t seq)
{
    return &m->ring[seq % m->cap];
}

struct msgids *msgids_new(uint32_t max, const char *name)
{
    struct msgids *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        return NULL;
    }
    m->max = max > 0 ? max : 1;
    snprintf(m->name, sizeof(m->name), "%s", name);
    return m;
}

void msgids_free(struct msgids *m)
{
    if (m == NULL) {
        return;
    }
    for (uint64_t s = m->head; s < m->tail; s++) {
        free(entry_of(m, s)->id);
    }
    free(m->ring);
    free(m->slots);
    free(m);
}

uint32_t msgids_count(const struct msgids *m)
{
    return (uint32_t)(m->tail - m->head);
}

/* ------------------------------------------------------------- index */

static void index_put(struct msgids *m, uint64_t seq)
{
    uint32_t mask = m->nslots - 1;
    uint32_t i = (uint32_t)entry_of(m, seq)->hash & mask;
    while (m->slots[i] != 0) {
        i = (i + 1) & mask;
    }
    m->slots[i] = seq + 1;
}

/* The index slot holding seq. */
static uint32_t index_slot(const struct msgids *m, uint64_t seq)
{
    uint32_t mask = m->nslots - 1;
    uint32_t i = (uint32_t)entry_of(m, seq)->hash & mask;
    while (m->slots[i] != seq + 1) {
        SL_ASSERT(m->slots[i] != 0); /* every live entry is indexed */
        i = (i + 1) & mask;
    }
    return i;
}

/* Removes slot i, shifting back the entries of its run that may move. */
static void index_delete(struct msgids *m, uint32_t i)
{
    uint32_t mask = m->nslots - 1;
    for (uint32_t j = (i + 1) & mask; m->slots[j] != 0; j = (j + 1) & mask) {
        uint32_t home = (uint32_t)entry_of(m, m->slots[j] - 1)->hash & mask;
        /* j's entry may fill the hole when its home is not in (i, j]. */
        bool movable = i <= j ? (home <= i || home > j) : (home <= i && home > j);
        if (movable) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i] = 0;
}

static int grow(struct msgids *m)
{
    uint32_t cap = m->cap == 0 ? 64 : m->cap * 2;
    cap = cap > m->max ? m->max : cap;
    uint32_t nslots = 16;
    while (nslots < 2 * cap) {
        nslots *= 2;
    }
    struct entry *ring = malloc((size_t)cap * sizeof(*ring));
    uint64_t *slots = calloc(nslots, sizeof(*slots));
    if (ring == NULL || slots == NULL) {
        free(ring);
        free(slots);
        return -ENOMEM;
    }
    for (uint64_t s = m->head; s < m->tail; s++) {
        ring[s % cap] = *entry_of(m, s);
    }
    free(m->ring);
    free(m->slots);
    m->ring = ring;
    m->cap = cap;
    m->slots = slots;
    m->nslots = nslots;
    for (uint64_t s = m->head; s < m->tail; s++) {
        index_put(m, s);
    }
    return 0;
}

/* ------------------------------------------------------------- table */

int64_t msgids_find(struct msgids *m, const uint8_t *id, size_t len, int64_t now_ms,
                    int64_t window_ms)
{
    if (m->tail == m->head) {
        return -1;
    }
    uint64_t h = hash_id(id, len);
    uint32_t mask = m->nslots - 1;
    for (uint32_t i = (uint32_t)h & mask; m->slots[i] != 0; i = (i + 1) & mask) {
        const struct entry *e = entry_of(m, m->slots[i] - 1);
        /* An id may be held twice (written again after its window passed):
         * an expired entry does not hide a live one. */
        if (e->hash == h && e->len == len && memcmp(e->id, id, len) == 0 &&
            now_ms - e->time_ms <= window_ms) {
            return e->offset;
        }
    }
    return -1;
}

static void pop_head(struct msgids *m)
{
    index_delete(m, index_slot(m, m->head));
    free(entry_of(m, m->head)->id);
    m->head++;
}

static void pop_tail(struct msgids *m)
{
    index_delete(m, index_slot(m, m->tail - 1));
    free(entry_of(m, m->tail - 1)->id);
    m->tail--;
}

int msgids_add(struct msgids *m, const uint8_t *id, size_t len, int64_t offset, int64_t time_ms)
{
    SL_ASSERT(len <= MSGIDS_ID_MAX); /* msgids_filter refuses longer ids */
    if (msgids_count(m) == m->max) {
        pop_head(m);
        m->evicted++;
        if (time_ms - m->last_evict_log_ms >= EVICT_LOG_EVERY) {
            m->last_evict_log_ms = time_ms;
            LOG_WARN("msgids",
                     "msg-id table full: oldest ids forgotten before their window ends "
                     "partition=%s max=%u evicted=%" PRIu64,
                     m->name, m->max, m->evicted);
        }
    }
    if (msgids_count(m) == m->cap && grow(m) != 0) {
        return -ENOMEM;
    }
    uint8_t *copy = malloc(len > 0 ? len : 1);
    if (copy == NULL) {
        return -ENOMEM;
    }
    memcpy(copy, id, len);
    *entry_of(m, m->tail) = (struct entry){copy, (uint16_t)len, hash_id(id, len), offset, time_ms};
    index_put(m, m->tail);
    m->tail++;
    return 0;
}

void msgids_expire(struct msgids *m, int64_t now_ms, int64_t window_ms)
{
    while (m->tail > m->head && now_ms - entry_of(m, m->head)->time_ms > window_ms) {
        pop_head(m);
    }
}

void msgids_forget_from(struct msgids *m, int64_t offset)
{
    while (m->tail > m->head && entry_of(m, m->tail - 1)->offset >= offset) {
        pop_tail(m);
    }
}

/* ------------------------------------------------------------ filter */

/* The msg-id header of a record, or NULL. */
static const uint8_t *record_msg_id(const struct batch_record *rec, size_t *len)
{
    static const size_t name_len = sizeof(MSGIDS_HEADER) - 1;
    for (uint32_t k = 0; k < rec->header_count; k++) {
        const struct batch_record_header *h = &rec->headers[k];
        if (h->key_len == (int32_t)name_len && memcmp(h->key, MSGIDS_HEADER, name_len) == 0 &&
            h->value_len >= 0) {
            *len = (size_t)h->value_len;
            return (const uint8_t *)h->value;
        }
    }
    return NULL;
}

/* A set of the ids kept so far in one batch (indexes into f->ids). */
struct batch_set {
    int32_t *slots;
    uint32_t mask;
};

static bool batch_set_has_or_add(struct batch_set *s, const struct msgids_filter *f,
                                 const uint8_t *id, size_t len)
{
    uint32_t i = (uint32_t)hash_id(id, len) & s->mask;
    for (; s->slots[i] >= 0; i = (i + 1) & s->mask) {
        int32_t k = s->slots[i];
        if (f->id_lens[k] == len && memcmp(f->ids[k], id, len) == 0) {
            return true;
        }
    }
    s->slots[i] = f->kept_ids;
    return false;
}

/* The plain records of a batch: in place, or decompressed into f->plain. */
static int plain_records(const uint8_t *batch, const struct batch_header *h,
                         size_t decompressed_max, struct msgids_filter *f, const uint8_t **records,
                         size_t *len)
{
    const uint8_t *body = batch + BATCH_HEADER_BYTES;
    size_t body_len = batch_total_bytes(h) - BATCH_HEADER_BYTES;
    int codec = h->attributes & BATCH_ATTR_COMPRESSION_MASK;
    if (codec == BATCH_COMPRESSION_NONE) {
        *records = body;
        *len = body_len;
        return 0;
    }
    buf_init(&f->plain, decompressed_max);
    int err = decompress_records(codec, body, body_len, decompressed_max, &f->plain);
    *records = f->plain.data;
    *len = f->plain.len;
    return err;
}

static int filter_alloc(struct msgids_filter *f, int32_t records, struct batch_set *set,
                        bool **drop)
{
    uint32_t size = 16;
    while (size < 2 * (uint32_t)records) {
        size *= 2;
    }
    f->ids = malloc((size_t)records * sizeof(*f->ids));
    f->id_lens = malloc((size_t)records * sizeof(*f->id_lens));
    f->deltas = malloc((size_t)records * sizeof(*f->deltas));
    set->slots = malloc(size * sizeof(*set->slots));
    set->mask = size - 1;
    *drop = calloc((size_t)records, sizeof(**drop));
    if (f->ids == NULL || f->id_lens == NULL || f->deltas == NULL || set->slots == NULL ||
        *drop == NULL) {
        return -ENOMEM;
    }
    memset(set->slots, 0xff, size * sizeof(*set->slots));
    return 0;
}

/* The batch again, without the dropped records: header kept, count, length
 * and CRC renewed, records recompressed with the batch's codec. */
static int rebuild(const uint8_t *batch, const struct batch_header *h, const uint8_t *records,
                   size_t records_len, const bool *drop, int zstd_level, struct msgids_filter *f)
{
    struct buf kept;
    buf_init(&kept, records_len);
    struct batch_record_iter it;
    struct batch_record rec;
    struct batch_record_header slots[HEADER_SLOTS];
    batch_record_iter_init_records(&it, records, records_len, h, slots, HEADER_SLOTS);
    int err = 0;
    for (int32_t i = 0; err == 0; i++) {
        const uint8_t *start = it.pos;
        int rc = batch_record_iter_next(&it, &rec);
        if (rc <= 0) {
            err = rc;
            break;
        }
        if (!drop[i]) {
            err = buf_put(&kept, start, (size_t)(it.pos - start));
        }
    }
    buf_init(&f->out, BATCH_HEADER_BYTES + kept.len + kept.len / 128 + 4096); /* zstd's bound */
    err = err != 0 ? err : buf_put(&f->out, batch, BATCH_HEADER_BYTES);
    /* zstd is written again as zstd; another codec (which Sluice reads but
     * does not write) and an empty batch (clients do not expect an empty
     * compressed blob; Kafka's compaction writes it plain) as plain. */
    bool zstd =
        (h->attributes & BATCH_ATTR_COMPRESSION_MASK) == BATCH_COMPRESSION_ZSTD && kept.len > 0;
    if (err == 0 && !zstd) {
        uint16_t attributes = (uint16_t)(h->attributes & ~BATCH_ATTR_COMPRESSION_MASK);
        be16_put(f->out.data + BATCH_OFF_ATTRIBUTES, attributes);
        err = buf_put(&f->out, kept.data, kept.len);
    } else if (err == 0) {
        err = compress_zstd(NULL, kept.data, kept.len, zstd_level, &f->out);
    }
    buf_deinit(&kept);
    if (err != 0) {
        return err;
    }
    uint8_t *p = f->out.data;
    be32_put(p + BATCH_OFF_LENGTH, (uint32_t)(f->out.len - BATCH_LOG_OVERHEAD));
    be32_put(p + BATCH_OFF_RECORD_COUNT, (uint32_t)(f->records - f->duplicates));
    be32_put(p + BATCH_OFF_CRC, batch_compute_crc(p, f->out.len));
    f->rewritten = true;
    return 0;
}

int msgids_filter(struct msgids *m, const uint8_t *batch, size_t len, int64_t now_ms,
                  int64_t window_ms, size_t decompressed_max, int zstd_level, bool keep_empty,
                  struct msgids_filter *f)
{
    *f = (struct msgids_filter){.first_original = -1};
    struct batch_header h;
    if (batch_header_decode(batch, len, &h) != 0 || batch_total_bytes(&h) > len ||
        h.record_count <= 0 || h.record_count > MSGIDS_RECORDS_MAX) {
        return -EBADMSG;
    }
    const uint8_t *records = NULL;
    size_t records_len = 0;
    int err = plain_records(batch, &h, decompressed_max, f, &records, &records_len);
    struct batch_set set = {0};
    bool *drop = NULL;
    f->records = h.record_count;
    err = err != 0 ? err : filter_alloc(f, h.record_count, &set, &drop);
    msgids_expire(m, now_ms, window_ms);
    struct batch_record_iter it;
    struct batch_record rec;
    struct batch_record_header slots[HEADER_SLOTS];
    batch_record_iter_init_records(&it, records, records_len, &h, slots, HEADER_SLOTS);
    for (int32_t i = 0; err == 0; i++) {
        int rc = batch_record_iter_next(&it, &rec);
        if (rc <= 0) {
            err = rc == -ENOBUFS ? -EBADMSG : rc;
            break;
        }
        size_t id_len = 0;
        const uint8_t *id = record_msg_id(&rec, &id_len);
        if (id == NULL) {
            continue;
        }
        if (id_len > MSGIDS_ID_MAX) {
            err = -EINVAL;
            break;
        }
        int64_t original = msgids_find(m, id, id_len, now_ms, window_ms);
        if (original >= 0 || batch_set_has_or_add(&set, f, id, id_len)) {
            drop[i] = true;
            f->duplicates++;
            if (i == 0) {
                f->first_original = original;
            }
            continue;
        }
        f->ids[f->kept_ids] = id;
        f->id_lens[f->kept_ids] = (uint16_t)id_len;
        f->deltas[f->kept_ids] = rec.offset_delta;
        f->kept_ids++;
    }
    if (err == 0 && f->duplicates > 0 && (f->duplicates < f->records || keep_empty)) {
        err = rebuild(batch, &h, records, records_len, drop, zstd_level, f);
    }
    free(set.slots);
    free(drop);
    return err;
}

void msgids_commit(struct msgids *m, const struct msgids_filter *f, int64_t base_offset,
                   int64_t now_ms)
{
    for (int32_t k = 0; k < f->kept_ids; k++) {
        if (msgids_add(m, f->ids[k], f->id_lens[k], base_offset + f->deltas[k], now_ms) != 0) {
            LOG_WARN("msgids", "msg-id not remembered (out of memory) partition=%s", m->name);
            return;
        }
    }
}

void msgids_filter_deinit(struct msgids_filter *f)
{
    buf_deinit(&f->out);
    buf_deinit(&f->plain);
    free(f->ids);
    free(f->id_lens);
    free(f->deltas);
    *f = (struct msgids_filter){0};
}

/* -------------------------------------------------------------- load */

struct load {
    struct msgids *m;
    int64_t now_ms;
    size_t decompressed_max;
};

static int load_batch(void *opaque, const uint8_t *batch, size_t len, const struct batch_header *h)
{
    struct load *l = opaque;
    struct msgids_filter f = {0};
    const uint8_t *records = NULL;
    size_t records_len = 0;
    if (plain_records(batch, h, l->decompressed_max, &f, &records, &records_len) != 0) {
        msgids_filter_deinit(&f);
        return 0; /* a codec we cannot read holds no ids we could have taken */
    }
    (void)len;
    int64_t time_ms =
        h->max_timestamp > 0 && h->max_timestamp < l->now_ms ? h->max_timestamp : l->now_ms;
    struct batch_record_iter it;
    struct batch_record rec;
    struct batch_record_header slots[HEADER_SLOTS];
    batch_record_iter_init_records(&it, records, records_len, h, slots, HEADER_SLOTS);
    int rc;
    while ((rc = batch_record_iter_next(&it, &rec)) == 1) {
        size_t id_len = 0;
        const uint8_t *id = record_msg_id(&rec, &id_len);
        if (id != NULL && id_len <= MSGIDS_ID_MAX &&
            msgids_add(l->m, id, id_len, h->base_offset + rec.offset_delta, time_ms) != 0) {
            rc = -ENOMEM;
            break;
        }
    }
    msgids_filter_deinit(&f);
    return rc == -ENOMEM ? rc : 0;
}

int msgids_load(struct msgids *m, struct log *log, int64_t now_ms, int64_t window_ms,
                size_t decompressed_max)
{
    int64_t from = 0;
    int64_t found_ts = 0;
    int err = log_offset_for_time(log, now_ms - window_ms, &from, &found_ts);
    if (err == -ENOENT) {
        return 0; /* nothing written within the window */
    }
    if (err != 0) {
        return err;
    }
    struct load l = {m, now_ms, decompressed_max};
    err = log_scan(log, from, load_batch, &l);
    if (err == 0 && msgids_count(m) > 0) {
        LOG_INFO("msgids", "msg-ids loaded partition=%s ids=%u from=%" PRId64, m->name,
                 msgids_count(m), from);
    }
    return err;
}
