/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Consumer groups: the member side of Kafka's classic group protocol
 * (FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup) with the
 * eager rebalance of the Java client, and the group's offsets (OffsetFetch,
 * OffsetCommit): sl_subscribe, sl_commit, auto-commit, the rebalance and
 * commit callbacks.
 *
 * The coordinator gets a connection of its own (a broker entry with node id
 * COORD_NODE), as the Java client does, so a Fetch waiting out
 * fetch.max.wait.ms never holds back a heartbeat, and a JoinGroup waiting
 * out a rebalance never holds back a Fetch.
 *
 * A member moves through these states:
 *
 *   JOIN ──JoinGroup──▶ JOINING ──▶ ASSIGN (leader: partition counts, then
 *    ▲                     │         the assignor) ──SyncGroup──▶ SYNCING
 *    │                     └──▶ SYNC (follower) ─────SyncGroup──▶ SYNCING
 *    │                                                               │
 *    │   OFFSETS ◀───────────────────────────────────────────────────┘
 *    │      │ OffsetFetch: each partition starts at its committed offset
 *    │      ▼ (else auto.offset.reset), the ASSIGN callback fires
 *    └── STABLE: heartbeats, auto-commits; a heartbeat's REBALANCE_IN_PROGRESS,
 *        a changed partition count, a new subscription: back to JOIN
 *
 * Leaving STABLE with partitions first revokes them: the REVOKE callback
 * (LOST when the membership is gone already: no commit could succeed), the
 * auto-commit of what sl_consume handed out, then the partitions are
 * unassigned and their queued records dropped. No JoinGroup is sent while a
 * revoke waits for its callback or a commit is unanswered, so a commit made
 * on revoke lands before the partitions move to another member: that is what
 * keeps a rebalance from reading anything twice.
 *
 * Callbacks run from slc_group_dispatch, inside the client's dispatch (the
 * calls that poll), never from a network handler.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/internal.h"
#include "common/assert.h"
#include "proto/errors.h"

/* The coordinator's connection: a node id no broker has (bootstrap entries
 * count down from -1, brokers up from 0). */
#define COORD_NODE (INT32_MIN + 1)
/* Topics of one subscription: more is a mistake, not a use. */
#define SUBSCRIBED_TOPICS_MAX 1024
/* Members a leader assigns; Kafka's group.max.size defaults to far less. */
#define MEMBERS_MAX 10000
/* Commits queued or in flight; sl_commit(async) beyond: SL_ERR_QUEUE_FULL. */
#define COMMITS_MAX 64
/* A JoinGroup is answered once the rebalance ends: up to the rebalance
 * timeout, plus this for the network. */
#define JOIN_SLACK_MS 5000
/* Group protocol versions this client speaks. FindCoordinator up to v3 (v4
 * batches keys), OffsetFetch up to v7 (v8 batches groups). */
#define FIND_COORDINATOR_MAX 3
#define JOIN_GROUP_MAX       9
#define SYNC_GROUP_MAX       5
#define HEARTBEAT_MAX        4
#define LEAVE_GROUP_MAX      5
#define OFFSET_FETCH_MAX     7
#define OFFSET_COMMIT_MAX    8

enum gstate {
    G_NONE, /* not subscribed: commits only */
    G_JOIN,
    G_JOINING,
    G_ASSIGN,
    G_SYNC,
    G_SYNCING,
    G_OFFSETS,
    G_OFFSETS_WAIT,
    G_STABLE,
    G_LEFT, /* left on max.poll.interval.ms; the next sl_consume rejoins */
};

enum cstate { C_UNKNOWN, C_FINDING, C_KNOWN };

/* A commit: its partitions (names inside the same allocation). */
struct gcommit {
    struct gcommit *next;
    bool async;    /* its outcome goes to the commit callback */
    bool finished; /* sync: the waiter's signal */
    bool orphan;   /* sync, and its waiter gave up: freed when finished */
    sl_err err;
    int64_t deadline_ms;
    size_t count;
    sl_topic_partition *parts;
};

/* A member of the leader's JoinGroup answer. */
struct gmember {
    char *id;
    char **topics;
    uint32_t topic_count;
};

/* A partition count the assignment was made with. */
struct gsnap {
    struct slc_topic *topic;
    int32_t partitions;
};

struct slc_group {
    enum gstate state;
    char **topics; /* the subscription */
    uint32_t topic_count;
    char assignors[SLC_ASSIGNORS_MAX][SLC_ASSIGNOR_NAME_BYTES];
    size_t assignor_count;
    /* membership */
    char *member_id; /* "" before the first join */
    int32_t generation;
    bool leader;
    char protocol[SLC_ASSIGNOR_NAME_BYTES];
    struct gmember *members; /* the leader's, from JoinGroup */
    uint32_t member_count;
    /* the assignment from SyncGroup, until OffsetFetch places it */
    sl_topic_partition *assigned;
    size_t assigned_count;
    struct gsnap *snap;
    uint32_t snap_count;
    int64_t retry_at_ms;
    uint32_t failures;
    /* coordinator */
    enum cstate coord;
    int64_t coord_retry_at_ms;
    uint32_t coord_failures;
    /* liveness */
    bool hb_inflight;
    int32_t hb_generation; /* of the heartbeat in flight */
    int64_t hb_next_ms;
    int64_t hb_ok_ms;
    int64_t polled_ms;
    /* callbacks due */
    sl_rebalance revoke_due; /* 0: none */
    bool assign_due;
    bool rejoin_due; /* another join after the one under way */
    /* commits */
    struct gcommit *c_head, *c_tail; /* waiting to be sent */
    uint32_t c_inflight;
    uint32_t c_total;                /* queued + in flight, for the bound */
    struct gcommit *d_head, *d_tail; /* async ones done, for the callback */
    int64_t auto_commit_ms;
    /* leaving: on close, or when max.poll.interval.ms passed */
    bool closing;
    bool leave_wanted;
    bool leave_inflight;
};

static bool member(const struct slc_group *g)
{
    return g->state >= G_OFFSETS && g->state <= G_STABLE;
}

static struct kstr str_or_null(const char *s)
{
    return s != NULL && s[0] != '\0' ? kstr_cstr(s) : (struct kstr){NULL, -1};
}

static struct slc_broker *coordinator(sl_client *c)
{
    return c->group->coord == C_KNOWN ? slc_broker_find(c, COORD_NODE) : NULL;
}

/* ================================================================ commits */

static void commit_free(struct gcommit *gc)
{
    free(gc);
}

/* A commit of count partitions, names copied. */
static struct gcommit *commit_new(const sl_topic_partition *parts, size_t count, bool async,
                                  int64_t deadline_ms)
{
    size_t bytes = sizeof(struct gcommit) + count * sizeof(sl_topic_partition);
    for (size_t i = 0; i < count; i++) {
        bytes += strlen(parts[i].topic) + 1;
    }
    struct gcommit *gc = malloc(bytes);
    if (gc == NULL) {
        return NULL;
    }
    *gc = (struct gcommit){.async = async, .deadline_ms = deadline_ms, .count = count};
    gc->parts = (sl_topic_partition *)(gc + 1);
    char *names = (char *)(gc->parts + count);
    for (size_t i = 0; i < count; i++) {
        size_t len = strlen(parts[i].topic) + 1;
        memcpy(names, parts[i].topic, len);
        gc->parts[i] = (sl_topic_partition){names, parts[i].partition, parts[i].offset, SL_OK};
        names += len;
    }
    return gc;
}

static void commit_queue(struct slc_group *g, struct gcommit *gc)
{
    gc->next = NULL;
    if (g->c_tail != NULL) {
        g->c_tail->next = gc;
    } else {
        g->c_head = gc;
    }
    g->c_tail = gc;
}

/* Queues a commit; false when over the bound or out of memory. */
static bool commit_add(sl_client *c, const sl_topic_partition *parts, size_t count, bool async,
                       struct gcommit **out)
{
    struct slc_group *g = c->group;
    if (g->c_total >= COMMITS_MAX) {
        return false;
    }
    struct gcommit *gc =
        commit_new(parts, count, async, slc_now_ms() + c->conf->request_timeout_ms);
    if (gc == NULL) {
        return false;
    }
    g->c_total++;
    commit_queue(g, gc);
    if (out != NULL) {
        *out = gc;
    }
    slc_wake_at(c, 0);
    return true;
}

/* A commit's outcome is known: to the callback list, or to its waiter. */
static void commit_finish(sl_client *c, struct gcommit *gc, sl_err err)
{
    struct slc_group *g = c->group;
    gc->err = err;
    gc->finished = true;
    if (gc->orphan) {
        commit_free(gc);
        return;
    }
    if (!gc->async) {
        return; /* the waiter frees it */
    }
    gc->next = NULL;
    if (g->d_tail != NULL) {
        g->d_tail->next = gc;
    } else {
        g->d_head = gc;
    }
    g->d_tail = gc;
}

static void commit_auto(sl_client *c)
{
    size_t n;
    sl_topic_partition *parts = slc_consumer_offsets(c, true, &n);
    if (parts == NULL) {
        slc_error(c, SL_ERR_NOMEM, "group %s: auto-commit: out of memory", c->conf->group_id);
        return;
    }
    if (n > 0 && !commit_add(c, parts, n, true, NULL)) {
        slc_error(c, SL_ERR_QUEUE_FULL, "group %s: auto-commit skipped: %d commits unanswered",
                  c->conf->group_id, COMMITS_MAX);
    }
    free(parts);
}

static void rejoin(sl_client *c, sl_rebalance why, const char *reason);
static void coordinator_lost(sl_client *c, const char *why, int64_t now_ms);

static bool coordinator_error(int err)
{
    return err == KAFKA_ERR_NOT_COORDINATOR || err == KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
}

static void commit_answer(sl_client *c, struct slc_broker *b, void *arg, const void *resp_,
                          sl_err err, int64_t now_ms)
{
    (void)b;
    struct slc_group *g = c->group;
    struct gcommit *gc = arg;
    const struct kmsg_offset_commit_response *resp = resp_;
    SL_ASSERT(g->c_inflight > 0);
    g->c_inflight--;
    sl_err first = resp == NULL ? (err != SL_OK ? err : SL_ERR_TRANSPORT) : SL_OK;
    for (int32_t i = 0; resp != NULL && i < resp->topics.count; i++) {
        const struct kmsg_offset_commit_response_offset_commit_response_topic *t =
            &((const struct kmsg_offset_commit_response_offset_commit_response_topic *)
                  resp->topics.items)[i];
        const struct kmsg_offset_commit_response_offset_commit_response_partition *p =
            t->partitions.items;
        for (int32_t k = 0; k < t->partitions.count; k++) {
            for (size_t j = 0; j < gc->count; j++) {
                if (gc->parts[j].partition == p[k].partition_index &&
                    (int32_t)strlen(gc->parts[j].topic) == t->name.len &&
                    memcmp(gc->parts[j].topic, t->name.ptr, (size_t)t->name.len) == 0) {
                    gc->parts[j].err = (sl_err)p[k].error_code;
                }
            }
            if (first == SL_OK && p[k].error_code != 0) {
                first = (sl_err)p[k].error_code;
            }
        }
    }
    if (c->closing && err == SL_ERR_STATE) {
        commit_finish(c, gc, err); /* the client is being freed */
        return;
    }
    /* A lost connection or a moved coordinator: the commit may go again
     * while its time lasts (committing the same offsets twice is harmless). */
    bool again =
        resp == NULL || coordinator_error(first) || first == SL_ERR_COORDINATOR_LOAD_IN_PROGRESS;
    if (resp == NULL || coordinator_error(first)) {
        coordinator_lost(c, "OffsetCommit", now_ms);
    }
    if (again && now_ms < gc->deadline_ms) {
        for (size_t j = 0; j < gc->count; j++) {
            gc->parts[j].err = SL_OK;
        }
        commit_queue(g, gc);
        return;
    }
    if (first == SL_ERR_REBALANCE_IN_PROGRESS) {
        rejoin(c, SL_REBALANCE_REVOKE, "a commit met a rebalance");
    } else if (first == SL_ERR_ILLEGAL_GENERATION || first == SL_ERR_UNKNOWN_MEMBER_ID) {
        rejoin(c, SL_REBALANCE_LOST, "a commit was refused: the generation is over");
    }
    g->c_total--;
    commit_finish(c, gc, first);
}

static int by_topic_name(const void *x, const void *y)
{
    return strcmp(((const sl_topic_partition *)x)->topic, ((const sl_topic_partition *)y)->topic);
}

static int send_commit(sl_client *c, struct slc_broker *b, struct gcommit *gc, int64_t now_ms)
{
    struct slc_group *g = c->group;
    qsort(gc->parts, gc->count, sizeof(*gc->parts), by_topic_name);
    struct kmsg_offset_commit_request_offset_commit_request_topic *topics =
        calloc(gc->count, sizeof(*topics));
    struct kmsg_offset_commit_request_offset_commit_request_partition *parts =
        calloc(gc->count, sizeof(*parts));
    if (topics == NULL || parts == NULL) {
        free(topics);
        free(parts);
        return -ENOMEM;
    }
    int32_t nt = 0;
    for (size_t i = 0; i < gc->count; i++) {
        if (i == 0 || strcmp(gc->parts[i - 1].topic, gc->parts[i].topic) != 0) {
            kmsg_init(&kmsg_offset_commit_request_offset_commit_request_topic_desc, &topics[nt]);
            topics[nt].name = kstr_cstr(gc->parts[i].topic);
            topics[nt].partitions = (struct karray){&parts[i], 0};
            nt++;
        }
        topics[nt - 1].partitions.count++;
        kmsg_init(&kmsg_offset_commit_request_offset_commit_request_partition_desc, &parts[i]);
        parts[i].partition_index = gc->parts[i].partition;
        parts[i].committed_offset = gc->parts[i].offset;
        parts[i].committed_metadata = (struct kstr){"", 0};
    }
    struct kmsg_offset_commit_request rq;
    kmsg_init(&kmsg_offset_commit_request_desc, &rq);
    rq.group_id = kstr_cstr(c->conf->group_id);
    /* Outside a generation (manual assignment): a "simple" commit, which the
     * coordinator takes while the group has no members. */
    bool in_generation = member(g) || (g->state == G_JOIN && g->generation >= 0);
    rq.generation_id_or_member_epoch = in_generation ? g->generation : -1;
    rq.member_id = kstr_cstr(in_generation ? g->member_id : "");
    rq.group_instance_id = str_or_null(c->conf->group_instance_id);
    rq.topics = (struct karray){topics, nt};
    int rc = slc_call(c, b, KMSG_API_OFFSET_COMMIT, 2, OFFSET_COMMIT_MAX, &rq, commit_answer, gc,
                      now_ms);
    free(topics);
    free(parts);
    return rc;
}

static void send_commits(sl_client *c, struct slc_broker *b, int64_t now_ms)
{
    struct slc_group *g = c->group;
    while (g->c_head != NULL) {
        struct gcommit *gc = g->c_head;
        if (now_ms >= gc->deadline_ms) {
            g->c_head = gc->next;
            g->c_total--;
            commit_finish(c, gc, SL_ERR_TIMED_OUT);
            continue;
        }
        int rc = send_commit(c, b, gc, now_ms);
        if (rc == -EAGAIN) {
            break;
        }
        g->c_head = gc->next;
        if (rc != 0) {
            g->c_total--;
            commit_finish(c, gc, rc == -ENOTSUP ? SL_ERR_UNSUPPORTED_FEATURE : SL_ERR_NOMEM);
            continue;
        }
        g->c_inflight++;
    }
    if (g->c_head == NULL) {
        g->c_tail = NULL;
    }
}

/* Commits whose time ran out before they could be sent. */
static void expire_commits(sl_client *c, int64_t now_ms, int64_t *next_ms)
{
    struct slc_group *g = c->group;
    struct gcommit **link = &g->c_head;
    g->c_tail = NULL;
    while (*link != NULL) {
        struct gcommit *gc = *link;
        if (now_ms >= gc->deadline_ms) {
            *link = gc->next;
            g->c_total--;
            commit_finish(c, gc, SL_ERR_TIMED_OUT);
            continue;
        }
        *next_ms = SL_MIN(*next_ms, gc->deadline_ms);
        g->c_tail = gc;
        link = &gc->next;
    }
}

/* ================================================================ coordinator */

static void coordinator_lost(sl_client *c, const char *why, int64_t now_ms)
{
    struct slc_group *g = c->group;
    if (g->coord != C_KNOWN) {
        return;
    }
    g->coord = C_UNKNOWN;
    g->coord_failures++;
    g->coord_retry_at_ms =
        now_ms + slc_backoff_ms(c->conf->retry_backoff_ms, c->conf->retry_backoff_max_ms,
                                g->coord_failures, &c->rng);
    slc_error(c, SL_ERR_COORDINATOR_NOT_AVAILABLE,
              "group %s: coordinator lost (%s): finding it again", c->conf->group_id, why);
}

static void coordinator_found(sl_client *c, struct slc_broker *b, void *arg, const void *resp_,
                              sl_err err, int64_t now_ms)
{
    (void)b;
    (void)arg;
    struct slc_group *g = c->group;
    const struct kmsg_find_coordinator_response *resp = resp_;
    g->coord = C_UNKNOWN;
    int16_t code = resp != NULL ? resp->error_code : (int16_t)err;
    if (resp != NULL && code == 0 && resp->node_id >= 0 && resp->port > 0 && resp->port <= 65535 &&
        resp->host.len > 0) {
        struct slc_broker *cb = slc_broker_find(c, COORD_NODE);
        bool moved =
            cb != NULL && (cb->port != resp->port || strlen(cb->host) != (size_t)resp->host.len ||
                           memcmp(cb->host, resp->host.ptr, (size_t)resp->host.len) != 0);
        if (moved && cb->state != SLC_CONN_DOWN) {
            slc_broker_close(c, cb, SL_ERR_TRANSPORT, NULL, now_ms);
        }
        cb = slc_broker_upsert(c, COORD_NODE, resp->host.ptr, (size_t)resp->host.len,
                               (uint16_t)resp->port);
        if (cb != NULL) {
            cb->reconnect_at_ms = 0;
            g->coord = C_KNOWN;
            g->coord_failures = 0;
            return;
        }
    }
    g->coord_failures++;
    g->coord_retry_at_ms =
        now_ms + slc_backoff_ms(c->conf->retry_backoff_ms, c->conf->retry_backoff_max_ms,
                                g->coord_failures, &c->rng);
    if (err != SL_ERR_STATE && g->coord_failures % 8 == 1) {
        slc_error(c, code != 0 ? (sl_err)code : SL_ERR_BAD_RESPONSE,
                  "group %s: FindCoordinator: %s", c->conf->group_id,
                  code != 0 ? sl_err_name((sl_err)code) : "no usable address");
    }
}

static void find_coordinator(sl_client *c, int64_t now_ms, int64_t *next_ms)
{
    struct slc_group *g = c->group;
    if (now_ms < g->coord_retry_at_ms) {
        *next_ms = SL_MIN(*next_ms, g->coord_retry_at_ms);
        return;
    }
    struct slc_broker *b = slc_control_broker(c, now_ms, next_ms);
    if (b == NULL) {
        return;
    }
    struct kmsg_find_coordinator_request rq;
    kmsg_init(&kmsg_find_coordinator_request_desc, &rq);
    rq.key = kstr_cstr(c->conf->group_id);
    rq.key_type = 0; /* a group */
    int rc = slc_call(c, b, KMSG_API_FIND_COORDINATOR, 0, FIND_COORDINATOR_MAX, &rq,
                      coordinator_found, NULL, now_ms);
    if (rc == 0) {
        g->coord = C_FINDING;
    } else if (rc != -EAGAIN) {
        g->coord_retry_at_ms = now_ms + c->conf->retry_backoff_max_ms;
        slc_error(c, SL_ERR_UNSUPPORTED_FEATURE, "group %s: %s: FindCoordinator not sent: %s",
                  c->conf->group_id, b->addr, strerror(-rc));
    }
}

/* ================================================================ rebalances */

static void members_free(struct slc_group *g)
{
    for (uint32_t i = 0; i < g->member_count; i++) {
        for (uint32_t k = 0; k < g->members[i].topic_count; k++) {
            free(g->members[i].topics[k]);
        }
        free(g->members[i].topics);
        free(g->members[i].id);
    }
    free(g->members);
    g->members = NULL;
    g->member_count = 0;
}

static void set_member_id(struct slc_group *g, const char *id, size_t len)
{
    char *copy = malloc(len + 1);
    if (copy == NULL) {
        return; /* keep the old one: a rejoin with it is answered with a new one */
    }
    memcpy(copy, id, len);
    copy[len] = '\0';
    free(g->member_id);
    g->member_id = copy;
}

/* Leaves the current generation for a new JoinGroup; the partitions held
 * are revoked first (lost: the membership is gone, so nothing is committed).
 * While a join is under way already (no partitions are held then), one more
 * follows it. */
static void rejoin(sl_client *c, sl_rebalance why, const char *reason)
{
    struct slc_group *g = c->group;
    if (g->state == G_NONE || g->closing) {
        return;
    }
    if (why == SL_REBALANCE_LOST) {
        g->generation = -1;
    }
    if (!member(g) && g->state != G_LEFT) {
        g->rejoin_due = g->state != G_JOIN;
        return;
    }
    if (slc_consumer_assigned(c) > 0 && g->revoke_due == 0) {
        g->revoke_due = why;
    }
    g->state = G_JOIN;
    g->assign_due = false;
    if (reason != NULL) {
        slc_error(c, SL_ERR_REBALANCE_IN_PROGRESS, "group %s: rejoining: %s", c->conf->group_id,
                  reason);
    }
}

/* An answer of the join under way says: join again, now. */
static void rejoin_now(sl_client *c, sl_rebalance why)
{
    struct slc_group *g = c->group;
    rejoin(c, why, NULL);
    g->state = G_JOIN;
    g->rejoin_due = false;
}

static int add_topic_name(void *arg, const char *name, size_t len, int32_t partition)
{
    (void)partition;
    struct gmember *m = arg;
    if (m->topic_count >= SUBSCRIBED_TOPICS_MAX) {
        return -E2BIG;
    }
    char **topics = realloc(m->topics, (m->topic_count + 1) * sizeof(*topics));
    if (topics == NULL) {
        return -ENOMEM;
    }
    m->topics = topics;
    char *copy = malloc(len + 1);
    if (copy == NULL) {
        return -ENOMEM;
    }
    memcpy(copy, name, len);
    copy[len] = '\0';
    m->topics[m->topic_count++] = copy;
    return 0;
}

/* The leader keeps every member's subscription from the JoinGroup answer. */
static int keep_members(struct slc_group *g, const struct kmsg_join_group_response *resp)
{
    members_free(g);
    if (resp->members.count <= 0 || resp->members.count > MEMBERS_MAX) {
        return -EBADMSG;
    }
    g->members = calloc((size_t)resp->members.count, sizeof(*g->members));
    if (g->members == NULL) {
        return -ENOMEM;
    }
    const struct kmsg_join_group_response_join_group_response_member *ms = resp->members.items;
    for (int32_t i = 0; i < resp->members.count; i++) {
        struct gmember *m = &g->members[g->member_count++];
        m->id = malloc((size_t)SL_MAX(ms[i].member_id.len, 0) + 1);
        if (m->id == NULL) {
            return -ENOMEM;
        }
        memcpy(m->id, ms[i].member_id.ptr, (size_t)SL_MAX(ms[i].member_id.len, 0));
        m->id[SL_MAX(ms[i].member_id.len, 0)] = '\0';
        int rc = slc_subscription_decode(ms[i].metadata.ptr, (size_t)SL_MAX(ms[i].metadata.len, 0),
                                         add_topic_name, m);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

static void backoff(sl_client *c, int64_t now_ms)
{
    struct slc_group *g = c->group;
    g->failures++;
    g->retry_at_ms = now_ms + slc_backoff_ms(c->conf->retry_backoff_ms,
                                             c->conf->retry_backoff_max_ms, g->failures, &c->rng);
}

/* Errors every group answer may carry; true when handled (state moved). */
static bool common_error(sl_client *c, const char *api, int16_t code, sl_err err, int64_t now_ms)
{
    struct slc_group *g = c->group;
    if (err == SL_ERR_STATE) {
        return true; /* the client is being freed */
    }
    if (err != SL_OK || coordinator_error(code)) {
        coordinator_lost(c, api, now_ms);
        rejoin_now(c, SL_REBALANCE_REVOKE);
        backoff(c, now_ms);
        return true;
    }
    switch (code) {
    case KAFKA_ERR_NONE:
        return false;
    case KAFKA_ERR_UNKNOWN_MEMBER_ID:
        set_member_id(g, "", 0);
        rejoin_now(c, SL_REBALANCE_LOST);
        return true;
    case KAFKA_ERR_ILLEGAL_GENERATION:
    case KAFKA_ERR_FENCED_INSTANCE_ID:
        rejoin_now(c, SL_REBALANCE_LOST);
        if (code == KAFKA_ERR_FENCED_INSTANCE_ID) {
            break; /* said below, and tried again slowly */
        }
        return true;
    case KAFKA_ERR_REBALANCE_IN_PROGRESS:
        rejoin_now(c, SL_REBALANCE_REVOKE);
        return true;
    case KAFKA_ERR_COORDINATOR_LOAD_IN_PROGRESS:
        rejoin_now(c, SL_REBALANCE_REVOKE);
        backoff(c, now_ms);
        return true;
    default:
        break;
    }
    /* Nothing this member can fix by itself (an assignor nobody else
     * offers, a session timeout the broker refuses, a fenced static
     * member): said, and tried again slowly. */
    slc_error(c, (sl_err)code, "group %s: %s: %s", c->conf->group_id, api, kafka_error_name(code));
    rejoin_now(c, SL_REBALANCE_LOST);
    g->failures = 30;
    backoff(c, now_ms);
    return true;
}

static void joined(sl_client *c, struct slc_broker *b, void *arg, const void *resp_, sl_err err,
                   int64_t now_ms)
{
    (void)b;
    (void)arg;
    struct slc_group *g = c->group;
    const struct kmsg_join_group_response *resp = resp_;
    if (g->state != G_JOINING) {
        return; /* closed or re-subscribed meanwhile */
    }
    int16_t code = resp != NULL ? resp->error_code : 0;
    if (code == KAFKA_ERR_MEMBER_ID_REQUIRED) {
        /* KIP-394: join again at once with the id the coordinator gave. */
        set_member_id(g, resp->member_id.ptr, (size_t)SL_MAX(resp->member_id.len, 0));
        g->state = G_JOIN;
        return;
    }
    if (common_error(c, "JoinGroup", code,
                     resp == NULL ? (err != SL_OK ? err : SL_ERR_TRANSPORT) : SL_OK, now_ms)) {
        return;
    }
    g->failures = 0;
    g->generation = resp->generation_id;
    set_member_id(g, resp->member_id.ptr, (size_t)SL_MAX(resp->member_id.len, 0));
    size_t plen = (size_t)SL_MAX(resp->protocol_name.len, 0);
    if (plen >= sizeof(g->protocol)) {
        plen = 0;
    }
    memcpy(g->protocol, resp->protocol_name.ptr, plen);
    g->protocol[plen] = '\0';
    g->leader = resp->leader.len == (int32_t)strlen(g->member_id) &&
                memcmp(resp->leader.ptr, g->member_id, (size_t)resp->leader.len) == 0;
    g->state = G_SYNC;
    if (g->leader) {
        int rc = keep_members(g, resp);
        if (rc != 0) {
            slc_error(c, SL_ERR_BAD_RESPONSE, "group %s: JoinGroup: members unreadable (%s)",
                      c->conf->group_id, strerror(-rc));
            members_free(g);
        }
        g->state = G_ASSIGN;
    }
}

/* The leader's assignment; -EAGAIN while partition counts are unknown. */
static int leader_assign(sl_client *c, struct slc_assign_member *ms, struct slc_assign_topic *ts,
                         uint32_t *topic_count)
{
    struct slc_group *g = c->group;
    uint32_t nt = 0;
    bool waiting = false;
    for (uint32_t i = 0; i < g->member_count; i++) {
        ms[i] = (struct slc_assign_member){.id = g->members[i].id};
        ms[i].topics = calloc(g->members[i].topic_count + 1, sizeof(uint32_t));
        if (ms[i].topics == NULL) {
            return -ENOMEM;
        }
        for (uint32_t k = 0; k < g->members[i].topic_count; k++) {
            const char *name = g->members[i].topics[k];
            uint32_t t = 0;
            while (t < nt && strcmp(ts[t].name, name) != 0) {
                t++;
            }
            if (t == nt) {
                struct slc_topic *topic = slc_topic_get(c, name, strlen(name), true);
                if (topic == NULL) {
                    return -ENOMEM;
                }
                bool absent = topic->absent_since_ms >= 0;
                waiting = waiting || (topic->partition_count < 0 && !absent);
                ts[nt++] =
                    (struct slc_assign_topic){topic->name, SL_MAX(topic->partition_count, 0)};
            }
            ms[i].topics[ms[i].topic_count++] = t;
        }
    }
    *topic_count = nt;
    if (waiting) {
        c->md_wanted = true;
        return -EAGAIN;
    }
    /* The counts the assignment was made with: a change means a rebalance. */
    free(g->snap);
    g->snap = calloc(nt + 1, sizeof(*g->snap));
    g->snap_count = 0;
    for (uint32_t t = 0; g->snap != NULL && t < nt; t++) {
        struct slc_topic *topic = slc_topic_get(c, ts[t].name, strlen(ts[t].name), false);
        g->snap[g->snap_count++] = (struct gsnap){topic, ts[t].partitions};
    }
    return slc_assign(g->protocol, ms, g->member_count, ts, nt);
}

static void synced(sl_client *c, struct slc_broker *b, void *arg, const void *resp_, sl_err err,
                   int64_t now_ms);

static int send_sync(sl_client *c, struct slc_broker *b, struct slc_assign_member *ms, uint32_t n,
                     const struct slc_assign_topic *ts, int64_t now_ms)
{
    struct slc_group *g = c->group;
    struct kmsg_sync_group_request_sync_group_request_assignment *as = calloc(n + 1, sizeof(*as));
    struct buf *bytes = calloc(n + 1, sizeof(*bytes));
    int rc = as == NULL || bytes == NULL ? -ENOMEM : 0;
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        buf_init(&bytes[i], SLC_ARENA_BYTES_MAX);
        rc = slc_assignment_encode(&bytes[i], &ms[i], ts);
        kmsg_init(&kmsg_sync_group_request_sync_group_request_assignment_desc, &as[i]);
        as[i].member_id = kstr_cstr(ms[i].id);
        as[i].assignment = (struct kbytes){bytes[i].data, (int32_t)bytes[i].len};
    }
    if (rc == 0) {
        struct kmsg_sync_group_request rq;
        kmsg_init(&kmsg_sync_group_request_desc, &rq);
        rq.group_id = kstr_cstr(c->conf->group_id);
        rq.generation_id = g->generation;
        rq.member_id = kstr_cstr(g->member_id);
        rq.group_instance_id = str_or_null(c->conf->group_instance_id);
        rq.protocol_type = kstr_cstr("consumer");
        rq.protocol_name = kstr_cstr(g->protocol);
        rq.assignments = (struct karray){n > 0 ? as : NULL, (int32_t)n};
        rc = slc_call(c, b, KMSG_API_SYNC_GROUP, 0, SYNC_GROUP_MAX, &rq, synced, NULL, now_ms);
    }
    for (uint32_t i = 0; bytes != NULL && i < n; i++) {
        buf_deinit(&bytes[i]);
    }
    free(bytes);
    free(as);
    return rc;
}

static void sync_as_leader(sl_client *c, struct slc_broker *b, int64_t now_ms)
{
    struct slc_group *g = c->group;
    uint32_t n = g->member_count;
    if (n == 0) {
        rejoin_now(c, SL_REBALANCE_REVOKE);
        backoff(c, now_ms);
        return;
    }
    struct slc_assign_member *ms = calloc(n, sizeof(*ms));
    struct slc_assign_topic *ts = NULL;
    size_t topics_max = 0;
    for (uint32_t i = 0; i < n; i++) {
        topics_max += g->members[i].topic_count;
    }
    ts = calloc(topics_max + 1, sizeof(*ts));
    uint32_t nt = 0;
    int rc = ms == NULL || ts == NULL ? -ENOMEM : leader_assign(c, ms, ts, &nt);
    if (rc == 0) {
        rc = send_sync(c, b, ms, n, ts, now_ms);
        if (rc == 0) {
            g->state = G_SYNCING;
        }
    }
    if (rc != 0 && rc != -EAGAIN) {
        slc_error(c, rc == -ENOTSUP ? SL_ERR_INCONSISTENT_GROUP_PROTOCOL : SL_ERR_NOMEM,
                  "group %s: assignment with \"%s\" failed: %s", c->conf->group_id, g->protocol,
                  strerror(-rc));
        rejoin_now(c, SL_REBALANCE_REVOKE);
        backoff(c, now_ms);
    }
    for (uint32_t i = 0; ms != NULL && i < n; i++) {
        free(ms[i].topics);
        free(ms[i].parts);
    }
    free(ms);
    free(ts);
}

struct assigned_ctx {
    sl_client *c;
    sl_topic_partition *list;
    size_t count, cap;
};

static int add_assigned(void *arg, const char *name, size_t len, int32_t partition)
{
    struct assigned_ctx *a = arg;
    if (a->count >= SLC_ASSIGNED_MAX) {
        return -E2BIG;
    }
    struct slc_topic *t = slc_topic_get(a->c, name, len, true);
    if (t == NULL) {
        return -ENOMEM;
    }
    if (a->count == a->cap) {
        size_t cap = a->cap > 0 ? a->cap * 2 : 16;
        sl_topic_partition *list = realloc(a->list, cap * sizeof(*list));
        if (list == NULL) {
            return -ENOMEM;
        }
        a->list = list;
        a->cap = cap;
    }
    a->list[a->count++] = (sl_topic_partition){t->name, partition, -1, SL_OK};
    return 0;
}

/* A follower watches the partition counts of its own subscription. */
static void snapshot_own(sl_client *c)
{
    struct slc_group *g = c->group;
    if (g->leader) {
        return; /* the leader's snapshot covers every member's topics */
    }
    free(g->snap);
    g->snap = calloc(g->topic_count + 1, sizeof(*g->snap));
    g->snap_count = 0;
    for (uint32_t i = 0; g->snap != NULL && i < g->topic_count; i++) {
        struct slc_topic *t = slc_topic_get(c, g->topics[i], strlen(g->topics[i]), true);
        if (t != NULL && t->partition_count >= 0) {
            g->snap[g->snap_count++] = (struct gsnap){t, t->partition_count};
        }
    }
}

static void synced(sl_client *c, struct slc_broker *b, void *arg, const void *resp_, sl_err err,
                   int64_t now_ms)
{
    (void)b;
    (void)arg;
    struct slc_group *g = c->group;
    const struct kmsg_sync_group_response *resp = resp_;
    if (g->state != G_SYNCING) {
        return;
    }
    int16_t code = resp != NULL ? resp->error_code : 0;
    if (common_error(c, "SyncGroup", code,
                     resp == NULL ? (err != SL_OK ? err : SL_ERR_TRANSPORT) : SL_OK, now_ms)) {
        return;
    }
    struct assigned_ctx a = {.c = c};
    int rc = slc_assignment_decode(resp->assignment.ptr, (size_t)SL_MAX(resp->assignment.len, 0),
                                   add_assigned, &a);
    if (rc != 0) {
        free(a.list);
        slc_error(c, SL_ERR_BAD_RESPONSE, "group %s: SyncGroup: assignment unreadable (%s)",
                  c->conf->group_id, strerror(-rc));
        rejoin_now(c, SL_REBALANCE_REVOKE);
        backoff(c, now_ms);
        return;
    }
    free(g->assigned);
    g->assigned = a.list;
    g->assigned_count = a.count;
    snapshot_own(c);
    g->state = G_OFFSETS;
    g->failures = 0;
    g->hb_ok_ms = now_ms;
    g->hb_next_ms = now_ms + c->conf->heartbeat_interval_ms;
}

/* Places the new assignment at the committed offsets. */
static void place(sl_client *c, const struct kmsg_offset_fetch_response *resp)
{
    struct slc_group *g = c->group;
    for (size_t i = 0; i < g->assigned_count; i++) {
        sl_topic_partition *tp = &g->assigned[i];
        int64_t committed = -1;
        const struct kmsg_offset_fetch_response_offset_fetch_response_topic *ts =
            resp->topics.items;
        for (int32_t k = 0; k < resp->topics.count; k++) {
            if (ts[k].name.len != (int32_t)strlen(tp->topic) ||
                memcmp(ts[k].name.ptr, tp->topic, (size_t)ts[k].name.len) != 0) {
                continue;
            }
            const struct kmsg_offset_fetch_response_offset_fetch_response_partition *ps =
                ts[k].partitions.items;
            for (int32_t j = 0; j < ts[k].partitions.count; j++) {
                if (ps[j].partition_index == tp->partition && ps[j].error_code == 0) {
                    committed = ps[j].committed_offset;
                }
            }
        }
        sl_err rc;
        if (committed >= 0) {
            rc = slc_consumer_assign(c, tp->topic, tp->partition, committed);
        } else if (c->conf->auto_offset_reset == SLC_RESET_NONE) {
            rc = slc_consumer_stop(c, tp->topic, tp->partition, SL_ERR_OFFSET_OUT_OF_RANGE);
        } else {
            rc = slc_consumer_assign(c, tp->topic, tp->partition,
                                     c->conf->auto_offset_reset == SLC_RESET_EARLIEST
                                         ? SL_OFFSET_BEGINNING
                                         : SL_OFFSET_END);
        }
        if (rc != SL_OK) {
            slc_error(c, rc, "group %s: %s [%d] not assigned: %s", c->conf->group_id, tp->topic,
                      tp->partition, sl_err_str(rc));
        }
    }
}

static void offsets_fetched(sl_client *c, struct slc_broker *b, void *arg, const void *resp_,
                            sl_err err, int64_t now_ms)
{
    (void)b;
    (void)arg;
    struct slc_group *g = c->group;
    const struct kmsg_offset_fetch_response *resp = resp_;
    if (g->state != G_OFFSETS_WAIT) {
        return;
    }
    if (err == SL_ERR_STATE) {
        return;
    }
    int16_t code = resp != NULL ? resp->error_code : 0;
    /* A partition's retriable error (an offset not stable yet, a coordinator
     * still loading) means: ask again. */
    const struct kmsg_offset_fetch_response_offset_fetch_response_topic *ts =
        resp != NULL ? resp->topics.items : NULL;
    for (int32_t k = 0; resp != NULL && code == 0 && k < resp->topics.count; k++) {
        const struct kmsg_offset_fetch_response_offset_fetch_response_partition *ps =
            ts[k].partitions.items;
        for (int32_t j = 0; j < ts[k].partitions.count; j++) {
            if (ps[j].error_code != 0 && kafka_error_retriable(ps[j].error_code)) {
                code = ps[j].error_code;
            }
        }
    }
    if (resp == NULL || coordinator_error(code)) {
        coordinator_lost(c, "OffsetFetch", now_ms);
    }
    if (resp == NULL || code != 0) {
        if (code == KAFKA_ERR_UNKNOWN_MEMBER_ID || code == KAFKA_ERR_ILLEGAL_GENERATION ||
            code == KAFKA_ERR_REBALANCE_IN_PROGRESS) {
            common_error(c, "OffsetFetch", code, SL_OK, now_ms);
            return;
        }
        g->state = G_OFFSETS;
        backoff(c, now_ms);
        return;
    }
    place(c, resp);
    g->state = G_STABLE;
    g->failures = 0;
    g->assign_due = true;
    g->auto_commit_ms = now_ms + c->conf->auto_commit_interval_ms;
}

static int send_offset_fetch(sl_client *c, struct slc_broker *b, int64_t now_ms)
{
    struct slc_group *g = c->group;
    size_t n = g->assigned_count;
    qsort(g->assigned, n, sizeof(*g->assigned), by_topic_name);
    struct kmsg_offset_fetch_request_offset_fetch_request_topic *topics =
        calloc(n + 1, sizeof(*topics));
    int32_t *parts = calloc(n + 1, sizeof(*parts));
    if (topics == NULL || parts == NULL) {
        free(topics);
        free(parts);
        return -ENOMEM;
    }
    int32_t nt = 0;
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || strcmp(g->assigned[i - 1].topic, g->assigned[i].topic) != 0) {
            kmsg_init(&kmsg_offset_fetch_request_offset_fetch_request_topic_desc, &topics[nt]);
            topics[nt].name = kstr_cstr(g->assigned[i].topic);
            topics[nt].partition_indexes = (struct karray){&parts[i], 0};
            nt++;
        }
        topics[nt - 1].partition_indexes.count++;
        parts[i] = g->assigned[i].partition;
    }
    struct kmsg_offset_fetch_request rq;
    kmsg_init(&kmsg_offset_fetch_request_desc, &rq);
    rq.group_id = kstr_cstr(c->conf->group_id);
    rq.topics = (struct karray){topics, nt};
    int rc = slc_call(c, b, KMSG_API_OFFSET_FETCH, 1, OFFSET_FETCH_MAX, &rq, offsets_fetched, NULL,
                      now_ms);
    free(topics);
    free(parts);
    return rc;
}

static int send_join(sl_client *c, struct slc_broker *b, int64_t now_ms)
{
    struct slc_group *g = c->group;
    struct buf meta;
    buf_init(&meta, SLC_ARENA_BYTES_MAX);
    int rc = slc_subscription_encode(&meta, (const char *const *)g->topics, g->topic_count);
    struct kmsg_join_group_request_join_group_request_protocol protos[SLC_ASSIGNORS_MAX];
    for (size_t i = 0; i < g->assignor_count; i++) {
        kmsg_init(&kmsg_join_group_request_join_group_request_protocol_desc, &protos[i]);
        protos[i].name = kstr_cstr(g->assignors[i]);
        protos[i].metadata = (struct kbytes){meta.data, (int32_t)meta.len};
    }
    if (rc == 0) {
        struct kmsg_join_group_request rq;
        kmsg_init(&kmsg_join_group_request_desc, &rq);
        rq.group_id = kstr_cstr(c->conf->group_id);
        rq.session_timeout_ms = c->conf->session_timeout_ms;
        rq.rebalance_timeout_ms = c->conf->max_poll_interval_ms;
        rq.member_id = kstr_cstr(g->member_id);
        rq.group_instance_id = str_or_null(c->conf->group_instance_id);
        rq.protocol_type = kstr_cstr("consumer");
        rq.protocols = (struct karray){protos, (int32_t)g->assignor_count};
        int64_t timeout =
            (int64_t)SL_MAX(c->conf->max_poll_interval_ms, c->conf->session_timeout_ms) +
            JOIN_SLACK_MS;
        rc = slc_call_timed(c, b, KMSG_API_JOIN_GROUP, 1, JOIN_GROUP_MAX, &rq, joined, NULL,
                            (int32_t)SL_MIN(timeout, (int64_t)INT32_MAX), now_ms);
    }
    buf_deinit(&meta);
    return rc;
}

/* ================================================================ liveness */

static void heartbeat_answer(sl_client *c, struct slc_broker *b, void *arg, const void *resp_,
                             sl_err err, int64_t now_ms)
{
    (void)b;
    (void)arg;
    struct slc_group *g = c->group;
    const struct kmsg_heartbeat_response *resp = resp_;
    g->hb_inflight = false;
    if (err == SL_ERR_STATE || !member(g) || g->hb_generation != g->generation) {
        return; /* an answer about a generation already left */
    }
    int16_t code = resp != NULL ? resp->error_code : 0;
    if (resp == NULL || coordinator_error(code)) {
        /* Still a member as far as anyone knows: find the coordinator and
         * keep heartbeating; the session timeout decides. */
        coordinator_lost(c, "Heartbeat", now_ms);
        return;
    }
    if (code == 0) {
        g->hb_ok_ms = now_ms;
        return;
    }
    common_error(c, "Heartbeat", code, SL_OK, now_ms);
}

static void send_heartbeat(sl_client *c, struct slc_broker *b, int64_t now_ms)
{
    struct slc_group *g = c->group;
    struct kmsg_heartbeat_request rq;
    kmsg_init(&kmsg_heartbeat_request_desc, &rq);
    rq.group_id = kstr_cstr(c->conf->group_id);
    rq.generation_id = g->generation;
    rq.member_id = kstr_cstr(g->member_id);
    rq.group_instance_id = str_or_null(c->conf->group_instance_id);
    if (slc_call(c, b, KMSG_API_HEARTBEAT, 0, HEARTBEAT_MAX, &rq, heartbeat_answer, NULL, now_ms) ==
        0) {
        g->hb_inflight = true;
        g->hb_generation = g->generation;
        g->hb_next_ms = now_ms + c->conf->heartbeat_interval_ms;
    }
}

static void left(sl_client *c, struct slc_broker *b, void *arg, const void *resp_, sl_err err,
                 int64_t now_ms)
{
    (void)b;
    (void)arg;
    (void)resp_;
    (void)err;
    (void)now_ms;
    c->group->leave_inflight = false;
}

static void send_leave(sl_client *c, struct slc_broker *b, int64_t now_ms)
{
    struct slc_group *g = c->group;
    struct kmsg_leave_group_request_member_identity who;
    kmsg_init(&kmsg_leave_group_request_member_identity_desc, &who);
    who.member_id = kstr_cstr(g->member_id);
    who.group_instance_id = str_or_null(c->conf->group_instance_id);
    struct kmsg_leave_group_request rq;
    kmsg_init(&kmsg_leave_group_request_desc, &rq);
    rq.group_id = kstr_cstr(c->conf->group_id);
    rq.member_id = kstr_cstr(g->member_id);
    rq.members = (struct karray){&who, 1};
    int rc = slc_call(c, b, KMSG_API_LEAVE_GROUP, 0, LEAVE_GROUP_MAX, &rq, left, NULL, now_ms);
    if (rc == -EAGAIN) {
        return;
    }
    g->leave_wanted = false;
    g->leave_inflight = rc == 0;
    set_member_id(g, "", 0);
    g->generation = -1;
}

/* Whether the partition counts the assignment was made with still hold. */
static bool counts_changed(const struct slc_group *g)
{
    for (uint32_t i = 0; i < g->snap_count; i++) {
        const struct slc_topic *t = g->snap[i].topic;
        if (t != NULL && t->partition_count >= 0 && t->partition_count != g->snap[i].partitions) {
            return true;
        }
    }
    return false;
}

/* ================================================================ the loop */

static void step(sl_client *c, struct slc_broker *b, int64_t now_ms, int64_t *next_ms)
{
    struct slc_group *g = c->group;
    if (g->state == G_JOIN || g->state == G_OFFSETS) {
        if (now_ms < g->retry_at_ms) {
            *next_ms = SL_MIN(*next_ms, g->retry_at_ms);
            return;
        }
    }
    int rc = 0;
    switch (g->state) {
    case G_JOIN:
        /* Revoked partitions' commits land before anyone else reads them. */
        if (g->revoke_due != 0 || g->c_head != NULL || g->c_inflight > 0) {
            return;
        }
        rc = send_join(c, b, now_ms);
        if (rc == 0) {
            g->state = G_JOINING;
        }
        break;
    case G_ASSIGN:
        sync_as_leader(c, b, now_ms);
        break;
    case G_SYNC:
        rc = send_sync(c, b, NULL, 0, NULL, now_ms);
        if (rc == 0) {
            g->state = G_SYNCING;
        }
        break;
    case G_OFFSETS:
        if (g->assigned_count == 0) {
            g->state = G_STABLE;
            g->assign_due = true;
            g->auto_commit_ms = now_ms + c->conf->auto_commit_interval_ms;
            break;
        }
        rc = send_offset_fetch(c, b, now_ms);
        if (rc == 0) {
            g->state = G_OFFSETS_WAIT;
        }
        break;
    case G_STABLE:
        if (g->rejoin_due) {
            g->rejoin_due = false;
            rejoin(c, SL_REBALANCE_REVOKE, "asked for during the last rebalance");
            return;
        }
        if (counts_changed(g)) {
            rejoin(c, SL_REBALANCE_REVOKE, "a subscribed topic's partition count changed");
            return;
        }
        if (c->conf->enable_auto_commit && now_ms >= g->auto_commit_ms) {
            g->auto_commit_ms = now_ms + c->conf->auto_commit_interval_ms;
            commit_auto(c);
            send_commits(c, b, now_ms);
        }
        if (c->conf->enable_auto_commit) {
            *next_ms = SL_MIN(*next_ms, g->auto_commit_ms);
        }
        break;
    default:
        break;
    }
    if (rc != 0 && rc != -EAGAIN) {
        slc_error(c, rc == -ENOTSUP ? SL_ERR_UNSUPPORTED_FEATURE : SL_ERR_NOMEM,
                  "group %s: %s: request not sent: %s", c->conf->group_id, b->addr, strerror(-rc));
        backoff(c, now_ms);
        if (g->state != G_JOIN) {
            rejoin_now(c, SL_REBALANCE_REVOKE);
        }
    }
    if (member(g) && !g->hb_inflight) {
        if (now_ms >= g->hb_next_ms) {
            send_heartbeat(c, b, now_ms);
        }
        *next_ms = SL_MIN(*next_ms, g->hb_next_ms);
    }
}

/* Membership checks that need no coordinator: the session and the poll
 * interval. */
static void check_liveness(sl_client *c, int64_t now_ms, int64_t *next_ms)
{
    struct slc_group *g = c->group;
    if (!member(g) || g->closing) {
        return;
    }
    int64_t session_end = g->hb_ok_ms + c->conf->session_timeout_ms;
    if (now_ms >= session_end) {
        rejoin(c, SL_REBALANCE_LOST, "no heartbeat answered within session.timeout.ms");
        return;
    }
    int64_t poll_end = g->polled_ms + c->conf->max_poll_interval_ms;
    if (now_ms >= poll_end) {
        slc_error(c, SL_ERR_STATE,
                  "group %s: sl_consume not called for max.poll.interval.ms (%d ms): leaving the "
                  "group until the next call",
                  c->conf->group_id, c->conf->max_poll_interval_ms);
        rejoin(c, SL_REBALANCE_LOST, NULL);
        g->state = G_LEFT;
        g->leave_wanted = c->conf->group_instance_id[0] == '\0';
        return;
    }
    *next_ms = SL_MIN(*next_ms, SL_MIN(session_end, poll_end));
}

void slc_group_tick(sl_client *c, int64_t now_ms, int64_t *next_ms)
{
    struct slc_group *g = c->group;
    if (g == NULL) {
        return;
    }
    expire_commits(c, now_ms, next_ms);
    check_liveness(c, now_ms, next_ms);
    bool work = (g->state != G_NONE && g->state != G_LEFT && !g->closing) || g->c_head != NULL ||
                g->leave_wanted;
    if (!work) {
        return;
    }
    if (g->coord == C_UNKNOWN) {
        find_coordinator(c, now_ms, next_ms);
        return;
    }
    struct slc_broker *b = coordinator(c);
    if (b == NULL) {
        return; /* FindCoordinator in flight */
    }
    if (b->state == SLC_CONN_DOWN) {
        if (b->failures >= 3) {
            b->failures = 0;
            coordinator_lost(c, "unreachable", now_ms);
            return;
        }
        slc_broker_connect(c, b, now_ms, next_ms);
        return;
    }
    if (b->state != SLC_CONN_UP) {
        return;
    }
    send_commits(c, b, now_ms);
    if (g->leave_wanted && g->c_head == NULL && g->c_inflight == 0) {
        send_leave(c, b, now_ms);
    }
    if (!g->closing) {
        step(c, b, now_ms, next_ms);
    }
}

/* Runs the rebalance callback for the partitions assigned now. */
static int rebalance_cb(sl_client *c, sl_rebalance kind)
{
    size_t n;
    sl_topic_partition *parts = slc_consumer_offsets(c, false, &n);
    int served = 0;
    if (parts != NULL && c->conf->rebalance_cb != NULL) {
        c->conf->rebalance_cb(c->conf->opaque, kind, parts, n);
        served = 1;
    }
    free(parts);
    return served;
}

int slc_group_dispatch(sl_client *c)
{
    struct slc_group *g = c->group;
    if (g == NULL) {
        return 0;
    }
    int served = 0;
    if (g->revoke_due != 0) {
        sl_rebalance kind = g->revoke_due;
        served += rebalance_cb(c, kind);
        if (kind == SL_REBALANCE_REVOKE && c->conf->enable_auto_commit) {
            commit_auto(c);
        }
        slc_consumer_clear(c);
        g->revoke_due = 0;
    }
    if (g->assign_due) {
        g->assign_due = false;
        served += rebalance_cb(c, SL_REBALANCE_ASSIGN);
    }
    while (g->d_head != NULL) {
        struct gcommit *gc = g->d_head;
        g->d_head = gc->next;
        if (g->d_head == NULL) {
            g->d_tail = NULL;
        }
        if (c->conf->commit_cb != NULL) {
            c->conf->commit_cb(c->conf->opaque, gc->err, gc->parts, gc->count);
            served++;
        }
        commit_free(gc);
    }
    return served;
}

/* ================================================================ API */

bool slc_group_subscribed(const sl_client *c)
{
    return c->group != NULL && c->group->topic_count > 0;
}

void slc_group_polled(sl_client *c)
{
    struct slc_group *g = c->group;
    if (g == NULL) {
        return;
    }
    g->polled_ms = slc_now_ms();
    if (g->state == G_LEFT && !g->closing) {
        g->state = G_JOIN;
        slc_wake_at(c, 0);
    }
}

static void topics_free(struct slc_group *g)
{
    for (uint32_t i = 0; i < g->topic_count; i++) {
        free(g->topics[i]);
    }
    free(g->topics);
    g->topics = NULL;
    g->topic_count = 0;
}

void slc_group_free(struct slc_group *g)
{
    if (g == NULL) {
        return;
    }
    topics_free(g);
    members_free(g);
    free(g->member_id);
    free(g->assigned);
    free(g->snap);
    while (g->c_head != NULL) {
        struct gcommit *gc = g->c_head;
        g->c_head = gc->next;
        commit_free(gc);
    }
    while (g->d_head != NULL) {
        struct gcommit *gc = g->d_head;
        g->d_head = gc->next;
        commit_free(gc);
    }
    free(g);
}

int slc_group_new(sl_client *c, char *errstr, size_t errstr_size)
{
    if (c->conf->group_id[0] == '\0') {
        return 0;
    }
    struct slc_group *g = calloc(1, sizeof(*g));
    if (g == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        return -ENOMEM;
    }
    if (slc_assignors_parse(c->conf->assignment_strategy, g->assignors, SLC_ASSIGNORS_MAX,
                            &g->assignor_count) != 0) {
        snprintf(errstr, errstr_size,
                 "config: partition.assignment.strategy \"%s\": want a list of range, roundrobin",
                 c->conf->assignment_strategy);
        free(g);
        return -EINVAL;
    }
    g->member_id = calloc(1, 1);
    if (g->member_id == NULL) {
        free(g);
        snprintf(errstr, errstr_size, "out of memory");
        return -ENOMEM;
    }
    g->generation = -1;
    g->polled_ms = slc_now_ms();
    c->group = g;
    return 0;
}

sl_err sl_subscribe(sl_client *c, const char *const *topics, size_t count)
{
    if (c == NULL || c->cons == NULL || c->closing) {
        return SL_ERR_STATE;
    }
    struct slc_group *g = c->group;
    if (g == NULL || topics == NULL || count == 0 || count > SUBSCRIBED_TOPICS_MAX) {
        return SL_ERR_INVALID_ARG;
    }
    if (!slc_group_subscribed(c) && slc_consumer_assigned(c) > 0) {
        return SL_ERR_STATE; /* sl_assign'ed partitions: one or the other */
    }
    for (size_t i = 0; i < count; i++) {
        if (topics[i] == NULL || !slc_topic_name_valid(topics[i], strlen(topics[i]))) {
            return SL_ERR_INVALID_ARG;
        }
    }
    char **copy = calloc(count, sizeof(*copy));
    if (copy == NULL) {
        return SL_ERR_NOMEM;
    }
    for (size_t i = 0; i < count; i++) {
        copy[i] = strdup(topics[i]);
        if (copy[i] == NULL || slc_topic_get(c, topics[i], strlen(topics[i]), true) == NULL) {
            for (size_t k = 0; k <= i; k++) {
                free(copy[k]);
            }
            free(copy);
            return SL_ERR_NOMEM;
        }
    }
    bool was = slc_group_subscribed(c);
    topics_free(g);
    g->topics = copy;
    g->topic_count = (uint32_t)count;
    c->md_wanted = true;
    if (was) {
        rejoin(c, SL_REBALANCE_REVOKE, "the subscription changed");
    } else {
        g->state = G_JOIN;
    }
    slc_wake_at(c, 0);
    return SL_OK;
}

static bool commit_finished(sl_client *c, void *arg)
{
    (void)c;
    return ((struct gcommit *)arg)->finished;
}

sl_err sl_commit(sl_client *c, const sl_topic_partition *offsets, size_t count, int async)
{
    if (c == NULL || c->cons == NULL || c->closing || (!async && c->in_callback)) {
        return SL_ERR_STATE;
    }
    if (c->group == NULL || (offsets == NULL && count != 0)) {
        return SL_ERR_INVALID_ARG;
    }
    for (size_t i = 0; offsets != NULL && i < count; i++) {
        if (offsets[i].topic == NULL || offsets[i].partition < 0 || offsets[i].offset < 0 ||
            !slc_topic_name_valid(offsets[i].topic, strlen(offsets[i].topic))) {
            return SL_ERR_INVALID_ARG;
        }
    }
    sl_topic_partition *mine = NULL;
    if (offsets == NULL) {
        mine = slc_consumer_offsets(c, true, &count);
        if (mine == NULL) {
            return SL_ERR_NOMEM;
        }
        offsets = mine;
    }
    if (count == 0) {
        free(mine);
        return SL_OK;
    }
    struct gcommit *gc = NULL;
    bool queued = commit_add(c, offsets, count, async != 0, &gc);
    free(mine);
    if (!queued) {
        return SL_ERR_QUEUE_FULL;
    }
    if (async) {
        return SL_OK;
    }
    slc_poll_until(c, c->conf->request_timeout_ms + 1000, commit_finished, gc);
    if (!gc->finished) {
        gc->orphan = true; /* freed when its answer or its deadline comes */
        return SL_ERR_TIMED_OUT;
    }
    sl_err err = gc->err;
    commit_free(gc);
    return err;
}

static bool close_done(sl_client *c, void *arg)
{
    (void)arg;
    const struct slc_group *g = c->group;
    return g->c_head == NULL && g->c_inflight == 0 && !g->leave_wanted && !g->leave_inflight;
}

void slc_group_close(sl_client *c, int timeout_ms)
{
    struct slc_group *g = c->group;
    if (g == NULL) {
        return;
    }
    if (slc_group_subscribed(c) && g->revoke_due == 0 && slc_consumer_assigned(c) > 0) {
        g->revoke_due = member(g) ? SL_REBALANCE_REVOKE : SL_REBALANCE_LOST;
    }
    slc_dispatch(c); /* the revoke callback and its commits */
    bool was_member = member(g) || g->state == G_JOINING || g->state == G_SYNC ||
                      g->state == G_SYNCING || g->state == G_ASSIGN;
    g->closing = true;
    /* A static member keeps its place for session.timeout.ms: that is the
     * point of being one (KIP-345); it leaves by timing out. */
    g->leave_wanted =
        was_member && g->member_id[0] != '\0' && c->conf->group_instance_id[0] == '\0';
    if (timeout_ms != 0) {
        slc_poll_until(c, timeout_ms, close_done, NULL);
    }
    g->state = G_NONE;
}
