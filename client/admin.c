/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The admin calls of sluice.h: topics (create, delete, metadata, configs),
 * offsets by time, and consumer groups seen from outside (list, describe,
 * committed offsets, commits, delete).
 *
 * Every call is synchronous over the caller-driven client: it sends its
 * requests with slc_call and polls (slc_poll_until, in short slices) until
 * each is answered or the deadline passes. A call is a set of slots, one
 * request each, to any broker or to a named node (a partition's leader, a
 * group's coordinator, the controller); the slots of one call go out
 * together, so a ListOffsets to every leader costs one round trip.
 *
 * Lifetimes. An answer is valid only inside its slc_call function, so the
 * function copies what the result needs into the result's pool at once.
 * A request outlives its caller when the call times out: the caller then
 * marks the request abandoned, and the answer (or the end of the client)
 * frees it, touching nothing else. Each request's small struct adm_call is
 * freed exactly once, by the function that receives its answer.
 *
 * Results. Each result is a root struct at the start of a chain of heap
 * chunks (struct pool) holding everything it points to; its free function
 * frees the chain. A result has at most ADM_RESULT_BYTES_MAX bytes.
 *
 * The consumer protocol's assignment bytes (DescribeGroups' member
 * assignment, protocol type "consumer"), as every version so far lays them
 * out, big-endian, not flexible:
 *   int16  version
 *   int32  topic count, then per topic:
 *            int16 name length, name bytes, int32 partition count, int32 each
 *   bytes  user data (int32 length, -1 null), and whatever later versions add
 * They are read bounded by the bytes given; what follows the topics is
 * ignored.
 */
#include <errno.h>
#include <limits.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "client/internal.h"
#include "common/assert.h"
#include "common/bytes.h"
#include "proto/errors.h"

/* The poll slice of a waiting call: the loop returns to check for the
 * answer this often (a slice ends early only for callbacks). */
#define ADM_SLICE_MS 10
/* Bytes of one result at most: above any answer receive.message.max.bytes
 * lets in, with room for the copies' own structs. */
#define ADM_RESULT_BYTES_MAX (512u << 20)
/* Pool chunks are at least this large. */
#define ADM_CHUNK_BYTES (16u << 10)
/* Topics or partitions named in one call. */
#define ADM_NAMES_MAX 65536
/* Attempts of a group call whose coordinator is moving or loading. */
#define ADM_ATTEMPTS_MAX 8
/* Connection attempts to a named broker within one call. */
#define ADM_CONNECTS_MAX 2
/* A slot for any broker rather than a named one. */
#define ADM_ANY_BROKER INT32_MIN
/* Kafka's DescribeConfigs resource type of a topic. */
#define RESOURCE_TOPIC 2

_Static_assert(ADM_NAMES_MAX <= INT32_MAX, "counts go on the wire as int32");

/* ================================================================ pools */

struct pool_chunk {
    struct pool_chunk *next;
    size_t used, cap;
    max_align_t data[]; /* the first chunk's data starts with the root */
};

struct pool {
    struct pool_chunk *first, *last;
    size_t total;
    bool failed; /* an allocation failed: the result is incomplete */
};

/* n zeroed bytes, aligned for anything; NULL (and failed) past the bound. */
static void *pool_alloc(struct pool *p, size_t n)
{
    if (p->failed || n > ADM_RESULT_BYTES_MAX) {
        p->failed = true;
        return NULL;
    }
    n = SL_ALIGN_UP(SL_MAX(n, (size_t)1), alignof(max_align_t));
    struct pool_chunk *ch = p->last;
    if (ch == NULL || ch->cap - ch->used < n) {
        size_t cap = SL_MAX(n, (size_t)ADM_CHUNK_BYTES);
        ch = cap <= ADM_RESULT_BYTES_MAX - p->total ? malloc(sizeof(*ch) + cap) : NULL;
        if (ch == NULL) {
            p->failed = true;
            return NULL;
        }
        *ch = (struct pool_chunk){.cap = cap};
        if (p->last != NULL) {
            p->last->next = ch;
        } else {
            p->first = ch;
        }
        p->last = ch;
        p->total += cap;
    }
    void *mem = (unsigned char *)ch->data + ch->used;
    ch->used += n;
    memset(mem, 0, n);
    return mem;
}

/* The root of a new result: the first allocation of the pool. */
static void *pool_root(struct pool *p, size_t n)
{
    SL_ASSERT(p->first == NULL); /* the free functions find the chain from the root */
    return pool_alloc(p, n);
}

/* A NUL-terminated copy; NULL for a null string (or when out of room). */
static const char *pool_str(struct pool *p, struct kstr s)
{
    if (s.len < 0) {
        return NULL;
    }
    char *d = pool_alloc(p, (size_t)s.len + 1);
    if (d != NULL && s.len > 0) {
        memcpy(d, s.ptr, (size_t)s.len);
    }
    return d;
}

/* As pool_str, with "" for a null string. */
static const char *pool_str0(struct pool *p, struct kstr s)
{
    return pool_str(p, s.len < 0 ? (struct kstr){"", 0} : s);
}

static void pool_discard(struct pool *p)
{
    for (struct pool_chunk *ch = p->first, *next; ch != NULL; ch = next) {
        next = ch->next;
        free(ch);
    }
    *p = (struct pool){0};
}

/* Frees the chain of a result root (pool_root's pointer). */
static void pool_free_root(void *root)
{
    if (root == NULL) {
        return;
    }
    struct pool p = {.first = SL_CONTAINER_OF(root, struct pool_chunk, data)};
    pool_discard(&p);
}

/* The end of a call whose result lives in a pool: the result when err is
 * SL_OK and every allocation succeeded, else NULL with the pool discarded and
 * *err saying why. */
static void *pool_finish(sl_err *err, struct pool *p, void *res)
{
    if (*err == SL_OK && (res == NULL || p->failed)) {
        *err = SL_ERR_NOMEM;
    }
    if (*err != SL_OK) {
        pool_discard(p);
        return NULL;
    }
    return res;
}

/* ================================================================ requests */

/* Called with an answer inside the poll; resp is valid during the call. */
typedef void adm_answer_fn(void *ctx, size_t slot, const void *resp, int16_t version);

struct adm_slot {
    int32_t node;          /* ADM_ANY_BROKER, or a node id the client knows */
    const void *body;      /* borrowed until sent */
    struct adm_call *call; /* in flight */
    uint32_t connects;     /* connection attempts made for it */
    sl_err err;            /* once done: SL_OK (answered) or why not */
    bool done;
};

struct adm_wait {
    sl_client *c;
    int16_t api_key, min_version, max_version;
    adm_answer_fn *fn;
    void *ctx;
    struct adm_slot *slots;
    size_t count;
    size_t left; /* slots not done */
};

/* One request in flight: what its answer needs to find its slot. */
struct adm_call {
    struct adm_wait *wait; /* NULL once abandoned by a caller that timed out */
    size_t slot;
    int16_t version;
};

static void slot_finish(struct adm_wait *w, struct adm_slot *s, sl_err err)
{
    SL_ASSERT(!s->done && w->left > 0);
    s->done = true;
    s->err = err;
    s->call = NULL;
    w->left--;
}

static void on_answer(sl_client *c, struct slc_broker *b, void *arg, const void *resp, sl_err err,
                      int64_t now_ms)
{
    (void)c;
    (void)b;
    (void)now_ms;
    struct adm_call *call = arg;
    struct adm_wait *w = call->wait;
    if (w != NULL) {
        struct adm_slot *s = &w->slots[call->slot];
        SL_ASSERT(s->call == call);
        if (resp != NULL) {
            w->fn(w->ctx, call->slot, resp, call->version);
        }
        slot_finish(w, s, resp != NULL ? SL_OK : err != SL_OK ? err : SL_ERR_BAD_RESPONSE);
    }
    free(call);
}

/* The broker a slot goes to, connecting it when needed; NULL: not yet, or
 * the slot is done (failed). */
static struct slc_broker *slot_broker(struct adm_wait *w, struct adm_slot *s, int64_t now_ms)
{
    sl_client *c = w->c;
    int64_t next_ms = INT64_MAX;
    if (s->node == ADM_ANY_BROKER) {
        struct slc_broker *b = slc_control_broker(c, now_ms, &next_ms);
        if (b == NULL && c->all_down) {
            slot_finish(w, s, SL_ERR_ALL_BROKERS_DOWN);
        }
        return b;
    }
    struct slc_broker *b = slc_broker_find(c, s->node);
    if (b == NULL) {
        slot_finish(w, s, SL_ERR_BROKER_NOT_AVAILABLE);
        return NULL;
    }
    if (b->state == SLC_CONN_DOWN) {
        if (s->connects >= ADM_CONNECTS_MAX && b->failed_last) {
            slot_finish(w, s, SL_ERR_TRANSPORT); /* the error callback said why */
        } else if (now_ms >= b->reconnect_at_ms) {
            s->connects++;
            slc_broker_connect(c, b, now_ms, &next_ms);
        }
        return NULL;
    }
    return b->state == SLC_CONN_UP ? b : NULL;
}

/* Sends what can be sent; whether every slot is done (slc_poll_until's test). */
static bool adm_advance(sl_client *c, void *arg)
{
    struct adm_wait *w = arg;
    int64_t now_ms = slc_now_ms();
    for (size_t i = 0; i < w->count; i++) {
        struct adm_slot *s = &w->slots[i];
        if (s->done || s->call != NULL) {
            continue;
        }
        struct slc_broker *b = slot_broker(w, s, now_ms);
        if (b == NULL || !slc_broker_can_send(c, b, SLC_REQ_CALL)) {
            continue;
        }
        struct adm_call *call = malloc(sizeof(*call));
        if (call == NULL) {
            slot_finish(w, s, SL_ERR_NOMEM);
            continue;
        }
        *call = (struct adm_call){w, i,
                                  slc_call_version(b, w->api_key, w->min_version, w->max_version)};
        int rc = slc_call(c, b, w->api_key, w->min_version, w->max_version, s->body, on_answer,
                          call, now_ms);
        if (rc == 0) {
            s->call = call;
            continue;
        }
        free(call);
        if (rc == -ENOTSUP) {
            slot_finish(w, s, SL_ERR_UNSUPPORTED_FEATURE);
        } else if (rc == -EINVAL) {
            slot_finish(w, s, SL_ERR_INVALID_ARG); /* not encodable: a string too long */
        } else if (rc == -ENOMEM) {
            slot_finish(w, s, SL_ERR_NOMEM);
        } /* -EAGAIN, -ENOBUFS: the connection is busy; the next round tries again */
    }
    return w->left == 0;
}

/* Polls until done(c, arg) or deadline_ms; whether done. */
static bool adm_poll(sl_client *c, int64_t deadline_ms, bool (*done)(sl_client *, void *),
                     void *arg)
{
    for (;;) {
        int64_t left = deadline_ms - slc_now_ms();
        int slice = (int)SL_MAX(SL_MIN(left, (int64_t)ADM_SLICE_MS), (int64_t)0);
        if (slc_poll_until(c, slice, done, arg)) {
            return true;
        }
        if (left <= 0) {
            return false;
        }
    }
}

static bool never(sl_client *c, void *arg)
{
    (void)c;
    (void)arg;
    return false;
}

/*
 * Sends every slot's request and waits for all answers. Returns SL_OK when
 * each slot was answered, else the first slot's failure (the answered
 * slots' answers were handed to fn all the same), or SL_ERR_TIMED_OUT.
 */
static sl_err adm_run(struct adm_wait *w, int64_t deadline_ms)
{
    w->left = w->count;
    for (size_t i = 0; i < w->count; i++) {
        w->slots[i].call = NULL;
        w->slots[i].done = false;
        w->slots[i].connects = 0;
    }
    bool done = adm_poll(w->c, deadline_ms, adm_advance, w);
    /* Failures found by adm_advance itself (a refused connect) are queued
     * for the error callback: report them before the call's outcome. */
    slc_dispatch(w->c);
    for (size_t i = 0; i < w->count; i++) {
        if (w->slots[i].call != NULL) {
            w->slots[i].call->wait = NULL; /* its answer frees it */
        }
    }
    if (!done) {
        return w->c->all_down ? SL_ERR_ALL_BROKERS_DOWN : SL_ERR_TIMED_OUT;
    }
    for (size_t i = 0; i < w->count; i++) {
        if (w->slots[i].err != SL_OK) {
            return w->slots[i].err;
        }
    }
    return SL_OK;
}

/* One request to node (or any broker). */
static sl_err adm_request(sl_client *c, int32_t node, int16_t api_key, int16_t min_version,
                          int16_t max_version, const void *body, adm_answer_fn *fn, void *ctx,
                          int64_t deadline_ms)
{
    struct adm_slot slot = {.node = node, .body = body};
    struct adm_wait w = {c, api_key, min_version, max_version, fn, ctx, &slot, 1, 1};
    return adm_run(&w, deadline_ms);
}

/* SL_OK when the client may make an admin call now; the deadline in *deadline_ms. */
static sl_err adm_begin(sl_client *c, int timeout_ms, int64_t *deadline_ms)
{
    if (c == NULL || c->in_callback || c->closing) {
        return SL_ERR_STATE;
    }
    *deadline_ms = timeout_ms < 0 ? INT64_MAX : slc_now_ms() + timeout_ms;
    return SL_OK;
}

/* The request's own timeout field: what is left of the call's, in int32. */
static int32_t wire_timeout(int64_t deadline_ms)
{
    int64_t left = deadline_ms - slc_now_ms();
    return (int32_t)SL_MAX(SL_MIN(left, (int64_t)INT32_MAX), (int64_t)1);
}

static struct kstr kstr_of(const char *s)
{
    return (struct kstr){s, (int32_t)strlen(s)};
}

static bool kstr_eq(struct kstr a, const char *s)
{
    return a.len >= 0 && strlen(s) == (size_t)a.len && memcmp(a.ptr, s, (size_t)a.len) == 0;
}

/* Kafka's string limit (int16 length) and non-empty. */
static bool name_ok(const char *s)
{
    return s != NULL && s[0] != '\0' && strlen(s) <= INT16_MAX;
}

/* ================================================================ metadata */

struct md_ctx {
    sl_client *c;
    struct pool pool;
    sl_metadata *md;
};

static int cmp_broker(const void *a, const void *b)
{
    const sl_broker_info *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

static int cmp_topic(const void *a, const void *b)
{
    return strcmp(((const sl_topic_info *)a)->name, ((const sl_topic_info *)b)->name);
}

static int cmp_partition(const void *a, const void *b)
{
    const sl_partition_info *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

/* A copy of a wire int32 array (count <= 0: none). */
static const int32_t *copy_ids(struct pool *p, struct karray a, size_t *count)
{
    *count = a.count > 0 ? (size_t)a.count : 0;
    int32_t *ids = pool_alloc(p, *count * sizeof(*ids));
    if (ids != NULL && *count > 0) {
        memcpy(ids, a.items, *count * sizeof(*ids));
    }
    return ids;
}

static void md_brokers(struct md_ctx *x, const struct kmsg_metadata_response *resp)
{
    const struct kmsg_metadata_response_metadata_response_broker *rb = resp->brokers.items;
    size_t n = resp->brokers.count > 0 ? (size_t)resp->brokers.count : 0;
    sl_metadata *md = x->md;
    md->brokers = pool_alloc(&x->pool, n * sizeof(*md->brokers));
    for (size_t i = 0; md->brokers != NULL && i < n; i++) {
        md->brokers[i] = (sl_broker_info){.id = rb[i].node_id,
                                          .host = pool_str0(&x->pool, rb[i].host),
                                          .port = rb[i].port,
                                          .rack = pool_str(&x->pool, rb[i].rack)};
        /* Later requests may go to any of them (leaders, coordinators). */
        if (rb[i].node_id >= 0 && rb[i].port > 0 && rb[i].port <= 65535 && rb[i].host.len > 0) {
            slc_broker_upsert(x->c, rb[i].node_id, rb[i].host.ptr, (size_t)rb[i].host.len,
                              (uint16_t)rb[i].port);
        }
    }
    md->broker_count = md->brokers != NULL ? n : 0;
    if (md->broker_count > 1) {
        qsort(md->brokers, md->broker_count, sizeof(*md->brokers), cmp_broker);
    }
}

static void md_topic(struct pool *p, sl_topic_info *t,
                     const struct kmsg_metadata_response_metadata_response_topic *rt)
{
    t->name = pool_str0(p, rt->name);
    memcpy(t->id, rt->topic_id, sizeof(t->id));
    t->internal = rt->is_internal;
    t->err = (sl_err)rt->error_code;
    const struct kmsg_metadata_response_metadata_response_partition *rp = rt->partitions.items;
    size_t n = rt->partitions.count > 0 ? (size_t)rt->partitions.count : 0;
    t->partitions = pool_alloc(p, n * sizeof(*t->partitions));
    for (size_t i = 0; t->partitions != NULL && i < n; i++) {
        sl_partition_info *pi = &t->partitions[i];
        pi->id = rp[i].partition_index;
        pi->err = (sl_err)rp[i].error_code;
        pi->leader = rp[i].leader_id;
        pi->leader_epoch = rp[i].leader_epoch;
        pi->replicas = copy_ids(p, rp[i].replica_nodes, &pi->replica_count);
        pi->isr = copy_ids(p, rp[i].isr_nodes, &pi->isr_count);
        pi->offline = copy_ids(p, rp[i].offline_replicas, &pi->offline_count);
    }
    t->partition_count = t->partitions != NULL ? n : 0;
    if (t->partition_count > 1) {
        qsort(t->partitions, t->partition_count, sizeof(*t->partitions), cmp_partition);
    }
}

static void md_answer(void *ctx, size_t slot, const void *resp_, int16_t version)
{
    (void)slot;
    (void)version;
    struct md_ctx *x = ctx;
    const struct kmsg_metadata_response *resp = resp_;
    pool_discard(&x->pool); /* a retry's answer replaces an earlier one */
    x->md = pool_root(&x->pool, sizeof(*x->md));
    if (x->md == NULL) {
        return;
    }
    x->md->cluster_id = pool_str(&x->pool, resp->cluster_id);
    x->md->controller_id = resp->controller_id;
    md_brokers(x, resp);
    const struct kmsg_metadata_response_metadata_response_topic *rt = resp->topics.items;
    size_t n = resp->topics.count > 0 ? (size_t)resp->topics.count : 0;
    x->md->topics = pool_alloc(&x->pool, n * sizeof(*x->md->topics));
    for (size_t i = 0; x->md->topics != NULL && i < n; i++) {
        md_topic(&x->pool, &x->md->topics[i], &rt[i]);
    }
    x->md->topic_count = x->md->topics != NULL ? n : 0;
    if (x->md->topic_count > 1 && !x->pool.failed) {
        qsort(x->md->topics, x->md->topic_count, sizeof(*x->md->topics), cmp_topic);
    }
}

/* Metadata of the named topics (all: every topic; count 0 and !all: none). */
static sl_err fetch_metadata(sl_client *c, const char *const *names, size_t count, bool all,
                             int64_t deadline_ms, sl_metadata **out)
{
    struct kmsg_metadata_request_metadata_request_topic *items =
        calloc(SL_MAX(count, (size_t)1), sizeof(*items));
    if (items == NULL) {
        return SL_ERR_NOMEM;
    }
    for (size_t i = 0; i < count; i++) {
        kmsg_init(&kmsg_metadata_request_metadata_request_topic_desc, &items[i]);
        items[i].name = kstr_of(names[i]);
    }
    struct kmsg_metadata_request rq;
    kmsg_init(&kmsg_metadata_request_desc, &rq);
    /* v1+: null asks for every topic, empty for none (v0 cannot say "none"). */
    rq.topics = all ? (struct karray){NULL, -1} : (struct karray){items, (int32_t)count};
    rq.allow_auto_topic_creation = false;
    struct md_ctx x = {.c = c};
    sl_err err = adm_request(c, ADM_ANY_BROKER, KMSG_API_METADATA, 1, INT16_MAX, &rq, md_answer, &x,
                             deadline_ms);
    free(items);
    *out = pool_finish(&err, &x.pool, x.md);
    return err;
}

sl_err sl_fetch_metadata(sl_client *c, const char *const *topics, size_t count, int timeout_ms,
                         sl_metadata **out)
{
    int64_t deadline_ms;
    sl_err err = adm_begin(c, timeout_ms, &deadline_ms);
    if (err != SL_OK || out == NULL || count > ADM_NAMES_MAX || (count > 0 && topics == NULL)) {
        return err != SL_OK ? err : SL_ERR_INVALID_ARG;
    }
    *out = NULL;
    for (size_t i = 0; i < count; i++) {
        if (!name_ok(topics[i])) {
            return SL_ERR_INVALID_ARG;
        }
    }
    return fetch_metadata(c, topics, count, topics == NULL, deadline_ms, out);
}

void sl_metadata_free(sl_metadata *md)
{
    pool_free_root(md);
}

/* The topic of that name in sorted metadata, or NULL. */
static const sl_topic_info *md_find_topic(const sl_metadata *md, const char *name)
{
    sl_topic_info key = {.name = name};
    return bsearch(&key, md->topics, md->topic_count, sizeof(key), cmp_topic);
}

static const sl_partition_info *md_find_partition(const sl_topic_info *t, int32_t id)
{
    sl_partition_info key = {.id = id};
    return bsearch(&key, t->partitions, t->partition_count, sizeof(key), cmp_partition);
}

/* The controller's node id, or ADM_ANY_BROKER when metadata does not name one. */
static sl_err find_controller(sl_client *c, int64_t deadline_ms, int32_t *node)
{
    sl_metadata *md = NULL;
    sl_err err = fetch_metadata(c, NULL, 0, false, deadline_ms, &md);
    if (err != SL_OK) {
        return err;
    }
    bool known = md->controller_id >= 0 && slc_broker_find(c, md->controller_id) != NULL;
    *node = known ? md->controller_id : ADM_ANY_BROKER;
    sl_metadata_free(md);
    return SL_OK;
}

/* ================================================================ topics */

struct topics_ctx {
    struct pool pool;
    sl_topic_results *res;
};

static sl_topic_result *results_new(struct topics_ctx *x, int32_t count)
{
    pool_discard(&x->pool);
    x->res = pool_root(&x->pool, sizeof(*x->res));
    size_t n = count > 0 ? (size_t)count : 0;
    sl_topic_result *r = x->res != NULL ? pool_alloc(&x->pool, n * sizeof(*r)) : NULL;
    if (r != NULL) {
        x->res->results = r;
        x->res->count = n;
    }
    return r;
}

static void create_answer(void *ctx, size_t slot, const void *resp_, int16_t version)
{
    (void)slot;
    (void)version;
    struct topics_ctx *x = ctx;
    const struct kmsg_create_topics_response *resp = resp_;
    const struct kmsg_create_topics_response_creatable_topic_result *rt = resp->topics.items;
    sl_topic_result *r = results_new(x, resp->topics.count);
    for (int32_t i = 0; r != NULL && i < resp->topics.count; i++) {
        r[i] = (sl_topic_result){pool_str0(&x->pool, rt[i].name), (sl_err)rt[i].error_code,
                                 pool_str(&x->pool, rt[i].error_message)};
    }
}

static void delete_answer(void *ctx, size_t slot, const void *resp_, int16_t version)
{
    (void)slot;
    (void)version;
    struct topics_ctx *x = ctx;
    const struct kmsg_delete_topics_response *resp = resp_;
    const struct kmsg_delete_topics_response_deletable_topic_result *rt = resp->responses.items;
    sl_topic_result *r = results_new(x, resp->responses.count);
    for (int32_t i = 0; r != NULL && i < resp->responses.count; i++) {
        r[i] = (sl_topic_result){pool_str0(&x->pool, rt[i].name), (sl_err)rt[i].error_code,
                                 pool_str(&x->pool, rt[i].error_message)};
    }
}

/* The outcome of a create or delete: its results, or the first topic's error. */
static sl_err topics_finish(struct topics_ctx *x, sl_err err, sl_topic_results **out)
{
    *out = pool_finish(&err, &x->pool, x->res);
    if (err != SL_OK) {
        return err;
    }
    for (size_t i = 0; i < x->res->count; i++) {
        if (x->res->results[i].err != SL_OK) {
            return x->res->results[i].err;
        }
    }
    return SL_OK;
}

/* The wire form of one topic to create; its configs go to cfg. */
static bool create_item(const sl_new_topic *t,
                        struct kmsg_create_topics_request_creatable_topic *it,
                        struct kmsg_create_topics_request_creatable_topic_config *cfg)
{
    if (t->name == NULL || !slc_topic_name_valid(t->name, strlen(t->name)) || t->partitions < -1 ||
        t->partitions == 0 || t->replication_factor < -1 || t->replication_factor == 0 ||
        t->config_count > ADM_NAMES_MAX || (t->config_count > 0 && t->configs == NULL)) {
        return false;
    }
    kmsg_init(&kmsg_create_topics_request_creatable_topic_desc, it);
    it->name = kstr_of(t->name);
    it->num_partitions = t->partitions;
    it->replication_factor = t->replication_factor;
    for (size_t k = 0; k < t->config_count; k++) {
        const char *kv = t->configs[k];
        const char *eq = kv != NULL ? strchr(kv, '=') : NULL;
        if (eq == NULL || eq == kv || eq - kv > INT16_MAX || strlen(eq + 1) > INT16_MAX) {
            return false;
        }
        kmsg_init(&kmsg_create_topics_request_creatable_topic_config_desc, &cfg[k]);
        cfg[k].name = (struct kstr){kv, (int32_t)(eq - kv)};
        cfg[k].value = kstr_of(eq + 1);
    }
    it->configs = (struct karray){t->config_count > 0 ? cfg : NULL, (int32_t)t->config_count};
    return true;
}

sl_err sl_create_topics(sl_client *c, const sl_new_topic *topics, size_t count, int validate_only,
                        int timeout_ms, sl_topic_results **out)
{
    int64_t deadline_ms;
    sl_err err = adm_begin(c, timeout_ms, &deadline_ms);
    if (err != SL_OK || out == NULL || topics == NULL || count == 0 || count > ADM_NAMES_MAX) {
        return err != SL_OK ? err : SL_ERR_INVALID_ARG;
    }
    *out = NULL;
    size_t configs = 0;
    for (size_t i = 0; i < count; i++) {
        configs += SL_MIN(topics[i].config_count, (size_t)ADM_NAMES_MAX + 1);
    }
    struct kmsg_create_topics_request_creatable_topic *items = calloc(count, sizeof(*items));
    struct kmsg_create_topics_request_creatable_topic_config *cfg =
        calloc(SL_MAX(configs, (size_t)1), sizeof(*cfg));
    err = items == NULL || cfg == NULL ? SL_ERR_NOMEM : SL_OK;
    for (size_t i = 0, k = 0; err == SL_OK && i < count; k += topics[i].config_count, i++) {
        err = create_item(&topics[i], &items[i], cfg + k) ? SL_OK : SL_ERR_INVALID_ARG;
    }
    int32_t node = ADM_ANY_BROKER;
    if (err == SL_OK) {
        err = find_controller(c, deadline_ms, &node);
    }
    struct topics_ctx x = {0};
    if (err == SL_OK) {
        struct kmsg_create_topics_request rq;
        kmsg_init(&kmsg_create_topics_request_desc, &rq);
        rq.topics = (struct karray){items, (int32_t)count};
        rq.timeout_ms = wire_timeout(deadline_ms);
        rq.validate_only = validate_only != 0;
        /* validate_only exists from v1 on: never let v0 create for real. */
        err = adm_request(c, node, KMSG_API_CREATE_TOPICS, validate_only ? 1 : 0, INT16_MAX, &rq,
                          create_answer, &x, deadline_ms);
        err = topics_finish(&x, err, out);
    }
    free(items);
    free(cfg);
    return err;
}

sl_err sl_delete_topics(sl_client *c, const char *const *names, size_t count, int timeout_ms,
                        sl_topic_results **out)
{
    int64_t deadline_ms;
    sl_err err = adm_begin(c, timeout_ms, &deadline_ms);
    if (err != SL_OK || out == NULL || names == NULL || count == 0 || count > ADM_NAMES_MAX) {
        return err != SL_OK ? err : SL_ERR_INVALID_ARG;
    }
    *out = NULL;
    struct kstr *by_name = calloc(count, sizeof(*by_name));
    struct kmsg_delete_topics_request_delete_topic_state *states = calloc(count, sizeof(*states));
    err = by_name == NULL || states == NULL ? SL_ERR_NOMEM : SL_OK;
    for (size_t i = 0; err == SL_OK && i < count; i++) {
        if (!name_ok(names[i])) {
            err = SL_ERR_INVALID_ARG;
            break;
        }
        by_name[i] = kstr_of(names[i]);
        kmsg_init(&kmsg_delete_topics_request_delete_topic_state_desc, &states[i]);
        states[i].name = by_name[i];
    }
    int32_t node = ADM_ANY_BROKER;
    if (err == SL_OK) {
        err = find_controller(c, deadline_ms, &node);
    }
    if (err == SL_OK) {
        /* Both forms: the codec writes the one the version has (names up
         * to v5, topic states from v6). */
        struct kmsg_delete_topics_request rq;
        kmsg_init(&kmsg_delete_topics_request_desc, &rq);
        rq.topic_names = (struct karray){by_name, (int32_t)count};
        rq.topics = (struct karray){states, (int32_t)count};
        rq.timeout_ms = wire_timeout(deadline_ms);
        struct topics_ctx x = {0};
        err = adm_request(c, node, KMSG_API_DELETE_TOPICS, 0, INT16_MAX, &rq, delete_answer, &x,
                          deadline_ms);
        err = topics_finish(&x, err, out);
    }
    free(by_name);
    free(states);
    return err;
}

void sl_topic_results_free(sl_topic_results *results)
{
    pool_free_root(results);
}

/* ================================================================ configs */

struct configs_ctx {
    const char *topic;
    struct pool pool;
    sl_configs *res;
    sl_err err; /* the resource's error */
};

static int cmp_config(const void *a, const void *b)
{
    return strcmp(((const sl_config_entry *)a)->name, ((const sl_config_entry *)b)->name);
}

static void configs_answer(void *ctx, size_t slot, const void *resp_, int16_t version)
{
    (void)slot;
    struct configs_ctx *x = ctx;
    const struct kmsg_describe_configs_response *resp = resp_;
    const struct kmsg_describe_configs_response_describe_configs_result *r = resp->results.items;
    x->err = SL_ERR_BAD_RESPONSE;
    for (int32_t i = 0; i < resp->results.count; i++) {
        if (r[i].resource_type != RESOURCE_TOPIC || !kstr_eq(r[i].resource_name, x->topic)) {
            continue;
        }
        x->err = (sl_err)r[i].error_code;
        const struct kmsg_describe_configs_response_describe_configs_resource_result *rc =
            r[i].configs.items;
        size_t n = r[i].configs.count > 0 ? (size_t)r[i].configs.count : 0;
        pool_discard(&x->pool);
        x->res = pool_root(&x->pool, sizeof(*x->res));
        sl_config_entry *e = x->res != NULL ? pool_alloc(&x->pool, n * sizeof(*e)) : NULL;
        for (size_t k = 0; e != NULL && k < n; k++) {
            /* v0 says whether a value is a default; later versions say where
             * it comes from, and a topic's own settings are the non-defaults. */
            int source = version >= 1 ? rc[k].config_source : -1;
            e[k] = (sl_config_entry){
                .name = pool_str0(&x->pool, rc[k].name),
                .value = pool_str(&x->pool, rc[k].value),
                .source = source >= 0 ? source : SL_CONFIG_SOURCE_UNKNOWN,
                .read_only = rc[k].read_only,
                .is_default = version >= 1 ? source != SL_CONFIG_SOURCE_TOPIC : rc[k].is_default,
                .sensitive = rc[k].is_sensitive,
            };
        }
        if (e != NULL) {
            x->res->entries = e;
            x->res->count = n;
            qsort(e, n, sizeof(*e), cmp_config);
        }
        return;
    }
}

sl_err sl_describe_topic_configs(sl_client *c, const char *topic, int timeout_ms, sl_configs **out)
{
    int64_t deadline_ms;
    sl_err err = adm_begin(c, timeout_ms, &deadline_ms);
    if (err != SL_OK || out == NULL || !name_ok(topic)) {
        return err != SL_OK ? err : SL_ERR_INVALID_ARG;
    }
    *out = NULL;
    struct kmsg_describe_configs_request_describe_configs_resource res;
    kmsg_init(&kmsg_describe_configs_request_describe_configs_resource_desc, &res);
    res.resource_type = RESOURCE_TOPIC;
    res.resource_name = kstr_of(topic);
    res.configuration_keys = (struct karray){NULL, -1}; /* every key */
    struct kmsg_describe_configs_request rq;
    kmsg_init(&kmsg_describe_configs_request_desc, &rq);
    rq.resources = (struct karray){&res, 1};
    struct configs_ctx x = {.topic = topic};
    err = adm_request(c, ADM_ANY_BROKER, KMSG_API_DESCRIBE_CONFIGS, 0, INT16_MAX, &rq,
                      configs_answer, &x, deadline_ms);
    err = err != SL_OK ? err : x.err;
    *out = pool_finish(&err, &x.pool, x.res);
    return err;
}

void sl_configs_free(sl_configs *configs)
{
    pool_free_root(configs);
}

/* ================================================================ partitions */

/*
 * A caller's partition, sorted by (node, topic, partition) so that each
 * node's request and each topic within it are runs of the sorted array.
 */
struct tp_ref {
    int32_t node;
    const char *topic;
    int32_t partition;
    size_t index; /* in the caller's array */
    bool answered;
};

static int cmp_ref(const void *a, const void *b)
{
    const struct tp_ref *x = a, *y = b;
    if (x->node != y->node) {
        return (x->node > y->node) - (x->node < y->node);
    }
    int d = strcmp(x->topic, y->topic);
    return d != 0 ? d : (x->partition > y->partition) - (x->partition < y->partition);
}

/* The ref of (topic, partition) among refs [from, to), or NULL. */
static struct tp_ref *ref_find(struct tp_ref *refs, size_t from, size_t to, struct kstr topic,
                               int32_t partition)
{
    while (from < to) {
        size_t mid = from + (to - from) / 2;
        int d = strncmp(refs[mid].topic, topic.ptr, (size_t)SL_MAX(topic.len, 0));
        if (d == 0 && refs[mid].topic[SL_MAX(topic.len, 0)] != '\0') {
            d = 1; /* the ref's name is longer */
        }
        if (d == 0) {
            d = (refs[mid].partition > partition) - (refs[mid].partition < partition);
        }
        if (d == 0) {
            return &refs[mid];
        }
        if (d < 0) {
            from = mid + 1;
        } else {
            to = mid;
        }
    }
    return NULL;
}

/* Runs of equal node in sorted refs: slot i covers [starts[i], starts[i+1]). */
static size_t node_runs(const struct tp_ref *refs, size_t n, size_t *starts)
{
    size_t runs = 0;
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || refs[i].node != refs[i - 1].node) {
            starts[runs++] = i;
        }
    }
    starts[runs] = n;
    return runs;
}

static bool parts_ok(const sl_topic_partition *parts, size_t count)
{
    if (parts == NULL || count == 0 || count > ADM_NAMES_MAX) {
        return false;
    }
    for (size_t i = 0; i < count; i++) {
        if (!name_ok(parts[i].topic) || parts[i].partition < 0) {
            return false;
        }
    }
    return true;
}

/* ================================================================ list offsets */

struct offsets_ctx {
    sl_topic_partition *parts;
    struct tp_ref *refs;
    size_t *starts; /* per slot, into refs */
};

static void offsets_answer(void *ctx, size_t slot, const void *resp_, int16_t version)
{
    (void)version;
    struct offsets_ctx *x = ctx;
    const struct kmsg_list_offsets_response *resp = resp_;
    const struct kmsg_list_offsets_response_list_offsets_topic_response *rt = resp->topics.items;
    for (int32_t t = 0; t < resp->topics.count; t++) {
        const struct kmsg_list_offsets_response_list_offsets_partition_response *rp =
            rt[t].partitions.items;
        for (int32_t i = 0; i < rt[t].partitions.count; i++) {
            struct tp_ref *r = ref_find(x->refs, x->starts[slot], x->starts[slot + 1], rt[t].name,
                                        rp[i].partition_index);
            if (r == NULL || r->answered) {
                continue; /* not asked: ignored */
            }
            r->answered = true;
            sl_topic_partition *p = &x->parts[r->index];
            p->err = (sl_err)rp[i].error_code;
            p->offset = p->err == SL_OK ? rp[i].offset : -1;
        }
    }
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Each partition's leader from metadata into refs; partitions without one
 * get their error at once (node -1, not sent). */
static sl_err offsets_leaders(sl_client *c, sl_topic_partition *parts, size_t count,
                              struct tp_ref *refs, int64_t deadline_ms)
{
    const char **names = calloc(count, sizeof(*names));
    if (names == NULL) {
        return SL_ERR_NOMEM;
    }
    for (size_t i = 0; i < count; i++) {
        names[i] = parts[i].topic;
    }
    /* Each topic once: a topic's partitions would otherwise name it as
     * often as they are asked for. */
    qsort(names, count, sizeof(*names), cmp_name);
    size_t unique = 0;
    for (size_t i = 0; i < count; i++) {
        if (unique == 0 || strcmp(names[unique - 1], names[i]) != 0) {
            names[unique++] = names[i];
        }
    }
    sl_metadata *md = NULL;
    sl_err err = fetch_metadata(c, names, unique, false, deadline_ms, &md);
    free(names);
    if (err != SL_OK) {
        return err;
    }
    for (size_t i = 0; i < count; i++) {
        const sl_topic_info *t = md_find_topic(md, parts[i].topic);
        const sl_partition_info *p = t != NULL ? md_find_partition(t, parts[i].partition) : NULL;
        sl_err e = t == NULL || p == NULL ? SL_ERR_UNKNOWN_TOPIC_OR_PARTITION
                   : t->err != SL_OK      ? t->err
                   : p->leader < 0 || slc_broker_find(c, p->leader) == NULL
                       ? SL_ERR_LEADER_NOT_AVAILABLE
                       : SL_OK;
        refs[i] = (struct tp_ref){e == SL_OK ? p->leader : -1, parts[i].topic, parts[i].partition,
                                  i, e != SL_OK};
        parts[i].err = e;
    }
    sl_metadata_free(md);
    qsort(refs, count, sizeof(*refs), cmp_ref);
    for (size_t i = 1; i < count; i++) {
        if (refs[i].partition == refs[i - 1].partition &&
            strcmp(refs[i].topic, refs[i - 1].topic) == 0) {
            return SL_ERR_INVALID_ARG; /* twice in one request: Kafka refuses it */
        }
    }
    return SL_OK;
}

/* The ListOffsets body of refs [from, to) (one node): a topic per run. */
static void offsets_body(const sl_topic_partition *parts, const struct tp_ref *refs, size_t from,
                         size_t to, struct kmsg_list_offsets_request_list_offsets_topic *topics,
                         struct kmsg_list_offsets_request_list_offsets_partition *items,
                         struct kmsg_list_offsets_request *rq)
{
    int32_t nt = 0;
    for (size_t i = from; i < to; i++) {
        if (i == from || strcmp(refs[i].topic, refs[i - 1].topic) != 0) {
            kmsg_init(&kmsg_list_offsets_request_list_offsets_topic_desc, &topics[nt]);
            topics[nt].name = kstr_of(refs[i].topic);
            topics[nt].partitions = (struct karray){&items[i], 0};
            nt++;
        }
        kmsg_init(&kmsg_list_offsets_request_list_offsets_partition_desc, &items[i]);
        items[i].partition_index = refs[i].partition;
        int64_t o = parts[refs[i].index].offset;
        /* Kafka's -2 earliest, -1 latest, else a timestamp. */
        items[i].timestamp = o == SL_OFFSET_BEGINNING ? -2
                             : o == SL_OFFSET_END     ? -1
                                                      : o - SL_OFFSET_TIMESTAMP_BASE;
        topics[nt - 1].partitions.count++;
    }
    kmsg_init(&kmsg_list_offsets_request_desc, rq);
    rq->replica_id = -1;
    rq->isolation_level = 0; /* read uncommitted: the high watermark */
    rq->topics = (struct karray){topics, nt};
}

static sl_err offsets_send(sl_client *c, sl_topic_partition *parts, size_t count,
                           struct tp_ref *refs, int64_t deadline_ms)
{
    size_t skip = 0; /* refs of node -1 sort first: not sent */
    while (skip < count && refs[skip].node < 0) {
        skip++;
    }
    size_t n = count - skip;
    size_t *starts = calloc(n + 1, sizeof(*starts));
    struct adm_slot *slots = calloc(SL_MAX(n, (size_t)1), sizeof(*slots));
    struct kmsg_list_offsets_request *bodies = calloc(SL_MAX(n, (size_t)1), sizeof(*bodies));
    struct kmsg_list_offsets_request_list_offsets_topic *topics = calloc(count, sizeof(*topics));
    struct kmsg_list_offsets_request_list_offsets_partition *items = calloc(count, sizeof(*items));
    sl_err err = SL_ERR_NOMEM;
    if (starts != NULL && slots != NULL && bodies != NULL && topics != NULL && items != NULL) {
        size_t runs = node_runs(refs + skip, n, starts);
        for (size_t s = 0; s < runs; s++) {
            offsets_body(parts, refs + skip, starts[s], starts[s + 1], topics + skip + starts[s],
                         items + skip, &bodies[s]);
            slots[s] = (struct adm_slot){.node = refs[skip + starts[s]].node, .body = &bodies[s]};
        }
        struct offsets_ctx x = {parts, refs + skip, starts};
        struct adm_wait w = {
            c, KMSG_API_LIST_OFFSETS, 1, INT16_MAX, offsets_answer, &x, slots, runs, runs};
        err = runs > 0 ? adm_run(&w, deadline_ms) : SL_OK;
        for (size_t s = 0; s < runs; s++) { /* a failed slot's partitions fail with it */
            for (size_t i = starts[s]; i < starts[s + 1]; i++) {
                sl_err e = !slots[s].done             ? err
                           : slots[s].err != SL_OK    ? slots[s].err
                           : !refs[skip + i].answered ? SL_ERR_BAD_RESPONSE
                                                      : SL_OK;
                if (e != SL_OK) {
                    parts[refs[skip + i].index].err = e;
                }
            }
        }
    }
    free(starts);
    free(slots);
    free(bodies);
    free(topics);
    free(items);
    return err;
}

sl_err sl_list_offsets(sl_client *c, sl_topic_partition *parts, size_t count, int timeout_ms)
{
    int64_t deadline_ms;
    sl_err err = adm_begin(c, timeout_ms, &deadline_ms);
    if (err != SL_OK || !parts_ok(parts, count)) {
        return err != SL_OK ? err : SL_ERR_INVALID_ARG;
    }
    for (size_t i = 0; i < count; i++) {
        int64_t o = parts[i].offset;
        if (o != SL_OFFSET_BEGINNING && o != SL_OFFSET_END &&
            (o < SL_OFFSET_TIMESTAMP_BASE || o >= SL_OFFSET_BEGINNING)) {
            return SL_ERR_INVALID_ARG;
        }
    }
    struct tp_ref *refs = calloc(count, sizeof(*refs));
    if (refs == NULL) {
        return SL_ERR_NOMEM;
    }
    err = offsets_leaders(c, parts, count, refs, deadline_ms);
    if (err == SL_OK) {
        err = offsets_send(c, parts, count, refs, deadline_ms);
    }
    for (size_t i = 0; i < count; i++) {
        if (err != SL_OK && parts[i].err == SL_OK) {
            parts[i].err = err; /* the call failed before this one was answered */
        }
        if (parts[i].err != SL_OK) {
            parts[i].offset = -1;
        }
    }
    free(refs);
    for (size_t i = 0; err == SL_OK && i < count; i++) {
        err = parts[i].err;
    }
    return err;
}

/* ================================================================ groups */

struct coord_ctx {
    sl_client *c;
    const char *group;
    int32_t node;
    sl_err err;
};

static void coord_answer(void *ctx, size_t slot, const void *resp_, int16_t version)
{
    (void)slot;
    struct coord_ctx *x = ctx;
    const struct kmsg_find_coordinator_response *resp = resp_;
    int16_t code = resp->error_code;
    int32_t node = resp->node_id, port = resp->port;
    struct kstr host = resp->host;
    if (version >= 4) {
        /* One key asked, so one coordinator answered; it must be ours. */
        const struct kmsg_find_coordinator_response_coordinator *k = resp->coordinators.items;
        if (resp->coordinators.count != 1 || !kstr_eq(k->key, x->group)) {
            x->err = SL_ERR_BAD_RESPONSE;
            return;
        }
        code = k->error_code;
        node = k->node_id;
        port = k->port;
        host = k->host;
    }
    x->err = (sl_err)code;
    if (code != KAFKA_ERR_NONE) {
        return;
    }
    if (node < 0 || port <= 0 || port > 65535 || host.len <= 0 ||
        slc_broker_upsert(x->c, node, host.ptr, (size_t)host.len, (uint16_t)port) == NULL) {
        x->err = SL_ERR_BAD_RESPONSE;
        return;
    }
    x->node = node;
}

static sl_err find_coordinator(sl_client *c, const char *group, int64_t deadline_ms, int32_t *node)
{
    struct kstr key = kstr_of(group);
    struct kmsg_find_coordinator_request rq;
    kmsg_init(&kmsg_find_coordinator_request_desc, &rq);
    rq.key = key;                                   /* up to v3 */
    rq.key_type = 0;                                /* a group */
    rq.coordinator_keys = (struct karray){&key, 1}; /* v4+ */
    struct coord_ctx x = {c, group, -1, SL_OK};
    sl_err err = adm_request(c, ADM_ANY_BROKER, KMSG_API_FIND_COORDINATOR, 0, INT16_MAX, &rq,
                             coord_answer, &x, deadline_ms);
    err = err != SL_OK ? err : x.err;
    *node = x.node;
    return err;
}

/* A step at the coordinator: its answer, or an error to retry on. */
typedef sl_err group_step_fn(sl_client *c, int32_t node, void *ctx, int64_t deadline_ms);

/* Errors after which the coordinator is looked up again. */
static bool coordinator_moved(sl_err err)
{
    return err == SL_ERR_NOT_COORDINATOR || err == SL_ERR_COORDINATOR_NOT_AVAILABLE ||
           err == SL_ERR_COORDINATOR_LOAD_IN_PROGRESS || err == SL_ERR_TRANSPORT;
}

static sl_err with_coordinator(sl_client *c, const char *group, group_step_fn *step, void *ctx,
                               int64_t deadline_ms)
{
    sl_err err = SL_OK;
    for (uint32_t attempt = 1; attempt <= ADM_ATTEMPTS_MAX; attempt++) {
        int32_t node = -1;
        err = find_coordinator(c, group, deadline_ms, &node);
        if (err == SL_OK) {
            err = step(c, node, ctx, deadline_ms);
        }
        if (!coordinator_moved(err)) {
            return err;
        }
        int64_t backoff_ms = slc_backoff_ms(c->conf->retry_backoff_ms,
                                            c->conf->retry_backoff_max_ms, attempt, &c->rng);
        if (slc_now_ms() + backoff_ms >= deadline_ms) {
            return err;
        }
        adm_poll(c, slc_now_ms() + backoff_ms, never, NULL);
    }
    return err;
}

/* ---- list ---- */

struct list_ctx {
    struct pool pool; /* the strings; the array is built after */
    sl_group_listing *items;
    size_t count, cap;
    sl_err err; /* the first broker's error */
};

static void list_answer(void *ctx, size_t slot, const void *resp_, int16_t version)
{
    (void)slot;
    struct list_ctx *x = ctx;
    const struct kmsg_list_groups_response *resp = resp_;
    if (resp->error_code != KAFKA_ERR_NONE) {
        x->err = x->err != SL_OK ? x->err : (sl_err)resp->error_code;
        return;
    }
    const struct kmsg_list_groups_response_listed_group *g = resp->groups.items;
    size_t n = resp->groups.count > 0 ? (size_t)resp->groups.count : 0;
    if (x->count + n > x->cap) {
        size_t cap = SL_MAX(x->cap * 2, x->count + n);
        sl_group_listing *more = realloc(x->items, cap * sizeof(*more));
        if (more == NULL) {
            x->pool.failed = true;
            return;
        }
        x->items = more;
        x->cap = cap;
    }
    for (size_t i = 0; i < n; i++) {
        x->items[x->count++] = (sl_group_listing){
            .group_id = pool_str0(&x->pool, g[i].group_id),
            .protocol_type = pool_str0(&x->pool, g[i].protocol_type),
            .state = version >= 4 ? pool_str0(&x->pool, g[i].group_state) : NULL,
        };
    }
}

static int cmp_listing(const void *a, const void *b)
{
    return strcmp(((const sl_group_listing *)a)->group_id, ((const sl_group_listing *)b)->group_id);
}

/* The result: the root first in its own pool, then the strings' chain. */
static sl_group_list *list_result(struct list_ctx *x)
{
    struct pool p = {0};
    sl_group_list *res = pool_root(&p, sizeof(*res));
    sl_group_listing *items = pool_alloc(&p, x->count * sizeof(*items));
    if (res == NULL || items == NULL || x->pool.failed) {
        pool_discard(&p);
        return NULL;
    }
    if (x->count > 0) {
        memcpy(items, x->items, x->count * sizeof(*items));
        qsort(items, x->count, sizeof(*items), cmp_listing);
    }
    res->groups = items;
    res->count = x->count;
    p.last->next = x->pool.first; /* the strings join the result's chain */
    x->pool = (struct pool){0};
    return res;
}

sl_err sl_list_groups(sl_client *c, int timeout_ms, sl_group_list **out)
{
    int64_t deadline_ms;
    sl_err err = adm_begin(c, timeout_ms, &deadline_ms);
    if (err != SL_OK || out == NULL) {
        return err != SL_OK ? err : SL_ERR_INVALID_ARG;
    }
    *out = NULL;
    sl_metadata *md = NULL;
    err = fetch_metadata(c, NULL, 0, false, deadline_ms, &md);
    if (err != SL_OK) {
        return err;
    }
    /* Each broker knows the groups it coordinates: ask them all. */
    struct adm_slot *slots = calloc(SL_MAX(md->broker_count, (size_t)1), sizeof(*slots));
    struct kmsg_list_groups_request rq;
    kmsg_init(&kmsg_list_groups_request_desc, &rq); /* no filters: every group */
    struct list_ctx x = {0};
    err = slots == NULL ? SL_ERR_NOMEM : SL_OK;
    for (size_t i = 0; err == SL_OK && i < md->broker_count; i++) {
        slots[i] = (struct adm_slot){.node = md->brokers[i].id, .body = &rq};
    }
    if (err == SL_OK) {
        struct adm_wait w = {c,         KMSG_API_LIST_GROUPS, 0,
                             INT16_MAX, list_answer,          &x,
                             slots,     md->broker_count,     md->broker_count};
        err = adm_run(&w, deadline_ms);
        err = err != SL_OK ? err : x.err;
    }
    if (err == SL_OK && (*out = list_result(&x)) == NULL) {
        err = SL_ERR_NOMEM;
    }
    pool_discard(&x.pool);
    free(x.items);
    free(slots);
    sl_metadata_free(md);
    return err;
}

void sl_group_list_free(sl_group_list *list)
{
    pool_free_root(list);
}

/* ---- describe ---- */

/* The consumer protocol's assignment (layout above) into m; false when the
 * bytes do not decode (m gets no assignment then). */
static bool decode_assignment(struct pool *p, struct kbytes bytes, sl_group_member *m)
{
    struct reader r = {bytes.ptr, bytes.len > 0 ? (size_t)bytes.len : 0, false};
    int16_t version = reader_i16(&r);
    int32_t topics = reader_i32(&r);
    /* Each topic takes at least 6 bytes: a count above that is a lie. */
    if (r.bad || version < 0 || topics < 0 || (size_t)topics > r.left / 6) {
        return false;
    }
    sl_member_topic *t = pool_alloc(p, (size_t)topics * sizeof(*t));
    for (int32_t i = 0; t != NULL && i < topics; i++) {
        int16_t len = reader_i16(&r);
        const uint8_t *name = len >= 0 ? reader_take(&r, (size_t)len) : NULL;
        int32_t parts = reader_i32(&r);
        if (r.bad || name == NULL || parts < 0 || (size_t)parts > r.left / 4) {
            return false;
        }
        t[i].topic = pool_str(p, (struct kstr){(const char *)name, len});
        t[i].partitions = pool_alloc(p, (size_t)parts * sizeof(int32_t));
        for (int32_t k = 0; t[i].partitions != NULL && k < parts; k++) {
            t[i].partitions[k] = reader_i32(&r);
        }
        t[i].partition_count = (size_t)parts;
    }
    if (t == NULL || r.bad) {
        return false;
    }
    m->assignment = t;
    m->assignment_count = (size_t)topics;
    return true;
}

struct describe_ctx {
    const char *group;
    struct pool pool;
    sl_group_description *res;
    sl_err err;
};

static void describe_members(struct describe_ctx *x,
                             const struct kmsg_describe_groups_response_described_group *g)
{
    const struct kmsg_describe_groups_response_described_group_member *m = g->members.items;
    size_t n = g->members.count > 0 ? (size_t)g->members.count : 0;
    sl_group_member *out = pool_alloc(&x->pool, n * sizeof(*out));
    bool consumer = kstr_eq(g->protocol_type, "consumer");
    for (size_t i = 0; out != NULL && i < n; i++) {
        out[i].member_id = pool_str0(&x->pool, m[i].member_id);
        out[i].group_instance_id = pool_str(&x->pool, m[i].group_instance_id);
        out[i].client_id = pool_str0(&x->pool, m[i].client_id);
        out[i].host = pool_str0(&x->pool, m[i].client_host);
        if (consumer) {
            decode_assignment(&x->pool, m[i].member_assignment, &out[i]);
        }
    }
    x->res->members = out;
    x->res->member_count = out != NULL ? n : 0;
}

static void describe_answer(void *ctx, size_t slot, const void *resp_, int16_t version)
{
    (void)slot;
    (void)version;
    struct describe_ctx *x = ctx;
    const struct kmsg_describe_groups_response *resp = resp_;
    const struct kmsg_describe_groups_response_described_group *g = resp->groups.items;
    if (resp->groups.count != 1 || !kstr_eq(g->group_id, x->group)) {
        x->err = SL_ERR_BAD_RESPONSE;
        return;
    }
    x->err = (sl_err)g->error_code;
    pool_discard(&x->pool);
    x->res = pool_root(&x->pool, sizeof(*x->res));
    if (x->res == NULL) {
        return;
    }
    x->res->group_id = pool_str0(&x->pool, g->group_id);
    x->res->state = pool_str0(&x->pool, g->group_state);
    x->res->protocol_type = pool_str0(&x->pool, g->protocol_type);
    x->res->protocol = pool_str0(&x->pool, g->protocol_data);
    describe_members(x, g);
}

static sl_err describe_step(sl_client *c, int32_t node, void *ctx, int64_t deadline_ms)
{
    struct describe_ctx *x = ctx;
    struct kstr name = kstr_of(x->group);
    struct kmsg_describe_groups_request rq;
    kmsg_init(&kmsg_describe_groups_request_desc, &rq);
    rq.groups = (struct karray){&name, 1};
    x->err = SL_OK;
    sl_err err = adm_request(c, node, KMSG_API_DESCRIBE_GROUPS, 0, INT16_MAX, &rq, describe_answer,
                             x, deadline_ms);
    err = err != SL_OK ? err : x->err;
    if (err == SL_OK && x->res != NULL) {
        x->res->coordinator_id = node;
    }
    return err;
}

static bool group_ok(const char *group)
{
    return name_ok(group);
}

sl_err sl_describe_group(sl_client *c, const char *group, int timeout_ms,
                         sl_group_description **out)
{
    int64_t deadline_ms;
    sl_err err = adm_begin(c, timeout_ms, &deadline_ms);
    if (err != SL_OK || out == NULL || !group_ok(group)) {
        return err != SL_OK ? err : SL_ERR_INVALID_ARG;
    }
    *out = NULL;
    struct describe_ctx x = {.group = group};
    err = with_coordinator(c, group, describe_step, &x, deadline_ms);
    *out = pool_finish(&err, &x.pool, x.res);
    return err;
}

void sl_group_description_free(sl_group_description *description)
{
    pool_free_root(description);
}

/* ---- committed offsets ---- */

struct fetch_ctx {
    const char *group;
    const sl_topic_partition *parts; /* NULL: every partition */
    size_t count;
    struct pool pool;
    sl_group_offsets *res;
    sl_err err; /* the group's */
};

static int cmp_tp(const void *a, const void *b)
{
    const sl_topic_partition *x = a, *y = b;
    int d = strcmp(x->topic, y->topic);
    return d != 0 ? d : (x->partition > y->partition) - (x->partition < y->partition);
}

/* One topic's committed offsets into out[*n]; its partitions, up to v7. */
static void fetch_topic_v0(struct pool *p,
                           const struct kmsg_offset_fetch_response_offset_fetch_response_topic *t,
                           sl_topic_partition *out, size_t *n)
{
    const struct kmsg_offset_fetch_response_offset_fetch_response_partition *pa =
        t->partitions.items;
    const char *name = pool_str0(p, t->name);
    for (int32_t k = 0; k < t->partitions.count; k++) {
        out[(*n)++] = (sl_topic_partition){name, pa[k].partition_index, pa[k].committed_offset,
                                           (sl_err)pa[k].error_code};
    }
}

/* The same from v8 on (groups). */
static void fetch_topic_v8(struct pool *p,
                           const struct kmsg_offset_fetch_response_offset_fetch_response_topics *t,
                           sl_topic_partition *out, size_t *n)
{
    const struct kmsg_offset_fetch_response_offset_fetch_response_partitions *pa =
        t->partitions.items;
    const char *name = pool_str0(p, t->name);
    for (int32_t k = 0; k < t->partitions.count; k++) {
        out[(*n)++] = (sl_topic_partition){name, pa[k].partition_index, pa[k].committed_offset,
                                           (sl_err)pa[k].error_code};
    }
}

/* Partitions in an answer's topics, in either layout. */
static size_t fetch_count(struct karray topics, int16_t version)
{
    size_t n = 0;
    for (int32_t t = 0; t < topics.count; t++) {
        int32_t k = version >= 8
                        ? ((const struct kmsg_offset_fetch_response_offset_fetch_response_topics *)
                               topics.items)[t]
                              .partitions.count
                        : ((const struct kmsg_offset_fetch_response_offset_fetch_response_topic *)
                               topics.items)[t]
                              .partitions.count;
        n += k > 0 ? (size_t)k : 0;
    }
    return n;
}

static void fetch_answer(void *ctx, size_t slot, const void *resp_, int16_t version)
{
    (void)slot;
    struct fetch_ctx *x = ctx;
    const struct kmsg_offset_fetch_response *resp = resp_;
    const struct kmsg_offset_fetch_response_offset_fetch_response_group *g = resp->groups.items;
    if (version >= 8 && (resp->groups.count != 1 || !kstr_eq(g->group_id, x->group))) {
        x->err = SL_ERR_BAD_RESPONSE;
        return;
    }
    x->err = (sl_err)(version >= 8 ? g->error_code : resp->error_code);
    struct karray topics = version >= 8 ? g->topics : resp->topics;
    size_t n = fetch_count(topics, version);
    pool_discard(&x->pool);
    x->res = pool_root(&x->pool, sizeof(*x->res));
    sl_topic_partition *out = x->res != NULL ? pool_alloc(&x->pool, n * sizeof(*out)) : NULL;
    size_t filled = 0;
    for (int32_t t = 0; out != NULL && t < topics.count; t++) {
        if (version >= 8) {
            fetch_topic_v8(
                &x->pool,
                &((const struct kmsg_offset_fetch_response_offset_fetch_response_topics *)
                      topics.items)[t],
                out, &filled);
        } else {
            fetch_topic_v0(&x->pool,
                           &((const struct kmsg_offset_fetch_response_offset_fetch_response_topic *)
                                 topics.items)[t],
                           out, &filled);
        }
    }
    if (out != NULL && !x->pool.failed) {
        SL_ASSERT(filled == n);
        qsort(out, n, sizeof(*out), cmp_tp);
        x->res->offsets = out;
        x->res->count = n;
    }
}

/* Sorted copies of parts, grouped by topic: one wire topic per run. Both
 * request layouts are filled (the codec writes the version's). */
struct fetch_body {
    sl_topic_partition *sorted;
    int32_t *ids;
    struct kmsg_offset_fetch_request_offset_fetch_request_topic *old_topics;  /* v0-7 */
    struct kmsg_offset_fetch_request_offset_fetch_request_topics *new_topics; /* v8+ */
    int32_t topic_count;
};

static bool fetch_body_build(struct fetch_body *fb, const sl_topic_partition *parts, size_t n)
{
    fb->sorted = calloc(n, sizeof(*fb->sorted));
    fb->ids = calloc(n, sizeof(*fb->ids));
    fb->old_topics = calloc(n, sizeof(*fb->old_topics));
    fb->new_topics = calloc(n, sizeof(*fb->new_topics));
    if (fb->sorted == NULL || fb->ids == NULL || fb->old_topics == NULL || fb->new_topics == NULL) {
        return false;
    }
    memcpy(fb->sorted, parts, n * sizeof(*parts));
    qsort(fb->sorted, n, sizeof(*fb->sorted), cmp_tp);
    int32_t t = -1;
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || strcmp(fb->sorted[i].topic, fb->sorted[i - 1].topic) != 0) {
            t++;
            kmsg_init(&kmsg_offset_fetch_request_offset_fetch_request_topic_desc,
                      &fb->old_topics[t]);
            kmsg_init(&kmsg_offset_fetch_request_offset_fetch_request_topics_desc,
                      &fb->new_topics[t]);
            fb->old_topics[t].name = kstr_of(fb->sorted[i].topic);
            fb->old_topics[t].partition_indexes = (struct karray){&fb->ids[i], 0};
        }
        fb->ids[i] = fb->sorted[i].partition;
        fb->old_topics[t].partition_indexes.count++;
        fb->new_topics[t].name = fb->old_topics[t].name;
        fb->new_topics[t].partition_indexes = fb->old_topics[t].partition_indexes;
    }
    fb->topic_count = t + 1;
    return true;
}

static void fetch_body_free(struct fetch_body *fb)
{
    free(fb->sorted);
    free(fb->ids);
    free(fb->old_topics);
    free(fb->new_topics);
}

static sl_err fetch_step(sl_client *c, int32_t node, void *ctx, int64_t deadline_ms)
{
    struct fetch_ctx *x = ctx;
    struct fetch_body fb = {0};
    if (x->parts != NULL && !fetch_body_build(&fb, x->parts, x->count)) {
        fetch_body_free(&fb);
        return SL_ERR_NOMEM;
    }
    struct kmsg_offset_fetch_request_offset_fetch_request_group g;
    kmsg_init(&kmsg_offset_fetch_request_offset_fetch_request_group_desc, &g);
    g.group_id = kstr_of(x->group);
    g.topics = x->parts != NULL ? (struct karray){fb.new_topics, fb.topic_count}
                                : (struct karray){NULL, -1};
    struct kmsg_offset_fetch_request rq;
    kmsg_init(&kmsg_offset_fetch_request_desc, &rq);
    rq.group_id = g.group_id;
    rq.topics = x->parts != NULL ? (struct karray){fb.old_topics, fb.topic_count}
                                 : (struct karray){NULL, -1};
    rq.groups = (struct karray){&g, 1};
    x->err = SL_OK;
    /* v1: offsets kept by Kafka, not ZooKeeper; v2: null asks for all. v9
     * needs a member epoch: the newest this client asks for is v8. */
    sl_err err = adm_request(c, node, KMSG_API_OFFSET_FETCH, x->parts != NULL ? 1 : 2, 8, &rq,
                             fetch_answer, x, deadline_ms);
    fetch_body_free(&fb);
    return err != SL_OK ? err : x->err;
}

sl_err sl_committed_offsets(sl_client *c, const char *group, const sl_topic_partition *parts,
                            size_t count, int timeout_ms, sl_group_offsets **out)
{
    int64_t deadline_ms;
    sl_err err = adm_begin(c, timeout_ms, &deadline_ms);
    if (err != SL_OK || out == NULL || !group_ok(group) ||
        (parts != NULL && !parts_ok(parts, count)) || (parts == NULL && count != 0)) {
        return err != SL_OK ? err : SL_ERR_INVALID_ARG;
    }
    *out = NULL;
    struct fetch_ctx x = {.group = group, .parts = parts, .count = count};
    err = with_coordinator(c, group, fetch_step, &x, deadline_ms);
    *out = pool_finish(&err, &x.pool, x.res);
    return err;
}

void sl_group_offsets_free(sl_group_offsets *offsets)
{
    pool_free_root(offsets);
}

/* ---- commit ---- */

struct commit_ctx {
    const char *group;
    sl_topic_partition *parts;
    size_t count;
    struct tp_ref *refs; /* sorted by topic, partition (node 0) */
};

static void commit_answer(void *ctx, size_t slot, const void *resp_, int16_t version)
{
    (void)slot;
    (void)version;
    struct commit_ctx *x = ctx;
    const struct kmsg_offset_commit_response *resp = resp_;
    const struct kmsg_offset_commit_response_offset_commit_response_topic *rt = resp->topics.items;
    for (int32_t t = 0; t < resp->topics.count; t++) {
        const struct kmsg_offset_commit_response_offset_commit_response_partition *rp =
            rt[t].partitions.items;
        for (int32_t i = 0; i < rt[t].partitions.count; i++) {
            struct tp_ref *r = ref_find(x->refs, 0, x->count, rt[t].name, rp[i].partition_index);
            if (r != NULL && !r->answered) {
                r->answered = true;
                x->parts[r->index].err = (sl_err)rp[i].error_code;
            }
        }
    }
}

static sl_err commit_step(sl_client *c, int32_t node, void *ctx, int64_t deadline_ms)
{
    struct commit_ctx *x = ctx;
    struct kmsg_offset_commit_request_offset_commit_request_topic *topics =
        calloc(x->count, sizeof(*topics));
    struct kmsg_offset_commit_request_offset_commit_request_partition *items =
        calloc(x->count, sizeof(*items));
    if (topics == NULL || items == NULL) {
        free(topics);
        free(items);
        return SL_ERR_NOMEM;
    }
    int32_t nt = 0;
    for (size_t i = 0; i < x->count; i++) {
        const struct tp_ref *r = &x->refs[i];
        if (i == 0 || strcmp(r->topic, x->refs[i - 1].topic) != 0) {
            kmsg_init(&kmsg_offset_commit_request_offset_commit_request_topic_desc, &topics[nt]);
            topics[nt].name = kstr_of(r->topic);
            topics[nt].partitions = (struct karray){&items[i], 0};
            nt++;
        }
        kmsg_init(&kmsg_offset_commit_request_offset_commit_request_partition_desc, &items[i]);
        items[i].partition_index = r->partition;
        items[i].committed_offset = x->parts[r->index].offset;
        items[i].committed_metadata = (struct kstr){"", 0};
        topics[nt - 1].partitions.count++;
        x->refs[i].answered = false;
    }
    struct kmsg_offset_commit_request rq;
    kmsg_init(&kmsg_offset_commit_request_desc, &rq);
    rq.group_id = kstr_of(x->group);
    rq.generation_id_or_member_epoch = -1; /* no generation, no member: from outside */
    rq.member_id = (struct kstr){"", 0};
    rq.topics = (struct karray){topics, nt};
    /* v2: the first whose offsets carry no timestamp of their own. */
    sl_err err =
        adm_request(c, node, KMSG_API_OFFSET_COMMIT, 2, 8, &rq, commit_answer, x, deadline_ms);
    free(topics);
    free(items);
    for (size_t i = 0; err == SL_OK && i < x->count; i++) {
        if (!x->refs[i].answered) {
            x->parts[x->refs[i].index].err = SL_ERR_BAD_RESPONSE;
        }
    }
    /* A partition's coordinator error moves the whole group: retry it all. */
    for (size_t i = 0; err == SL_OK && i < x->count; i++) {
        if (coordinator_moved(x->parts[i].err)) {
            err = x->parts[i].err;
        }
    }
    return err;
}

sl_err sl_commit_group_offsets(sl_client *c, const char *group, sl_topic_partition *parts,
                               size_t count, int timeout_ms)
{
    int64_t deadline_ms;
    sl_err err = adm_begin(c, timeout_ms, &deadline_ms);
    if (err != SL_OK || !group_ok(group) || !parts_ok(parts, count)) {
        return err != SL_OK ? err : SL_ERR_INVALID_ARG;
    }
    for (size_t i = 0; i < count; i++) {
        if (parts[i].offset < 0) {
            return SL_ERR_INVALID_ARG;
        }
    }
    struct tp_ref *refs = calloc(count, sizeof(*refs));
    if (refs == NULL) {
        return SL_ERR_NOMEM;
    }
    for (size_t i = 0; i < count; i++) {
        refs[i] = (struct tp_ref){0, parts[i].topic, parts[i].partition, i, false};
        parts[i].err = SL_OK;
    }
    qsort(refs, count, sizeof(*refs), cmp_ref);
    struct commit_ctx x = {group, parts, count, refs};
    err = with_coordinator(c, group, commit_step, &x, deadline_ms);
    free(refs);
    for (size_t i = 0; i < count; i++) {
        if (err != SL_OK && parts[i].err == SL_OK) {
            parts[i].err = err;
        }
    }
    for (size_t i = 0; err == SL_OK && i < count; i++) {
        err = parts[i].err;
    }
    return err;
}

/* ---- delete ---- */

struct delete_group_ctx {
    const char *group;
    sl_err err;
};

static void delete_group_answer(void *ctx, size_t slot, const void *resp_, int16_t version)
{
    (void)slot;
    (void)version;
    struct delete_group_ctx *x = ctx;
    const struct kmsg_delete_groups_response *resp = resp_;
    const struct kmsg_delete_groups_response_deletable_group_result *r = resp->results.items;
    x->err = resp->results.count == 1 && kstr_eq(r->group_id, x->group) ? (sl_err)r->error_code
                                                                        : SL_ERR_BAD_RESPONSE;
}

static sl_err delete_group_step(sl_client *c, int32_t node, void *ctx, int64_t deadline_ms)
{
    struct delete_group_ctx *x = ctx;
    struct kstr name = kstr_of(x->group);
    struct kmsg_delete_groups_request rq;
    kmsg_init(&kmsg_delete_groups_request_desc, &rq);
    rq.groups_names = (struct karray){&name, 1};
    x->err = SL_OK;
    sl_err err = adm_request(c, node, KMSG_API_DELETE_GROUPS, 0, INT16_MAX, &rq,
                             delete_group_answer, x, deadline_ms);
    return err != SL_OK ? err : x->err;
}

sl_err sl_delete_group(sl_client *c, const char *group, int timeout_ms)
{
    int64_t deadline_ms;
    sl_err err = adm_begin(c, timeout_ms, &deadline_ms);
    if (err != SL_OK || !group_ok(group)) {
        return err != SL_OK ? err : SL_ERR_INVALID_ARG;
    }
    struct delete_group_ctx x = {group, SL_OK};
    return with_coordinator(c, group, delete_group_step, &x, deadline_ms);
}

/* ================================================================ admin client */

sl_client *sl_admin_new(sl_conf *conf, char *errstr, size_t errstr_size)
{
    sl_client *c = slc_client_new(conf, false, errstr, errstr_size);
    if (c != NULL) {
        /* A producer that never produces: without idempotence it asks for
         * no producer id, and nothing else of the producer runs unasked. */
        c->idempotent = false;
    }
    return c;
}
