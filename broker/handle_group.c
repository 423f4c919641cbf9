/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The group APIs: FindCoordinator, JoinGroup, SyncGroup, Heartbeat,
 * LeaveGroup, OffsetCommit, OffsetFetch, DescribeGroups, ListGroups,
 * DeleteGroups. Each turns the wire request into a call of the coordinator
 * (groups.h) and its answer into the response of the request's version.
 * Responses that wait (join, sync, commit, delete) are encoded in the
 * coordinator's callback, while the pointers it hands over are valid.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "broker/broker.h"
#include "broker/groups.h"
#include "common/log.h"
#include "proto/errors.h"

static struct kstr kstr_nonnull(const char *s)
{
    return kstr_cstr(s != NULL ? s : "");
}

static void respond_or_close(struct handling *h, const void *resp, bool ok, const char *what)
{
    if (!ok) {
        LOG_ERROR("broker", "%s response does not fit its arena peer=%s", what,
                  conn_peer(h->req->conn));
        handling_close(h);
        return;
    }
    handling_respond(h, resp);
}

/* ----------------------------------------------------- FindCoordinator */

/* Groups have a coordinator here; transactions are not served. */
static int16_t coordinator_for(int8_t key_type, struct kstr key, struct kstr *message)
{
    if (key_type == 1) {
        *message = kstr_cstr("Transactions are not supported by this broker");
        return KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
    }
    if (key_type != 0) {
        *message = kstr_cstr("Unknown coordinator key type");
        return KAFKA_ERR_INVALID_REQUEST;
    }
    if (key.len <= 0) {
        *message = kstr_cstr("Empty group id");
        return KAFKA_ERR_INVALID_GROUP_ID;
    }
    *message = (struct kstr){NULL, -1};
    return KAFKA_ERR_NONE;
}

void handle_find_coordinator(struct handling *h)
{
    struct broker *b = h->broker;
    const struct kmsg_find_coordinator_request *rq = h->req->handler_data;
    struct kmsg_find_coordinator_response resp;
    kmsg_init(&kmsg_find_coordinator_response_desc, &resp);
    const char *host;
    int32_t port;
    broker_endpoint(b, &host, &port);
    if (h->version < 4) {
        resp.error_code =
            coordinator_for(h->version >= 1 ? rq->key_type : 0, rq->key, &resp.error_message);
        bool ok = resp.error_code == KAFKA_ERR_NONE;
        resp.node_id = ok ? b->config.node_id : -1;
        resp.host = kstr_cstr(ok ? host : "");
        resp.port = ok ? port : -1;
        handling_respond(h, &resp);
        return;
    }
    int32_t n = rq->coordinator_keys.count > 0 ? rq->coordinator_keys.count : 0;
    struct kmsg_find_coordinator_response_coordinator *cs =
        handling_alloc(h, (size_t)(n > 0 ? n : 1) * sizeof(*cs));
    const struct kstr *keys = rq->coordinator_keys.items;
    for (int32_t i = 0; cs != NULL && i < n; i++) {
        kmsg_init(&kmsg_find_coordinator_response_coordinator_desc, &cs[i]);
        cs[i].key = keys[i];
        cs[i].error_code = coordinator_for(rq->key_type, keys[i], &cs[i].error_message);
        bool ok = cs[i].error_code == KAFKA_ERR_NONE;
        cs[i].node_id = ok ? b->config.node_id : -1;
        cs[i].host = kstr_cstr(ok ? host : "");
        cs[i].port = ok ? port : -1;
    }
    resp.coordinators = (struct karray){cs, n};
    respond_or_close(h, &resp, cs != NULL, "find coordinator");
}

/* ----------------------------------------------------------- JoinGroup */

static void join_done(void *opaque, const struct join_result *r)
{
    struct handling *h = opaque;
    struct kmsg_join_group_response resp;
    kmsg_init(&kmsg_join_group_response_desc, &resp);
    resp.error_code = r->error;
    resp.generation_id = r->generation;
    resp.protocol_type = kstr_cstr(r->protocol_type);
    /* protocol_name is nullable only from v7. */
    resp.protocol_name = h->version >= 7 ? kstr_cstr(r->protocol) : kstr_nonnull(r->protocol);
    resp.leader = kstr_nonnull(r->leader);
    resp.member_id = kstr_nonnull(r->member_id);
    struct kmsg_join_group_response_join_group_response_member *ms =
        handling_alloc(h, (size_t)(r->member_count > 0 ? r->member_count : 1) * sizeof(*ms));
    for (int32_t i = 0; ms != NULL && i < r->member_count; i++) {
        kmsg_init(&kmsg_join_group_response_join_group_response_member_desc, &ms[i]);
        ms[i].member_id = kstr_cstr(r->members[i].member_id);
        ms[i].group_instance_id = kstr_cstr(r->members[i].instance_id);
        ms[i].metadata = (struct kbytes){r->members[i].metadata, r->members[i].metadata_len};
    }
    resp.members = (struct karray){ms, ms != NULL ? r->member_count : 0};
    if (ms == NULL) {
        resp.error_code = KAFKA_ERR_UNKNOWN_SERVER_ERROR;
    }
    handling_respond(h, &resp);
}

void handle_join_group(struct handling *h)
{
    const struct kmsg_join_group_request *rq = h->req->handler_data;
    int32_t n = rq->protocols.count > 0 ? rq->protocols.count : 0;
    struct group_protocol *ps = handling_alloc(h, (size_t)(n > 0 ? n : 1) * sizeof(*ps));
    if (ps == NULL) {
        struct join_result r = {.error = KAFKA_ERR_UNKNOWN_SERVER_ERROR, .generation = -1};
        join_done(h, &r);
        return;
    }
    const struct kmsg_join_group_request_join_group_request_protocol *in = rq->protocols.items;
    for (int32_t i = 0; i < n; i++) {
        ps[i] = (struct group_protocol){in[i].name, in[i].metadata};
    }
    const char *peer = conn_peer(h->req->conn);
    const char *colon = strrchr(peer, ':');
    struct join_args a = {
        .group = rq->group_id,
        .member_id = rq->member_id,
        .instance_id = h->version >= 5 ? rq->group_instance_id : (struct kstr){NULL, -1},
        .client_id = h->req->header.client_id,
        .client_host = {peer, colon != NULL ? (int32_t)(colon - peer) : (int32_t)strlen(peer)},
        .protocol_type = rq->protocol_type,
        .session_timeout_ms = rq->session_timeout_ms,
        .rebalance_timeout_ms = h->version >= 1 ? rq->rebalance_timeout_ms : rq->session_timeout_ms,
        .require_known_member_id = h->version >= 4,
        .protocols = ps,
        .protocol_count = n,
    };
    groups_join(h->broker->groups, &a, join_done, h);
}

/* ----------------------------------------------------------- SyncGroup */

static void sync_done(void *opaque, const struct sync_result *r)
{
    struct handling *h = opaque;
    struct kmsg_sync_group_response resp;
    kmsg_init(&kmsg_sync_group_response_desc, &resp);
    resp.error_code = r->error;
    resp.protocol_type = kstr_cstr(r->protocol_type);
    resp.protocol_name = kstr_cstr(r->protocol);
    resp.assignment = (struct kbytes){r->assignment, r->assignment != NULL ? r->assignment_len : 0};
    handling_respond(h, &resp);
}

void handle_sync_group(struct handling *h)
{
    const struct kmsg_sync_group_request *rq = h->req->handler_data;
    int32_t n = rq->assignments.count > 0 ? rq->assignments.count : 0;
    struct kstr *members = handling_alloc(h, (size_t)(n > 0 ? n : 1) * sizeof(*members));
    struct kbytes *bytes = handling_alloc(h, (size_t)(n > 0 ? n : 1) * sizeof(*bytes));
    if (members == NULL || bytes == NULL) {
        struct sync_result r = {.error = KAFKA_ERR_UNKNOWN_SERVER_ERROR};
        sync_done(h, &r);
        return;
    }
    const struct kmsg_sync_group_request_sync_group_request_assignment *in = rq->assignments.items;
    for (int32_t i = 0; i < n; i++) {
        members[i] = in[i].member_id;
        bytes[i] = in[i].assignment;
    }
    struct sync_args a = {
        .group = rq->group_id,
        .member_id = rq->member_id,
        .instance_id = h->version >= 3 ? rq->group_instance_id : (struct kstr){NULL, -1},
        .protocol_type = h->version >= 5 ? rq->protocol_type : (struct kstr){NULL, -1},
        .protocol = h->version >= 5 ? rq->protocol_name : (struct kstr){NULL, -1},
        .generation = rq->generation_id,
        .assignment_members = members,
        .assignments = bytes,
        .assignment_count = n,
    };
    groups_sync(h->broker->groups, &a, sync_done, h);
}

/* ------------------------------------------------- Heartbeat, LeaveGroup */

void handle_heartbeat(struct handling *h)
{
    const struct kmsg_heartbeat_request *rq = h->req->handler_data;
    struct kmsg_heartbeat_response resp;
    kmsg_init(&kmsg_heartbeat_response_desc, &resp);
    resp.error_code = groups_heartbeat(
        h->broker->groups, rq->group_id, rq->member_id,
        h->version >= 3 ? rq->group_instance_id : (struct kstr){NULL, -1}, rq->generation_id);
    handling_respond(h, &resp);
}

void handle_leave_group(struct handling *h)
{
    struct groups *gs = h->broker->groups;
    const struct kmsg_leave_group_request *rq = h->req->handler_data;
    struct kmsg_leave_group_response resp;
    kmsg_init(&kmsg_leave_group_response_desc, &resp);
    if (h->version < 3) {
        resp.error_code = groups_leave(gs, rq->group_id, rq->member_id, (struct kstr){NULL, -1});
        handling_respond(h, &resp);
        return;
    }
    int32_t n = rq->members.count > 0 ? rq->members.count : 0;
    struct kmsg_leave_group_response_member_response *out =
        handling_alloc(h, (size_t)(n > 0 ? n : 1) * sizeof(*out));
    const struct kmsg_leave_group_request_member_identity *in = rq->members.items;
    for (int32_t i = 0; out != NULL && i < n; i++) {
        kmsg_init(&kmsg_leave_group_response_member_response_desc, &out[i]);
        out[i].member_id = in[i].member_id;
        out[i].group_instance_id = in[i].group_instance_id;
        out[i].error_code =
            groups_leave(gs, rq->group_id, in[i].member_id, in[i].group_instance_id);
    }
    resp.members = (struct karray){out, n};
    respond_or_close(h, &resp, out != NULL, "leave group");
}

/* -------------------------------------------------------- OffsetCommit */

struct commit_req {
    struct handling *h;
    struct commit_args args;
};

static void commit_done(void *opaque, int16_t status)
{
    struct commit_req *c = opaque;
    struct handling *h = c->h;
    const struct kmsg_offset_commit_request *rq = h->req->handler_data;
    struct kmsg_offset_commit_response resp;
    kmsg_init(&kmsg_offset_commit_response_desc, &resp);
    (void)status; /* each partition carries its own */
    int32_t nt = rq->topics.count > 0 ? rq->topics.count : 0;
    struct kmsg_offset_commit_response_offset_commit_response_topic *ts =
        handling_alloc(h, (size_t)(nt > 0 ? nt : 1) * sizeof(*ts));
    const struct kmsg_offset_commit_request_offset_commit_request_topic *in = rq->topics.items;
    int32_t k = 0;
    bool ok = ts != NULL;
    for (int32_t t = 0; ok && t < nt; t++) {
        kmsg_init(&kmsg_offset_commit_response_offset_commit_response_topic_desc, &ts[t]);
        ts[t].name = in[t].name;
        int32_t np = in[t].partitions.count > 0 ? in[t].partitions.count : 0;
        struct kmsg_offset_commit_response_offset_commit_response_partition *ps =
            handling_alloc(h, (size_t)(np > 0 ? np : 1) * sizeof(*ps));
        ok = ps != NULL;
        for (int32_t p = 0; ok && p < np; p++, k++) {
            kmsg_init(&kmsg_offset_commit_response_offset_commit_response_partition_desc, &ps[p]);
            ps[p].partition_index = c->args.partitions[k].partition;
            ps[p].error_code = c->args.partitions[k].error;
        }
        ts[t].partitions = (struct karray){ps, np};
    }
    resp.topics = (struct karray){ts, nt};
    respond_or_close(h, &resp, ok, "offset commit");
}

void handle_offset_commit(struct handling *h)
{
    struct broker *b = h->broker;
    const struct kmsg_offset_commit_request *rq = h->req->handler_data;
    int32_t nt = rq->topics.count > 0 ? rq->topics.count : 0;
    int32_t total = 0;
    const struct kmsg_offset_commit_request_offset_commit_request_topic *in = rq->topics.items;
    for (int32_t t = 0; t < nt; t++) {
        total += in[t].partitions.count > 0 ? in[t].partitions.count : 0;
    }
    struct commit_req *c = handling_alloc(h, sizeof(*c));
    struct commit_partition *ps =
        c != NULL ? handling_alloc(h, (size_t)(total > 0 ? total : 1) * sizeof(*ps)) : NULL;
    if (ps == NULL) {
        LOG_ERROR("broker", "offset commit does not fit its arena peer=%s",
                  conn_peer(h->req->conn));
        handling_close(h);
        return;
    }
    int32_t k = 0;
    for (int32_t t = 0; t < nt; t++) {
        const struct topic *topic =
            in[t].name.len > 0 ? topics_find(&b->topics, in[t].name.ptr, (size_t)in[t].name.len)
                               : NULL;
        const struct kmsg_offset_commit_request_offset_commit_request_partition *pin =
            in[t].partitions.items;
        for (int32_t p = 0; p < in[t].partitions.count; p++, k++) {
            bool known = topic != NULL && pin[p].partition_index >= 0 &&
                         pin[p].partition_index < topic->partition_count;
            ps[k] = (struct commit_partition){
                .topic = in[t].name,
                .partition = pin[p].partition_index,
                .offset = pin[p].committed_offset,
                .leader_epoch = h->version >= 6 ? pin[p].committed_leader_epoch : -1,
                .metadata = pin[p].committed_metadata,
                .error = known ? KAFKA_ERR_NONE : KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION,
            };
        }
    }
    c->h = h;
    c->args = (struct commit_args){
        .group = rq->group_id,
        .member_id = h->version >= 1 ? rq->member_id : (struct kstr){"", 0},
        .instance_id = h->version >= 7 ? rq->group_instance_id : (struct kstr){NULL, -1},
        .generation = h->version >= 1 ? rq->generation_id_or_member_epoch : -1,
        .partitions = ps,
        .partition_count = total,
    };
    groups_commit(b->groups, &c->args, commit_done, c);
}

/* --------------------------------------------------------- OffsetFetch */

/* The same partition layout serves v0-7 and v8+ (they are distinct
 * generated types with the same fields in the same order). */
_Static_assert(sizeof(struct kmsg_offset_fetch_response_offset_fetch_response_partition) ==
                   sizeof(struct kmsg_offset_fetch_response_offset_fetch_response_partitions),
               "v0-7 and v8+ partitions share one layout");
_Static_assert(sizeof(struct kmsg_offset_fetch_response_offset_fetch_response_topic) ==
                   sizeof(struct kmsg_offset_fetch_response_offset_fetch_response_topics),
               "v0-7 and v8+ topics share one layout");

typedef struct kmsg_offset_fetch_response_offset_fetch_response_partition fetch_part;
typedef struct kmsg_offset_fetch_response_offset_fetch_response_topic fetch_topic;

static void fill_partition(fetch_part *out, const struct committed *c, int32_t partition)
{
    kmsg_init(&kmsg_offset_fetch_response_offset_fetch_response_partition_desc, out);
    out->partition_index = partition;
    out->committed_offset = c != NULL ? c->offset : -1;
    out->committed_leader_epoch = c != NULL ? c->leader_epoch : -1;
    out->metadata = kstr_cstr(c != NULL ? c->metadata : "");
    out->error_code = KAFKA_ERR_NONE;
}

/* Asked topics: each asked partition, committed or -1. */
static bool fetch_asked(struct handling *h, struct kstr group, const struct kstr *names,
                        const struct karray *partitions, int32_t nt, struct karray *out)
{
    fetch_topic *ts = handling_alloc(h, (size_t)(nt > 0 ? nt : 1) * sizeof(*ts));
    for (int32_t t = 0; ts != NULL && t < nt; t++) {
        kmsg_init(&kmsg_offset_fetch_response_offset_fetch_response_topic_desc, &ts[t]);
        ts[t].name = names[t];
        int32_t np = partitions[t].count > 0 ? partitions[t].count : 0;
        const int32_t *idx = partitions[t].items;
        fetch_part *ps = handling_alloc(h, (size_t)(np > 0 ? np : 1) * sizeof(*ps));
        if (ps == NULL) {
            return false;
        }
        for (int32_t p = 0; p < np; p++) {
            fill_partition(&ps[p], groups_committed(h->broker->groups, group, names[t], idx[p]),
                           idx[p]);
        }
        ts[t].partitions = (struct karray){ps, np};
    }
    *out = (struct karray){ts, nt};
    return ts != NULL;
}

struct collect {
    struct handling *h;
    const struct committed **list;
    int32_t count;
    int32_t cap;
};

static void collect_one(void *opaque, const struct committed *c)
{
    struct collect *col = opaque;
    if (col->count < col->cap) {
        struct committed *copy = handling_alloc(col->h, sizeof(*copy));
        if (copy != NULL) {
            *copy = *c;
            col->list[col->count++] = copy;
        }
    }
}

static int committed_cmp(const void *pa, const void *pb)
{
    const struct committed *a = *(const struct committed *const *)pa;
    const struct committed *b = *(const struct committed *const *)pb;
    int c = strcmp(a->topic, b->topic);
    return c != 0 ? c : (a->partition > b->partition) - (a->partition < b->partition);
}

/* Every committed offset of the group, by topic. */
static bool fetch_all(struct handling *h, struct kstr group, struct karray *out)
{
    struct groups *gs = h->broker->groups;
    int32_t n = groups_each_committed(gs, group, collect_one, &(struct collect){0});
    struct collect col = {h, handling_alloc(h, (size_t)(n > 0 ? n : 1) * sizeof(*col.list)), 0, n};
    if (col.list == NULL) {
        return false;
    }
    groups_each_committed(gs, group, collect_one, &col);
    qsort(col.list, (size_t)col.count, sizeof(*col.list), committed_cmp);
    int32_t nt = 0;
    for (int32_t i = 0; i < col.count; i++) {
        nt += i == 0 || strcmp(col.list[i]->topic, col.list[i - 1]->topic) != 0;
    }
    fetch_topic *ts = handling_alloc(h, (size_t)(nt > 0 ? nt : 1) * sizeof(*ts));
    fetch_part *ps = handling_alloc(h, (size_t)(col.count > 0 ? col.count : 1) * sizeof(*ps));
    if (ts == NULL || ps == NULL) {
        return false;
    }
    int32_t t = -1;
    for (int32_t i = 0; i < col.count; i++) {
        if (i == 0 || strcmp(col.list[i]->topic, col.list[i - 1]->topic) != 0) {
            t++;
            kmsg_init(&kmsg_offset_fetch_response_offset_fetch_response_topic_desc, &ts[t]);
            ts[t].name = kstr_cstr(col.list[i]->topic);
            ts[t].partitions = (struct karray){&ps[i], 0};
        }
        fill_partition(&ps[i], col.list[i], col.list[i]->partition);
        ts[t].partitions.count++;
    }
    *out = (struct karray){ts, nt};
    return true;
}

static bool fetch_group_v0(struct handling *h, const struct kmsg_offset_fetch_request *rq,
                           struct kmsg_offset_fetch_response *resp)
{
    if (rq->topics.count < 0) {
        return fetch_all(h, rq->group_id, &resp->topics);
    }
    int32_t nt = rq->topics.count;
    const struct kmsg_offset_fetch_request_offset_fetch_request_topic *in = rq->topics.items;
    struct kstr *names = handling_alloc(h, (size_t)(nt > 0 ? nt : 1) * sizeof(*names));
    struct karray *parts = handling_alloc(h, (size_t)(nt > 0 ? nt : 1) * sizeof(*parts));
    for (int32_t t = 0; names != NULL && parts != NULL && t < nt; t++) {
        names[t] = in[t].name;
        parts[t] = in[t].partition_indexes;
    }
    return names != NULL && parts != NULL &&
           fetch_asked(h, rq->group_id, names, parts, nt, &resp->topics);
}

void handle_offset_fetch(struct handling *h)
{
    const struct kmsg_offset_fetch_request *rq = h->req->handler_data;
    struct kmsg_offset_fetch_response resp;
    kmsg_init(&kmsg_offset_fetch_response_desc, &resp);
    if (h->version < 8) {
        bool ok = fetch_group_v0(h, rq, &resp);
        if (rq->group_id.len <= 0) {
            resp.error_code = KAFKA_ERR_INVALID_GROUP_ID;
        }
        respond_or_close(h, &resp, ok, "offset fetch");
        return;
    }
    int32_t ng = rq->groups.count > 0 ? rq->groups.count : 0;
    struct kmsg_offset_fetch_response_offset_fetch_response_group *gs =
        handling_alloc(h, (size_t)(ng > 0 ? ng : 1) * sizeof(*gs));
    const struct kmsg_offset_fetch_request_offset_fetch_request_group *in = rq->groups.items;
    bool ok = gs != NULL;
    for (int32_t g = 0; ok && g < ng; g++) {
        kmsg_init(&kmsg_offset_fetch_response_offset_fetch_response_group_desc, &gs[g]);
        gs[g].group_id = in[g].group_id;
        gs[g].error_code = in[g].group_id.len > 0 ? KAFKA_ERR_NONE : KAFKA_ERR_INVALID_GROUP_ID;
        if (in[g].topics.count < 0) {
            ok = fetch_all(h, in[g].group_id, &gs[g].topics);
            continue;
        }
        int32_t nt = in[g].topics.count;
        const struct kmsg_offset_fetch_request_offset_fetch_request_topics *tin =
            in[g].topics.items;
        struct kstr *names = handling_alloc(h, (size_t)(nt > 0 ? nt : 1) * sizeof(*names));
        struct karray *parts = handling_alloc(h, (size_t)(nt > 0 ? nt : 1) * sizeof(*parts));
        ok = names != NULL && parts != NULL;
        for (int32_t t = 0; ok && t < nt; t++) {
            names[t] = tin[t].name;
            parts[t] = tin[t].partition_indexes;
        }
        ok = ok && fetch_asked(h, in[g].group_id, names, parts, nt, &gs[g].topics);
    }
    resp.groups = (struct karray){gs, ng};
    respond_or_close(h, &resp, ok, "offset fetch");
}

/* ------------------------------------------------------ DescribeGroups */

struct describe {
    struct handling *h;
    struct kmsg_describe_groups_response_described_group_member *list;
    int32_t count;
    int32_t cap;
};

static void describe_member(void *opaque, const struct member_view *m)
{
    struct describe *d = opaque;
    if (d->count == d->cap) {
        int32_t cap = d->cap == 0 ? 8 : d->cap * 2;
        void *more = handling_alloc(d->h, (size_t)cap * sizeof(*d->list));
        if (more == NULL) {
            return;
        }
        if (d->count > 0) {
            memcpy(more, d->list, (size_t)d->count * sizeof(*d->list));
        }
        d->list = more;
        d->cap = cap;
    }
    struct kmsg_describe_groups_response_described_group_member *out = &d->list[d->count++];
    kmsg_init(&kmsg_describe_groups_response_described_group_member_desc, out);
    /* The coordinator's strings outlive this response's encoding: it runs now. */
    out->member_id = kstr_cstr(m->member_id);
    out->group_instance_id = kstr_cstr(m->instance_id);
    out->client_id = kstr_cstr(m->client_id);
    out->client_host = kstr_cstr(m->client_host);
    out->member_metadata = (struct kbytes){m->metadata, m->metadata != NULL ? m->metadata_len : 0};
    out->member_assignment =
        (struct kbytes){m->assignment, m->assignment != NULL ? m->assignment_len : 0};
}

void handle_describe_groups(struct handling *h)
{
    const struct kmsg_describe_groups_request *rq = h->req->handler_data;
    struct kmsg_describe_groups_response resp;
    kmsg_init(&kmsg_describe_groups_response_desc, &resp);
    int32_t n = rq->groups.count > 0 ? rq->groups.count : 0;
    struct kmsg_describe_groups_response_described_group *out =
        handling_alloc(h, (size_t)(n > 0 ? n : 1) * sizeof(*out));
    const struct kstr *names = rq->groups.items;
    for (int32_t i = 0; out != NULL && i < n; i++) {
        kmsg_init(&kmsg_describe_groups_response_described_group_desc, &out[i]);
        out[i].group_id = names[i];
        struct describe d = {h, NULL, 0, 0};
        struct group_view v;
        if (names[i].len <= 0) {
            out[i].error_code = KAFKA_ERR_INVALID_GROUP_ID;
        } else if (!groups_describe(h->broker->groups, names[i], &v, describe_member, &d)) {
            /* Kafka describes an unknown group as Dead, without an error. */
            out[i].group_state = kstr_cstr("Dead");
            out[i].protocol_type = kstr_cstr("");
            out[i].protocol_data = kstr_cstr("");
        } else {
            out[i].group_state = kstr_cstr(v.state);
            out[i].protocol_type = kstr_cstr(v.protocol_type);
            out[i].protocol_data = kstr_cstr(v.protocol);
        }
        out[i].members = (struct karray){d.list, d.count};
    }
    resp.groups = (struct karray){out, n};
    respond_or_close(h, &resp, out != NULL, "describe groups");
}

/* --------------------------------------------------------- ListGroups */

struct lister {
    struct handling *h;
    const struct kmsg_list_groups_request *rq;
    struct kmsg_list_groups_response_listed_group *list;
    int32_t count;
    int32_t cap;
};

static bool filter_has(const struct karray *filter, const char *value)
{
    if (filter->count <= 0) {
        return true;
    }
    const struct kstr *items = filter->items;
    for (int32_t i = 0; i < filter->count; i++) {
        if (items[i].len == (int32_t)strlen(value) &&
            strncasecmp(items[i].ptr, value, (size_t)items[i].len) == 0) {
            return true;
        }
    }
    return false;
}

static void list_one(void *opaque, const struct group_view *g)
{
    struct lister *l = opaque;
    if ((l->h->version >= 4 && !filter_has(&l->rq->states_filter, g->state)) ||
        (l->h->version >= 5 && !filter_has(&l->rq->types_filter, "classic")) ||
        l->count == l->cap) {
        return;
    }
    struct kmsg_list_groups_response_listed_group *out = &l->list[l->count++];
    kmsg_init(&kmsg_list_groups_response_listed_group_desc, out);
    out->group_id = kstr_cstr(g->id);
    out->protocol_type = kstr_cstr(g->protocol_type);
    out->group_state = kstr_cstr(g->state);
    out->group_type = kstr_cstr("classic");
}

void handle_list_groups(struct handling *h)
{
    struct groups *gs = h->broker->groups;
    const struct kmsg_list_groups_request *rq = h->req->handler_data;
    struct kmsg_list_groups_response resp;
    kmsg_init(&kmsg_list_groups_response_desc, &resp);
    struct lister l = {h, rq, NULL, 0, 0};
    struct lister count_only = {h, rq, NULL, 0, 0};
    l.cap = groups_list(gs, list_one, &count_only); /* cap 0: counts without storing */
    l.list = handling_alloc(h, (size_t)(l.cap > 0 ? l.cap : 1) * sizeof(*l.list));
    if (l.list != NULL) {
        groups_list(gs, list_one, &l);
    }
    resp.groups = (struct karray){l.list, l.count};
    respond_or_close(h, &resp, l.list != NULL, "list groups");
}

/* -------------------------------------------------------- DeleteGroups */

struct delete_req {
    struct handling *h;
    struct kmsg_delete_groups_response resp;
    int32_t pending;
};

struct delete_one {
    struct delete_req *req;
    struct kmsg_delete_groups_response_deletable_group_result *out;
};

static void delete_settled(struct delete_req *d)
{
    if (--d->pending == 0) {
        handling_respond(d->h, &d->resp);
    }
}

static void delete_done(void *opaque, int16_t error)
{
    struct delete_one *one = opaque;
    one->out->error_code = error;
    delete_settled(one->req);
}

void handle_delete_groups(struct handling *h)
{
    const struct kmsg_delete_groups_request *rq = h->req->handler_data;
    int32_t n = rq->groups_names.count > 0 ? rq->groups_names.count : 0;
    struct delete_req *d = handling_alloc(h, sizeof(*d));
    struct kmsg_delete_groups_response_deletable_group_result *out =
        d != NULL ? handling_alloc(h, (size_t)(n > 0 ? n : 1) * sizeof(*out)) : NULL;
    struct delete_one *ones =
        out != NULL ? handling_alloc(h, (size_t)(n > 0 ? n : 1) * sizeof(*ones)) : NULL;
    if (ones == NULL) {
        LOG_ERROR("broker", "delete groups does not fit its arena peer=%s",
                  conn_peer(h->req->conn));
        handling_close(h);
        return;
    }
    d->h = h;
    d->pending = 1 + n;
    kmsg_init(&kmsg_delete_groups_response_desc, &d->resp);
    d->resp.results = (struct karray){out, n};
    const struct kstr *names = rq->groups_names.items;
    for (int32_t i = 0; i < n; i++) {
        kmsg_init(&kmsg_delete_groups_response_deletable_group_result_desc, &out[i]);
        out[i].group_id = names[i];
        ones[i] = (struct delete_one){d, &out[i]};
        groups_delete(h->broker->groups, names[i], delete_done, &ones[i]);
    }
    delete_settled(d);
}
