/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The group coordinator (groups.h): the classic group protocol's state
 * machine, committed offsets, and their records in __consumer_offsets.
 *
 * Records use Kafka's own layout, so the topic reads as Kafka's would. Key
 * and value are big-endian; str16 is an i16 length then bytes (-1 = null):
 *
 *   offset commit   key:   version:i16=1 group:str16 topic:str16 partition:i32
 *                   value: version:i16=3 offset:i64 leader_epoch:i32
 *                          metadata:str16 commit_timestamp:i64
 *   group metadata  key:   version:i16=2 group:str16
 *                   value: version:i16=3 protocol_type:str16 generation:i32
 *                          protocol:str16 leader:str16 state_timestamp:i64
 *                          members:i32 then each: member_id:str16
 *                          instance_id:str16 client_id:str16 client_host:str16
 *                          rebalance_timeout:i32 session_timeout:i32
 *                          subscription:bytes32 assignment:bytes32
 *
 * A null value is a tombstone: the key is gone (offsets expired or deleted,
 * group deleted). Replay applies records in offset order; the last value of a
 * key wins.
 *
 * Disk stays bounded by compaction through rewrite: once a partition has
 * taken more than max(rewrite_bytes_min, 4 x its live bytes) since its last
 * rewrite, and no append of it is in flight (so the cache is exactly what the
 * log says), the coordinator appends every live record of that partition
 * again, in as many batches of at most batch_bytes_max as they take, and,
 * once they are durable, deletes the segments wholly below where the rewrite
 * began. Only the latest value of each key survives, which is what Kafka's
 * log compaction keeps for this topic. A group's metadata is rewritten as the
 * log last held it (the bytes of its last durable or replayed record), not as
 * it is in memory: between generations the two differ, and a restart must
 * find the last stored generation.
 *
 * The cache follows the log in log order: an append's effect on memory is
 * applied in its completion callback, and completions come in offset order.
 * Tombstones (deletion, expiry) remove from memory exactly what they remove
 * on replay; an expiry skips a group while a commit of it is in flight.
 *
 * Timers: one ev_timer ticking every TICK_MS while any group has members or
 * a rebalance pending checks session deadlines and join deadlines; one more
 * runs offset expiry every retention_check_interval_ms.
 */
#include "broker/groups.h"

#include <errno.h>
#include <ev.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/assert.h"
#include "common/bytes.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/murmur2.h"
#include "proto/batch.h"
#include "proto/errors.h"
#include "storage/log.h"

#define TICK_MS              100
#define GROUP_ID_MAX         255
#define NAME_MAX_BYTES       255 /* member, instance, client ids, protocol names */
#define PROTOCOLS_MAX        32
#define MEMBER_ID_SUFFIX_LEN 36
/* A stored group may hold more members than group.max.size now allows (it
 * was lowered): replay keeps them, up to the setting's own ceiling. */
#define REPLAY_MEMBERS_MAX 100000
/* Kafka's longest topic name. */
#define TOPIC_NAME_MAX 249
/* The most a record adds to a batch beyond its key and value: length,
 * attributes, timestamp and offset deltas, key and value lengths, header
 * count, each varint at its widest. */
#define RECORD_OVERHEAD_MAX (5 + 1 + 10 + 5 + 5 + 5 + 5)

enum group_state { EMPTY, PREPARING, COMPLETING, STABLE, DEAD };

static const char *const state_names[] = {"Empty", "PreparingRebalance", "CompletingRebalance",
                                          "Stable", "Dead"};

struct protocol {
    char *name;
    uint8_t *meta;
    int32_t len;
};

struct member {
    char *id;
    char *instance_id; /* NULL: dynamic */
    char *client_id;
    char *client_host;
    int32_t session_timeout_ms;
    int32_t rebalance_timeout_ms;
    struct protocol *protocols;
    int32_t protocol_count;
    uint8_t *assignment;
    int32_t assignment_len;
    int64_t deadline_ms; /* session expiry, monotonic */
    groups_join_cb *join_cb;
    void *join_opaque;
    groups_sync_cb *sync_cb;
    void *sync_opaque;
};

/* A member id handed out with MEMBER_ID_REQUIRED, not yet joined with it. */
struct pending_member {
    char *id;
    int64_t deadline_ms;
};

struct offset {
    char *topic;
    int32_t partition;
    int64_t offset;
    int32_t leader_epoch;
    char *metadata;
    int64_t commit_ms; /* wall clock */
};

struct group {
    char *id;
    int32_t partition;
    enum group_state state;
    int32_t generation;
    char *protocol_type;
    char *protocol;
    char *leader;
    struct member **members;
    int32_t member_count;
    struct pending_member *pending;
    int32_t pending_count;
    int64_t join_deadline_ms;   /* PREPARING: complete by then (monotonic) */
    int64_t join_not_before_ms; /* PREPARING from EMPTY: the initial delay */
    int64_t empty_since_ms;     /* wall clock: offsets expire from here */
    bool sync_storing;          /* the leader's assignment is being stored */
    int32_t commits_inflight;   /* commits appended, not yet durable */
    /* The value of the group's metadata record as the log last holds it
     * (durable or replayed); NULL when none or tombstoned. A rewrite copies
     * this, never the state in memory, which may be between generations. */
    uint8_t *stored;
    uint32_t stored_len;
    struct offset *offsets;
    int32_t offset_count;
    int32_t offset_cap;
    int32_t *oindex; /* open addressing over offsets, -1 = free */
    int32_t oindex_size;
};

struct opart {
    struct log *log;
    unsigned inflight;      /* appends not yet durable */
    uint64_t since_rewrite; /* bytes appended since the last rewrite */
    uint64_t live_bytes;    /* bytes the last rewrite wrote */
    bool rewriting;
    bool rewrite_failed; /* a batch of the rewrite under way failed */
};

struct groups {
    struct groups_config config;
    struct ev_loop *loop;
    struct opart *parts;
    struct group **table; /* open addressing by id; NULL = free */
    int32_t table_size;
    int32_t count;
    int64_t offsets_total;
    ev_timer tick;
    ev_timer expiry;
    bool replaying;
    bool stopping; /* groups_release: the logs close next, start no rewrite */
    bool closing;  /* groups_free: waiting for the appends in flight */
};

static int64_t now_ms(void)
{
    return time_mono_ns() / 1000000;
}

/* ------------------------------------------------------------ strings */

static char *dup_kstr(struct kstr s)
{
    if (s.len < 0) {
        return NULL;
    }
    char *d = malloc((size_t)s.len + 1);
    if (d != NULL) {
        if (s.len > 0) { /* an empty string may come with a null pointer */
            memcpy(d, s.ptr, (size_t)s.len);
        }
        d[s.len] = '\0';
    }
    return d;
}

static char *dup_str(const char *s)
{
    return s != NULL ? dup_kstr((struct kstr){s, (int32_t)strlen(s)}) : NULL;
}

static bool kstr_is(struct kstr a, const char *s)
{
    if (s == NULL) {
        return a.len < 0;
    }
    return a.len >= 0 && (size_t)a.len == strlen(s) &&
           (a.len == 0 || memcmp(a.ptr, s, (size_t)a.len) == 0);
}

static uint8_t *dup_bytes(const void *p, int32_t len)
{
    uint8_t *d = malloc(len > 0 ? (size_t)len : 1);
    if (d != NULL && len > 0) {
        memcpy(d, p, (size_t)len);
    }
    return d;
}

static uint64_t hash_bytes(const void *p, size_t len, uint64_t h)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < len; i++) {
        h = (h ^ b[i]) * 0x100000001b3u;
    }
    return h;
}

/* ------------------------------------------------------------- table */

static struct group **table_slot(const struct groups *gs, struct kstr id)
{
    uint64_t h = hash_bytes(id.ptr, (size_t)id.len, 0xcbf29ce484222325u);
    int32_t i = (int32_t)(h & (uint64_t)(gs->table_size - 1));
    while (gs->table[i] != NULL && !kstr_is(id, gs->table[i]->id)) {
        i = (i + 1) & (gs->table_size - 1);
    }
    return &gs->table[i];
}

static struct group *group_find(const struct groups *gs, struct kstr id)
{
    return id.len < 0 ? NULL : *table_slot(gs, id);
}

static int table_grow(struct groups *gs)
{
    int32_t size = gs->table_size * 2;
    struct group **old = gs->table;
    int32_t old_size = gs->table_size;
    gs->table = calloc((size_t)size, sizeof(*gs->table));
    if (gs->table == NULL) {
        gs->table = old;
        return -ENOMEM;
    }
    gs->table_size = size;
    for (int32_t i = 0; i < old_size; i++) {
        if (old[i] != NULL) {
            *table_slot(gs, (struct kstr){old[i]->id, (int32_t)strlen(old[i]->id)}) = old[i];
        }
    }
    free(old);
    return 0;
}

static void member_free(struct member *m)
{
    if (m == NULL) {
        return;
    }
    for (int32_t i = 0; i < m->protocol_count; i++) {
        free(m->protocols[i].name);
        free(m->protocols[i].meta);
    }
    free(m->protocols);
    free(m->id);
    free(m->instance_id);
    free(m->client_id);
    free(m->client_host);
    free(m->assignment);
    free(m);
}

static void group_free(struct group *g)
{
    for (int32_t i = 0; i < g->member_count; i++) {
        member_free(g->members[i]);
    }
    for (int32_t i = 0; i < g->pending_count; i++) {
        free(g->pending[i].id);
    }
    for (int32_t i = 0; i < g->offset_count; i++) {
        free(g->offsets[i].topic);
        free(g->offsets[i].metadata);
    }
    free(g->members);
    free(g->pending);
    free(g->offsets);
    free(g->oindex);
    free(g->id);
    free(g->protocol_type);
    free(g->protocol);
    free(g->leader);
    free(g->stored);
    free(g);
}

/* The group, created Empty when create is set and the bound allows. */
static struct group *group_get(struct groups *gs, struct kstr id, bool create)
{
    struct group *g = group_find(gs, id);
    if (g != NULL || !create) {
        return g;
    }
    if (gs->count >= gs->config.groups_max) {
        LOG_WARN("groups", "groups.max reached: group refused group=%.*s max=%d", id.len, id.ptr,
                 gs->config.groups_max);
        return NULL;
    }
    if (2 * (gs->count + 1) > gs->table_size && table_grow(gs) != 0) {
        return NULL;
    }
    g = calloc(1, sizeof(*g));
    if (g == NULL || (g->id = dup_kstr(id)) == NULL) {
        free(g);
        return NULL;
    }
    g->partition = groups_partition_of(gs, id.ptr, (size_t)id.len);
    g->state = EMPTY;
    /* A group found in the log without metadata saying since when it is
     * empty (only offsets) has been empty long enough: its offsets expire by
     * their commit time alone, restarts or not. */
    g->empty_since_ms = gs->replaying ? 0 : time_wall_ms();
    *table_slot(gs, id) = g;
    gs->count++;
    return g;
}

/* Removes a group from the table (it must have no members) and frees it. */
static void group_drop(struct groups *gs, struct group *g)
{
    SL_ASSERT(g->member_count == 0); /* only empty groups are dropped */
    struct group **slot = table_slot(gs, (struct kstr){g->id, (int32_t)strlen(g->id)});
    SL_ASSERT(*slot == g);
    *slot = NULL;
    gs->count--;
    gs->offsets_total -= g->offset_count;
    /* Reinsert the cluster after the hole (linear probing without tombstones). */
    int32_t i = (int32_t)(slot - gs->table);
    for (int32_t j = (i + 1) & (gs->table_size - 1); gs->table[j] != NULL;
         j = (j + 1) & (gs->table_size - 1)) {
        struct group *o = gs->table[j];
        gs->table[j] = NULL;
        *table_slot(gs, (struct kstr){o->id, (int32_t)strlen(o->id)}) = o;
    }
    group_free(g);
}

int32_t groups_partition_of(const struct groups *gs, const char *group, size_t len)
{
    return murmur2_partition(group, len, gs->config.partitions);
}

/* ----------------------------------------------------------- offsets */

static uint64_t offset_hash(struct kstr topic, int32_t partition)
{
    uint64_t h = hash_bytes(topic.ptr, (size_t)topic.len, 0xcbf29ce484222325u);
    return hash_bytes(&partition, sizeof(partition), h);
}

static int32_t offset_index_find(const struct group *g, struct kstr topic, int32_t partition,
                                 int32_t *slot_out)
{
    if (g->oindex_size == 0) {
        *slot_out = -1;
        return -1;
    }
    int32_t i = (int32_t)(offset_hash(topic, partition) & (uint64_t)(g->oindex_size - 1));
    for (; g->oindex[i] >= 0; i = (i + 1) & (g->oindex_size - 1)) {
        const struct offset *o = &g->offsets[g->oindex[i]];
        if (o->partition == partition && kstr_is(topic, o->topic)) {
            *slot_out = i;
            return g->oindex[i];
        }
    }
    *slot_out = i;
    return -1;
}

static int offset_index_rebuild(struct group *g, int32_t need)
{
    int32_t size = 16;
    while (size < 2 * need) {
        size *= 2;
    }
    if (size <= g->oindex_size) {
        size = g->oindex_size; /* never shrinks: a removal cannot fail */
    } else {
        int32_t *index = malloc((size_t)size * sizeof(*index));
        if (index == NULL) {
            return -ENOMEM;
        }
        free(g->oindex);
        g->oindex = index;
        g->oindex_size = size;
    }
    memset(g->oindex, 0xff, (size_t)size * sizeof(*g->oindex));
    for (int32_t k = 0; k < g->offset_count; k++) {
        struct kstr t = {g->offsets[k].topic, (int32_t)strlen(g->offsets[k].topic)};
        int32_t slot;
        offset_index_find(g, t, g->offsets[k].partition, &slot);
        g->oindex[slot] = k;
    }
    return 0;
}

/* Sets a committed offset in the cache (a value that was made durable). */
static int offset_set(struct groups *gs, struct group *g, struct kstr topic, int32_t partition,
                      int64_t offset, int32_t leader_epoch, struct kstr metadata, int64_t commit_ms)
{
    int32_t slot;
    int32_t k = offset_index_find(g, topic, partition, &slot);
    char *md = dup_kstr(metadata.len < 0 ? (struct kstr){"", 0} : metadata);
    if (md == NULL) {
        return -ENOMEM;
    }
    if (k < 0) {
        if (g->offset_count == g->offset_cap) {
            int32_t cap = g->offset_cap == 0 ? 8 : g->offset_cap * 2;
            struct offset *more = realloc(g->offsets, (size_t)cap * sizeof(*more));
            if (more == NULL) {
                free(md);
                return -ENOMEM;
            }
            g->offsets = more;
            g->offset_cap = cap;
        }
        if (2 * (g->offset_count + 1) > g->oindex_size &&
            offset_index_rebuild(g, g->offset_count + 1) != 0) {
            free(md);
            return -ENOMEM;
        }
        char *t = dup_kstr(topic);
        if (t == NULL) {
            free(md);
            return -ENOMEM;
        }
        offset_index_find(g, topic, partition, &slot);
        k = g->offset_count++;
        g->offsets[k] = (struct offset){.topic = t, .partition = partition};
        g->oindex[slot] = k;
        gs->offsets_total++;
    }
    struct offset *o = &g->offsets[k];
    free(o->metadata);
    o->metadata = md;
    o->offset = offset;
    o->leader_epoch = leader_epoch;
    o->commit_ms = commit_ms;
    return 0;
}

static void offset_remove(struct groups *gs, struct group *g, struct kstr topic, int32_t partition)
{
    int32_t slot;
    int32_t k = offset_index_find(g, topic, partition, &slot);
    if (k < 0) {
        return;
    }
    free(g->offsets[k].topic);
    free(g->offsets[k].metadata);
    g->offsets[k] = g->offsets[--g->offset_count];
    gs->offsets_total--;
    int err = offset_index_rebuild(g, g->offset_count);
    SL_ASSERT(err == 0); /* the index never shrinks, so this reuses it */
}

/* ----------------------------------------------------------- records */

static int put_str16(struct buf *b, const char *s)
{
    if (s == NULL) {
        return buf_put_be16(b, 0xffff);
    }
    size_t len = strlen(s);
    SL_ASSERT(len <= INT16_MAX); /* names are bounded well below */
    int err = buf_put_be16(b, (uint16_t)len);
    return err != 0 ? err : buf_put(b, s, len);
}

static int put_bytes32(struct buf *b, const uint8_t *p, int32_t len)
{
    int err = buf_put_be32(b, (uint32_t)len);
    return err != 0 || len <= 0 ? err : buf_put(b, p, (size_t)len);
}

static int offset_key(struct buf *b, const char *group, const char *topic, int32_t partition)
{
    int err = buf_put_be16(b, 1);
    err = err != 0 ? err : put_str16(b, group);
    err = err != 0 ? err : put_str16(b, topic);
    return err != 0 ? err : buf_put_be32(b, (uint32_t)partition);
}

static int offset_value(struct buf *b, const struct offset *o)
{
    int err = buf_put_be16(b, 3);
    err = err != 0 ? err : buf_put_be64(b, (uint64_t)o->offset);
    err = err != 0 ? err : buf_put_be32(b, (uint32_t)o->leader_epoch);
    err = err != 0 ? err : put_str16(b, o->metadata);
    return err != 0 ? err : buf_put_be64(b, (uint64_t)o->commit_ms);
}

static int group_key(struct buf *b, const char *group)
{
    int err = buf_put_be16(b, 2);
    return err != 0 ? err : put_str16(b, group);
}

/* The selected protocol's metadata of a member (its subscription). */
static const struct protocol *member_protocol(const struct member *m, const char *name)
{
    for (int32_t i = 0; name != NULL && i < m->protocol_count; i++) {
        if (strcmp(m->protocols[i].name, name) == 0) {
            return &m->protocols[i];
        }
    }
    return NULL;
}

static int group_value(struct buf *b, const struct group *g)
{
    int err = buf_put_be16(b, 3);
    err = err != 0 ? err : put_str16(b, g->protocol_type != NULL ? g->protocol_type : "");
    err = err != 0 ? err : buf_put_be32(b, (uint32_t)g->generation);
    err = err != 0 ? err : put_str16(b, g->protocol);
    err = err != 0 ? err : put_str16(b, g->leader);
    err = err != 0 ? err : buf_put_be64(b, (uint64_t)time_wall_ms());
    err = err != 0 ? err : buf_put_be32(b, (uint32_t)g->member_count);
    for (int32_t i = 0; err == 0 && i < g->member_count; i++) {
        const struct member *m = g->members[i];
        const struct protocol *p = member_protocol(m, g->protocol);
        err = put_str16(b, m->id);
        err = err != 0 ? err : put_str16(b, m->instance_id);
        err = err != 0 ? err : put_str16(b, m->client_id);
        err = err != 0 ? err : put_str16(b, m->client_host);
        err = err != 0 ? err : buf_put_be32(b, (uint32_t)m->rebalance_timeout_ms);
        err = err != 0 ? err : buf_put_be32(b, (uint32_t)m->session_timeout_ms);
        err = err != 0 ? err : put_bytes32(b, p != NULL ? p->meta : NULL, p != NULL ? p->len : 0);
        err = err != 0 ? err : put_bytes32(b, m->assignment, m->assignment_len);
    }
    return err;
}

static struct kstr rd_str16(struct reader *r)
{
    int32_t len = reader_i16(r);
    if (len < 0) {
        return (struct kstr){NULL, -1};
    }
    const uint8_t *p = reader_take(r, (size_t)len);
    return p != NULL ? (struct kstr){(const char *)p, len} : (struct kstr){NULL, -1};
}

static struct kbytes rd_bytes32(struct reader *r)
{
    int32_t len = reader_i32(r);
    const uint8_t *p = len >= 0 ? reader_take(r, (size_t)len) : NULL;
    if (len < 0) {
        r->bad = true;
    }
    return (struct kbytes){p, p != NULL ? len : 0};
}

/* ------------------------------------------------------------ replay */

static struct member *member_new(void)
{
    return calloc(1, sizeof(struct member));
}

static void group_reset_members(struct group *g)
{
    for (int32_t i = 0; i < g->member_count; i++) {
        member_free(g->members[i]);
    }
    g->member_count = 0;
}

/* A group metadata value: the group as of its last stored generation. */
static int replay_group(struct group *g, struct reader *r)
{
    int16_t version = reader_i16(r);
    if (version < 0 || version > 3) {
        return -EBADMSG;
    }
    struct kstr type = rd_str16(r);
    int32_t generation = reader_i32(r);
    struct kstr protocol = rd_str16(r);
    struct kstr leader = rd_str16(r);
    int64_t state_ms = version >= 2 ? reader_i64(r) : 0; /* when the record was written */
    int32_t n = reader_i32(r);
    if (r->bad || n < 0 || n > REPLAY_MEMBERS_MAX) {
        return -EBADMSG;
    }
    group_reset_members(g);
    free(g->members);
    g->members = calloc((size_t)(n > 0 ? n : 1), sizeof(*g->members));
    if (g->members == NULL) {
        return -ENOMEM;
    }
    int64_t now = now_ms();
    for (int32_t i = 0; i < n; i++) {
        struct kstr id = rd_str16(r);
        struct kstr instance = version >= 3 ? rd_str16(r) : (struct kstr){NULL, -1};
        struct kstr client = rd_str16(r);
        struct kstr host = rd_str16(r);
        int32_t rebalance = version >= 1 ? reader_i32(r) : 0;
        int32_t session = reader_i32(r);
        struct kbytes sub = rd_bytes32(r);
        struct kbytes asg = rd_bytes32(r);
        if (r->bad || id.len <= 0) {
            return -EBADMSG;
        }
        struct member *m = member_new();
        if (m == NULL) {
            return -ENOMEM;
        }
        g->members[g->member_count++] = m;
        m->id = dup_kstr(id);
        m->instance_id = dup_kstr(instance);
        m->client_id = dup_kstr(client.len < 0 ? (struct kstr){"", 0} : client);
        m->client_host = dup_kstr(host.len < 0 ? (struct kstr){"", 0} : host);
        m->rebalance_timeout_ms = rebalance > 0 ? rebalance : session;
        m->session_timeout_ms = session;
        m->protocols = calloc(1, sizeof(*m->protocols));
        m->assignment = dup_bytes(asg.ptr, asg.len);
        m->assignment_len = asg.len;
        if (m->id == NULL || m->client_id == NULL || m->client_host == NULL ||
            m->protocols == NULL || m->assignment == NULL) {
            return -ENOMEM;
        }
        if (protocol.len >= 0) {
            m->protocol_count = 1;
            m->protocols[0].name = dup_kstr(protocol);
            m->protocols[0].meta = dup_bytes(sub.ptr, sub.len);
            m->protocols[0].len = sub.len;
        }
        /* A restarted coordinator gives members a full session to come back. */
        m->deadline_ms = now + session;
    }
    free(g->protocol_type);
    free(g->protocol);
    free(g->leader);
    g->protocol_type = dup_kstr(type);
    g->protocol = dup_kstr(protocol);
    g->leader = dup_kstr(leader);
    g->generation = generation;
    g->state = n > 0 ? STABLE : EMPTY;
    if (n == 0) {
        /* An empty group's record is written as it becomes empty (and a
         * rewrite copies it as is): the expiry clock goes on from there,
         * not from the restart. */
        g->empty_since_ms = SL_MAX(state_ms, 0);
    }
    return 0;
}

static int replay_record(struct groups *gs, const struct batch_record *rec)
{
    struct reader key = {rec->key, rec->key_len > 0 ? (size_t)rec->key_len : 0, false};
    int16_t kind = reader_i16(&key);
    struct kstr group = rd_str16(&key);
    if (key.bad || group.len < 0) {
        return -EBADMSG;
    }
    struct reader value = {rec->value, rec->value_len > 0 ? (size_t)rec->value_len : 0, false};
    bool tombstone = rec->value_len < 0;
    if (kind == 0 || kind == 1) {
        struct kstr topic = rd_str16(&key);
        int32_t partition = reader_i32(&key);
        if (key.bad || topic.len < 0) {
            return -EBADMSG;
        }
        struct group *g = group_get(gs, group, !tombstone);
        if (tombstone || g == NULL) {
            if (g != NULL) {
                offset_remove(gs, g, topic, partition);
            }
            return 0;
        }
        int16_t version = reader_i16(&value);
        int64_t offset = reader_i64(&value);
        int32_t epoch = version >= 3 ? reader_i32(&value) : -1;
        struct kstr md = rd_str16(&value);
        int64_t ts = reader_i64(&value);
        if (value.bad || version < 0 || version > 4) {
            return -EBADMSG;
        }
        return offset_set(gs, g, topic, partition, offset, epoch, md, ts);
    }
    if (kind == 2) {
        struct group *g = group_get(gs, group, !tombstone);
        if (tombstone) {
            if (g != NULL) {
                group_reset_members(g);
                group_drop(gs, g);
            }
            return 0;
        }
        int err = g == NULL ? -ENOMEM : replay_group(g, &value);
        if (err == 0) {
            uint8_t *stored = dup_bytes(rec->value, rec->value_len);
            if (stored == NULL) {
                return -ENOMEM;
            }
            free(g->stored);
            g->stored = stored;
            g->stored_len = (uint32_t)rec->value_len;
        }
        return err;
    }
    return 0; /* other record kinds (transactions) are not ours to read */
}

/* One stored batch of the topic: every record applied in order. */
static int replay_batch(void *opaque, const uint8_t *batch, size_t len,
                        const struct batch_header *h)
{
    struct groups *gs = opaque;
    struct batch_record_iter it;
    struct batch_record_header slots[1];
    struct batch_record rec;
    (void)h;
    int err = batch_record_iter_init(&it, batch, len, slots, 1);
    while (err == 0 && (err = batch_record_iter_next(&it, &rec)) == 1) {
        err = replay_record(gs, &rec);
    }
    return err;
}

static int replay_partition(struct groups *gs, struct log *log)
{
    return log_scan(log, log_start_offset(log), replay_batch, gs);
}

/* ------------------------------------------------------- persistence */

/* One append to a partition of the topic, and what to do once durable. */
struct store {
    struct groups *gs;
    int32_t partition;
    void (*done)(struct store *s, int status);
    void *opaque;
    bool in_rewrite;
    int64_t rewrite_from; /* a rewrite's last batch: delete below this once durable */
    struct buf batch;
    /* A batch with a group's metadata record: once durable, value (NULL for
     * a tombstone) is what the log holds for that group. */
    char *group;
    uint8_t *value;
    uint32_t value_len;
};

static void maybe_rewrite(struct groups *gs, int32_t partition);
static void store_free(struct store *s);

static void store_done(void *opaque, int status, int64_t base_offset)
{
    struct store *s = opaque;
    struct groups *gs = s->gs;
    struct opart *op = &gs->parts[s->partition];
    (void)base_offset;
    SL_ASSERT(op->inflight > 0); /* every append counted */
    op->inflight--;
    if (status == 0 && s->group != NULL) {
        struct group *g = group_find(gs, (struct kstr){s->group, (int32_t)strlen(s->group)});
        if (g != NULL) {
            free(g->stored);
            g->stored = s->value;
            g->stored_len = s->value_len;
            s->value = NULL;
        }
    }
    if (s->in_rewrite && status != 0) {
        op->rewrite_failed = true;
    }
    if (s->rewrite_from >= 0) {
        op->rewriting = false;
        if (status == 0 && !op->rewrite_failed) {
            int removed = log_delete_below(op->log, s->rewrite_from);
            LOG_INFO("groups",
                     "offsets partition rewritten partition=%d live_bytes=%" PRIu64
                     " segments_deleted=%d",
                     s->partition, op->live_bytes, removed);
        }
    }
    if (s->done != NULL) {
        s->done(s, status);
    }
    int32_t partition = s->partition;
    store_free(s);
    maybe_rewrite(gs, partition);
}

/* Appends the batch in s (built by the caller); s is freed after done. */
static int store_submit(struct groups *gs, struct store *s)
{
    struct opart *op = &gs->parts[s->partition];
    int err = log_append(op->log, s->batch.data, s->batch.len, 0, store_done, s, NULL);
    if (err != 0) {
        LOG_WARN("groups", "offsets append refused partition=%d err=%s", s->partition,
                 strerror(-err));
        return err;
    }
    op->inflight++;
    op->since_rewrite += s->batch.len;
    return 0;
}

static struct store *store_new(struct groups *gs, int32_t partition)
{
    struct store *s = calloc(1, sizeof(*s));
    if (s != NULL) {
        *s = (struct store){.gs = gs, .partition = partition, .rewrite_from = -1};
        buf_init(&s->batch, gs->config.batch_bytes_max);
    }
    return s;
}

static void store_free(struct store *s)
{
    if (s != NULL) {
        buf_deinit(&s->batch);
        free(s->group);
        free(s->value);
        free(s);
    }
}

/* Records being collected for one batch: keys and values side by side.
 * The batch they make never passes limit (batch_bytes_max): a record that
 * would make it pass is refused with -EMSGSIZE. */
struct recs {
    struct buf bytes;
    size_t limit;
    struct batch_record *list;
    int32_t count;
    int32_t cap;
    uint32_t *ends; /* key end, value end (or key end again: tombstone) */
    bool *tomb;
};

static void recs_init(struct recs *r, uint32_t batch_bytes_max)
{
    *r = (struct recs){.limit = batch_bytes_max};
    buf_init(&r->bytes, batch_bytes_max);
}

static void recs_deinit(struct recs *r)
{
    buf_deinit(&r->bytes);
    free(r->list);
    free(r->ends);
    free(r->tomb);
}

/* Marks the record whose key (and value, unless a tombstone) were just put;
 * key_end is bytes.len after the key. */
static int recs_mark(struct recs *r, uint32_t key_start, uint32_t key_end, bool tombstone)
{
    if (BATCH_HEADER_BYTES + r->bytes.len + (size_t)(r->count + 1) * RECORD_OVERHEAD_MAX >
        r->limit) {
        return -EMSGSIZE; /* the batch would not fit: the caller takes the bytes back */
    }
    if (r->count == r->cap) {
        int32_t cap = r->cap == 0 ? 16 : r->cap * 2;
        struct batch_record *list = realloc(r->list, (size_t)cap * sizeof(*list));
        uint32_t *ends = list != NULL ? realloc(r->ends, (size_t)cap * 3 * sizeof(*ends)) : NULL;
        bool *tomb = ends != NULL ? realloc(r->tomb, (size_t)cap * sizeof(*tomb)) : NULL;
        r->list = list != NULL ? list : r->list;
        r->ends = ends != NULL ? ends : r->ends;
        r->tomb = tomb != NULL ? tomb : r->tomb;
        if (list == NULL || ends == NULL || tomb == NULL) {
            return -ENOMEM;
        }
        r->cap = cap;
    }
    r->ends[3 * r->count] = key_start;
    r->ends[3 * r->count + 1] = key_end;
    r->ends[3 * r->count + 2] = (uint32_t)r->bytes.len;
    r->tomb[r->count] = tombstone;
    r->count++;
    return 0;
}

/* Encodes the collected records as one batch into out. */
static int recs_encode(struct recs *r, struct buf *out)
{
    int64_t ts = time_wall_ms();
    for (int32_t i = 0; i < r->count; i++) {
        uint32_t ks = r->ends[3 * i], ke = r->ends[3 * i + 1], ve = r->ends[3 * i + 2];
        r->list[i] = (struct batch_record){
            .timestamp = ts,
            .key = r->bytes.data + ks,
            .key_len = (int32_t)(ke - ks),
            .value = r->tomb[i] ? NULL : r->bytes.data + ke,
            .value_len = r->tomb[i] ? -1 : (int32_t)(ve - ke),
        };
    }
    struct batch_meta meta = {.producer_id = -1, .producer_epoch = -1, .base_sequence = -1};
    return r->count == 0 ? -EINVAL : batch_encode(out, &meta, r->list, (size_t)r->count);
}

/* The recs_ builders add one record, or leave r as it was: -EMSGSIZE when
 * the batch is full, -ENOMEM. */
static int recs_end(struct recs *r, int err, uint32_t ks, uint32_t ke, bool tombstone)
{
    err = err != 0 ? -EMSGSIZE : recs_mark(r, ks, ke, tombstone);
    if (err != 0) {
        r->bytes.len = ks;
    }
    return err;
}

static int recs_offset(struct recs *r, const char *group, const struct offset *o)
{
    uint32_t ks = (uint32_t)r->bytes.len;
    int err = offset_key(&r->bytes, group, o->topic, o->partition);
    uint32_t ke = (uint32_t)r->bytes.len;
    err = err != 0 ? err : offset_value(&r->bytes, o);
    return recs_end(r, err, ks, ke, false);
}

static int recs_offset_tombstone(struct recs *r, const char *group, const char *topic,
                                 int32_t partition)
{
    uint32_t ks = (uint32_t)r->bytes.len;
    int err = offset_key(&r->bytes, group, topic, partition);
    return recs_end(r, err, ks, (uint32_t)r->bytes.len, true);
}

static int recs_group(struct recs *r, const struct group *g, bool tombstone)
{
    uint32_t ks = (uint32_t)r->bytes.len;
    int err = group_key(&r->bytes, g->id);
    uint32_t ke = (uint32_t)r->bytes.len;
    if (!tombstone) {
        err = err != 0 ? err : group_value(&r->bytes, g);
    }
    return recs_end(r, err, ks, ke, tombstone);
}

/* The group's metadata record as the log last holds it (for a rewrite). */
static int recs_group_stored(struct recs *r, const struct group *g)
{
    uint32_t ks = (uint32_t)r->bytes.len;
    int err = group_key(&r->bytes, g->id);
    uint32_t ke = (uint32_t)r->bytes.len;
    err = err != 0 ? err : buf_put(&r->bytes, g->stored, g->stored_len);
    return recs_end(r, err, ks, ke, false);
}

/* Appends the collected records as one batch (nothing when there are none);
 * *last is the store made, which the caller may still give a done. */
static int recs_flush(struct groups *gs, int32_t partition, struct recs *r, bool in_rewrite,
                      struct store **last, uint64_t *bytes)
{
    if (r->count == 0) {
        return 0;
    }
    struct store *s = store_new(gs, partition);
    int err = s == NULL ? -ENOMEM : recs_encode(r, &s->batch);
    if (err == 0) {
        s->in_rewrite = in_rewrite;
        err = store_submit(gs, s);
    }
    if (err != 0) {
        store_free(s);
        return err;
    }
    *bytes += s->batch.len;
    *last = s;
    buf_reset(&r->bytes);
    r->count = 0;
    return 0;
}

/* Record k of a group: -1 its stored metadata, -2 its metadata tombstone,
 * else offset k (or its tombstone). */
static int recs_put_one(struct recs *r, const struct group *g, int32_t k, bool tombstone)
{
    if (k == -1) {
        return recs_group_stored(r, g);
    }
    if (k == -2) {
        return recs_group(r, g, true);
    }
    const struct offset *o = &g->offsets[k];
    return tombstone ? recs_offset_tombstone(r, g->id, o->topic, o->partition)
                     : recs_offset(r, g->id, o);
}

/* Puts one record into r, first appending what r holds when it is full
 * (then *last is that batch's store, still without a done). */
static int recs_put(struct groups *gs, int32_t partition, struct recs *r, const struct group *g,
                    int32_t k, bool tombstone, bool in_rewrite, struct store **last,
                    uint64_t *bytes)
{
    int rc = recs_put_one(r, g, k, tombstone);
    if (rc != -EMSGSIZE || r->count == 0) {
        return rc; /* done, or a record larger than any batch */
    }
    rc = recs_flush(gs, partition, r, in_rewrite, last, bytes);
    return rc != 0 ? rc : recs_put_one(r, g, k, tombstone);
}

/* Appends every live record of a partition again, then (once durable)
 * deletes the segments wholly below where the rewrite began. */
static void rewrite(struct groups *gs, int32_t partition)
{
    struct opart *op = &gs->parts[partition];
    int64_t from = log_end_offset(op->log);
    struct recs r;
    recs_init(&r, gs->config.batch_bytes_max);
    struct store *last = NULL;
    uint64_t live = 0;
    int err = 0;
    for (int32_t t = 0; err == 0 && t < gs->table_size; t++) {
        const struct group *g = gs->table[t];
        if (g == NULL || g->partition != partition) {
            continue;
        }
        for (int32_t k = g->stored != NULL ? -1 : 0; err == 0 && k < g->offset_count; k++) {
            err = recs_put(gs, partition, &r, g, k, false, true, &last, &live);
        }
    }
    err = err != 0 ? err : recs_flush(gs, partition, &r, true, &last, &live);
    recs_deinit(&r);
    op->since_rewrite = 0;
    op->live_bytes = live;
    if (err != 0) {
        /* Nothing deleted: the old records still say everything. */
        LOG_WARN("groups", "offsets rewrite stopped partition=%d err=%s", partition,
                 strerror(-err));
        return;
    }
    if (last == NULL) {
        log_delete_below(op->log, from); /* nothing live: everything before may go */
        return;
    }
    op->rewriting = true;
    op->rewrite_failed = false;
    last->rewrite_from = from;
}

static void maybe_rewrite(struct groups *gs, int32_t partition)
{
    struct opart *op = &gs->parts[partition];
    uint64_t threshold = SL_MAX(gs->config.rewrite_bytes_min, 4 * op->live_bytes);
    if (op->inflight == 0 && !op->rewriting && op->since_rewrite > threshold && !gs->replaying &&
        !gs->stopping && !gs->closing) {
        rewrite(gs, partition);
    }
}

/* Stores a group's metadata record; done may be NULL. */
static int store_group(struct groups *gs, struct group *g, bool tombstone,
                       void (*done)(struct store *s, int status), void *opaque)
{
    struct recs r;
    recs_init(&r, gs->config.batch_bytes_max);
    struct store *s = store_new(gs, g->partition);
    int err = s == NULL ? -ENOMEM : recs_group(&r, g, tombstone);
    err = err != 0 ? err : recs_encode(&r, &s->batch);
    if (err == 0) {
        /* What the log will hold for the group once this is durable. */
        uint32_t ke = r.ends[1], ve = r.ends[2];
        s->group = dup_str(g->id);
        s->value = tombstone ? NULL : dup_bytes(r.bytes.data + ke, (int32_t)(ve - ke));
        s->value_len = tombstone ? 0 : ve - ke;
        err = s->group == NULL || (!tombstone && s->value == NULL) ? -ENOMEM : 0;
    }
    recs_deinit(&r);
    if (err == 0) {
        s->done = done;
        s->opaque = opaque;
        err = store_submit(gs, s);
    }
    if (err != 0) {
        store_free(s);
        LOG_WARN("groups", "group metadata not stored group=%s err=%s", g->id, strerror(-err));
    }
    return err;
}

/* ------------------------------------------------------------ timers */

static bool group_needs_tick(const struct group *g)
{
    return g->member_count > 0 || g->pending_count > 0 || g->state == PREPARING;
}

static void tick_arm(struct groups *gs)
{
    if (!ev_is_active(&gs->tick) && !gs->closing) {
        ev_timer_again(gs->loop, &gs->tick);
    }
}

/* --------------------------------------------------------- membership */

static struct member *member_find(const struct group *g, struct kstr id, int32_t *index)
{
    for (int32_t i = 0; id.len > 0 && i < g->member_count; i++) {
        if (kstr_is(id, g->members[i]->id)) {
            if (index != NULL) {
                *index = i;
            }
            return g->members[i];
        }
    }
    return NULL;
}

static struct member *member_by_instance(const struct group *g, struct kstr instance)
{
    for (int32_t i = 0; instance.len >= 0 && i < g->member_count; i++) {
        if (g->members[i]->instance_id != NULL && kstr_is(instance, g->members[i]->instance_id)) {
            return g->members[i];
        }
    }
    return NULL;
}

/* A fresh member id: the client id (or instance id) and a random UUID, as
 * Kafka makes them. */
static char *member_id_new(struct kstr prefix)
{
    uint8_t r[16];
    if (getrandom(r, sizeof(r), 0) != sizeof(r)) {
        return NULL;
    }
    int32_t plen = prefix.len > 0 ? SL_MIN(prefix.len, NAME_MAX_BYTES) : 0;
    char *id = malloc((size_t)plen + 1 + MEMBER_ID_SUFFIX_LEN + 1);
    if (id == NULL) {
        return NULL;
    }
    snprintf(id, (size_t)plen + 2 + MEMBER_ID_SUFFIX_LEN,
             "%.*s-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", plen,
             plen > 0 ? prefix.ptr : "", r[0], r[1], r[2], r[3], r[4], r[5], (r[6] & 0x0f) | 0x40,
             r[7], (r[8] & 0x3f) | 0x80, r[9], r[10], r[11], r[12], r[13], r[14], r[15]);
    return id;
}

static void join_reply(struct member *m, const struct join_result *res)
{
    groups_join_cb *cb = m->join_cb;
    m->join_cb = NULL;
    if (cb != NULL) {
        cb(m->join_opaque, res);
    }
}

static void join_error(groups_join_cb *cb, void *opaque, int16_t error, const char *member_id)
{
    struct join_result res = {.error = error, .generation = -1, .member_id = member_id};
    res.leader = "";
    cb(opaque, &res);
}

static void sync_reply(struct member *m, int16_t error, const struct group *g)
{
    groups_sync_cb *cb = m->sync_cb;
    m->sync_cb = NULL;
    if (cb != NULL) {
        struct sync_result res = {.error = error};
        if (error == KAFKA_ERR_NONE) {
            res.protocol_type = g->protocol_type;
            res.protocol = g->protocol;
            res.assignment = m->assignment;
            res.assignment_len = m->assignment_len;
        }
        cb(m->sync_opaque, &res);
    }
}

static void group_set_state(struct group *g, enum group_state state)
{
    if (g->state != state) {
        LOG_DEBUG("groups", "group state group=%s from=%s to=%s generation=%d", g->id,
                  state_names[g->state], state_names[state], g->generation);
    }
    if (state == EMPTY && g->state != EMPTY) {
        g->empty_since_ms = time_wall_ms();
    }
    g->state = state;
}

static void group_prepare_rebalance(struct groups *gs, struct group *g, const char *why)
{
    /* Members waiting for an assignment learn they must join again. A
     * leader's assignment still being stored belongs to the generation
     * that ends here: sync_stored ignores it, and the next leader's sync
     * must not wait for it. */
    for (int32_t i = 0; i < g->member_count; i++) {
        sync_reply(g->members[i], KAFKA_ERR_REBALANCE_IN_PROGRESS, g);
    }
    g->sync_storing = false;
    int64_t now = now_ms();
    int32_t timeout = 0;
    for (int32_t i = 0; i < g->member_count; i++) {
        timeout = SL_MAX(timeout, g->members[i]->rebalance_timeout_ms);
    }
    if (g->state == EMPTY) {
        /* A new group: wait a little for the other members to arrive, so
         * that a starting consumer group does not rebalance once per member. */
        g->join_not_before_ms = now + gs->config.initial_rebalance_delay_ms;
        timeout = SL_MAX(timeout, gs->config.initial_rebalance_delay_ms);
    } else {
        g->join_not_before_ms = now;
    }
    g->join_deadline_ms = now + timeout;
    LOG_INFO("groups", "rebalance group=%s generation=%d members=%d reason=%s", g->id,
             g->generation, g->member_count, why);
    group_set_state(g, PREPARING);
    tick_arm(gs);
}

static void member_remove(struct groups *gs, struct group *g, int32_t index, int16_t why)
{
    struct member *m = g->members[index];
    if (m->join_cb != NULL) {
        groups_join_cb *cb = m->join_cb;
        m->join_cb = NULL;
        join_error(cb, m->join_opaque, why, m->id);
    }
    sync_reply(m, why, g);
    g->members[index] = g->members[--g->member_count];
    if (g->leader != NULL && strcmp(g->leader, m->id) == 0) {
        free(g->leader);
        g->leader = NULL;
    }
    member_free(m);
    (void)gs;
}

static bool all_joined(const struct group *g)
{
    for (int32_t i = 0; i < g->member_count; i++) {
        if (g->members[i]->join_cb == NULL) {
            return false;
        }
    }
    return g->pending_count == 0;
}

/* The protocol every member supports that most members prefer. */
static const char *select_protocol(const struct group *g)
{
    const struct member *first = g->members[0];
    const char *best = NULL;
    int32_t best_votes = -1;
    for (int32_t p = 0; p < first->protocol_count; p++) {
        const char *name = first->protocols[p].name;
        bool everyone = true;
        for (int32_t i = 1; i < g->member_count && everyone; i++) {
            everyone = member_protocol(g->members[i], name) != NULL;
        }
        if (!everyone) {
            continue;
        }
        int32_t votes = 0;
        for (int32_t i = 0; i < g->member_count; i++) {
            /* A member votes for its most preferred protocol among the common ones. */
            for (int32_t k = 0; k < g->members[i]->protocol_count; k++) {
                const char *mine = g->members[i]->protocols[k].name;
                bool common = true;
                for (int32_t j = 0; j < g->member_count && common; j++) {
                    common = member_protocol(g->members[j], mine) != NULL;
                }
                if (common) {
                    votes += strcmp(mine, name) == 0;
                    break;
                }
            }
        }
        if (votes > best_votes) {
            best = name;
            best_votes = votes;
        }
    }
    return best;
}

/* The members as the leader's join answer lists them; NULL on ENOMEM. */
static struct join_member *join_members(const struct group *g)
{
    struct join_member *list = calloc((size_t)g->member_count, sizeof(*list));
    for (int32_t i = 0; list != NULL && i < g->member_count; i++) {
        const struct member *m = g->members[i];
        const struct protocol *p = member_protocol(m, g->protocol);
        /* Every member supports the selected protocol (joins refuse others);
         * only a failed allocation of its name leaves none. */
        list[i] = (struct join_member){m->id, m->instance_id, p != NULL ? p->meta : NULL,
                                       p != NULL ? p->len : 0};
    }
    return list;
}

/* Answers a member's parked join with the current generation; the leader's
 * answer carries list (made by join_members). Callbacks only encode: they
 * free nothing of the group. */
static void join_reply_current(const struct group *g, struct member *m,
                               const struct join_member *list)
{
    bool leader = strcmp(m->id, g->leader) == 0;
    struct join_result res = {
        .error = list != NULL || !leader ? KAFKA_ERR_NONE : KAFKA_ERR_UNKNOWN_SERVER_ERROR,
        .generation = g->generation,
        .protocol_type = g->protocol_type,
        .protocol = g->protocol,
        .leader = g->leader,
        .member_id = m->id,
        .members = leader ? list : NULL,
        .member_count = leader && list != NULL ? g->member_count : 0,
    };
    join_reply(m, &res);
}

static void complete_join(struct groups *gs, struct group *g)
{
    /* Who did not join again in time is out. */
    for (int32_t i = g->member_count; i-- > 0;) {
        if (g->members[i]->join_cb == NULL) {
            LOG_INFO("groups", "member removed: did not rejoin in time group=%s member=%s", g->id,
                     g->members[i]->id);
            member_remove(gs, g, i, KAFKA_ERR_UNKNOWN_MEMBER_ID);
        }
    }
    for (int32_t i = 0; i < g->pending_count; i++) {
        free(g->pending[i].id);
    }
    g->pending_count = 0;
    g->generation++;
    free(g->protocol);
    g->protocol = NULL;
    if (g->member_count == 0) {
        group_set_state(g, EMPTY);
        LOG_INFO("groups", "group empty group=%s generation=%d", g->id, g->generation);
        store_group(gs, g, false, NULL, NULL);
        return;
    }
    g->protocol = dup_str(select_protocol(g));
    if (g->leader == NULL ||
        member_find(g, (struct kstr){g->leader, (int32_t)strlen(g->leader)}, NULL) == NULL) {
        free(g->leader);
        g->leader = dup_str(g->members[0]->id);
    }
    group_set_state(g, COMPLETING);
    LOG_INFO("groups", "rebalance done group=%s generation=%d members=%d protocol=%s leader=%s",
             g->id, g->generation, g->member_count, g->protocol ? g->protocol : "-", g->leader);
    struct join_member *list = join_members(g);
    for (int32_t i = 0; i < g->member_count; i++) {
        struct member *m = g->members[i];
        free(m->assignment);
        m->assignment = NULL;
        m->assignment_len = 0;
        m->deadline_ms = now_ms() + m->session_timeout_ms;
        join_reply_current(g, m, list);
    }
    free(list);
}

static void group_try_complete_join(struct groups *gs, struct group *g)
{
    int64_t now = now_ms();
    if (g->state == PREPARING && now >= g->join_not_before_ms &&
        (all_joined(g) || now >= g->join_deadline_ms)) {
        complete_join(gs, g);
    }
}

/* Session and join deadlines of one group. */
static void group_tick(struct groups *gs, struct group *g, int64_t now)
{
    for (int32_t i = g->pending_count; i-- > 0;) {
        if (now >= g->pending[i].deadline_ms) {
            free(g->pending[i].id);
            g->pending[i] = g->pending[--g->pending_count];
        }
    }
    for (int32_t i = g->member_count; i-- > 0;) {
        struct member *m = g->members[i];
        /* A member waiting in a join is not expected to heartbeat. */
        if (m->join_cb == NULL && now >= m->deadline_ms) {
            LOG_INFO("groups", "member session expired group=%s member=%s timeout_ms=%d", g->id,
                     m->id, m->session_timeout_ms);
            member_remove(gs, g, i, KAFKA_ERR_UNKNOWN_MEMBER_ID);
            if (g->state == STABLE || g->state == COMPLETING) {
                group_prepare_rebalance(gs, g, "session expired");
            }
        }
    }
    if (g->state == PREPARING) {
        group_try_complete_join(gs, g);
    }
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct groups *gs = SL_CONTAINER_OF(w, struct groups, tick);
    int64_t now = now_ms();
    bool busy = false;
    for (int32_t t = 0; t < gs->table_size; t++) {
        struct group *g = gs->table[t];
        if (g != NULL && group_needs_tick(g)) {
            group_tick(gs, g, now);
            busy = busy || group_needs_tick(g);
        }
    }
    if (!busy) {
        ev_timer_stop(loop, w);
    }
}

/* ----------------------------------------------------------------- join */

static int16_t join_check(const struct groups *gs, const struct join_args *a)
{
    if (a->group.len <= 0 || a->group.len > GROUP_ID_MAX) {
        return KAFKA_ERR_INVALID_GROUP_ID;
    }
    if (a->session_timeout_ms < gs->config.min_session_timeout_ms ||
        a->session_timeout_ms > gs->config.max_session_timeout_ms) {
        return KAFKA_ERR_INVALID_SESSION_TIMEOUT;
    }
    if (a->protocol_type.len <= 0 || a->protocol_count <= 0 || a->protocol_count > PROTOCOLS_MAX) {
        return KAFKA_ERR_INCONSISTENT_GROUP_PROTOCOL;
    }
    int64_t bytes = 0;
    for (int32_t i = 0; i < a->protocol_count; i++) {
        if (a->protocols[i].name.len <= 0 || a->protocols[i].name.len > NAME_MAX_BYTES) {
            return KAFKA_ERR_INCONSISTENT_GROUP_PROTOCOL;
        }
        bytes += a->protocols[i].metadata.len;
    }
    if (bytes > gs->config.member_metadata_max_bytes || a->member_id.len > 2 * NAME_MAX_BYTES ||
        a->instance_id.len > NAME_MAX_BYTES || a->client_id.len > NAME_MAX_BYTES) {
        LOG_WARN("groups", "join refused: member metadata too large group=%.*s bytes=%" PRId64,
                 a->group.len, a->group.ptr, bytes);
        return KAFKA_ERR_INVALID_REQUEST;
    }
    return KAFKA_ERR_NONE;
}

/* Replaces a member's protocols with the request's; -ENOMEM. */
static int member_set_protocols(struct member *m, const struct join_args *a)
{
    struct protocol *ps = calloc((size_t)a->protocol_count, sizeof(*ps));
    if (ps == NULL) {
        return -ENOMEM;
    }
    for (int32_t i = 0; i < a->protocol_count; i++) {
        ps[i].name = dup_kstr(a->protocols[i].name);
        ps[i].meta = dup_bytes(a->protocols[i].metadata.ptr, a->protocols[i].metadata.len);
        ps[i].len = a->protocols[i].metadata.len > 0 ? a->protocols[i].metadata.len : 0;
        if (ps[i].name == NULL || ps[i].meta == NULL) {
            for (int32_t k = 0; k <= i; k++) {
                free(ps[k].name);
                free(ps[k].meta);
            }
            free(ps);
            return -ENOMEM;
        }
    }
    for (int32_t i = 0; i < m->protocol_count; i++) {
        free(m->protocols[i].name);
        free(m->protocols[i].meta);
    }
    free(m->protocols);
    m->protocols = ps;
    m->protocol_count = a->protocol_count;
    return 0;
}

static bool same_protocols(const struct member *m, const struct join_args *a)
{
    if (m->protocol_count != a->protocol_count) {
        return false;
    }
    for (int32_t i = 0; i < a->protocol_count; i++) {
        const struct protocol *p = &m->protocols[i];
        int32_t len = SL_MAX(a->protocols[i].metadata.len, 0); /* null is stored empty */
        if (!kstr_is(a->protocols[i].name, p->name) || len != p->len ||
            (p->len > 0 && memcmp(a->protocols[i].metadata.ptr, p->meta, (size_t)p->len) != 0)) {
            return false;
        }
    }
    return true;
}

/* Every member must share a protocol with the group's others. */
static bool protocols_compatible(const struct group *g, const struct join_args *a)
{
    if (g->member_count == 0) {
        return true;
    }
    if (!kstr_is(a->protocol_type, g->protocol_type)) {
        return false;
    }
    for (int32_t i = 0; i < a->protocol_count; i++) {
        bool everyone = true;
        for (int32_t k = 0; k < g->member_count && everyone; k++) {
            char name[NAME_MAX_BYTES + 1];
            snprintf(name, sizeof(name), "%.*s", a->protocols[i].name.len,
                     a->protocols[i].name.ptr);
            everyone = member_protocol(g->members[k], name) != NULL;
        }
        if (everyone) {
            return true;
        }
    }
    return false;
}

static struct member *member_add(struct groups *gs, struct group *g, const struct join_args *a,
                                 char *id)
{
    struct member **more = realloc(g->members, (size_t)(g->member_count + 1) * sizeof(*more));
    struct member *m = more != NULL ? member_new() : NULL;
    if (more != NULL) {
        g->members = more;
    }
    if (m == NULL) {
        free(id);
        return NULL;
    }
    m->id = id;
    m->instance_id = dup_kstr(a->instance_id);
    m->client_id = dup_kstr(a->client_id.len >= 0 ? a->client_id : (struct kstr){"", 0});
    m->client_host = dup_kstr(a->client_host.len >= 0 ? a->client_host : (struct kstr){"", 0});
    if (m->client_id == NULL || m->client_host == NULL ||
        (a->instance_id.len >= 0 && m->instance_id == NULL) || member_set_protocols(m, a) != 0) {
        member_free(m);
        return NULL;
    }
    if (g->member_count == 0) {
        free(g->protocol_type);
        g->protocol_type = dup_kstr(a->protocol_type);
    }
    g->members[g->member_count++] = m;
    (void)gs;
    return m;
}

static void member_update(struct member *m, const struct join_args *a, groups_join_cb *cb,
                          void *opaque)
{
    m->session_timeout_ms = a->session_timeout_ms;
    m->rebalance_timeout_ms =
        a->rebalance_timeout_ms > 0 ? a->rebalance_timeout_ms : a->session_timeout_ms;
    m->deadline_ms = now_ms() + m->session_timeout_ms;
    if (m->join_cb != NULL) {
        /* A second join from the same member replaces the first. */
        groups_join_cb *old = m->join_cb;
        m->join_cb = NULL;
        join_error(old, m->join_opaque, KAFKA_ERR_UNKNOWN_MEMBER_ID, m->id);
    }
    m->join_cb = cb;
    m->join_opaque = opaque;
}

/* A static member back with a new member id while the group is stable: it
 * keeps its assignment, and nobody else rebalances (KIP-345). */
static void static_rejoin_stable(struct groups *gs, struct group *g, struct member *m,
                                 const struct join_args *a, groups_join_cb *cb, void *opaque)
{
    char *id = member_id_new(a->instance_id);
    if (id == NULL) {
        join_error(cb, opaque, KAFKA_ERR_UNKNOWN_SERVER_ERROR, "");
        return;
    }
    bool was_leader = g->leader != NULL && strcmp(g->leader, m->id) == 0;
    LOG_INFO("groups", "static member back group=%s instance=%s old=%s new=%s", g->id,
             m->instance_id, m->id, id);
    /* The old incarnation is fenced: whatever it still waits for fails. */
    sync_reply(m, KAFKA_ERR_FENCED_INSTANCE_ID, g);
    free(m->id);
    m->id = id;
    if (was_leader) {
        free(g->leader);
        g->leader = dup_str(id);
    }
    m->session_timeout_ms = a->session_timeout_ms;
    m->deadline_ms = now_ms() + m->session_timeout_ms;
    store_group(gs, g, false, NULL, NULL);
    struct join_result res = {
        .error = KAFKA_ERR_NONE,
        .generation = g->generation,
        .protocol_type = g->protocol_type,
        .protocol = g->protocol,
        .leader = g->leader != NULL ? g->leader : "",
        .member_id = m->id,
    };
    cb(opaque, &res);
}

static void join_new_member(struct groups *gs, struct group *g, const struct join_args *a,
                            groups_join_cb *cb, void *opaque)
{
    struct member *known = member_by_instance(g, a->instance_id);
    if (known != NULL && g->state == STABLE && same_protocols(known, a)) {
        static_rejoin_stable(gs, g, known, a, cb, opaque);
        return;
    }
    if (known != NULL) {
        /* Back while the group rebalances, or with other protocols: a new id
         * for the old place, and a rebalance. */
        char *id = member_id_new(a->instance_id);
        if (id == NULL || member_set_protocols(known, a) != 0) {
            free(id);
            join_error(cb, opaque, KAFKA_ERR_UNKNOWN_SERVER_ERROR, "");
            return;
        }
        sync_reply(known, KAFKA_ERR_FENCED_INSTANCE_ID, g);
        if (known->join_cb != NULL) {
            groups_join_cb *old = known->join_cb;
            known->join_cb = NULL;
            join_error(old, known->join_opaque, KAFKA_ERR_FENCED_INSTANCE_ID, known->id);
        }
        if (g->leader != NULL && strcmp(g->leader, known->id) == 0) {
            free(g->leader);
            g->leader = dup_str(id);
        }
        free(known->id);
        known->id = id;
        member_update(known, a, cb, opaque);
        if (g->state != PREPARING) {
            group_prepare_rebalance(gs, g, "static member rejoined");
        }
        group_try_complete_join(gs, g);
        return;
    }
    if (g->member_count + g->pending_count >= gs->config.max_size) {
        join_error(cb, opaque, KAFKA_ERR_GROUP_MAX_SIZE_REACHED, "");
        return;
    }
    char *id = member_id_new(a->instance_id.len >= 0 ? a->instance_id : a->client_id);
    if (id == NULL) {
        join_error(cb, opaque, KAFKA_ERR_UNKNOWN_SERVER_ERROR, "");
        return;
    }
    if (a->require_known_member_id && a->instance_id.len < 0) {
        /* KIP-394: the member joins again with this id, so that a client
         * that lost the answer does not leave a ghost member behind. */
        struct pending_member *more =
            realloc(g->pending, (size_t)(g->pending_count + 1) * sizeof(*more));
        if (more == NULL) {
            free(id);
            join_error(cb, opaque, KAFKA_ERR_UNKNOWN_SERVER_ERROR, "");
            return;
        }
        g->pending = more;
        g->pending[g->pending_count++] =
            (struct pending_member){id, now_ms() + a->session_timeout_ms};
        tick_arm(gs);
        join_error(cb, opaque, KAFKA_ERR_MEMBER_ID_REQUIRED, id);
        return;
    }
    struct member *m = member_add(gs, g, a, id);
    if (m == NULL) {
        join_error(cb, opaque, KAFKA_ERR_UNKNOWN_SERVER_ERROR, "");
        return;
    }
    member_update(m, a, cb, opaque);
    if (g->state != PREPARING) {
        group_prepare_rebalance(gs, g, "member joined");
    }
    group_try_complete_join(gs, g);
}

static void join_known_member(struct groups *gs, struct group *g, const struct join_args *a,
                              groups_join_cb *cb, void *opaque)
{
    struct member *m = member_find(g, a->member_id, NULL);
    int32_t pending = -1;
    for (int32_t i = 0; m == NULL && i < g->pending_count; i++) {
        if (kstr_is(a->member_id, g->pending[i].id)) {
            pending = i;
        }
    }
    if (a->instance_id.len >= 0) {
        /* Kafka's order: an instance id held under another member id is an
         * older incarnation (fenced); an unknown one must join anew. */
        const struct member *holder = member_by_instance(g, a->instance_id);
        int16_t err = holder == NULL                       ? KAFKA_ERR_UNKNOWN_MEMBER_ID
                      : !kstr_is(a->member_id, holder->id) ? KAFKA_ERR_FENCED_INSTANCE_ID
                                                           : KAFKA_ERR_NONE;
        if (err != KAFKA_ERR_NONE) {
            join_error(cb, opaque, err, "");
            return;
        }
    }
    if (m == NULL && pending < 0) {
        join_error(cb, opaque, KAFKA_ERR_UNKNOWN_MEMBER_ID, "");
        return;
    }
    if (m == NULL) {
        char *id = g->pending[pending].id;
        g->pending[pending] = g->pending[--g->pending_count];
        m = member_add(gs, g, a, id);
        if (m == NULL) {
            join_error(cb, opaque, KAFKA_ERR_UNKNOWN_SERVER_ERROR, "");
            return;
        }
        member_update(m, a, cb, opaque);
        if (g->state != PREPARING) {
            group_prepare_rebalance(gs, g, "member joined");
        }
        group_try_complete_join(gs, g);
        return;
    }
    bool changed = !same_protocols(m, a);
    if (changed && member_set_protocols(m, a) != 0) {
        join_error(cb, opaque, KAFKA_ERR_UNKNOWN_SERVER_ERROR, "");
        return;
    }
    member_update(m, a, cb, opaque);
    bool leader = g->leader != NULL && strcmp(g->leader, m->id) == 0;
    if ((g->state == STABLE && !changed && !leader) || (g->state == COMPLETING && !changed)) {
        /* Joining again with nothing new, as a client that lost its answer
         * does: the current generation, without a rebalance (Kafka's rule;
         * a Stable group's leader joining again does rebalance). */
        struct join_member *list = leader ? join_members(g) : NULL;
        join_reply_current(g, m, list);
        free(list);
        return;
    }
    if (g->state != PREPARING) {
        group_prepare_rebalance(gs, g, changed ? "member metadata changed" : "member rejoined");
    }
    group_try_complete_join(gs, g);
}

void groups_join(struct groups *gs, const struct join_args *a, groups_join_cb *cb, void *opaque)
{
    int16_t err = join_check(gs, a);
    if (err != KAFKA_ERR_NONE) {
        join_error(cb, opaque, err, "");
        return;
    }
    struct group *g = group_get(gs, a->group, a->member_id.len == 0);
    if (g == NULL) {
        join_error(cb, opaque,
                   a->member_id.len == 0 ? KAFKA_ERR_COORDINATOR_NOT_AVAILABLE
                                         : KAFKA_ERR_UNKNOWN_MEMBER_ID,
                   "");
        return;
    }
    if (!protocols_compatible(g, a)) {
        join_error(cb, opaque, KAFKA_ERR_INCONSISTENT_GROUP_PROTOCOL, "");
        return;
    }
    if (a->member_id.len == 0) {
        join_new_member(gs, g, a, cb, opaque);
    } else {
        join_known_member(gs, g, a, cb, opaque);
    }
}

/* ----------------------------------------------------------------- sync */

/* The member a request names, checked against instance id and generation. */
static int16_t member_check(const struct group *g, struct kstr member_id, struct kstr instance_id,
                            int32_t generation, struct member **out)
{
    struct member *m = g != NULL ? member_find(g, member_id, NULL) : NULL;
    if (m == NULL && g != NULL && instance_id.len >= 0 &&
        member_by_instance(g, instance_id) != NULL) {
        return KAFKA_ERR_FENCED_INSTANCE_ID; /* an older incarnation of a static member */
    }
    if (m == NULL) {
        return KAFKA_ERR_UNKNOWN_MEMBER_ID;
    }
    if (instance_id.len >= 0 && !kstr_is(instance_id, m->instance_id)) {
        return KAFKA_ERR_FENCED_INSTANCE_ID;
    }
    if (generation != g->generation) {
        return KAFKA_ERR_ILLEGAL_GENERATION;
    }
    *out = m;
    return KAFKA_ERR_NONE;
}

struct sync_store {
    struct groups *gs;
    char *group;
    int32_t generation;
};

static void sync_stored(struct store *s, int status)
{
    struct sync_store *ss = s->opaque;
    struct group *g = group_find(ss->gs, (struct kstr){ss->group, (int32_t)strlen(ss->group)});
    if (g != NULL && g->generation == ss->generation && g->state == COMPLETING) {
        g->sync_storing = false;
        if (status == 0) {
            group_set_state(g, STABLE);
            for (int32_t i = 0; i < g->member_count; i++) {
                sync_reply(g->members[i], KAFKA_ERR_NONE, g);
            }
        } else {
            /* Not stored: nobody gets an assignment the log does not hold. */
            for (int32_t i = 0; i < g->member_count; i++) {
                sync_reply(g->members[i], KAFKA_ERR_COORDINATOR_NOT_AVAILABLE, g);
            }
            group_prepare_rebalance(ss->gs, g, "assignment not stored");
        }
    }
    free(ss->group);
    free(ss);
}

static void sync_error(groups_sync_cb *cb, void *opaque, int16_t error)
{
    struct sync_result res = {.error = error};
    cb(opaque, &res);
}

/* The leader's assignment: each member's bytes; -ENOMEM. */
static int sync_assign(struct group *g, const struct sync_args *a)
{
    for (int32_t i = 0; i < g->member_count; i++) {
        struct member *m = g->members[i];
        const struct kbytes *mine = NULL;
        for (int32_t k = 0; k < a->assignment_count; k++) {
            if (kstr_is(a->assignment_members[k], m->id)) {
                mine = &a->assignments[k];
            }
        }
        int32_t len = mine != NULL && mine->len > 0 ? mine->len : 0;
        uint8_t *bytes = dup_bytes(mine != NULL ? mine->ptr : NULL, len);
        if (bytes == NULL) {
            return -ENOMEM;
        }
        free(m->assignment);
        m->assignment = bytes;
        m->assignment_len = len;
    }
    return 0;
}

void groups_sync(struct groups *gs, const struct sync_args *a, groups_sync_cb *cb, void *opaque)
{
    struct group *g = group_find(gs, a->group);
    struct member *m = NULL;
    int16_t err = a->group.len <= 0
                      ? KAFKA_ERR_INVALID_GROUP_ID
                      : member_check(g, a->member_id, a->instance_id, a->generation, &m);
    if (err == KAFKA_ERR_NONE &&
        ((a->protocol_type.len >= 0 && !kstr_is(a->protocol_type, g->protocol_type)) ||
         (a->protocol.len >= 0 && !kstr_is(a->protocol, g->protocol)))) {
        err = KAFKA_ERR_INCONSISTENT_GROUP_PROTOCOL;
    }
    if (err == KAFKA_ERR_NONE && g->state == PREPARING) {
        err = KAFKA_ERR_REBALANCE_IN_PROGRESS;
    }
    if (err != KAFKA_ERR_NONE) {
        sync_error(cb, opaque, err);
        return;
    }
    m->deadline_ms = now_ms() + m->session_timeout_ms;
    if (g->state == STABLE) {
        m->sync_cb = cb;
        m->sync_opaque = opaque;
        sync_reply(m, KAFKA_ERR_NONE, g);
        return;
    }
    SL_ASSERT(g->state == COMPLETING); /* members exist, generation matched */
    if (m->sync_cb != NULL) {
        sync_reply(m, KAFKA_ERR_REBALANCE_IN_PROGRESS, g); /* replaced by this one */
    }
    m->sync_cb = cb;
    m->sync_opaque = opaque;
    if (strcmp(m->id, g->leader) != 0 || g->sync_storing) {
        return; /* answered once the leader's assignment is stored */
    }
    struct sync_store *ss = calloc(1, sizeof(*ss));
    int rc = ss == NULL || (ss->group = dup_str(g->id)) == NULL ? -ENOMEM : sync_assign(g, a);
    if (rc == 0) {
        ss->gs = gs;
        ss->generation = g->generation;
        rc = store_group(gs, g, false, sync_stored, ss);
    }
    if (rc != 0) {
        if (ss != NULL) {
            free(ss->group);
        }
        free(ss);
        for (int32_t i = 0; i < g->member_count; i++) {
            sync_reply(g->members[i], KAFKA_ERR_COORDINATOR_NOT_AVAILABLE, g);
        }
        group_prepare_rebalance(gs, g, "assignment not stored");
        return;
    }
    g->sync_storing = true;
}

/* --------------------------------------------------- heartbeat, leave */

int16_t groups_heartbeat(struct groups *gs, struct kstr group, struct kstr member_id,
                         struct kstr instance_id, int32_t generation)
{
    struct group *g = group_find(gs, group);
    if (group.len <= 0) {
        return KAFKA_ERR_INVALID_GROUP_ID;
    }
    struct member *m = NULL;
    int16_t err = member_check(g, member_id, instance_id, generation, &m);
    if (err == KAFKA_ERR_ILLEGAL_GENERATION && g->state == PREPARING) {
        /* Keep the session of a member that has not joined the new generation yet. */
        m = member_find(g, member_id, NULL);
        m->deadline_ms = now_ms() + m->session_timeout_ms;
        return KAFKA_ERR_REBALANCE_IN_PROGRESS;
    }
    if (err != KAFKA_ERR_NONE) {
        return err;
    }
    m->deadline_ms = now_ms() + m->session_timeout_ms;
    return g->state == PREPARING ? KAFKA_ERR_REBALANCE_IN_PROGRESS : KAFKA_ERR_NONE;
}

bool groups_exists(const struct groups *gs, struct kstr group)
{
    return group_find(gs, group) != NULL;
}

int16_t groups_leave(struct groups *gs, struct kstr group, struct kstr member_id,
                     struct kstr instance_id)
{
    struct group *g = group_find(gs, group);
    if (g == NULL) {
        return KAFKA_ERR_UNKNOWN_MEMBER_ID;
    }
    int32_t index = -1;
    struct member *m = member_id.len > 0 ? member_find(g, member_id, &index) : NULL;
    if (m == NULL && instance_id.len >= 0) {
        m = member_by_instance(g, instance_id);
        for (int32_t i = 0; m != NULL && i < g->member_count; i++) {
            index = g->members[i] == m ? i : index;
        }
        if (m != NULL && member_id.len > 0 && !kstr_is(member_id, m->id)) {
            return KAFKA_ERR_FENCED_INSTANCE_ID;
        }
    }
    if (m == NULL) {
        for (int32_t i = 0; i < g->pending_count; i++) {
            if (kstr_is(member_id, g->pending[i].id)) {
                free(g->pending[i].id);
                g->pending[i] = g->pending[--g->pending_count];
                group_try_complete_join(gs, g);
                return KAFKA_ERR_NONE;
            }
        }
        return KAFKA_ERR_UNKNOWN_MEMBER_ID;
    }
    LOG_INFO("groups", "member left group=%s member=%s", g->id, m->id);
    member_remove(gs, g, index, KAFKA_ERR_UNKNOWN_MEMBER_ID);
    if (g->state == STABLE || g->state == COMPLETING) {
        group_prepare_rebalance(gs, g, "member left");
    }
    group_try_complete_join(gs, g);
    return KAFKA_ERR_NONE;
}

/* ------------------------------------------------------------ commits */

struct commit_op {
    struct groups *gs;
    char *group;
    const struct commit_args *args;
    int64_t commit_ms;
    groups_commit_cb *cb;
    void *opaque;
};

static void commit_stored(struct store *s, int status)
{
    struct commit_op *op = s->opaque;
    struct groups *gs = op->gs;
    const struct commit_args *a = op->args;
    struct kstr id = {op->group, (int32_t)strlen(op->group)};
    struct group *g = group_find(gs, id);
    if (g != NULL && g->commits_inflight > 0) {
        g->commits_inflight--;
    }
    if (status == 0 && g == NULL) {
        /* Deleted or expired while the commit was in flight: the log holds
         * the commit after their tombstones, so the group is back with it,
         * as a replay would make it. */
        g = group_get(gs, id, true);
    }
    int16_t result = KAFKA_ERR_NONE;
    if (status != 0) {
        result = status == -EMSGSIZE ? KAFKA_ERR_INVALID_COMMIT_OFFSET_SIZE
                                     : KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
        LOG_WARN("groups", "commit not stored group=%s err=%s", op->group, strerror(-status));
    } else if (g == NULL) {
        result = KAFKA_ERR_COORDINATOR_NOT_AVAILABLE; /* durable, but not in memory until restart */
    }
    for (int32_t i = 0; i < a->partition_count; i++) {
        struct commit_partition *p = &a->partitions[i];
        if (p->error != KAFKA_ERR_NONE) {
            continue;
        }
        p->error = result;
        /* On failure here the offset is durable, but in memory only after a restart. */
        if (result == KAFKA_ERR_NONE &&
            offset_set(gs, g, p->topic, p->partition, p->offset, p->leader_epoch, p->metadata,
                       op->commit_ms) != 0) {
            p->error = KAFKA_ERR_UNKNOWN_SERVER_ERROR;
        }
    }
    op->cb(op->opaque, result);
    free(op->group);
    free(op);
}

/* Whether a commit may go in, per Kafka's rules for members and simple consumers. */
static int16_t commit_check(struct groups *gs, const struct commit_args *a, struct group **out)
{
    if (a->group.len <= 0 || a->group.len > GROUP_ID_MAX) {
        return KAFKA_ERR_INVALID_GROUP_ID;
    }
    struct group *g = group_find(gs, a->group);
    if (a->generation < 0 && a->member_id.len <= 0) {
        /* Outside any membership: only while the group has no members. */
        if (g != NULL && g->member_count > 0) {
            return KAFKA_ERR_UNKNOWN_MEMBER_ID;
        }
        g = g != NULL ? g : group_get(gs, a->group, true);
        *out = g;
        return g != NULL ? KAFKA_ERR_NONE : KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
    }
    struct member *m = NULL;
    int16_t err = member_check(g, a->member_id, a->instance_id, a->generation, &m);
    if (err != KAFKA_ERR_NONE) {
        return err;
    }
    if (g->state == COMPLETING) {
        /* Kafka's rule: the member has its new generation but not yet its
         * assignment. While PreparingRebalance the current generation may
         * still commit: that is what a consumer does as it gives up its
         * partitions before joining again. */
        return KAFKA_ERR_REBALANCE_IN_PROGRESS;
    }
    m->deadline_ms = now_ms() + m->session_timeout_ms; /* a commit shows it is alive */
    *out = g;
    return KAFKA_ERR_NONE;
}

void groups_commit(struct groups *gs, const struct commit_args *a, groups_commit_cb *cb,
                   void *opaque)
{
    struct group *g = NULL;
    int16_t err = commit_check(gs, a, &g);
    struct recs r;
    recs_init(&r, gs->config.batch_bytes_max);
    int64_t commit_ms = time_wall_ms();
    int64_t new_keys = 0;
    for (int32_t i = 0; err == KAFKA_ERR_NONE && i < a->partition_count; i++) {
        struct commit_partition *p = &a->partitions[i];
        if (p->error != KAFKA_ERR_NONE) {
            continue;
        }
        if (p->metadata.len > gs->config.offset_metadata_max_bytes) {
            p->error = KAFKA_ERR_OFFSET_METADATA_TOO_LARGE;
            continue;
        }
        if (p->topic.len <= 0 || p->topic.len > TOPIC_NAME_MAX) {
            p->error = KAFKA_ERR_INVALID_TOPIC_EXCEPTION; /* the record's key could not hold it */
            continue;
        }
        int32_t slot;
        if (offset_index_find(g, p->topic, p->partition, &slot) < 0 &&
            gs->offsets_total + ++new_keys > gs->config.offsets_max) {
            LOG_WARN("groups", "offsets.max reached: commit refused group=%s max=%" PRId64, g->id,
                     gs->config.offsets_max);
            p->error = KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
            continue;
        }
        /* Topic and metadata as C strings, for the record's str16 fields. */
        char *topic = dup_kstr(p->topic);
        char *metadata = dup_kstr(p->metadata.len >= 0 ? p->metadata : (struct kstr){"", 0});
        struct offset o = {.topic = topic,
                           .partition = p->partition,
                           .offset = p->offset,
                           .leader_epoch = p->leader_epoch,
                           .metadata = metadata,
                           .commit_ms = commit_ms};
        int rc = topic == NULL || metadata == NULL ? -ENOMEM : recs_offset(&r, g->id, &o);
        free(topic);
        free(metadata);
        if (rc != 0) {
            err = rc == -EMSGSIZE ? KAFKA_ERR_INVALID_COMMIT_OFFSET_SIZE
                                  : KAFKA_ERR_UNKNOWN_SERVER_ERROR;
        }
    }
    struct commit_op *op = NULL;
    struct store *s = NULL;
    if (err == KAFKA_ERR_NONE && r.count > 0) {
        op = calloc(1, sizeof(*op));
        s = op != NULL ? store_new(gs, g->partition) : NULL;
        int rc = s == NULL || (op->group = dup_str(g->id)) == NULL ? -ENOMEM
                                                                   : recs_encode(&r, &s->batch);
        if (rc == 0) {
            *op = (struct commit_op){gs, op->group, a, commit_ms, cb, opaque};
            s->done = commit_stored;
            s->opaque = op;
            rc = store_submit(gs, s);
            g->commits_inflight += rc == 0;
        }
        if (rc != 0) {
            err = KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
            store_free(s);
            if (op != NULL) {
                free(op->group);
            }
            free(op);
        }
    }
    recs_deinit(&r);
    if (err != KAFKA_ERR_NONE || s == NULL) {
        for (int32_t i = 0; i < a->partition_count; i++) {
            if (a->partitions[i].error == KAFKA_ERR_NONE) {
                a->partitions[i].error = err;
            }
        }
        cb(opaque, err);
    }
}

static const struct committed *as_committed(const struct offset *o, struct committed *tmp)
{
    *tmp = (struct committed){o->topic, o->partition, o->offset, o->leader_epoch, o->metadata};
    return tmp;
}

const struct committed *groups_committed(const struct groups *gs, struct kstr group,
                                         struct kstr topic, int32_t partition)
{
    static _Thread_local struct committed tmp;
    const struct group *g = group_find(gs, group);
    int32_t slot;
    int32_t k = g != NULL ? offset_index_find(g, topic, partition, &slot) : -1;
    return k < 0 ? NULL : as_committed(&g->offsets[k], &tmp);
}

int32_t groups_each_committed(const struct groups *gs, struct kstr group,
                              void (*fn)(void *opaque, const struct committed *c), void *opaque)
{
    const struct group *g = group_find(gs, group);
    for (int32_t k = 0; g != NULL && k < g->offset_count; k++) {
        struct committed tmp;
        fn(opaque, as_committed(&g->offsets[k], &tmp));
    }
    return g != NULL ? g->offset_count : 0;
}

/* ------------------------------------------------------------- admin */

static void view_of(const struct group *g, struct group_view *v)
{
    *v = (struct group_view){g->id, state_names[g->state],
                             g->protocol_type != NULL ? g->protocol_type : "",
                             g->protocol != NULL ? g->protocol : ""};
}

int32_t groups_list(const struct groups *gs, void (*fn)(void *opaque, const struct group_view *g),
                    void *opaque)
{
    int32_t n = 0;
    for (int32_t t = 0; t < gs->table_size; t++) {
        const struct group *g = gs->table[t];
        if (g != NULL) {
            struct group_view v;
            view_of(g, &v);
            fn(opaque, &v);
            n++;
        }
    }
    return n;
}

bool groups_describe(const struct groups *gs, struct kstr group, struct group_view *view,
                     void (*fn)(void *opaque, const struct member_view *m), void *opaque)
{
    const struct group *g = group_find(gs, group);
    if (g == NULL) {
        return false;
    }
    view_of(g, view);
    for (int32_t i = 0; i < g->member_count; i++) {
        const struct member *m = g->members[i];
        const struct protocol *p = member_protocol(m, g->protocol);
        struct member_view mv = {m->id,
                                 m->instance_id,
                                 m->client_id,
                                 m->client_host,
                                 p != NULL ? p->meta : NULL,
                                 p != NULL ? p->len : 0,
                                 g->state == STABLE ? m->assignment : NULL,
                                 g->state == STABLE ? m->assignment_len : 0};
        fn(opaque, &mv);
    }
    return true;
}

/* A deletion or an expiry: tombstones for offsets of a group, and for its
 * metadata when whole, in as many batches as they take. */
struct tomb_op {
    struct groups *gs;
    char *group;
    bool whole;
    int64_t older_than_ms; /* when not whole: offsets committed before this go */
    int status;            /* the first failure among its batches */
    groups_delete_cb *cb;  /* a deletion's caller; NULL for an expiry */
    void *opaque;
};

static void tomb_op_free(struct tomb_op *op)
{
    if (op != NULL) {
        free(op->group);
        free(op);
    }
}

static bool tomb_selects(const struct tomb_op *op, const struct offset *o)
{
    return op->whole || o->commit_ms < op->older_than_ms;
}

/* A batch of tombstones before the last: only its failure matters. */
static void tomb_batch_done(struct store *s, int status)
{
    struct tomb_op *op = s->opaque;
    if (status != 0 && op->status == 0) {
        op->status = status;
    }
}

/* Removes from memory what the durable tombstones removed from the log.
 * No commit of the group was in flight when they were written (an expiry
 * waits for none; a deletion's group tombstone drops every earlier offset on
 * replay too), so the offsets they select now are the ones they named; a
 * commit appended after them is applied after this. Returns how many went. */
static int32_t tomb_apply(struct groups *gs, const struct tomb_op *op, struct group *g)
{
    int32_t before = g->offset_count;
    for (int32_t k = g->offset_count; k-- > 0;) {
        const struct offset *o = &g->offsets[k];
        if (tomb_selects(op, o)) {
            offset_remove(gs, g, (struct kstr){o->topic, (int32_t)strlen(o->topic)}, o->partition);
        }
    }
    int32_t removed = before - g->offset_count;
    if (op->whole) {
        /* The log holds no metadata of the group any more, even if members
         * joined meanwhile: their generation is stored at their sync. */
        free(g->stored);
        g->stored = NULL;
        g->stored_len = 0;
        if (g->member_count == 0) {
            group_drop(gs, g);
        }
    }
    return removed;
}

/* Appends the tombstones op selects of group g; the last batch calls done.
 * -ENOENT when there is nothing to write; on another error, done is still
 * called (with the failure) if some batch went out. */
static int group_tombstones(struct groups *gs, struct group *g, struct tomb_op *op,
                            void (*done)(struct store *s, int status))
{
    struct recs r;
    recs_init(&r, gs->config.batch_bytes_max);
    struct store *last = NULL;
    uint64_t bytes = 0;
    int err = 0;
    /* The group's own tombstone last: a partial failure then leaves it alone. */
    for (int32_t i = 0; err == 0 && i <= g->offset_count; i++) {
        int32_t k = i < g->offset_count ? i : -2;
        if (k == -2 ? !op->whole : !tomb_selects(op, &g->offsets[k])) {
            continue;
        }
        struct store *prev = last;
        err = recs_put(gs, g->partition, &r, g, k, true, false, &last, &bytes);
        if (last != prev) {
            last->done = tomb_batch_done;
            last->opaque = op;
        }
    }
    err = err != 0 ? err : recs_flush(gs, g->partition, &r, false, &last, &bytes);
    recs_deinit(&r);
    if (last == NULL) {
        return err != 0 ? err : -ENOENT;
    }
    if (err != 0) {
        op->status = err; /* stopped after some batches went out: the last of them reports */
    }
    last->done = done;
    last->opaque = op;
    return 0;
}

static void delete_stored(struct store *s, int status)
{
    struct tomb_op *op = s->opaque;
    struct groups *gs = op->gs;
    status = status != 0 ? status : op->status;
    struct group *g = group_find(gs, (struct kstr){op->group, (int32_t)strlen(op->group)});
    int16_t err = KAFKA_ERR_NONE;
    if (status != 0) {
        LOG_WARN("groups", "group not deleted group=%s err=%s", op->group, strerror(-status));
        err = KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
    } else if (g != NULL) {
        int32_t removed = tomb_apply(gs, op, g);
        LOG_INFO("groups", "group deleted group=%s offsets=%d", op->group, removed);
    }
    op->cb(op->opaque, err);
    tomb_op_free(op);
}

void groups_delete(struct groups *gs, struct kstr group, groups_delete_cb *cb, void *opaque)
{
    struct group *g = group_find(gs, group);
    if (group.len <= 0) {
        cb(opaque, KAFKA_ERR_INVALID_GROUP_ID);
        return;
    }
    if (g == NULL) {
        cb(opaque, KAFKA_ERR_GROUP_ID_NOT_FOUND);
        return;
    }
    if (g->member_count > 0 || g->state != EMPTY) {
        cb(opaque, KAFKA_ERR_NON_EMPTY_GROUP);
        return;
    }
    struct tomb_op *op = calloc(1, sizeof(*op));
    int err = op == NULL || (op->group = dup_str(g->id)) == NULL ? -ENOMEM : 0;
    if (err == 0) {
        op->gs = gs;
        op->whole = true;
        op->cb = cb;
        op->opaque = opaque;
        err = group_tombstones(gs, g, op, delete_stored);
    }
    if (err != 0) {
        tomb_op_free(op);
        cb(opaque, KAFKA_ERR_COORDINATOR_NOT_AVAILABLE);
    }
}

/* ------------------------------------------------------------ expiry */

static void expire_stored(struct store *s, int status)
{
    struct tomb_op *op = s->opaque;
    status = status != 0 ? status : op->status;
    struct group *g = group_find(op->gs, (struct kstr){op->group, (int32_t)strlen(op->group)});
    if (status == 0 && g != NULL) {
        int32_t removed = tomb_apply(op->gs, op, g);
        LOG_INFO("groups", "offsets expired group=%s removed=%d whole=%d", op->group, removed,
                 op->whole);
    }
    tomb_op_free(op);
}

/* Offsets of groups without members expire offsets.retention.minutes after
 * they were committed, counted from when the group became empty at the
 * earliest (Kafka's rule since KIP-211). A group with a commit in flight
 * waits for the next round: its tombstones could overtake that commit in
 * memory but not in the log. */
static void on_expiry(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct groups *gs = SL_CONTAINER_OF(w, struct groups, expiry);
    int64_t now = time_wall_ms();
    for (int32_t t = 0; t < gs->table_size; t++) {
        struct group *g = gs->table[t];
        if (g == NULL || g->state != EMPTY || g->member_count > 0 || g->commits_inflight > 0 ||
            now - g->empty_since_ms < gs->config.offsets_retention_ms) {
            continue;
        }
        int64_t older_than = now - gs->config.offsets_retention_ms;
        struct tomb_op *op = calloc(1, sizeof(*op));
        if (op == NULL || (op->group = dup_str(g->id)) == NULL) {
            tomb_op_free(op);
            return;
        }
        op->gs = gs;
        op->older_than_ms = older_than;
        bool all_old = true;
        for (int32_t k = 0; k < g->offset_count; k++) {
            all_old = all_old && g->offsets[k].commit_ms < older_than;
        }
        op->whole = all_old;
        if (group_tombstones(gs, g, op, expire_stored) != 0) {
            tomb_op_free(op);
        }
    }
}

/* ---------------------------------------------------------- lifecycle */

struct groups *groups_new(struct ev_loop *loop, const struct groups_config *config,
                          struct log *const *logs, int *err)
{
    /* A batch must hold at least a group record with a member or two. */
    if (config->partitions <= 0 || config->batch_bytes_max < 4096 || config->max_size <= 0 ||
        config->groups_max <= 0 || config->retention_check_interval_ms <= 0) {
        *err = -EINVAL;
        return NULL;
    }
    struct groups *gs = calloc(1, sizeof(*gs));
    if (gs == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    gs->config = *config;
    gs->loop = loop;
    gs->table_size = 64;
    gs->table = calloc((size_t)gs->table_size, sizeof(*gs->table));
    gs->parts = calloc((size_t)config->partitions, sizeof(*gs->parts));
    if (gs->table == NULL || gs->parts == NULL) {
        *err = -ENOMEM;
        groups_free(gs);
        return NULL;
    }
    ev_init(&gs->tick, on_tick);
    gs->tick.repeat = TICK_MS / 1000.0;
    ev_timer_init(&gs->expiry, on_expiry, (double)config->retention_check_interval_ms / 1000.0,
                  (double)config->retention_check_interval_ms / 1000.0);
    uint64_t t0 = (uint64_t)time_mono_ns();
    gs->replaying = true;
    for (int32_t p = 0; p < config->partitions; p++) {
        gs->parts[p].log = logs[p];
        *err = replay_partition(gs, logs[p]);
        if (*err != 0) {
            LOG_ERROR("groups", "cannot replay the offsets partition=%d err=%s", p,
                      strerror(-*err));
            groups_free(gs);
            return NULL;
        }
        /* How much of it is live is known only at the first rewrite: until
         * then count all of it as appended since, so that a partition that
         * grew before a restart is compacted soon after it, not after four
         * times its size more. */
        gs->parts[p].since_rewrite = log_size_bytes(logs[p]);
    }
    gs->replaying = false;
    bool members = false;
    for (int32_t t = 0; t < gs->table_size; t++) {
        members = members || (gs->table[t] != NULL && group_needs_tick(gs->table[t]));
    }
    if (members) {
        tick_arm(gs);
    }
    ev_timer_start(loop, &gs->expiry);
    LOG_INFO("groups", "coordinator loaded groups=%d offsets=%" PRId64 " partitions=%d ms=%.1f",
             gs->count, gs->offsets_total, config->partitions,
             (double)((uint64_t)time_mono_ns() - t0) / 1e6);
    return gs;
}

void groups_release(struct groups *gs)
{
    if (gs != NULL) {
        gs->stopping = true;
    }
    for (int32_t t = 0; gs != NULL && t < gs->table_size; t++) {
        struct group *g = gs->table[t];
        for (int32_t i = 0; g != NULL && i < g->member_count; i++) {
            struct member *m = g->members[i];
            if (m->join_cb != NULL) {
                groups_join_cb *cb = m->join_cb;
                m->join_cb = NULL;
                join_error(cb, m->join_opaque, KAFKA_ERR_NOT_COORDINATOR, m->id);
            }
            sync_reply(m, KAFKA_ERR_NOT_COORDINATOR, g);
        }
    }
}

void groups_free(struct groups *gs)
{
    if (gs == NULL) {
        return;
    }
    /* Appends in flight call back into the coordinator: wait for them (the
     * logs answer every append, closed or not), starting no rewrite. */
    gs->closing = true;
    ev_timer_stop(gs->loop, &gs->tick);
    ev_timer_stop(gs->loop, &gs->expiry);
    for (bool busy = gs->parts != NULL; busy;) {
        busy = false;
        for (int32_t p = 0; p < gs->config.partitions; p++) {
            busy = busy || gs->parts[p].inflight > 0;
        }
        if (busy) {
            ev_run(gs->loop, EVRUN_ONCE);
        }
    }
    SL_ASSERT(!ev_is_active(&gs->tick)); /* tick_arm does nothing while closing */
    for (int32_t t = 0; gs->table != NULL && t < gs->table_size; t++) {
        if (gs->table[t] != NULL) {
            group_free(gs->table[t]);
        }
    }
    free(gs->table);
    free(gs->parts);
    free(gs);
}
