/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of the group coordinator (broker/groups.h) over real partition logs
 * of __consumer_offsets: the classic protocol's joins, syncs, heartbeats and
 * leaves with Kafka's error codes, static membership, session and rebalance
 * timeouts, committed offsets and their bounds, replay after a restart,
 * compaction by rewrite, and offsets expiry. Each test runs in its own
 * temporary directory; callbacks may fire before the call returns, so every
 * result is a flag and the loop runs until it is set.
 */
#include <errno.h>
#include <ev.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker/groups.h"
#include "common/assert.h"
#include "common/clock.h"
#include "proto/errors.h"
#include "storage/log.h"
#include "tests/lib/logfix.h"
#include "tests/lib/testutil.h"

#define PARTS_MAX   4
#define ID_MAX      320
#define MEMBERS_MAX 8
#define KIB         1024u

/* ------------------------------------------------------------ fixture */

struct fx {
    struct logfix f;
    char base[512];
    struct log_config lc;
    struct groups_config gc;
    struct log *logs[PARTS_MAX];
    struct groups *gs;
};

static int64_t mono_ms(void)
{
    return time_mono_ns() / 1000000;
}

static struct kstr ks(const char *s)
{
    return s != NULL ? (struct kstr){s, (int32_t)strlen(s)} : (struct kstr){NULL, -1};
}

/* A loop, a ring, a shard and the default settings; nothing open yet. */
static void fx_init(struct fx *x, const char *name, int32_t partitions)
{
    memset(x, 0, sizeof(*x));
    logfix_init(&x->f, name, RING_URING, 16u << 20);
    snprintf(x->base, sizeof(x->base), "%s", x->f.dir);
    *strrchr(x->base, '/') = '\0';
    log_config_default(&x->lc);
    x->lc.flush_policy = FLUSH_ALWAYS;
    x->lc.segment_bytes = 256 * KIB;
    x->lc.preallocate_bytes = 16 * KIB;
    x->lc.max_message_bytes = 1u << 20;
    x->lc.retention_ms = -1;
    x->lc.retention_bytes = -1;
    x->gc = (struct groups_config){
        .partitions = partitions,
        .min_session_timeout_ms = 100,
        .max_session_timeout_ms = 30000,
        .initial_rebalance_delay_ms = 0,
        .max_size = MEMBERS_MAX,
        .groups_max = 1000,
        .member_metadata_max_bytes = 4096,
        .offset_metadata_max_bytes = 64,
        .offsets_retention_ms = 24LL * 3600 * 1000,
        .retention_check_interval_ms = 24LL * 3600 * 1000,
        .offsets_max = 100000,
        .rewrite_bytes_min = 1u << 20,
        .batch_bytes_max = 1u << 20,
    };
}

/* Opens the partition logs (on the same directories every time) and the
 * coordinator over them, which replays them. */
static void fx_open(struct fx *x)
{
    assert_true(x->gc.partitions <= PARTS_MAX);
    for (int32_t p = 0; p < x->gc.partitions; p++) {
        char dir[600];
        snprintf(dir, sizeof(dir), "%s/%s-%d", x->base, GROUPS_TOPIC, p);
        int err = 0;
        x->logs[p] = log_open(x->f.shard, dir, &x->lc, &err);
        assert_non_null(x->logs[p]);
    }
    int err = 0;
    x->gs = groups_new(x->f.loop, &x->gc, x->logs, &err);
    assert_int_equal(err, 0);
    assert_non_null(x->gs);
}

/* Closes everything: the coordinator first, then the logs. */
static void fx_close(struct fx *x)
{
    groups_free(x->gs);
    x->gs = NULL;
    for (int32_t p = 0; p < x->gc.partitions; p++) {
        assert_int_equal(log_close(x->logs[p]), 0);
        x->logs[p] = NULL;
    }
}

static void fx_reopen(struct fx *x)
{
    fx_close(x);
    fx_open(x);
}

static void fx_deinit(struct fx *x)
{
    if (x->gs != NULL) {
        fx_close(x);
    }
    logfix_deinit(&x->f);
}

static struct log *log_of(const struct fx *x, const char *group)
{
    return x->logs[groups_partition_of(x->gs, group, strlen(group))];
}

static void run_done(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    *(bool *)w->data = true;
}

/* Runs the loop for about ms milliseconds. */
static void run_ms(struct fx *x, int64_t ms)
{
    bool fired = false;
    ev_timer t;
    ev_timer_init(&t, run_done, (double)ms / 1000.0, 0.0);
    t.data = &fired;
    ev_timer_start(x->f.loop, &t);
    logfix_wait(&x->f, &fired);
    ev_timer_stop(x->f.loop, &t);
}

/* Runs the loop until *done or ms pass; returns *done. */
static bool wait_ms(struct fx *x, const bool *done, int64_t ms)
{
    bool fired = false;
    ev_timer t;
    ev_timer_init(&t, run_done, (double)ms / 1000.0, 0.0);
    t.data = &fired;
    ev_timer_start(x->f.loop, &t);
    while (!*done && !fired) {
        ev_run(x->f.loop, EVRUN_ONCE);
    }
    ev_timer_stop(x->f.loop, &t);
    return *done;
}

/* --------------------------------------------------------------- join */

struct jspec {
    const char *group;
    const char *member_id;     /* "" for a new member */
    const char *instance;      /* NULL: dynamic */
    const char *client_id;     /* default "client" */
    const char *protocol_type; /* default "consumer" */
    const char *protocols;     /* comma separated, default "range" */
    const char *tag;           /* metadata of protocol p is "<tag>/<p>" */
    int32_t session_ms;        /* default 10000 */
    int32_t rebalance_ms;      /* default 10000 */
    bool require;              /* require_known_member_id */
};

struct jres {
    bool done;
    int calls;
    int16_t error;
    int32_t generation;
    char member_id[ID_MAX];
    char leader[ID_MAX];
    char protocol[64];
    char protocol_type[64];
    bool has_protocol;
    int32_t member_count;
    char members[MEMBERS_MAX][ID_MAX];
    char instances[MEMBERS_MAX][ID_MAX];
    char meta[MEMBERS_MAX][64];
};

static void copy_str(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src != NULL ? src : "");
}

static void join_cb(void *opaque, const struct join_result *r)
{
    struct jres *j = opaque;
    j->calls++;
    j->done = true;
    j->error = r->error;
    j->generation = r->generation;
    copy_str(j->member_id, sizeof(j->member_id), r->member_id);
    copy_str(j->leader, sizeof(j->leader), r->leader);
    copy_str(j->protocol, sizeof(j->protocol), r->protocol);
    copy_str(j->protocol_type, sizeof(j->protocol_type), r->protocol_type);
    j->has_protocol = r->protocol != NULL;
    j->member_count = r->member_count;
    assert_true(r->member_count <= MEMBERS_MAX);
    for (int32_t i = 0; i < r->member_count; i++) {
        copy_str(j->members[i], ID_MAX, r->members[i].member_id);
        copy_str(j->instances[i], ID_MAX, r->members[i].instance_id);
        snprintf(j->meta[i], sizeof(j->meta[i]), "%.*s", r->members[i].metadata_len,
                 (const char *)r->members[i].metadata);
    }
}

/* Starts a join; the result may already be in r when this returns. */
static void join_start(struct fx *x, const struct jspec *s, struct jres *r)
{
    memset(r, 0, sizeof(*r));
    char names[8][32];
    char metas[8][64];
    struct group_protocol ps[8];
    int32_t n = 0;
    const char *list = s->protocols != NULL ? s->protocols : "range";
    while (*list != '\0' && n < 8) {
        size_t len = strcspn(list, ",");
        snprintf(names[n], sizeof(names[n]), "%.*s", (int)len, list);
        snprintf(metas[n], sizeof(metas[n]), "%.16s/%.31s", s->tag != NULL ? s->tag : "m",
                 names[n]);
        ps[n] = (struct group_protocol){ks(names[n]),
                                        {(const uint8_t *)metas[n], (int32_t)strlen(metas[n])}};
        n++;
        list += len + (list[len] == ',');
    }
    struct join_args a = {
        .group = ks(s->group),
        .member_id = ks(s->member_id != NULL ? s->member_id : ""),
        .instance_id = ks(s->instance),
        .client_id = ks(s->client_id != NULL ? s->client_id : "client"),
        .client_host = ks("/127.0.0.1"),
        .protocol_type = ks(s->protocol_type != NULL ? s->protocol_type : "consumer"),
        .session_timeout_ms = s->session_ms != 0 ? s->session_ms : 10000,
        .rebalance_timeout_ms = s->rebalance_ms != 0 ? s->rebalance_ms : 10000,
        .require_known_member_id = s->require,
        .protocols = ps,
        .protocol_count = n,
    };
    groups_join(x->gs, &a, join_cb, r);
}

static void join_wait(struct fx *x, const struct jspec *s, struct jres *r)
{
    join_start(x, s, r);
    assert_true(wait_ms(x, &r->done, 5000));
    assert_int_equal(r->calls, 1);
}

/* A new dynamic member, alone or joining a group that completes at once;
 * returns its generation and copies its id. */
static int32_t join_new(struct fx *x, const char *group, const char *tag, char *id)
{
    struct jres r;
    join_wait(x, &(struct jspec){.group = group, .member_id = "", .tag = tag}, &r);
    assert_int_equal(r.error, KAFKA_ERR_NONE);
    copy_str(id, ID_MAX, r.member_id);
    return r.generation;
}

/* --------------------------------------------------------------- sync */

struct sres {
    bool done;
    int calls;
    int16_t error;
    char assignment[128];
    int32_t assignment_len;
    char protocol[64];
    const struct log *log;
    int64_t durable_at_cb;
    int64_t end_at_cb;
};

static void sync_cb(void *opaque, const struct sync_result *r)
{
    struct sres *s = opaque;
    s->calls++;
    s->done = true;
    s->error = r->error;
    s->assignment_len = r->assignment_len;
    snprintf(s->assignment, sizeof(s->assignment), "%.*s", r->assignment_len,
             r->assignment != NULL ? (const char *)r->assignment : "");
    copy_str(s->protocol, sizeof(s->protocol), r->protocol);
    s->durable_at_cb = log_durable_offset(s->log);
    s->end_at_cb = log_end_offset(s->log);
}

/* Starts a sync; members[i] gets assignment assigns[i] (the leader's). */
static void sync_start(struct fx *x, const char *group, const char *member, const char *instance,
                       int32_t generation, const char *const *members, const char *const *assigns,
                       int32_t n, struct sres *r)
{
    memset(r, 0, sizeof(*r));
    r->log = log_of(x, group);
    struct kstr ms[MEMBERS_MAX];
    struct kbytes as[MEMBERS_MAX];
    for (int32_t i = 0; i < n; i++) {
        ms[i] = ks(members[i]);
        as[i] = (struct kbytes){(const uint8_t *)assigns[i], (int32_t)strlen(assigns[i])};
    }
    struct sync_args a = {
        .group = ks(group),
        .member_id = ks(member),
        .instance_id = ks(instance),
        .protocol_type = ks(NULL),
        .protocol = ks(NULL),
        .generation = generation,
        .assignment_members = ms,
        .assignments = as,
        .assignment_count = n,
    };
    groups_sync(x->gs, &a, sync_cb, r);
}

static void sync_wait(struct fx *x, const char *group, const char *member, const char *instance,
                      int32_t generation, const char *const *members, const char *const *assigns,
                      int32_t n, struct sres *r)
{
    sync_start(x, group, member, instance, generation, members, assigns, n, r);
    assert_true(wait_ms(x, &r->done, 5000));
    assert_int_equal(r->calls, 1);
}

/* A one-member group made Stable: joined, synced with assignment a. */
static int32_t stable_alone(struct fx *x, const char *group, char *id, const char *a)
{
    int32_t gen = join_new(x, group, "m1", id);
    const char *ms[] = {id};
    const char *as[] = {a};
    struct sres s;
    sync_wait(x, group, id, NULL, gen, ms, as, 1, &s);
    assert_int_equal(s.error, KAFKA_ERR_NONE);
    assert_string_equal(s.assignment, a);
    return gen;
}

static int16_t heartbeat(struct fx *x, const char *group, const char *member, const char *instance,
                         int32_t generation)
{
    return groups_heartbeat(x->gs, ks(group), ks(member), ks(instance), generation);
}

/* ------------------------------------------------------------ commits */

struct cres {
    bool done;
    int calls;
    int16_t status;
};

static void commit_cb(void *opaque, int16_t status)
{
    struct cres *c = opaque;
    c->calls++;
    c->done = true;
    c->status = status;
}

struct commit {
    char topics[16][32];
    char metas[16][128];
    struct commit_partition ps[16];
    struct commit_args args;
    struct cres res;
};

/* Prepares a commit of n partitions of topic: partition first+i at offset+i. */
static void commit_prepare(struct commit *c, const char *group, const char *member,
                           const char *instance, int32_t generation, const char *topic,
                           int32_t first, int32_t n, int64_t offset, const char *metadata)
{
    memset(c, 0, sizeof(*c));
    assert_true(n <= 16);
    for (int32_t i = 0; i < n; i++) {
        copy_str(c->topics[i], sizeof(c->topics[i]), topic);
        copy_str(c->metas[i], sizeof(c->metas[i]), metadata);
        c->ps[i] = (struct commit_partition){
            .topic = ks(c->topics[i]),
            .partition = first + i,
            .offset = offset + i,
            .leader_epoch = 7,
            .metadata = ks(metadata != NULL ? c->metas[i] : NULL),
        };
    }
    c->args = (struct commit_args){
        .group = ks(group),
        .member_id = ks(member != NULL ? member : ""),
        .instance_id = ks(instance),
        .generation = generation,
        .partitions = c->ps,
        .partition_count = n,
    };
}

static void commit_start(struct fx *x, struct commit *c)
{
    c->res = (struct cres){0};
    groups_commit(x->gs, &c->args, commit_cb, &c->res);
}

static void commit_run(struct fx *x, struct commit *c)
{
    commit_start(x, c);
    assert_true(wait_ms(x, &c->res.done, 5000));
    assert_int_equal(c->res.calls, 1);
}

/* Commits one offset and waits; returns the partition's error. */
static int16_t commit1(struct fx *x, const char *group, const char *member, const char *instance,
                       int32_t generation, const char *topic, int32_t partition, int64_t offset,
                       const char *metadata)
{
    struct commit c;
    commit_prepare(&c, group, member, instance, generation, topic, partition, 1, offset, metadata);
    commit_run(x, &c);
    return c.ps[0].error;
}

static int64_t committed(struct fx *x, const char *group, const char *topic, int32_t partition)
{
    const struct committed *c = groups_committed(x->gs, ks(group), ks(topic), partition);
    return c != NULL ? c->offset : -1;
}

/* -------------------------------------------------------------- admin */

struct desc {
    int32_t count;
    char ids[MEMBERS_MAX][ID_MAX];
    char instances[MEMBERS_MAX][ID_MAX];
    char clients[MEMBERS_MAX][64];
    char assignments[MEMBERS_MAX][64];
    char meta[MEMBERS_MAX][64];
    char state[32];
    char protocol[64];
};

static void describe_cb(void *opaque, const struct member_view *m)
{
    struct desc *d = opaque;
    assert_true(d->count < MEMBERS_MAX);
    copy_str(d->ids[d->count], ID_MAX, m->member_id);
    copy_str(d->instances[d->count], ID_MAX, m->instance_id);
    copy_str(d->clients[d->count], 64, m->client_id);
    snprintf(d->assignments[d->count], 64, "%.*s", m->assignment_len,
             m->assignment != NULL ? (const char *)m->assignment : "");
    snprintf(d->meta[d->count], 64, "%.*s", m->metadata_len,
             m->metadata != NULL ? (const char *)m->metadata : "");
    d->count++;
}

/* Describes a group into d; false when unknown. */
static bool describe(struct fx *x, const char *group, struct desc *d)
{
    memset(d, 0, sizeof(*d));
    struct group_view v;
    if (!groups_describe(x->gs, ks(group), &v, describe_cb, d)) {
        return false;
    }
    copy_str(d->state, sizeof(d->state), v.state);
    copy_str(d->protocol, sizeof(d->protocol), v.protocol);
    return true;
}

/* The index of member id in d, or -1. */
static int desc_find(const struct desc *d, const char *id)
{
    for (int32_t i = 0; i < d->count; i++) {
        if (strcmp(d->ids[i], id) == 0) {
            return i;
        }
    }
    return -1;
}

struct dres {
    bool done;
    int calls;
    int16_t error;
};

static void delete_cb(void *opaque, int16_t error)
{
    struct dres *d = opaque;
    d->calls++;
    d->done = true;
    d->error = error;
}

static int16_t delete_group(struct fx *x, const char *group)
{
    struct dres d = {0};
    groups_delete(x->gs, ks(group), delete_cb, &d);
    assert_true(wait_ms(x, &d.done, 5000));
    assert_int_equal(d.calls, 1);
    return d.error;
}

/* Keeps a member alive from a timer: a heartbeat every 50 ms. */
struct keeper {
    ev_timer timer;
    struct fx *x;
    const char *group;
    const char *member;
    int32_t generation;
    int16_t last;
    int beats;
};

static void keeper_beat(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct keeper *k = SL_CONTAINER_OF(w, struct keeper, timer);
    k->last = heartbeat(k->x, k->group, k->member, NULL, k->generation);
    k->beats++;
}

static void keeper_start(struct fx *x, struct keeper *k, const char *group, const char *member,
                         int32_t generation)
{
    memset(k, 0, sizeof(*k));
    k->x = x;
    k->group = group;
    k->member = member;
    k->generation = generation;
    k->last = -100;
    ev_timer_init(&k->timer, keeper_beat, 0.05, 0.05);
    ev_timer_start(x->f.loop, &k->timer);
}

static void keeper_stop(struct fx *x, struct keeper *k)
{
    ev_timer_stop(x->f.loop, &k->timer);
}

/* ============================================================ members */

/* KIP-394: a new dynamic member first gets MEMBER_ID_REQUIRED and an id; with
 * it, generation 1 after the initial delay; the leader's sync stores the
 * assignment and is answered once the record is durable. */
static void test_groups_join_then_sync_first_generation(void **state)
{
    (void)state;
    struct fx x;
    fx_init(&x, "groups_first", 2);
    x.gc.initial_rebalance_delay_ms = 50;
    fx_open(&x);

    struct jres r;
    join_start(&x, &(struct jspec){.group = "g", .member_id = "", .require = true, .tag = "m1"},
               &r);
    assert_true(r.done); /* answered at once */
    assert_int_equal(r.error, KAFKA_ERR_MEMBER_ID_REQUIRED);
    assert_int_equal(r.generation, -1);
    assert_int_equal(strlen(r.member_id), strlen("client-") + 36);
    assert_memory_equal(r.member_id, "client-", 7);
    char id[ID_MAX];
    copy_str(id, sizeof(id), r.member_id);
    struct desc d;
    assert_true(describe(&x, "g", &d));
    assert_string_equal(d.state, "Empty");
    assert_int_equal(d.count, 0);

    /* Back with the id: the first generation waits for the initial delay. */
    int64_t t0 = mono_ms();
    join_start(&x, &(struct jspec){.group = "g", .member_id = id, .require = true, .tag = "m1"},
               &r);
    assert_false(r.done);
    assert_true(describe(&x, "g", &d));
    assert_string_equal(d.state, "PreparingRebalance");
    assert_true(wait_ms(&x, &r.done, 2000));
    assert_true(mono_ms() - t0 >= 45);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.error, KAFKA_ERR_NONE);
    assert_int_equal(r.generation, 1);
    assert_string_equal(r.member_id, id);
    assert_string_equal(r.leader, id);
    assert_string_equal(r.protocol_type, "consumer");
    assert_string_equal(r.protocol, "range");
    assert_int_equal(r.member_count, 1);
    assert_string_equal(r.members[0], id);
    assert_string_equal(r.instances[0], "");
    assert_string_equal(r.meta[0], "m1/range");
    assert_true(describe(&x, "g", &d));
    assert_string_equal(d.state, "CompletingRebalance");
    assert_int_equal(heartbeat(&x, "g", id, NULL, 1), KAFKA_ERR_NONE);
    assert_int_equal(commit1(&x, "g", id, NULL, 1, "t", 0, 1, NULL),
                     KAFKA_ERR_REBALANCE_IN_PROGRESS);

    /* The leader's sync: answered once the group record is durable. */
    struct log *log = log_of(&x, "g");
    int64_t end_before = log_end_offset(log);
    const char *ms[] = {id};
    const char *as[] = {"A1"};
    struct sres s;
    sync_start(&x, "g", id, NULL, 1, ms, as, 1, &s);
    assert_false(s.done);
    assert_true(wait_ms(&x, &s.done, 2000));
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.error, KAFKA_ERR_NONE);
    assert_string_equal(s.assignment, "A1");
    assert_string_equal(s.protocol, "range");
    assert_true(s.end_at_cb > end_before);
    assert_int_equal(s.durable_at_cb, s.end_at_cb);
    assert_true(describe(&x, "g", &d));
    assert_string_equal(d.state, "Stable");
    assert_int_equal(d.count, 1);
    assert_string_equal(d.assignments[0], "A1");
    assert_string_equal(d.meta[0], "m1/range");
    assert_string_equal(d.clients[0], "client");
    assert_int_equal(heartbeat(&x, "g", id, NULL, 1), KAFKA_ERR_NONE);
    /* A sync again while Stable: the same assignment at once. */
    sync_start(&x, "g", id, NULL, 1, NULL, NULL, 0, &s);
    assert_true(s.done);
    assert_string_equal(s.assignment, "A1");
    fx_deinit(&x);
}

/* A second member makes a Stable group rebalance; the first learns it from
 * its heartbeat; both join generation 2, and a follower's sync waits for the
 * leader's assignment to be stored. */
static void test_groups_second_member_rebalances(void **state)
{
    (void)state;
    struct fx x;
    fx_init(&x, "groups_second", 2);
    fx_open(&x);
    char m1[ID_MAX];
    assert_int_equal(stable_alone(&x, "g", m1, "A"), 1);

    struct jres j2;
    join_start(&x, &(struct jspec){.group = "g", .member_id = "", .tag = "m2"}, &j2);
    assert_false(j2.done);
    struct desc d;
    assert_true(describe(&x, "g", &d));
    assert_string_equal(d.state, "PreparingRebalance");
    assert_int_equal(heartbeat(&x, "g", m1, NULL, 1), KAFKA_ERR_REBALANCE_IN_PROGRESS);
    struct sres s1;
    sync_start(&x, "g", m1, NULL, 1, NULL, NULL, 0, &s1);
    assert_true(s1.done);
    assert_int_equal(s1.error, KAFKA_ERR_REBALANCE_IN_PROGRESS);

    struct jres j1;
    join_start(&x, &(struct jspec){.group = "g", .member_id = m1, .tag = "m1"}, &j1);
    assert_true(wait_ms(&x, &j1.done, 2000));
    assert_true(wait_ms(&x, &j2.done, 2000));
    assert_int_equal(j1.error, KAFKA_ERR_NONE);
    assert_int_equal(j2.error, KAFKA_ERR_NONE);
    assert_int_equal(j1.generation, 2);
    assert_int_equal(j2.generation, 2);
    assert_string_equal(j1.leader, m1);
    assert_string_equal(j2.leader, m1);
    assert_string_equal(j1.member_id, m1);
    char m2[ID_MAX];
    copy_str(m2, sizeof(m2), j2.member_id);
    assert_string_not_equal(m1, m2);
    assert_int_equal(j2.member_count, 0); /* only the leader gets the members */
    assert_int_equal(j1.member_count, 2);
    int i1 = strcmp(j1.members[0], m1) == 0 ? 0 : 1;
    assert_string_equal(j1.members[i1], m1);
    assert_string_equal(j1.members[1 - i1], m2);
    assert_string_equal(j1.meta[i1], "m1/range");
    assert_string_equal(j1.meta[1 - i1], "m2/range");

    /* The follower first: parked until the leader's assignment is durable. */
    struct sres s2;
    sync_start(&x, "g", m2, NULL, 2, NULL, NULL, 0, &s2);
    run_ms(&x, 30);
    assert_false(s2.done);
    const char *ms[] = {m1, m2};
    const char *as[] = {"A", "B"};
    sync_start(&x, "g", m1, NULL, 2, ms, as, 2, &s1);
    assert_false(s1.done);
    assert_true(wait_ms(&x, &s1.done, 2000));
    assert_true(wait_ms(&x, &s2.done, 2000));
    assert_int_equal(s1.error, KAFKA_ERR_NONE);
    assert_int_equal(s2.error, KAFKA_ERR_NONE);
    assert_string_equal(s1.assignment, "A");
    assert_string_equal(s2.assignment, "B");
    assert_int_equal(s2.calls, 1);
    assert_int_equal(s2.durable_at_cb, s2.end_at_cb);
    assert_int_equal(heartbeat(&x, "g", m1, NULL, 2), KAFKA_ERR_NONE);
    assert_int_equal(heartbeat(&x, "g", m2, NULL, 2), KAFKA_ERR_NONE);
    fx_deinit(&x);
}

/* A member joining again before its sync with nothing new (a client that
 * lost its answer) gets the current generation, the leader its members;
 * with new metadata it makes the group rebalance. */
static void test_groups_join_again_while_completing(void **state)
{
    (void)state;
    struct fx x;
    fx_init(&x, "groups_join_again", 1);
    fx_open(&x);
    char m1[ID_MAX], m2[ID_MAX];
    assert_int_equal(stable_alone(&x, "c", m1, "A"), 1);
    struct jres j1, j2;
    join_start(&x, &(struct jspec){.group = "c", .tag = "m2"}, &j2);
    join_wait(&x, &(struct jspec){.group = "c", .member_id = m1, .tag = "m1"}, &j1);
    assert_true(wait_ms(&x, &j2.done, 2000));
    copy_str(m2, sizeof(m2), j2.member_id);
    assert_int_equal(j1.generation, 2);

    join_start(&x, &(struct jspec){.group = "c", .member_id = m2, .tag = "m2"}, &j2);
    assert_true(j2.done);
    assert_int_equal(j2.error, KAFKA_ERR_NONE);
    assert_int_equal(j2.generation, 2);
    assert_string_equal(j2.leader, m1);
    assert_int_equal(j2.member_count, 0);
    join_start(&x, &(struct jspec){.group = "c", .member_id = m1, .tag = "m1"}, &j1);
    assert_true(j1.done);
    assert_int_equal(j1.generation, 2);
    assert_int_equal(j1.member_count, 2);
    struct desc d;
    assert_true(describe(&x, "c", &d));
    assert_string_equal(d.state, "CompletingRebalance");

    /* New metadata: a rebalance, generation 3. */
    join_start(&x, &(struct jspec){.group = "c", .member_id = m2, .tag = "m2x"}, &j2);
    assert_false(j2.done);
    assert_true(describe(&x, "c", &d));
    assert_string_equal(d.state, "PreparingRebalance");
    join_wait(&x, &(struct jspec){.group = "c", .member_id = m1, .tag = "m1"}, &j1);
    assert_true(wait_ms(&x, &j2.done, 2000));
    assert_int_equal(j1.generation, 3);
    assert_int_equal(j2.generation, 3);
    int i2 = strcmp(j1.members[0], m2) == 0 ? 0 : 1;
    assert_string_equal(j1.meta[i2], "m2x/range");
    fx_deinit(&x);
}

/* The protocol is one every member supports, the one most prefer; a member
 * with no protocol in common or of another protocol type is refused. */
static void test_groups_protocol_selection(void **state)
{
    (void)state;
    struct fx x;
    fx_init(&x, "groups_protocols", 1);
    fx_open(&x);
    struct jres j1, j2, j3;
    join_wait(&x, &(struct jspec){.group = "g", .protocols = "range,roundrobin", .tag = "a"}, &j1);
    assert_int_equal(j1.generation, 1);
    assert_string_equal(j1.protocol, "range");
    char a[ID_MAX];
    copy_str(a, sizeof(a), j1.member_id);

    /* Only roundrobin in common. */
    join_start(&x, &(struct jspec){.group = "g", .protocols = "roundrobin", .tag = "b"}, &j2);
    assert_false(j2.done);
    join_wait(
        &x,
        &(struct jspec){.group = "g", .member_id = a, .protocols = "range,roundrobin", .tag = "a"},
        &j1);
    assert_true(wait_ms(&x, &j2.done, 2000));
    assert_int_equal(j1.generation, 2);
    assert_string_equal(j1.protocol, "roundrobin");
    assert_string_equal(j2.protocol, "roundrobin");
    assert_int_equal(j1.member_count, 2);
    assert_string_equal(j1.meta[0],
                        strcmp(j1.members[0], a) == 0 ? "a/roundrobin" : "b/roundrobin");
    assert_string_equal(j1.meta[1],
                        strcmp(j1.members[1], a) == 0 ? "a/roundrobin" : "b/roundrobin");

    /* Nothing in common, or another protocol type: refused at once. */
    join_start(&x, &(struct jspec){.group = "g", .protocols = "sticky", .tag = "c"}, &j3);
    assert_true(j3.done);
    assert_int_equal(j3.error, KAFKA_ERR_INCONSISTENT_GROUP_PROTOCOL);
    join_start(&x,
               &(struct jspec){.group = "g", .protocol_type = "connect", .protocols = "roundrobin"},
               &j3);
    assert_true(j3.done);
    assert_int_equal(j3.error, KAFKA_ERR_INCONSISTENT_GROUP_PROTOCOL);
    join_start(&x, &(struct jspec){.group = "g", .protocols = ""}, &j3);
    assert_true(j3.done);
    assert_int_equal(j3.error, KAFKA_ERR_INCONSISTENT_GROUP_PROTOCOL);
    join_start(&x, &(struct jspec){.group = "g", .protocol_type = "", .protocols = "range"}, &j3);
    assert_true(j3.done);
    assert_int_equal(j3.error, KAFKA_ERR_INCONSISTENT_GROUP_PROTOCOL);
    join_start(&x, &(struct jspec){.group = "", .protocols = "range"}, &j3);
    assert_true(j3.done);
    assert_int_equal(j3.error, KAFKA_ERR_INVALID_GROUP_ID);

    /* Votes: a prefers x, b and c prefer y; all support both. */
    struct jres v1, v2, v3;
    join_wait(&x, &(struct jspec){.group = "v", .protocols = "x,y", .tag = "a"}, &v1);
    assert_string_equal(v1.protocol, "x");
    char va[ID_MAX];
    copy_str(va, sizeof(va), v1.member_id);
    join_start(&x, &(struct jspec){.group = "v", .protocols = "y,x", .tag = "b"}, &v2);
    join_start(&x, &(struct jspec){.group = "v", .protocols = "y,x", .tag = "c"}, &v3);
    assert_false(v2.done);
    join_wait(&x, &(struct jspec){.group = "v", .member_id = va, .protocols = "x,y", .tag = "a"},
              &v1);
    assert_true(wait_ms(&x, &v2.done, 2000) && wait_ms(&x, &v3.done, 2000));
    assert_int_equal(v1.generation, 2);
    assert_string_equal(v1.protocol, "y");
    assert_string_equal(v3.protocol, "y");
    assert_int_equal(v1.member_count, 3);
    fx_deinit(&x);
}

/* The fencing errors: bad session timeouts, unknown members, old
 * generations, old incarnations of static members, syncs during a
 * rebalance, and a full group. */
static void test_groups_fencing_errors(void **state)
{
    (void)state;
    struct fx x;
    fx_init(&x, "groups_fencing", 2);
    x.gc.max_size = 3;
    fx_open(&x);
    struct jres j, js;
    join_start(&x, &(struct jspec){.group = "f", .session_ms = 99}, &j);
    assert_true(j.done);
    assert_int_equal(j.error, KAFKA_ERR_INVALID_SESSION_TIMEOUT);
    join_start(&x, &(struct jspec){.group = "f", .session_ms = 30001}, &j);
    assert_true(j.done);
    assert_int_equal(j.error, KAFKA_ERR_INVALID_SESSION_TIMEOUT);
    assert_false(groups_exists(x.gs, ks("f")));

    /* m1 (dynamic) and s1 (static "i1") in generation 2. */
    char m1[ID_MAX], s1[ID_MAX];
    assert_int_equal(stable_alone(&x, "f", m1, "A"), 1);
    join_start(&x, &(struct jspec){.group = "f", .instance = "i1", .require = true, .tag = "s1"},
               &js);
    assert_false(js.done); /* static members need no MEMBER_ID_REQUIRED round */
    join_wait(&x, &(struct jspec){.group = "f", .member_id = m1, .tag = "m1"}, &j);
    assert_true(wait_ms(&x, &js.done, 2000));
    assert_int_equal(js.error, KAFKA_ERR_NONE);
    assert_int_equal(js.generation, 2);
    assert_memory_equal(js.member_id, "i1-", 3);
    copy_str(s1, sizeof(s1), js.member_id);
    const char *ms[] = {m1, s1};
    const char *as[] = {"A", "S"};
    struct sres s;
    sync_wait(&x, "f", m1, NULL, 2, ms, as, 2, &s);
    assert_int_equal(s.error, KAFKA_ERR_NONE);

    /* ILLEGAL_GENERATION: heartbeat, sync and commit of another generation. */
    assert_int_equal(heartbeat(&x, "f", m1, NULL, 1), KAFKA_ERR_ILLEGAL_GENERATION);
    assert_int_equal(heartbeat(&x, "f", m1, NULL, 3), KAFKA_ERR_ILLEGAL_GENERATION);
    sync_start(&x, "f", m1, NULL, 3, NULL, NULL, 0, &s);
    assert_true(s.done);
    assert_int_equal(s.error, KAFKA_ERR_ILLEGAL_GENERATION);
    assert_int_equal(commit1(&x, "f", m1, NULL, 1, "t", 0, 5, NULL), KAFKA_ERR_ILLEGAL_GENERATION);

    /* UNKNOWN_MEMBER_ID: nobody of that id, or no such group. */
    assert_int_equal(heartbeat(&x, "f", "ghost", NULL, 2), KAFKA_ERR_UNKNOWN_MEMBER_ID);
    assert_int_equal(heartbeat(&x, "nogroup", m1, NULL, 2), KAFKA_ERR_UNKNOWN_MEMBER_ID);
    sync_start(&x, "f", "ghost", NULL, 2, NULL, NULL, 0, &s);
    assert_true(s.done);
    assert_int_equal(s.error, KAFKA_ERR_UNKNOWN_MEMBER_ID);
    join_start(&x, &(struct jspec){.group = "f", .member_id = "ghost"}, &j);
    assert_true(j.done);
    assert_int_equal(j.error, KAFKA_ERR_UNKNOWN_MEMBER_ID);
    join_start(&x, &(struct jspec){.group = "nogroup", .member_id = "ghost"}, &j);
    assert_true(j.done);
    assert_int_equal(j.error, KAFKA_ERR_UNKNOWN_MEMBER_ID);
    assert_false(groups_exists(x.gs, ks("nogroup")));
    assert_int_equal(groups_leave(x.gs, ks("f"), ks("ghost"), ks(NULL)),
                     KAFKA_ERR_UNKNOWN_MEMBER_ID);
    assert_int_equal(commit1(&x, "f", "ghost", NULL, 2, "t", 0, 5, NULL),
                     KAFKA_ERR_UNKNOWN_MEMBER_ID);
    /* A commit from outside the group while it has members. */
    assert_int_equal(commit1(&x, "f", "", NULL, -1, "t", 0, 5, NULL), KAFKA_ERR_UNKNOWN_MEMBER_ID);

    /* FENCED_INSTANCE_ID: an instance id that is not the member's. */
    assert_int_equal(heartbeat(&x, "f", m1, "i1", 2), KAFKA_ERR_FENCED_INSTANCE_ID);
    /* s1 comes back (new incarnation): the old id is fenced everywhere. */
    join_wait(&x, &(struct jspec){.group = "f", .instance = "i1", .tag = "s1"}, &js);
    assert_int_equal(js.error, KAFKA_ERR_NONE);
    assert_string_not_equal(js.member_id, s1);
    assert_int_equal(js.generation, 2);
    char s1b[ID_MAX];
    copy_str(s1b, sizeof(s1b), js.member_id);
    assert_int_equal(heartbeat(&x, "f", s1, "i1", 2), KAFKA_ERR_FENCED_INSTANCE_ID);
    assert_int_equal(heartbeat(&x, "f", s1b, "i1", 2), KAFKA_ERR_NONE);
    sync_start(&x, "f", s1, "i1", 2, NULL, NULL, 0, &s);
    assert_true(s.done);
    assert_int_equal(s.error, KAFKA_ERR_FENCED_INSTANCE_ID);
    join_start(&x, &(struct jspec){.group = "f", .member_id = s1, .instance = "i1", .tag = "s1"},
               &j);
    assert_true(j.done);
    assert_int_equal(j.error, KAFKA_ERR_FENCED_INSTANCE_ID);
    assert_int_equal(commit1(&x, "f", s1, "i1", 2, "t", 0, 5, NULL), KAFKA_ERR_FENCED_INSTANCE_ID);
    assert_int_equal(groups_leave(x.gs, ks("f"), ks(s1), ks("i1")), KAFKA_ERR_FENCED_INSTANCE_ID);
    struct desc d;
    assert_true(describe(&x, "f", &d));
    assert_string_equal(d.state, "Stable");
    assert_int_equal(d.count, 2);

    /* A third member: PreparingRebalance; a sync now is REBALANCE_IN_PROGRESS. */
    struct jres j3, j4;
    join_start(&x, &(struct jspec){.group = "f", .tag = "m3"}, &j3);
    assert_false(j3.done);
    sync_start(&x, "f", m1, NULL, 2, NULL, NULL, 0, &s);
    assert_true(s.done);
    assert_int_equal(s.error, KAFKA_ERR_REBALANCE_IN_PROGRESS);
    /* Full at max_size 3, MEMBER_ID_REQUIRED or not. */
    join_start(&x, &(struct jspec){.group = "f", .tag = "m4"}, &j4);
    assert_true(j4.done);
    assert_int_equal(j4.error, KAFKA_ERR_GROUP_MAX_SIZE_REACHED);
    join_start(&x, &(struct jspec){.group = "f", .tag = "m4", .require = true}, &j4);
    assert_true(j4.done);
    assert_int_equal(j4.error, KAFKA_ERR_GROUP_MAX_SIZE_REACHED);
    fx_deinit(&x);
}

/* KIP-345: a static member back with an empty member id while Stable gets a
 * new id, the same generation and its assignment, without a rebalance. */
static void test_groups_static_member_rejoins_without_rebalance(void **state)
{
    (void)state;
    struct fx x;
    fx_init(&x, "groups_static", 2);
    fx_open(&x);
    struct jres a, b;
    join_wait(&x, &(struct jspec){.group = "s", .instance = "ia", .tag = "a"}, &a);
    assert_int_equal(a.generation, 1);
    char ida[ID_MAX], idb[ID_MAX];
    copy_str(ida, sizeof(ida), a.member_id);
    struct sres s;
    sync_wait(&x, "s", ida, "ia", 1, (const char *[]){ida}, (const char *[]){"PA"}, 1, &s);
    join_start(&x, &(struct jspec){.group = "s", .instance = "ib", .tag = "b"}, &b);
    join_wait(&x, &(struct jspec){.group = "s", .member_id = ida, .instance = "ia", .tag = "a"},
              &a);
    assert_true(wait_ms(&x, &b.done, 2000));
    assert_int_equal(a.generation, 2);
    assert_string_equal(a.leader, ida);
    copy_str(idb, sizeof(idb), b.member_id);
    assert_int_equal(a.member_count, 2);
    assert_string_equal(a.instances[strcmp(a.members[0], ida) == 0 ? 0 : 1], "ia");
    assert_string_equal(a.instances[strcmp(a.members[0], ida) == 0 ? 1 : 0], "ib");
    sync_wait(&x, "s", ida, "ia", 2, (const char *[]){ida, idb}, (const char *[]){"PA", "PB"}, 2,
              &s);
    assert_string_equal(s.assignment, "PA");
    sync_wait(&x, "s", idb, "ib", 2, NULL, NULL, 0, &s);
    assert_string_equal(s.assignment, "PB");

    /* b restarts: empty member id, same instance, same protocols. */
    struct log *log = log_of(&x, "s");
    int64_t end = log_end_offset(log);
    join_start(&x, &(struct jspec){.group = "s", .instance = "ib", .tag = "b"}, &b);
    assert_true(b.done);
    assert_int_equal(b.error, KAFKA_ERR_NONE);
    assert_int_equal(b.generation, 2);
    assert_string_equal(b.leader, ida);
    assert_string_equal(b.protocol, "range");
    assert_int_equal(b.member_count, 0);
    char idb2[ID_MAX];
    copy_str(idb2, sizeof(idb2), b.member_id);
    assert_string_not_equal(idb2, idb);
    assert_memory_equal(idb2, "ib-", 3);
    struct desc d;
    assert_true(describe(&x, "s", &d));
    assert_string_equal(d.state, "Stable");
    assert_int_equal(heartbeat(&x, "s", ida, "ia", 2), KAFKA_ERR_NONE); /* no rebalance */
    sync_wait(&x, "s", idb2, "ib", 2, NULL, NULL, 0, &s);
    assert_int_equal(s.error, KAFKA_ERR_NONE);
    assert_string_equal(s.assignment, "PB");
    assert_int_equal(heartbeat(&x, "s", idb, "ib", 2), KAFKA_ERR_FENCED_INSTANCE_ID);
    assert_int_equal(heartbeat(&x, "s", idb, NULL, 2), KAFKA_ERR_UNKNOWN_MEMBER_ID);
    assert_int_equal(heartbeat(&x, "s", idb2, "ib", 2), KAFKA_ERR_NONE);
    run_ms(&x, 20);
    assert_true(log_end_offset(log) > end); /* the new id is stored */

    /* The leader restarts too: it stays the leader under its new id. */
    struct jres a2;
    join_wait(&x, &(struct jspec){.group = "s", .instance = "ia", .tag = "a"}, &a2);
    assert_int_equal(a2.error, KAFKA_ERR_NONE);
    assert_int_equal(a2.generation, 2);
    assert_string_not_equal(a2.member_id, ida);
    assert_string_equal(a2.leader, a2.member_id);
    assert_int_equal(heartbeat(&x, "s", ida, "ia", 2), KAFKA_ERR_FENCED_INSTANCE_ID);

    /* Across a restart the new ids and the assignments hold. */
    fx_reopen(&x);
    assert_true(describe(&x, "s", &d));
    assert_string_equal(d.state, "Stable");
    assert_int_equal(d.count, 2);
    assert_true(desc_find(&d, idb2) >= 0);
    assert_true(desc_find(&d, a2.member_id) >= 0);
    assert_string_equal(d.assignments[desc_find(&d, idb2)], "PB");
    assert_int_equal(heartbeat(&x, "s", idb2, "ib", 2), KAFKA_ERR_NONE);
    assert_int_equal(heartbeat(&x, "s", idb, "ib", 2), KAFKA_ERR_FENCED_INSTANCE_ID);

    /* A static member leaves by its instance id alone; the others rebalance. */
    assert_int_equal(groups_leave(x.gs, ks("s"), ks(""), ks("ib")), KAFKA_ERR_NONE);
    assert_int_equal(groups_leave(x.gs, ks("s"), ks(""), ks("ib")), KAFKA_ERR_UNKNOWN_MEMBER_ID);
    assert_true(describe(&x, "s", &d));
    assert_string_equal(d.state, "PreparingRebalance");
    assert_int_equal(d.count, 1);
    assert_int_equal(heartbeat(&x, "s", a2.member_id, "ia", 2), KAFKA_ERR_REBALANCE_IN_PROGRESS);
    fx_deinit(&x);
}

/* A member that stops heartbeating is removed after its session timeout and
 * the group rebalances; one that leaves is removed at once. */
static void test_groups_session_expiry_and_leave(void **state)
{
    (void)state;
    struct fx x;
    fx_init(&x, "groups_expiry", 1);
    fx_open(&x);
    char m1[ID_MAX], m2[ID_MAX];
    struct jres j1, j2;
    join_wait(&x, &(struct jspec){.group = "e", .session_ms = 300, .tag = "m1"}, &j1);
    copy_str(m1, sizeof(m1), j1.member_id);
    struct sres s;
    sync_wait(&x, "e", m1, NULL, 1, (const char *[]){m1}, (const char *[]){"A"}, 1, &s);
    join_start(&x, &(struct jspec){.group = "e", .session_ms = 300, .tag = "m2"}, &j2);
    join_wait(&x, &(struct jspec){.group = "e", .member_id = m1, .session_ms = 300, .tag = "m1"},
              &j1);
    assert_true(wait_ms(&x, &j2.done, 2000));
    assert_int_equal(j1.generation, 2);
    copy_str(m2, sizeof(m2), j2.member_id);
    sync_wait(&x, "e", m1, NULL, 2, (const char *[]){m1, m2}, (const char *[]){"A", "B"}, 2, &s);
    sync_wait(&x, "e", m2, NULL, 2, NULL, NULL, 0, &s);
    assert_string_equal(s.assignment, "B");

    /* m1 keeps heartbeating, m2 goes silent. */
    int64_t t0 = mono_ms();
    struct keeper k;
    keeper_start(&x, &k, "e", m1, 2);
    run_ms(&x, 150);
    assert_int_equal(k.last, KAFKA_ERR_NONE);
    while (k.last != KAFKA_ERR_REBALANCE_IN_PROGRESS && mono_ms() - t0 < 3000) {
        ev_run(x.f.loop, EVRUN_ONCE);
    }
    int64_t took = mono_ms() - t0;
    keeper_stop(&x, &k);
    assert_int_equal(k.last, KAFKA_ERR_REBALANCE_IN_PROGRESS);
    assert_true(took >= 290);
    assert_true(took < 1000);
    assert_int_equal(heartbeat(&x, "e", m2, NULL, 2), KAFKA_ERR_UNKNOWN_MEMBER_ID);
    struct desc d;
    assert_true(describe(&x, "e", &d));
    assert_string_equal(d.state, "PreparingRebalance");
    assert_int_equal(d.count, 1);
    join_wait(&x, &(struct jspec){.group = "e", .member_id = m1, .session_ms = 300, .tag = "m1"},
              &j1);
    assert_int_equal(j1.generation, 3);
    assert_int_equal(j1.member_count, 1);
    assert_string_equal(j1.leader, m1);
    sync_wait(&x, "e", m1, NULL, 3, (const char *[]){m1}, (const char *[]){"AB"}, 1, &s);
    assert_string_equal(s.assignment, "AB");

    /* Leave: at once; the group is Empty (generation 4); unknown members are refused. */
    assert_int_equal(groups_leave(x.gs, ks("e"), ks(m1), ks(NULL)), KAFKA_ERR_NONE);
    assert_true(describe(&x, "e", &d));
    assert_string_equal(d.state, "Empty");
    assert_int_equal(d.count, 0);
    assert_int_equal(heartbeat(&x, "e", m1, NULL, 3), KAFKA_ERR_UNKNOWN_MEMBER_ID);
    assert_int_equal(groups_leave(x.gs, ks("e"), ks(m1), ks(NULL)), KAFKA_ERR_UNKNOWN_MEMBER_ID);
    assert_int_equal(groups_leave(x.gs, ks("none"), ks(m1), ks(NULL)), KAFKA_ERR_UNKNOWN_MEMBER_ID);
    join_wait(&x, &(struct jspec){.group = "e", .tag = "m3"}, &j1);
    assert_int_equal(j1.generation, 5);
    fx_deinit(&x);
}

/* A member that does not join again within the rebalance timeout is out;
 * a MEMBER_ID_REQUIRED id that is never used expires; a leave of one ends it. */
static void test_groups_rebalance_timeout_and_pending_ids(void **state)
{
    (void)state;
    struct fx x;
    fx_init(&x, "groups_rebalance_timeout", 1);
    fx_open(&x);
    struct jspec base = {.group = "r", .session_ms = 5000, .rebalance_ms = 300};
    struct jres j1, j2, j3;
    base.tag = "m1";
    join_wait(&x, &base, &j1);
    char m1[ID_MAX], m2[ID_MAX];
    copy_str(m1, sizeof(m1), j1.member_id);
    struct sres s;
    sync_wait(&x, "r", m1, NULL, 1, (const char *[]){m1}, (const char *[]){"A"}, 1, &s);
    base.tag = "m2";
    join_start(&x, &base, &j2);
    base.tag = "m1";
    base.member_id = m1;
    join_wait(&x, &base, &j1);
    assert_true(wait_ms(&x, &j2.done, 2000));
    copy_str(m2, sizeof(m2), j2.member_id);
    sync_wait(&x, "r", m1, NULL, 2, (const char *[]){m1, m2}, (const char *[]){"A", "B"}, 2, &s);

    /* m3 joins; m2 joins again, m1 only heartbeats. */
    int64_t t0 = mono_ms();
    base = (struct jspec){.group = "r", .session_ms = 5000, .rebalance_ms = 300, .tag = "m3"};
    join_start(&x, &base, &j3);
    base.tag = "m2";
    base.member_id = m2;
    join_start(&x, &base, &j2);
    assert_false(j2.done);
    assert_int_equal(heartbeat(&x, "r", m1, NULL, 2), KAFKA_ERR_REBALANCE_IN_PROGRESS);
    assert_true(wait_ms(&x, &j2.done, 3000));
    assert_true(mono_ms() - t0 >= 290);
    assert_true(wait_ms(&x, &j3.done, 100));
    assert_int_equal(j2.error, KAFKA_ERR_NONE);
    assert_int_equal(j2.generation, 3);
    assert_int_equal(j3.generation, 3);
    assert_string_equal(j2.leader, j3.leader);
    assert_string_not_equal(j2.leader, m1);
    assert_int_equal(heartbeat(&x, "r", m1, NULL, 2), KAFKA_ERR_UNKNOWN_MEMBER_ID);
    struct desc d;
    assert_true(describe(&x, "r", &d));
    assert_int_equal(d.count, 2);
    assert_true(desc_find(&d, m1) < 0);

    /* A MEMBER_ID_REQUIRED id not used within the session timeout expires. */
    struct jres p;
    join_start(&x, &(struct jspec){.group = "p", .session_ms = 150, .require = true}, &p);
    assert_int_equal(p.error, KAFKA_ERR_MEMBER_ID_REQUIRED);
    char pid[ID_MAX];
    copy_str(pid, sizeof(pid), p.member_id);
    run_ms(&x, 400);
    join_start(&x, &(struct jspec){.group = "p", .member_id = pid, .session_ms = 150}, &p);
    assert_true(p.done);
    assert_int_equal(p.error, KAFKA_ERR_UNKNOWN_MEMBER_ID);
    /* ... or leaves (a client giving up before its second join). */
    join_start(&x, &(struct jspec){.group = "p", .require = true}, &p);
    assert_int_equal(p.error, KAFKA_ERR_MEMBER_ID_REQUIRED);
    copy_str(pid, sizeof(pid), p.member_id);
    assert_int_equal(groups_leave(x.gs, ks("p"), ks(pid), ks(NULL)), KAFKA_ERR_NONE);
    join_start(&x, &(struct jspec){.group = "p", .member_id = pid}, &p);
    assert_true(p.done);
    assert_int_equal(p.error, KAFKA_ERR_UNKNOWN_MEMBER_ID);
    fx_deinit(&x);
}

/* A leader's sync whose store is overtaken by a rebalance: the next
 * generation's sync is stored and answered all the same. */
static void test_groups_sync_overtaken_by_rebalance(void **state)
{
    (void)state;
    struct fx x;
    fx_init(&x, "groups_sync_overtaken", 1);
    fx_open(&x);
    char m1[ID_MAX];
    assert_int_equal(join_new(&x, "o", "m1", m1), 1);
    struct sres s1;
    sync_start(&x, "o", m1, NULL, 1, (const char *[]){m1}, (const char *[]){"A"}, 1, &s1);
    assert_false(s1.done); /* the store is in flight */
    struct jres j2, j1;
    join_start(&x, &(struct jspec){.group = "o", .tag = "m2"}, &j2);
    assert_true(s1.done);
    assert_int_equal(s1.error, KAFKA_ERR_REBALANCE_IN_PROGRESS);
    run_ms(&x, 30); /* the old store completes */
    join_wait(&x, &(struct jspec){.group = "o", .member_id = m1, .tag = "m1"}, &j1);
    assert_true(wait_ms(&x, &j2.done, 2000));
    assert_int_equal(j1.generation, 2);
    const char *ms[] = {m1, j2.member_id};
    sync_start(&x, "o", m1, NULL, 2, ms, (const char *[]){"A", "B"}, 2, &s1);
    assert_true(wait_ms(&x, &s1.done, 2000));
    assert_int_equal(s1.error, KAFKA_ERR_NONE);
    assert_string_equal(s1.assignment, "A");
    fx_deinit(&x);
}

/* Null and empty strings where the wire allows them: a null client host,
 * an empty client id with no bytes behind it, null protocol metadata. A
 * follower joining again with the same null metadata changes nothing. */
static void test_groups_null_strings(void **state)
{
    (void)state;
    struct fx x;
    fx_init(&x, "groups_null_strings", 1);
    fx_open(&x);
    char m1[ID_MAX];
    assert_int_equal(stable_alone(&x, "n", m1, "A"), 1);
    struct group_protocol proto = {ks("range"), {NULL, -1}};
    struct join_args a = {
        .group = ks("n"),
        .member_id = {NULL, 0},
        .instance_id = {NULL, -1},
        .client_id = {NULL, 0},
        .client_host = {NULL, -1},
        .protocol_type = ks("consumer"),
        .session_timeout_ms = 10000,
        .rebalance_timeout_ms = 10000,
        .protocols = &proto,
        .protocol_count = 1,
    };
    struct jres j2, j1;
    groups_join(x.gs, &a, join_cb, &j2);
    assert_false(j2.done);
    join_wait(&x, &(struct jspec){.group = "n", .member_id = m1, .tag = "m1"}, &j1);
    assert_true(wait_ms(&x, &j2.done, 2000));
    assert_int_equal(j2.error, KAFKA_ERR_NONE);
    assert_int_equal(j2.generation, 2);
    assert_memory_equal(j2.member_id, "-", 1); /* no client id: just the UUID */
    char m2[ID_MAX];
    copy_str(m2, sizeof(m2), j2.member_id);
    assert_string_equal(j1.meta[strcmp(j1.members[0], m2) == 0 ? 0 : 1], "");
    struct sres s;
    sync_wait(&x, "n", m1, NULL, 2, (const char *[]){m1, m2}, (const char *[]){"A", "B"}, 2, &s);
    struct desc d;
    assert_true(describe(&x, "n", &d));
    assert_string_equal(d.clients[desc_find(&d, m2)], "");
    /* The follower again, nothing changed: the current generation at once. */
    a.member_id = ks(m2);
    groups_join(x.gs, &a, join_cb, &j2);
    assert_true(j2.done);
    assert_int_equal(j2.error, KAFKA_ERR_NONE);
    assert_int_equal(j2.generation, 2);
    assert_true(describe(&x, "n", &d));
    assert_string_equal(d.state, "Stable");
    /* Null metadata is committed as empty; an empty topic name is refused. */
    struct commit c;
    commit_prepare(&c, "n", m2, NULL, 2, "t", 0, 2, 1, NULL);
    c.ps[1].topic = (struct kstr){NULL, 0};
    commit_run(&x, &c);
    assert_int_equal(c.ps[0].error, KAFKA_ERR_NONE);
    assert_int_equal(c.ps[1].error, KAFKA_ERR_INVALID_TOPIC_EXCEPTION);
    assert_string_equal(groups_committed(x.gs, ks("n"), ks("t"), 0)->metadata, "");
    fx_reopen(&x);
    assert_string_equal(groups_committed(x.gs, ks("n"), ks("t"), 0)->metadata, "");
    assert_true(describe(&x, "n", &d));
    assert_int_equal(d.count, 2);
    fx_deinit(&x);
}

/* Shutdown answers whatever waits. */
static void test_groups_release_answers_parked_calls(void **state)
{
    (void)state;
    struct fx x;
    fx_init(&x, "groups_release", 1);
    fx_open(&x);
    char m1[ID_MAX];
    assert_int_equal(stable_alone(&x, "g", m1, "A"), 1);
    struct jres j2, j1;
    join_start(&x, &(struct jspec){.group = "g", .tag = "m2"}, &j2);
    join_wait(&x, &(struct jspec){.group = "g", .member_id = m1, .tag = "m1"}, &j1);
    assert_true(wait_ms(&x, &j2.done, 2000));
    struct sres s2;
    sync_start(&x, "g", j2.member_id, NULL, 2, NULL, NULL, 0, &s2);
    struct jres j3;
    join_start(&x, &(struct jspec){.group = "g", .tag = "m3"}, &j3); /* s2 learns of it */
    assert_true(s2.done);
    assert_int_equal(s2.error, KAFKA_ERR_REBALANCE_IN_PROGRESS);
    join_start(&x, &(struct jspec){.group = "g", .member_id = j2.member_id, .tag = "m2"}, &j2);
    assert_false(j2.done);
    assert_false(j3.done);
    groups_release(x.gs);
    assert_true(j2.done && j3.done);
    assert_int_equal(j2.error, KAFKA_ERR_NOT_COORDINATOR);
    assert_int_equal(j3.error, KAFKA_ERR_NOT_COORDINATOR);
    assert_int_equal(j2.calls, 1);
    fx_deinit(&x);
}

/* ============================================================ offsets */

struct collected {
    int32_t count;
    int64_t sum;
};

static void collect_cb(void *opaque, const struct committed *c)
{
    struct collected *col = opaque;
    col->count++;
    col->sum += c->offset;
}

/* Simple commits (generation -1) into an Empty or new group, member commits
 * checked against the generation, and the per-partition errors. */
static void test_groups_commit_rules(void **state)
{
    (void)state;
    struct fx x;
    fx_init(&x, "groups_commit", 2);
    x.gc.offset_metadata_max_bytes = 16;
    fx_open(&x);

    /* Into a group that does not exist: it is created Empty. Nothing shows
     * before the commit is durable. */
    struct commit c;
    commit_prepare(&c, "simple", NULL, NULL, -1, "t", 0, 3, 40, "md");
    c.ps[2].metadata = ks("0123456789abcdefX"); /* 17 bytes > 16 */
    commit_start(&x, &c);
    assert_false(c.res.done);
    assert_null(groups_committed(x.gs, ks("simple"), ks("t"), 0));
    assert_true(wait_ms(&x, &c.res.done, 2000));
    assert_int_equal(c.res.status, KAFKA_ERR_NONE);
    assert_int_equal(c.ps[0].error, KAFKA_ERR_NONE);
    assert_int_equal(c.ps[1].error, KAFKA_ERR_NONE);
    assert_int_equal(c.ps[2].error, KAFKA_ERR_OFFSET_METADATA_TOO_LARGE);
    const struct committed *got = groups_committed(x.gs, ks("simple"), ks("t"), 1);
    assert_non_null(got);
    assert_string_equal(got->topic, "t");
    assert_int_equal(got->partition, 1);
    assert_int_equal(got->offset, 41);
    assert_int_equal(got->leader_epoch, 7);
    assert_string_equal(got->metadata, "md");
    assert_null(groups_committed(x.gs, ks("simple"), ks("t"), 2));
    assert_null(groups_committed(x.gs, ks("simple"), ks("u"), 0));
    assert_null(groups_committed(x.gs, ks("other"), ks("t"), 0));
    struct collected col = {0};
    assert_int_equal(groups_each_committed(x.gs, ks("simple"), collect_cb, &col), 2);
    assert_int_equal(col.count, 2);
    assert_int_equal(col.sum, 40 + 41);
    struct desc d;
    assert_true(describe(&x, "simple", &d));
    assert_string_equal(d.state, "Empty");

    /* A partition the caller already refused keeps its error; a null
     * metadata is stored as empty; a later commit replaces the offset. */
    commit_prepare(&c, "simple", NULL, NULL, -1, "t", 0, 2, 50, NULL);
    c.ps[1].error = KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    commit_run(&x, &c);
    assert_int_equal(c.ps[0].error, KAFKA_ERR_NONE);
    assert_int_equal(c.ps[1].error, KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    assert_int_equal(committed(&x, "simple", "t", 0), 50);
    assert_string_equal(groups_committed(x.gs, ks("simple"), ks("t"), 0)->metadata, "");
    assert_int_equal(committed(&x, "simple", "t", 1), 41);

    /* Member commits: the generation must match; a commit from outside
     * is refused while the group has members. */
    char m1[ID_MAX];
    assert_int_equal(stable_alone(&x, "grp", m1, "A"), 1);
    assert_int_equal(commit1(&x, "grp", m1, NULL, 1, "t", 0, 100, "x"), KAFKA_ERR_NONE);
    assert_int_equal(committed(&x, "grp", "t", 0), 100);
    assert_int_equal(commit1(&x, "grp", m1, NULL, 2, "t", 0, 101, "x"),
                     KAFKA_ERR_ILLEGAL_GENERATION);
    assert_int_equal(commit1(&x, "grp", m1, NULL, 0, "t", 0, 101, "x"),
                     KAFKA_ERR_ILLEGAL_GENERATION);
    assert_int_equal(commit1(&x, "grp", NULL, NULL, -1, "t", 0, 101, "x"),
                     KAFKA_ERR_UNKNOWN_MEMBER_ID);
    assert_int_equal(committed(&x, "grp", "t", 0), 100);
    /* While it rebalances the current generation may still commit (what a
     * consumer does as it gives up its partitions), not before its sync. */
    struct jres j2, j1;
    join_start(&x, &(struct jspec){.group = "grp", .tag = "m2"}, &j2);
    assert_false(j2.done);
    assert_int_equal(commit1(&x, "grp", m1, NULL, 1, "t", 0, 102, "x"), KAFKA_ERR_NONE);
    assert_int_equal(committed(&x, "grp", "t", 0), 102);
    join_wait(&x, &(struct jspec){.group = "grp", .member_id = m1, .tag = "m1"}, &j1);
    assert_int_equal(j1.generation, 2);
    assert_int_equal(commit1(&x, "grp", m1, NULL, 2, "t", 0, 103, "x"),
                     KAFKA_ERR_REBALANCE_IN_PROGRESS);
    assert_int_equal(commit1(&x, "grp", m1, NULL, 1, "t", 0, 103, "x"),
                     KAFKA_ERR_ILLEGAL_GENERATION);
    assert_int_equal(committed(&x, "grp", "t", 0), 102);
    commit_prepare(&c, "", NULL, NULL, -1, "t", 0, 1, 1, NULL);
    commit_run(&x, &c);
    assert_int_equal(c.res.status, KAFKA_ERR_INVALID_GROUP_ID);
    assert_int_equal(c.ps[0].error, KAFKA_ERR_INVALID_GROUP_ID);
    fx_deinit(&x);
}

/* offsets.max bounds the committed offsets of all groups; groups.max the
 * groups. Replacing a kept offset is always allowed. */
static void test_groups_offsets_and_groups_bounded(void **state)
{
    (void)state;
    struct fx x;
    fx_init(&x, "groups_bounds", 2);
    x.gc.offsets_max = 4;
    x.gc.groups_max = 2;
    fx_open(&x);
    struct commit c;
    commit_prepare(&c, "a", NULL, NULL, -1, "t", 0, 3, 10, NULL);
    commit_run(&x, &c);
    assert_int_equal(c.ps[2].error, KAFKA_ERR_NONE);
    commit_prepare(&c, "b", NULL, NULL, -1, "t", 0, 2, 20, NULL);
    commit_run(&x, &c);
    assert_int_equal(c.ps[0].error, KAFKA_ERR_NONE);
    assert_int_equal(c.ps[1].error, KAFKA_ERR_COORDINATOR_NOT_AVAILABLE);
    assert_int_equal(committed(&x, "b", "t", 0), 20);
    assert_int_equal(committed(&x, "b", "t", 1), -1);
    /* Full: existing keys still move. */
    commit_prepare(&c, "a", NULL, NULL, -1, "t", 0, 4, 30, NULL);
    commit_run(&x, &c);
    assert_int_equal(c.ps[0].error, KAFKA_ERR_NONE);
    assert_int_equal(c.ps[2].error, KAFKA_ERR_NONE);
    assert_int_equal(c.ps[3].error, KAFKA_ERR_COORDINATOR_NOT_AVAILABLE);
    assert_int_equal(committed(&x, "a", "t", 2), 32);
    /* A third group. */
    assert_int_equal(commit1(&x, "c", NULL, NULL, -1, "t", 0, 1, NULL),
                     KAFKA_ERR_COORDINATOR_NOT_AVAILABLE);
    assert_false(groups_exists(x.gs, ks("c")));
    struct jres j;
    join_start(&x, &(struct jspec){.group = "c"}, &j);
    assert_true(j.done);
    assert_int_equal(j.error, KAFKA_ERR_COORDINATOR_NOT_AVAILABLE);
    /* Deleting a group makes room. */
    assert_int_equal(delete_group(&x, "b"), KAFKA_ERR_NONE);
    assert_int_equal(commit1(&x, "c", NULL, NULL, -1, "t", 0, 1, NULL), KAFKA_ERR_NONE);
    fx_deinit(&x);
}

static void count_group(void *opaque, const struct group_view *g)
{
    (void)g;
    (*(int *)opaque)++;
}

/* Everything comes back from the logs after a restart: offsets (the last
 * of each key), the group's generation, members and assignments; deleted
 * groups stay deleted. */
static void test_groups_replay_restores_everything(void **state)
{
    (void)state;
    struct fx x;
    fx_init(&x, "groups_replay", 3);
    fx_open(&x);
    /* "p": m1 (dynamic) and s1 (static) in generation 2. */
    char m1[ID_MAX], s1[ID_MAX];
    assert_int_equal(stable_alone(&x, "p", m1, "A"), 1);
    struct jres js, j1;
    join_start(&x, &(struct jspec){.group = "p", .instance = "i1", .client_id = "cs", .tag = "s1"},
               &js);
    join_wait(&x, &(struct jspec){.group = "p", .member_id = m1, .tag = "m1"}, &j1);
    assert_true(wait_ms(&x, &js.done, 2000));
    copy_str(s1, sizeof(s1), js.member_id);
    struct sres s;
    sync_wait(&x, "p", m1, NULL, 2, (const char *[]){m1, s1}, (const char *[]){"A1", "S1"}, 2, &s);
    assert_int_equal(commit1(&x, "p", m1, NULL, 2, "t", 0, 10, "m-0"), KAFKA_ERR_NONE);
    assert_int_equal(commit1(&x, "p", s1, "i1", 2, "t", 1, 11, "m-1"), KAFKA_ERR_NONE);
    /* "q": simple commits, the last wins. */
    assert_int_equal(commit1(&x, "q", NULL, NULL, -1, "u", 0, 5, NULL), KAFKA_ERR_NONE);
    assert_int_equal(commit1(&x, "q", NULL, NULL, -1, "u", 0, 6, "six"), KAFKA_ERR_NONE);
    /* "d": committed then deleted. */
    assert_int_equal(commit1(&x, "d", NULL, NULL, -1, "u", 0, 9, NULL), KAFKA_ERR_NONE);
    assert_int_equal(delete_group(&x, "d"), KAFKA_ERR_NONE);
    assert_false(groups_exists(x.gs, ks("d")));
    assert_int_equal(delete_group(&x, "d"), KAFKA_ERR_GROUP_ID_NOT_FOUND);
    assert_int_equal(delete_group(&x, "p"), KAFKA_ERR_NON_EMPTY_GROUP);
    assert_int_equal(delete_group(&x, "nope"), KAFKA_ERR_GROUP_ID_NOT_FOUND);
    /* "e": one member that left: Empty at generation 2. */
    char e1[ID_MAX];
    assert_int_equal(stable_alone(&x, "e", e1, "E"), 1);
    assert_int_equal(groups_leave(x.gs, ks("e"), ks(e1), ks(NULL)), KAFKA_ERR_NONE);
    run_ms(&x, 20);

    for (int round = 0; round < 2; round++) {
        fx_reopen(&x);
        int groups = 0;
        assert_int_equal(groups_list(x.gs, count_group, &groups), 3);
        assert_int_equal(groups, 3);
        assert_int_equal(committed(&x, "p", "t", 0), 10);
        assert_int_equal(committed(&x, "p", "t", 1), 11);
        assert_string_equal(groups_committed(x.gs, ks("p"), ks("t"), 1)->metadata, "m-1");
        assert_int_equal(groups_committed(x.gs, ks("p"), ks("t"), 1)->leader_epoch, 7);
        assert_int_equal(committed(&x, "q", "u", 0), 6);
        assert_string_equal(groups_committed(x.gs, ks("q"), ks("u"), 0)->metadata, "six");
        assert_false(groups_exists(x.gs, ks("d")));
        assert_int_equal(committed(&x, "d", "u", 0), -1);
        struct desc d;
        assert_true(describe(&x, "p", &d));
        assert_string_equal(d.state, "Stable");
        assert_string_equal(d.protocol, "range");
        assert_int_equal(d.count, 2);
        int i = desc_find(&d, m1);
        int k = desc_find(&d, s1);
        assert_true(i >= 0 && k >= 0);
        assert_string_equal(d.assignments[i], "A1");
        assert_string_equal(d.assignments[k], "S1");
        assert_string_equal(d.instances[k], "i1");
        assert_string_equal(d.instances[i], "");
        assert_string_equal(d.clients[k], "cs");
        assert_string_equal(d.meta[i], "m1/range");
        assert_int_equal(heartbeat(&x, "p", m1, NULL, 2), KAFKA_ERR_NONE);
        assert_int_equal(heartbeat(&x, "p", s1, "i1", 2), KAFKA_ERR_NONE);
        assert_int_equal(heartbeat(&x, "p", m1, NULL, 1), KAFKA_ERR_ILLEGAL_GENERATION);
        sync_wait(&x, "p", s1, "i1", 2, NULL, NULL, 0, &s);
        assert_int_equal(s.error, KAFKA_ERR_NONE);
        assert_string_equal(s.assignment, "S1");
        assert_true(describe(&x, "e", &d));
        assert_string_equal(d.state, "Empty");
        assert_int_equal(delete_group(&x, "d"), KAFKA_ERR_GROUP_ID_NOT_FOUND);
    }
    /* The Empty group goes on from its generation. */
    struct jres j;
    join_wait(&x, &(struct jspec){.group = "e"}, &j);
    assert_int_equal(j.generation, 3);
    fx_deinit(&x);
}

/* A rewrite while a group is between generations keeps what the log said
 * (the last stored generation), not the half-done state in memory. */
static void test_groups_rewrite_keeps_stored_generation(void **state)
{
    (void)state;
    struct fx x;
    fx_init(&x, "groups_rewrite_gen", 1);
    x.gc.rewrite_bytes_min = 1; /* a rewrite once 4 x the live bytes went in */
    x.lc.segment_bytes = 4 * KIB;
    x.lc.preallocate_bytes = 4 * KIB;
    x.lc.checkpoint_interval_ms = 20;
    x.lc.checkpoint_bytes = 4 * KIB;
    fx_open(&x);
    char m1[ID_MAX];
    assert_int_equal(stable_alone(&x, "g", m1, "A"), 1);
    struct jres j2, j1;
    join_start(&x, &(struct jspec){.group = "g", .tag = "m2"}, &j2);
    join_wait(&x, &(struct jspec){.group = "g", .member_id = m1, .tag = "m1"}, &j1);
    assert_true(wait_ms(&x, &j2.done, 2000));
    assert_int_equal(j1.generation, 2); /* CompletingRebalance: nothing stored yet */
    for (int i = 0; i < 40; i++) {
        assert_int_equal(commit1(&x, "other", NULL, NULL, -1, "t", 0, i, NULL), KAFKA_ERR_NONE);
    }
    run_ms(&x, 50);
    assert_true(log_start_offset(x.logs[0]) > 0); /* rewritten, the old records gone */
    fx_reopen(&x);
    struct desc d;
    assert_true(describe(&x, "g", &d));
    assert_string_equal(d.state, "Stable");
    assert_int_equal(d.count, 1);
    assert_string_equal(d.ids[0], m1);
    assert_string_equal(d.assignments[0], "A");
    struct sres s;
    sync_wait(&x, "g", m1, NULL, 1, NULL, NULL, 0, &s);
    assert_int_equal(s.error, KAFKA_ERR_NONE);
    assert_string_equal(s.assignment, "A");
    assert_int_equal(heartbeat(&x, "g", j2.member_id, NULL, 2), KAFKA_ERR_UNKNOWN_MEMBER_ID);
    assert_int_equal(committed(&x, "other", "t", 0), 39);
    fx_deinit(&x);
}

/* Commits of the same keys over and over: compaction keeps the partition
 * small, and the last values survive a restart. */
static void test_groups_compaction_bounds_disk(void **state)
{
    (void)state;
    enum { ROUNDS = 20000, WAVE = 50, KEYS = 3 };
    struct fx x;
    fx_init(&x, "groups_compaction", 1);
    x.lc.segment_bytes = 16 * KIB;
    x.lc.preallocate_bytes = 4 * KIB;
    x.lc.checkpoint_interval_ms = 50;
    x.lc.checkpoint_bytes = 16 * KIB;
    x.gc.rewrite_bytes_min = 16 * KIB;
    fx_open(&x);
    char m1[ID_MAX];
    assert_int_equal(stable_alone(&x, "live", m1, "A"), 1);
    static struct commit wave[WAVE];
    uint64_t size_max = 0;
    for (int i = 0; i < ROUNDS; i += WAVE) {
        for (int w = 0; w < WAVE; w++) {
            commit_prepare(&wave[w], "c", NULL, NULL, -1, "topic", 0, KEYS, (int64_t)(i + w) * 10,
                           "meta");
            commit_start(&x, &wave[w]);
        }
        for (int w = 0; w < WAVE; w++) {
            assert_true(wait_ms(&x, &wave[w].res.done, 5000));
            assert_int_equal(wave[w].ps[KEYS - 1].error, KAFKA_ERR_NONE);
        }
        size_max = SL_MAX(size_max, log_size_bytes(x.logs[0]));
    }
    print_message("compaction: end offset %lld, start %lld, size max %llu, now %llu\n",
                  (long long)log_end_offset(x.logs[0]), (long long)log_start_offset(x.logs[0]),
                  (unsigned long long)size_max, (unsigned long long)log_size_bytes(x.logs[0]));
    assert_true(log_start_offset(x.logs[0]) > 0);
    assert_true(size_max < 160 * KIB); /* ~4 MB appended in all */
    int64_t last = (int64_t)(ROUNDS - 1) * 10;
    for (int round = 0; round < 2; round++) {
        for (int k = 0; k < KEYS; k++) {
            assert_int_equal(committed(&x, "c", "topic", k), last + k);
            assert_string_equal(groups_committed(x.gs, ks("c"), ks("topic"), k)->metadata, "meta");
        }
        struct desc d;
        assert_true(describe(&x, "live", &d));
        assert_int_equal(d.count, 1);
        assert_string_equal(d.assignments[0], "A");
        fx_reopen(&x);
    }
    fx_deinit(&x);
}

/* A partition whose live records fill several batches is rewritten in
 * several batches, and replays whole. */
static void test_groups_compaction_of_many_keys(void **state)
{
    (void)state;
    enum { KEYS = 3000, PER = 16 };
    struct fx x;
    fx_init(&x, "groups_compaction_many", 1);
    x.lc.segment_bytes = 64 * KIB;
    x.lc.preallocate_bytes = 4 * KIB;
    x.lc.max_message_bytes = 64 * KIB;
    x.lc.checkpoint_interval_ms = 50;
    x.lc.checkpoint_bytes = 16 * KIB;
    x.gc.batch_bytes_max = 64 * KIB;
    x.gc.rewrite_bytes_min = 64 * KIB;
    fx_open(&x);
    static struct commit wave[KEYS / PER];
    for (int round = 0; round < 4; round++) {
        for (int w = 0; w < KEYS / PER; w++) {
            commit_prepare(&wave[w], "g", NULL, NULL, -1, "t", w * PER, PER,
                           (int64_t)round * 100000 + w * PER, NULL);
            commit_start(&x, &wave[w]);
        }
        for (int w = 0; w < KEYS / PER; w++) {
            assert_true(wait_ms(&x, &wave[w].res.done, 5000));
            assert_int_equal(wave[w].ps[0].error, KAFKA_ERR_NONE);
        }
        run_ms(&x, 60);
    }
    int64_t keys = (KEYS / PER) * PER;
    print_message("many keys: start %lld end %lld size %llu\n",
                  (long long)log_start_offset(x.logs[0]), (long long)log_end_offset(x.logs[0]),
                  (unsigned long long)log_size_bytes(x.logs[0]));
    assert_true(log_start_offset(x.logs[0]) > 0);
    fx_reopen(&x);
    struct collected col = {0};
    assert_int_equal(groups_each_committed(x.gs, ks("g"), collect_cb, &col), keys);
    assert_int_equal(col.sum, 3 * 100000 * keys + keys * (keys - 1) / 2);
    fx_deinit(&x);
}

/* Offsets of an Empty group expire after the retention, and the group with
 * them; a group with members keeps its offsets. */
static void test_groups_offsets_expire(void **state)
{
    (void)state;
    struct fx x;
    fx_init(&x, "groups_offsets_expire", 2);
    x.gc.offsets_retention_ms = 200;
    x.gc.retention_check_interval_ms = 50;
    fx_open(&x);
    assert_int_equal(commit1(&x, "idle", NULL, NULL, -1, "t", 0, 1, NULL), KAFKA_ERR_NONE);
    char m1[ID_MAX];
    struct jres j;
    join_wait(&x, &(struct jspec){.group = "busy", .session_ms = 5000}, &j);
    copy_str(m1, sizeof(m1), j.member_id);
    struct sres s;
    sync_wait(&x, "busy", m1, NULL, 1, (const char *[]){m1}, (const char *[]){"A"}, 1, &s);
    assert_int_equal(commit1(&x, "busy", m1, NULL, 1, "t", 0, 2, NULL), KAFKA_ERR_NONE);
    struct keeper k;
    keeper_start(&x, &k, "busy", m1, 1);
    int64_t t0 = mono_ms();
    while (groups_exists(x.gs, ks("idle")) && mono_ms() - t0 < 3000) {
        ev_run(x.f.loop, EVRUN_ONCE);
    }
    assert_true(mono_ms() - t0 >= 150);
    assert_false(groups_exists(x.gs, ks("idle")));
    assert_int_equal(committed(&x, "idle", "t", 0), -1);
    run_ms(&x, 300);
    keeper_stop(&x, &k);
    assert_int_equal(k.last, KAFKA_ERR_NONE);
    assert_int_equal(committed(&x, "busy", "t", 0), 2);
    fx_reopen(&x);
    assert_false(groups_exists(x.gs, ks("idle")));
    assert_int_equal(committed(&x, "busy", "t", 0), 2);
    fx_deinit(&x);
}

/* The expiry clock does not restart with the coordinator: offsets without
 * group metadata count from their commit, an Empty group from when its
 * record says it became empty. */
static void test_groups_expiry_clock_survives_restart(void **state)
{
    (void)state;
    struct fx x;
    fx_init(&x, "groups_expiry_restart", 2);
    x.gc.offsets_retention_ms = 400;
    x.gc.retention_check_interval_ms = 50;
    fx_open(&x);
    assert_int_equal(commit1(&x, "idle", NULL, NULL, -1, "t", 0, 1, NULL), KAFKA_ERR_NONE);
    char m1[ID_MAX];
    assert_int_equal(stable_alone(&x, "left", m1, "A"), 1);
    assert_int_equal(commit1(&x, "left", m1, NULL, 1, "t", 0, 1, NULL), KAFKA_ERR_NONE);
    assert_int_equal(groups_leave(x.gs, ks("left"), ks(m1), ks(NULL)), KAFKA_ERR_NONE);
    run_ms(&x, 250);
    assert_true(groups_exists(x.gs, ks("idle")) && groups_exists(x.gs, ks("left")));
    fx_reopen(&x);
    int64_t t0 = mono_ms();
    while ((groups_exists(x.gs, ks("idle")) || groups_exists(x.gs, ks("left"))) &&
           mono_ms() - t0 < 2000) {
        ev_run(x.f.loop, EVRUN_ONCE);
    }
    int64_t took = mono_ms() - t0;
    assert_false(groups_exists(x.gs, ks("idle")));
    assert_false(groups_exists(x.gs, ks("left")));
    assert_true(took < 330); /* about 150 ms; 400 if the clock restarted */
    fx_reopen(&x);
    assert_false(groups_exists(x.gs, ks("idle")));
    assert_false(groups_exists(x.gs, ks("left")));
    fx_deinit(&x);
}

/* A commit in flight while the expiry looks at its group: the memory and
 * the log must tell the same story afterwards. */
static void test_groups_expiry_spares_commit_in_flight(void **state)
{
    (void)state;
    struct fx x;
    fx_init(&x, "groups_expiry_race", 1);
    x.gc.offsets_retention_ms = 200;
    x.gc.retention_check_interval_ms = 100;
    fx_open(&x);
    assert_int_equal(commit1(&x, "g", NULL, NULL, -1, "t", 0, 1, NULL), KAFKA_ERR_NONE);
    run_ms(&x, 150);
    assert_int_equal(commit1(&x, "g", NULL, NULL, -1, "t", 1, 2, NULL), KAFKA_ERR_NONE);
    usleep(150 * 1000); /* the expiry is due, and t-0 is old */
    struct commit c;
    commit_prepare(&c, "g", NULL, NULL, -1, "t", 0, 1, 3, NULL);
    commit_run(&x, &c);
    assert_int_equal(c.ps[0].error, KAFKA_ERR_NONE);
    run_ms(&x, 20);
    int64_t t0 = committed(&x, "g", "t", 0);
    int64_t t1 = committed(&x, "g", "t", 1);
    fx_reopen(&x);
    assert_int_equal(committed(&x, "g", "t", 0), t0);
    assert_int_equal(committed(&x, "g", "t", 1), t1);
    assert_int_equal(t0, 3); /* acknowledged moments ago */
    fx_deinit(&x);
}

/* A commit that arrives while a deletion's tombstones are in flight comes
 * after them: the group is back with that offset, in memory as in the log. */
static void test_groups_delete_then_commit(void **state)
{
    (void)state;
    struct fx x;
    fx_init(&x, "groups_delete_commit", 1);
    fx_open(&x);
    assert_int_equal(commit1(&x, "d", NULL, NULL, -1, "t", 0, 1, NULL), KAFKA_ERR_NONE);
    struct dres del = {0};
    groups_delete(x.gs, ks("d"), delete_cb, &del);
    struct commit c;
    commit_prepare(&c, "d", NULL, NULL, -1, "t", 1, 1, 2, NULL);
    commit_start(&x, &c);
    assert_true(wait_ms(&x, &del.done, 2000) && wait_ms(&x, &c.res.done, 2000));
    assert_int_equal(del.error, KAFKA_ERR_NONE);
    assert_int_equal(c.ps[0].error, KAFKA_ERR_NONE);
    assert_int_equal(committed(&x, "d", "t", 0), -1);
    assert_int_equal(committed(&x, "d", "t", 1), 2);
    fx_reopen(&x);
    assert_int_equal(committed(&x, "d", "t", 0), -1);
    assert_int_equal(committed(&x, "d", "t", 1), 2);
    fx_deinit(&x);
}

/* A member joining while a deletion's tombstones are in flight: the offsets
 * are gone all the same, in memory as in the log. */
static void test_groups_delete_then_join(void **state)
{
    (void)state;
    struct fx x;
    fx_init(&x, "groups_delete_join", 1);
    fx_open(&x);
    assert_int_equal(commit1(&x, "j", NULL, NULL, -1, "t", 0, 5, NULL), KAFKA_ERR_NONE);
    struct dres del = {0};
    groups_delete(x.gs, ks("j"), delete_cb, &del);
    struct jres j;
    join_start(&x, &(struct jspec){.group = "j"}, &j);
    assert_true(wait_ms(&x, &del.done, 2000) && wait_ms(&x, &j.done, 2000));
    assert_int_equal(del.error, KAFKA_ERR_NONE);
    assert_int_equal(j.error, KAFKA_ERR_NONE);
    assert_int_equal(committed(&x, "j", "t", 0), -1);
    assert_true(groups_exists(x.gs, ks("j"))); /* with its member */
    fx_reopen(&x);
    assert_int_equal(committed(&x, "j", "t", 0), -1);
    fx_deinit(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_groups_join_then_sync_first_generation),
        cmocka_unit_test(test_groups_second_member_rebalances),
        cmocka_unit_test(test_groups_join_again_while_completing),
        cmocka_unit_test(test_groups_protocol_selection),
        cmocka_unit_test(test_groups_fencing_errors),
        cmocka_unit_test(test_groups_static_member_rejoins_without_rebalance),
        cmocka_unit_test(test_groups_session_expiry_and_leave),
        cmocka_unit_test(test_groups_rebalance_timeout_and_pending_ids),
        cmocka_unit_test(test_groups_sync_overtaken_by_rebalance),
        cmocka_unit_test(test_groups_null_strings),
        cmocka_unit_test(test_groups_release_answers_parked_calls),
        cmocka_unit_test(test_groups_commit_rules),
        cmocka_unit_test(test_groups_offsets_and_groups_bounded),
        cmocka_unit_test(test_groups_replay_restores_everything),
        cmocka_unit_test(test_groups_rewrite_keeps_stored_generation),
        cmocka_unit_test(test_groups_compaction_bounds_disk),
        cmocka_unit_test(test_groups_compaction_of_many_keys),
        cmocka_unit_test(test_groups_offsets_expire),
        cmocka_unit_test(test_groups_expiry_clock_survives_restart),
        cmocka_unit_test(test_groups_expiry_spares_commit_in_flight),
        cmocka_unit_test(test_groups_delete_then_commit),
        cmocka_unit_test(test_groups_delete_then_join),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
