/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Broker connections: non-blocking sockets in the client's epoll set, Kafka
 * framing both ways, pipelined requests matched to responses in order, and
 * ApiVersions negotiation on every new connection.
 *
 * Frames, both directions: int32 big-endian size of what follows, then a
 * request header (v1, v2 for flexible versions) and body, or a response
 * header (v0, v1 for flexible versions, always v0 for ApiVersions) and body.
 *
 * A connection's life:
 *   DOWN        no socket; reconnect_at_ms is the backoff after a failure
 *   CONNECTING  connect() in progress; writable means done (SO_ERROR says how)
 *   HANDSHAKE   ApiVersions sent at the newest version the codec knows; a
 *               broker that does not know it answers UNSUPPORTED_VERSION in
 *               the v0 layout with its range, and it is asked again at its
 *               newest. The answer fixes, per API, the version used on this
 *               connection: the highest both sides and the codec support.
 *   UP          any request may go out
 * Connection setup (connect + ApiVersions) must end within
 * socket.connection.setup.timeout.ms; an answered request within
 * request.timeout.ms of being queued, else the connection is closed, which
 * fails every request in flight on it back to its owner (retriably).
 *
 * Requests in flight sit in a ring in send order: Kafka answers requests of
 * one connection in order, so a response belongs to the ring's head, and its
 * correlation id must say so. Produce requests with acks=0 get no answer:
 * they are complete once their last byte is written (sent_pos passes their
 * end_pos).
 *
 * Bounds: the ring (max.in.flight Produce requests plus
 * SLC_CONTROL_INFLIGHT_MAX others), the output buffer (that many requests of
 * max.request.size), the input buffer (one frame of receive.message.max.bytes
 * and a read's worth), the decode arena (SLC_ARENA_BYTES_MAX).
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/internal.h"
#include "common/assert.h"
#include "common/bytes.h"
#include "proto/errors.h"

/* Bytes read per recv(). */
#define READ_CHUNK_BYTES (256u << 10)
/* Output is compacted once this much of its front has been written. */
#define OUT_COMPACT_BYTES (1u << 20)

/* The versions this client can speak, per API it uses; the codec's range
 * narrows them further (max -1: the codec's newest). Produce starts at v3,
 * the first with RecordBatch v2; Fetch at v4, the first whose answers carry
 * only v2 batches, and ends at v12, the last that names topics (v13 on name
 * them by id); ListOffsets at v1, the first with one offset per partition. */
static const struct {
    int16_t key;
    int16_t min;
    int16_t max;
} used_apis[] = {
    {KMSG_API_PRODUCE, 3, -1},      {KMSG_API_METADATA, 0, -1}, {KMSG_API_INIT_PRODUCER_ID, 0, -1},
    {KMSG_API_API_VERSIONS, 0, -1}, {KMSG_API_FETCH, 4, 12},    {KMSG_API_LIST_OFFSETS, 1, -1},
};

static struct kstr kstr_of(const char *s)
{
    return (struct kstr){s, (int32_t)strlen(s)};
}

/* ================================================================ table */

struct slc_broker *slc_broker_find(sl_client *c, int32_t node_id)
{
    for (uint32_t i = 0; i < c->broker_count; i++) {
        if (c->brokers[i]->node_id == node_id) {
            return c->brokers[i];
        }
    }
    return NULL;
}

static void set_address(struct slc_broker *b, const char *host, size_t host_len, uint16_t port)
{
    memcpy(b->host, host, host_len);
    b->host[host_len] = '\0';
    b->port = port;
    bool v6 = memchr(host, ':', host_len) != NULL;
    snprintf(b->addr, sizeof(b->addr), v6 ? "[%s]:%u" : "%s:%u", b->host, port);
}

static struct slc_broker *broker_new(sl_client *c, int32_t node_id)
{
    struct slc_broker *b = calloc(1, sizeof(*b));
    uint32_t ring_cap = (uint32_t)c->conf->max_in_flight + SLC_CONTROL_INFLIGHT_MAX;
    if (b == NULL || (b->ring = calloc(ring_cap, sizeof(*b->ring))) == NULL) {
        free(b);
        return NULL;
    }
    b->ring_cap = ring_cap;
    b->node_id = node_id;
    b->fd = -1;
    b->state = SLC_CONN_DOWN;
    /* Room for every request the ring can hold at its largest. */
    buf_init(&b->out, (size_t)ring_cap * (size_t)c->conf->max_request_size);
    buf_init(&b->in, (size_t)c->conf->receive_message_max_bytes + 4 + READ_CHUNK_BYTES);
    b->api_versions_version = kmsg_api_find(KMSG_API_API_VERSIONS)->max_version;
    for (size_t i = 0; i < SLC_API_KEYS; i++) {
        b->versions[i] = -1;
        b->broker_min[i] = -1;
        b->broker_max[i] = -1;
    }
    return b;
}

struct slc_broker *slc_broker_upsert(sl_client *c, int32_t node_id, const char *host,
                                     size_t host_len, uint16_t port)
{
    if (host_len == 0 || host_len >= SLC_HOST_BYTES || port == 0) {
        return NULL;
    }
    struct slc_broker *b = slc_broker_find(c, node_id);
    if (b != NULL) {
        /* A moved broker: the next connection goes to the new address. */
        if (b->port != port || strlen(b->host) != host_len || memcmp(b->host, host, host_len)) {
            set_address(b, host, host_len, port);
        }
        return b;
    }
    if (c->broker_count >= SLC_BROKERS_MAX) {
        return NULL;
    }
    struct slc_broker **grown = realloc(c->brokers, (c->broker_count + 1) * sizeof(*grown));
    if (grown == NULL) {
        return NULL;
    }
    c->brokers = grown;
    b = broker_new(c, node_id);
    if (b == NULL) {
        return NULL;
    }
    set_address(b, host, host_len, port);
    c->brokers[c->broker_count++] = b;
    return b;
}

void slc_broker_free(struct slc_broker *b)
{
    if (b == NULL) {
        return;
    }
    if (b->fd >= 0) {
        close(b->fd);
    }
    buf_deinit(&b->out);
    buf_deinit(&b->in);
    free(b->ring);
    free(b);
}

/* ================================================================ events */

static void update_events(sl_client *c, struct slc_broker *b)
{
    if (b->fd < 0) {
        return;
    }
    uint32_t want = EPOLLIN;
    if (b->state == SLC_CONN_CONNECTING || b->out_off < b->out.len) {
        want |= EPOLLOUT;
    }
    if (want != b->events) {
        struct epoll_event ev = {.events = want, .data.ptr = b};
        /* MOD on a registered fd fails only on a bad fd: a bug. */
        int rc = epoll_ctl(c->epfd, EPOLL_CTL_MOD, b->fd, &ev);
        SL_ASSERT(rc == 0);
        b->events = want;
    }
}

/* After a failure: every broker tried and none reachable is worth one report. */
static void check_all_down(sl_client *c)
{
    for (uint32_t i = 0; i < c->broker_count; i++) {
        const struct slc_broker *b = c->brokers[i];
        if (b->state != SLC_CONN_DOWN || !b->failed_last) {
            return;
        }
    }
    if (!c->all_down) {
        /* Addresses, not entries: a bootstrap entry, the broker metadata
         * named at that address and the group coordinator's connection are
         * one broker to the reader. */
        uint32_t distinct = 0;
        for (uint32_t i = 0; i < c->broker_count; i++) {
            uint32_t k = 0;
            while (k < i && strcmp(c->brokers[k]->addr, c->brokers[i]->addr) != 0) {
                k++;
            }
            distinct += k == i;
        }
        c->all_down = true;
        slc_error(c, SL_ERR_ALL_BROKERS_DOWN, "all %u broker(s) are down", distinct);
    }
}

static void drop_socket(sl_client *c, struct slc_broker *b)
{
    if (b->fd >= 0) {
        epoll_ctl(c->epfd, EPOLL_CTL_DEL, b->fd, NULL);
        close(b->fd);
        b->fd = -1;
    }
    b->events = 0;
    b->generation++;
    buf_reset(&b->out);
    buf_reset(&b->in);
    b->out_off = 0;
    b->queued_pos = 0;
    b->sent_pos = 0;
}

/* A connection attempt failed: back off, report the first of a streak. */
static void connect_failed(sl_client *c, struct slc_broker *b, sl_err err, const char *why,
                           int64_t now_ms)
{
    drop_socket(c, b);
    b->state = SLC_CONN_DOWN;
    b->state_since_ms = now_ms;
    b->failures++;
    b->failed_last = true;
    b->addr_index++; /* the next attempt tries the host's next address */
    b->reconnect_at_ms =
        now_ms + slc_backoff_ms(c->conf->retry_backoff_ms, c->conf->retry_backoff_max_ms,
                                b->failures, &c->rng);
    if (b->failures == 1) {
        slc_error(c, err, "%s: %s", b->addr, why);
    }
    check_all_down(c);
}

/* Opens a non-blocking socket to the chosen address. 0 or -errno; *err and
 * *why say what failed. */
static int open_socket(struct slc_broker *b, sl_err *err, char *why, size_t why_size)
{
    char port[8];
    snprintf(port, sizeof(port), "%u", b->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(b->host, port, &hints, &res);
    if (rc != 0) {
        *err = SL_ERR_RESOLVE;
        snprintf(why, why_size, "resolve: %s", gai_strerror(rc));
        return -EHOSTUNREACH;
    }
    uint32_t n = 0;
    for (struct addrinfo *a = res; a != NULL; a = a->ai_next) {
        n++;
    }
    struct addrinfo *a = res;
    for (uint32_t i = 0; i < b->addr_index % n; i++) {
        a = a->ai_next;
    }
    *err = SL_ERR_TRANSPORT;
    int fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
        snprintf(why, why_size, "socket: %s", strerror(errno));
        freeaddrinfo(res);
        return rc;
    }
    int one = 1;
    /* Requests are whole when queued: waiting to coalesce only adds latency. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    rc = connect(fd, a->ai_addr, a->ai_addrlen);
    freeaddrinfo(res);
    if (rc < 0 && errno != EINPROGRESS) {
        rc = -errno;
        snprintf(why, why_size, "connect: %s", strerror(errno));
        close(fd);
        return rc;
    }
    b->fd = fd;
    return 0;
}

void slc_broker_connect(sl_client *c, struct slc_broker *b, int64_t now_ms, int64_t *next_ms)
{
    if (b->state != SLC_CONN_DOWN) {
        return;
    }
    if (now_ms < b->reconnect_at_ms) {
        *next_ms = SL_MIN(*next_ms, b->reconnect_at_ms);
        return;
    }
    sl_err err;
    char why[SLC_ERROR_TEXT_BYTES / 2];
    if (open_socket(b, &err, why, sizeof(why)) != 0) {
        connect_failed(c, b, err, why, now_ms);
        *next_ms = SL_MIN(*next_ms, b->reconnect_at_ms);
        return;
    }
    b->state = SLC_CONN_CONNECTING;
    b->state_since_ms = now_ms;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = b};
    if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, b->fd, &ev) != 0) {
        snprintf(why, sizeof(why), "epoll: %s", strerror(errno));
        connect_failed(c, b, SL_ERR_TRANSPORT, why, now_ms);
        return;
    }
    b->events = EPOLLIN | EPOLLOUT;
    *next_ms = SL_MIN(*next_ms, now_ms + c->conf->connect_timeout_ms);
}

/* ================================================================ requests */

bool slc_broker_can_send(const sl_client *c, const struct slc_broker *b, enum slc_req_kind kind)
{
    if (kind == SLC_REQ_API_VERSIONS) {
        return b->state == SLC_CONN_HANDSHAKE && b->ring_count < b->ring_cap;
    }
    if (b->state != SLC_CONN_UP || b->ring_count >= b->ring_cap) {
        return false;
    }
    if (kind == SLC_REQ_PRODUCE) {
        return b->produce_inflight < (uint32_t)c->conf->max_in_flight;
    }
    return b->ring_count - b->produce_inflight < SLC_CONTROL_INFLIGHT_MAX;
}

int slc_broker_send(sl_client *c, struct slc_broker *b, struct slc_req *req, const void *body,
                    int64_t now_ms)
{
    SL_ASSERT(slc_broker_can_send(c, b, req->kind));
    const struct kmsg_api *api = kmsg_api_find(req->api_key);
    SL_ASSERT(api != NULL && kmsg_api_version_valid(api, req->version));
    size_t start = b->out.len;
    struct kmsg_request_header h = {.request_api_key = req->api_key,
                                    .request_api_version = req->version,
                                    .correlation_id = c->next_correlation_id,
                                    .client_id = kstr_of(c->conf->client_id)};
    int rc = buf_put_be32(&b->out, 0);
    rc = rc != 0 ? rc : kmsg_request_header_encode(&b->out, &h);
    rc = rc != 0 ? rc : kmsg_encode(api->request, req->version, body, &b->out);
    if (rc != 0) {
        b->out.len = start;
        return rc;
    }
    be32_put(b->out.data + start, (uint32_t)(b->out.len - start - 4));
    c->next_correlation_id = c->next_correlation_id == INT32_MAX ? 0 : c->next_correlation_id + 1;
    b->queued_pos += b->out.len - start;
    req->correlation_id = h.correlation_id;
    req->sent_ms = now_ms;
    req->end_pos = b->queued_pos;
    b->ring[(b->ring_head + b->ring_count) % b->ring_cap] = *req;
    b->ring_count++;
    if (req->kind == SLC_REQ_PRODUCE) {
        b->produce_inflight++;
        c->produce_inflight++;
    }
    update_events(c, b);
    return 0;
}

int16_t slc_call_version(const struct slc_broker *b, int16_t api_key, int16_t min_version,
                         int16_t max_version)
{
    const struct kmsg_api *api = kmsg_api_find(api_key);
    if (api == NULL || api_key < 0 || api_key >= SLC_API_KEYS || b->broker_max[api_key] < 0) {
        return -1;
    }
    int16_t hi = SL_MIN(SL_MIN(b->broker_max[api_key], api->max_version), max_version);
    int16_t lo = SL_MAX(SL_MAX(b->broker_min[api_key], api->min_version), min_version);
    return hi >= lo ? hi : -1;
}

int slc_call(sl_client *c, struct slc_broker *b, int16_t api_key, int16_t min_version,
             int16_t max_version, const void *body, slc_call_fn *fn, void *arg, int64_t now_ms)
{
    return slc_call_timed(c, b, api_key, min_version, max_version, body, fn, arg, 0, now_ms);
}

int slc_call_timed(sl_client *c, struct slc_broker *b, int16_t api_key, int16_t min_version,
                   int16_t max_version, const void *body, slc_call_fn *fn, void *arg,
                   int32_t timeout_ms, int64_t now_ms)
{
    if (!slc_broker_can_send(c, b, SLC_REQ_CALL)) {
        return -EAGAIN;
    }
    int16_t version = slc_call_version(b, api_key, min_version, max_version);
    if (version < 0) {
        return -ENOTSUP;
    }
    struct slc_req req = {.kind = SLC_REQ_CALL,
                          .call = fn,
                          .call_arg = arg,
                          .timeout_ms = timeout_ms,
                          .api_key = api_key,
                          .version = version,
                          .expects_response = true};
    return slc_broker_send(c, b, &req, body, now_ms);
}

static struct slc_req ring_pop(sl_client *c, struct slc_broker *b)
{
    SL_ASSERT(b->ring_count > 0);
    struct slc_req req = b->ring[b->ring_head];
    b->ring_head = (b->ring_head + 1) % b->ring_cap;
    b->ring_count--;
    if (req.kind == SLC_REQ_PRODUCE) {
        SL_ASSERT(b->produce_inflight > 0 && c->produce_inflight > 0);
        b->produce_inflight--;
        c->produce_inflight--;
    }
    return req;
}

/* Hands a finished request to its owner: resp is the decoded body, or NULL
 * with err saying why there is none (SL_OK: none was expected). */
static void complete(sl_client *c, struct slc_broker *b, struct slc_req *req, const void *resp,
                     sl_err err, int64_t now_ms);

/* acks=0 Produce requests at the head whose bytes are all written. */
static void complete_unanswered(sl_client *c, struct slc_broker *b, int64_t now_ms)
{
    while (b->ring_count > 0 && !b->ring[b->ring_head].expects_response &&
           b->sent_pos >= b->ring[b->ring_head].end_pos) {
        struct slc_req req = ring_pop(c, b);
        complete(c, b, &req, NULL, SL_OK, now_ms);
    }
}

void slc_broker_close(sl_client *c, struct slc_broker *b, sl_err err, const char *why,
                      int64_t now_ms)
{
    bool was_up = b->state == SLC_CONN_UP;
    drop_socket(c, b);
    b->state = SLC_CONN_DOWN;
    b->state_since_ms = now_ms;
    b->failures = 1;
    b->failed_last = !was_up;
    b->reconnect_at_ms = now_ms + slc_backoff_ms(c->conf->retry_backoff_ms,
                                                 c->conf->retry_backoff_max_ms, 1, &c->rng);
    if (why != NULL) {
        slc_error(c, err, "%s: %s", b->addr, why);
    }
    /* Owners may send elsewhere, never here: this broker is DOWN now. */
    while (b->ring_count > 0) {
        struct slc_req req = ring_pop(c, b);
        complete(c, b, &req, NULL, err, now_ms);
    }
    check_all_down(c);
}

void slc_brokers_end_calls(sl_client *c, int64_t now_ms)
{
    for (uint32_t i = 0; i < c->broker_count; i++) {
        struct slc_broker *b = c->brokers[i];
        for (uint32_t k = 0; k < b->ring_count; k++) {
            struct slc_req *req = &b->ring[(b->ring_head + k) % b->ring_cap];
            if (req->kind == SLC_REQ_CALL && req->call != NULL) {
                slc_call_fn *fn = req->call;
                req->call = NULL;
                fn(c, b, req->call_arg, NULL, SL_ERR_STATE, now_ms);
            }
        }
    }
}

/* ================================================================ writing */

static void flush_out(sl_client *c, struct slc_broker *b, int64_t now_ms)
{
    while (b->out_off < b->out.len) {
        ssize_t n = send(b->fd, b->out.data + b->out_off, b->out.len - b->out_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                break;
            }
            char why[128];
            snprintf(why, sizeof(why), "send: %s", strerror(errno));
            slc_broker_close(c, b, SL_ERR_TRANSPORT, why, now_ms);
            return;
        }
        b->out_off += (size_t)n;
        b->sent_pos += (uint64_t)n;
    }
    if (b->out_off == b->out.len) {
        b->out.len = 0;
        b->out_off = 0;
    } else if (b->out_off >= OUT_COMPACT_BYTES) {
        memmove(b->out.data, b->out.data + b->out_off, b->out.len - b->out_off);
        b->out.len -= b->out_off;
        b->out_off = 0;
    }
    complete_unanswered(c, b, now_ms);
    update_events(c, b);
}

void slc_broker_flush(sl_client *c, struct slc_broker *b, int64_t now_ms)
{
    if (b->fd >= 0 && b->state >= SLC_CONN_HANDSHAKE && b->out_off < b->out.len) {
        flush_out(c, b, now_ms);
    }
}

/* ================================================================ responses */

struct karena slc_arena(sl_client *c, size_t len, bool *ok)
{
    struct karena a;
    size_t want = SLC_ARENA_BYTES_MIN;
    if (len > (SLC_ARENA_BYTES_MAX - want) / SLC_ARENA_BYTES_PER_BYTE) {
        want = SLC_ARENA_BYTES_MAX;
    } else {
        want += len * SLC_ARENA_BYTES_PER_BYTE;
    }
    if (want > c->arena_cap) {
        void *mem = realloc(c->arena_mem, want);
        if (mem != NULL) {
            c->arena_mem = mem;
            c->arena_cap = want;
        }
    }
    *ok = c->arena_mem != NULL;
    karena_init(&a, c->arena_mem, c->arena_cap);
    return a;
}

/* Versions for this connection from the broker's ranges. */
static void negotiate(struct slc_broker *b, const struct kmsg_api_versions_response *resp)
{
    const struct kmsg_api_versions_response_api_version *keys = resp->api_keys.items;
    for (size_t i = 0; i < SLC_API_KEYS; i++) {
        b->broker_min[i] = -1;
        b->broker_max[i] = -1;
    }
    for (int32_t k = 0; k < resp->api_keys.count; k++) {
        if (keys[k].api_key >= 0 && keys[k].api_key < SLC_API_KEYS &&
            keys[k].min_version <= keys[k].max_version) {
            b->broker_min[keys[k].api_key] = keys[k].min_version;
            b->broker_max[keys[k].api_key] = keys[k].max_version;
        }
    }
    for (size_t i = 0; i < SL_ARRAY_LEN(used_apis); i++) {
        const struct kmsg_api *api = kmsg_api_find(used_apis[i].key);
        b->versions[used_apis[i].key] = -1;
        for (int32_t k = 0; k < resp->api_keys.count; k++) {
            if (keys[k].api_key != used_apis[i].key) {
                continue;
            }
            int16_t hi = SL_MIN(keys[k].max_version, api->max_version);
            if (used_apis[i].max >= 0) {
                hi = SL_MIN(hi, used_apis[i].max);
            }
            int16_t lo = SL_MAX(SL_MAX(keys[k].min_version, used_apis[i].min), api->min_version);
            b->versions[used_apis[i].key] = hi >= lo ? hi : -1;
        }
    }
}

static void api_versions_done(sl_client *c, struct slc_broker *b, const struct slc_req *req,
                              const struct kmsg_api_versions_response *resp, int64_t now_ms)
{
    if (resp->error_code == KAFKA_ERR_UNSUPPORTED_VERSION) {
        /* Ask again at the broker's newest, which its v0 answer names. */
        const struct kmsg_api_versions_response_api_version *keys = resp->api_keys.items;
        int16_t max = 0;
        for (int32_t k = 0; k < resp->api_keys.count; k++) {
            if (keys[k].api_key == KMSG_API_API_VERSIONS) {
                max = keys[k].max_version;
            }
        }
        if (max < req->version && max >= 0) {
            b->api_versions_version = max;
            struct kmsg_api_versions_request rq;
            kmsg_init(&kmsg_api_versions_request_desc, &rq);
            rq.client_software_name = kstr_of("sluice");
            rq.client_software_version = kstr_of(SL_VERSION_STR);
            struct slc_req again = {.kind = SLC_REQ_API_VERSIONS,
                                    .api_key = KMSG_API_API_VERSIONS,
                                    .version = max,
                                    .expects_response = true};
            if (slc_broker_send(c, b, &again, &rq, now_ms) == 0) {
                return;
            }
        }
    }
    if (resp->error_code != KAFKA_ERR_NONE) {
        char why[128];
        snprintf(why, sizeof(why), "ApiVersions: %s", kafka_error_name(resp->error_code));
        slc_broker_close(c, b, SL_ERR_UNSUPPORTED_FEATURE, why, now_ms);
        return;
    }
    negotiate(b, resp);
    b->state = SLC_CONN_UP;
    b->state_since_ms = now_ms;
    b->failures = 0;
    b->failed_last = false;
    c->all_down = false;
}

static void complete(sl_client *c, struct slc_broker *b, struct slc_req *req, const void *resp,
                     sl_err err, int64_t now_ms)
{
    switch (req->kind) {
    case SLC_REQ_API_VERSIONS:
        if (resp != NULL) {
            api_versions_done(c, b, req, resp, now_ms);
        }
        break;
    case SLC_REQ_METADATA:
        slc_metadata_response(c, b, req, resp, err, now_ms);
        break;
    case SLC_REQ_INIT_PID:
        slc_init_pid_response(c, b, resp, err, now_ms);
        break;
    case SLC_REQ_PRODUCE:
        slc_produce_response(c, b, req, resp, err, now_ms);
        break;
    case SLC_REQ_FETCH:
        slc_fetch_response(c, b, resp, err, now_ms);
        break;
    case SLC_REQ_LIST_OFFSETS:
        slc_list_offsets_response(c, b, resp, err, now_ms);
        break;
    case SLC_REQ_CALL:
        if (req->call != NULL) { /* NULL: ended by slc_brokers_end_calls */
            req->call(c, b, req->call_arg, resp, err, now_ms);
        }
        break;
    }
}

/* Decodes a response body; an ApiVersions answer that does not parse at the
 * version asked may be the v0 layout of a refusal (KIP-511). */
static int decode_body(sl_client *c, const struct slc_req *req, const uint8_t *p, size_t len,
                       void *out, const char **why)
{
    const struct kmsg_api *api = kmsg_api_find(req->api_key);
    bool ok;
    struct karena arena = slc_arena(c, len, &ok);
    if (!ok) {
        *why = "out of memory for the decode arena";
        return -ENOMEM;
    }
    int rc = kmsg_decode(api->response, req->version, p, len, out, &arena, why);
    if (rc != 0 && req->api_key == KMSG_API_API_VERSIONS && req->version > 0) {
        karena_reset(&arena);
        rc = kmsg_decode(api->response, 0, p, len, out, &arena, why);
    }
    return rc;
}

/* One response frame (without its size). Returns false when the connection
 * was closed. */
static bool handle_frame(sl_client *c, struct slc_broker *b, const uint8_t *p, size_t len,
                         int64_t now_ms)
{
    complete_unanswered(c, b, now_ms);
    if (b->ring_count == 0 || !b->ring[b->ring_head].expects_response) {
        slc_broker_close(c, b, SL_ERR_BAD_RESPONSE, "response to no request", now_ms);
        return false;
    }
    const struct slc_req *head = &b->ring[b->ring_head];
    bool flexible = kmsg_response_header_version(head->api_key, head->version) == 1;
    int32_t correlation_id;
    size_t consumed;
    const char *why = NULL;
    if (kmsg_response_header_decode(p, len, flexible, &correlation_id, &consumed, &why) != 0) {
        char text[160];
        snprintf(text, sizeof(text), "bad response header: %s", why != NULL ? why : "?");
        slc_broker_close(c, b, SL_ERR_BAD_RESPONSE, text, now_ms);
        return false;
    }
    if (correlation_id != head->correlation_id) {
        /* Kafka answers in order: a response was lost on the way, and the
         * requests after it can no longer be matched safely. */
        char text[160];
        snprintf(text, sizeof(text), "response %d where %d was due: a response was lost",
                 correlation_id, head->correlation_id);
        slc_broker_close(c, b, SL_ERR_BAD_RESPONSE, text, now_ms);
        return false;
    }
    struct slc_req req = ring_pop(c, b);
    union slc_response resp;
    int rc = decode_body(c, &req, p + consumed, len - consumed, &resp, &why);
    if (rc != 0) {
        char text[200];
        snprintf(text, sizeof(text), "%s v%d response not decodable: %s",
                 kmsg_api_find(req.api_key)->name, req.version, why != NULL ? why : "?");
        uint32_t generation = b->generation;
        complete(c, b, &req, NULL, SL_ERR_BAD_RESPONSE, now_ms);
        if (b->generation == generation) {
            slc_broker_close(c, b, SL_ERR_BAD_RESPONSE, text, now_ms);
        }
        return false;
    }
    uint32_t generation = b->generation;
    complete(c, b, &req, &resp, SL_OK, now_ms);
    /* An owner may have closed the connection (ApiVersions refused). */
    return b->generation == generation;
}

/* Handles every whole frame in the input buffer; false when closed. */
static bool parse_frames(sl_client *c, struct slc_broker *b, int64_t now_ms)
{
    size_t off = 0;
    bool open = true;
    while (open && b->in.len - off >= 4) {
        uint32_t size = be32_get(b->in.data + off);
        if (size > (uint32_t)c->conf->receive_message_max_bytes) {
            char why[128];
            snprintf(why, sizeof(why), "response of %u bytes is above receive.message.max.bytes",
                     size);
            slc_broker_close(c, b, SL_ERR_BAD_RESPONSE, why, now_ms);
            return false;
        }
        if (b->in.len - off - 4 < size) {
            break;
        }
        open = handle_frame(c, b, b->in.data + off + 4, size, now_ms);
        off += 4 + (size_t)size;
    }
    if (!open) {
        return false;
    }
    memmove(b->in.data, b->in.data + off, b->in.len - off);
    b->in.len -= off;
    return true;
}

static void read_ready(sl_client *c, struct slc_broker *b, int64_t now_ms)
{
    size_t total = 0;
    while (b->fd >= 0 && total < SLC_READ_BYTES_PER_EVENT) {
        if (buf_reserve(&b->in, READ_CHUNK_BYTES) != 0) {
            slc_broker_close(c, b, SL_ERR_NOMEM, "out of memory for input", now_ms);
            return;
        }
        ssize_t n = recv(b->fd, b->in.data + b->in.len, b->in.cap - b->in.len, 0);
        if (n == 0) {
            slc_broker_close(c, b, SL_ERR_TRANSPORT, "connection closed by broker", now_ms);
            return;
        }
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                char why[128];
                snprintf(why, sizeof(why), "recv: %s", strerror(errno));
                slc_broker_close(c, b, SL_ERR_TRANSPORT, why, now_ms);
            }
            return;
        }
        b->in.len += (size_t)n;
        total += (size_t)n;
        if (!parse_frames(c, b, now_ms)) {
            return;
        }
    }
}

static void connected(sl_client *c, struct slc_broker *b, int64_t now_ms)
{
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    if (getsockopt(b->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0) {
        soerr = errno;
    }
    if (soerr != 0) {
        char why[128];
        snprintf(why, sizeof(why), "connect: %s", strerror(soerr));
        connect_failed(c, b, SL_ERR_TRANSPORT, why, now_ms);
        return;
    }
    b->state = SLC_CONN_HANDSHAKE;
    struct kmsg_api_versions_request rq;
    kmsg_init(&kmsg_api_versions_request_desc, &rq);
    rq.client_software_name = kstr_of("sluice");
    rq.client_software_version = kstr_of(SL_VERSION_STR);
    struct slc_req req = {.kind = SLC_REQ_API_VERSIONS,
                          .api_key = KMSG_API_API_VERSIONS,
                          .version = b->api_versions_version,
                          .expects_response = true};
    if (slc_broker_send(c, b, &req, &rq, now_ms) != 0) {
        slc_broker_close(c, b, SL_ERR_NOMEM, "ApiVersions not encodable", now_ms);
        return;
    }
    update_events(c, b);
}

void slc_broker_event(sl_client *c, struct slc_broker *b, uint32_t events, int64_t now_ms)
{
    if (b->state == SLC_CONN_CONNECTING) {
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
            connected(c, b, now_ms);
        }
        return;
    }
    if (b->fd >= 0 && (events & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
        read_ready(c, b, now_ms);
    }
    if (b->fd >= 0 && (events & EPOLLOUT)) {
        flush_out(c, b, now_ms);
    }
}

/* ================================================================ timers */

void slc_brokers_check_timeouts(sl_client *c, int64_t now_ms, int64_t *next_ms)
{
    for (uint32_t i = 0; i < c->broker_count; i++) {
        struct slc_broker *b = c->brokers[i];
        if (b->state == SLC_CONN_CONNECTING || b->state == SLC_CONN_HANDSHAKE) {
            int64_t deadline = b->state_since_ms + c->conf->connect_timeout_ms;
            if (now_ms >= deadline) {
                if (b->state == SLC_CONN_CONNECTING) {
                    connect_failed(c, b, SL_ERR_TRANSPORT, "connect: timed out", now_ms);
                } else {
                    /* Not a Kafka broker, or a hung one: give up on it like a
                     * failed connect. */
                    slc_broker_close(c, b, SL_ERR_TRANSPORT, "ApiVersions: no answer", now_ms);
                }
                continue;
            }
            *next_ms = SL_MIN(*next_ms, deadline);
        }
        if (b->state == SLC_CONN_UP && b->ring_count > 0) {
            const struct slc_req *head = &b->ring[b->ring_head];
            int32_t timeout_ms =
                head->timeout_ms > 0 ? head->timeout_ms : c->conf->request_timeout_ms;
            int64_t deadline = head->sent_ms + timeout_ms;
            if (now_ms >= deadline) {
                char why[128];
                snprintf(why, sizeof(why), "%s request timed out after %d ms",
                         kmsg_api_find(head->api_key)->name, timeout_ms);
                slc_broker_close(c, b, SL_ERR_TRANSPORT, why, now_ms);
                continue;
            }
            *next_ms = SL_MIN(*next_ms, deadline);
        }
    }
}

struct slc_broker *slc_control_broker(sl_client *c, int64_t now_ms, int64_t *next_ms)
{
    struct slc_broker *best = NULL;
    bool pending = false;
    for (uint32_t i = 0; i < c->broker_count; i++) {
        struct slc_broker *b = c->brokers[i];
        if (slc_broker_can_send(c, b, SLC_REQ_METADATA)) {
            if (best == NULL || b->ring_count < best->ring_count) {
                best = b;
            }
        }
        pending = pending || b->state == SLC_CONN_CONNECTING || b->state == SLC_CONN_HANDSHAKE ||
                  b->state == SLC_CONN_UP;
    }
    if (best != NULL || pending) {
        return best;
    }
    /* None usable: start on the next one past its backoff, in turn, so that a
     * dead bootstrap entry does not hide a live one. */
    for (uint32_t k = 0; k < c->broker_count; k++) {
        struct slc_broker *b = c->brokers[(c->connect_rr + k) % c->broker_count];
        if (b->state == SLC_CONN_DOWN && now_ms >= b->reconnect_at_ms) {
            c->connect_rr = (c->connect_rr + k + 1) % c->broker_count;
            slc_broker_connect(c, b, now_ms, next_ms);
            return NULL;
        }
        *next_ms = SL_MIN(*next_ms, b->reconnect_at_ms);
    }
    return NULL;
}
