/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Request dispatch: which APIs and versions the broker serves, decoding the
 * body into a per-request arena, refusing what it cannot serve, and encoding
 * the response.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "common/assert.h"
#include "common/log.h"
#include "proto/errors.h"

/* Arrays decode into the arena: its size grows with the body, bounded. */
#define ARENA_BYTES_MIN           (64u << 10)
#define ARENA_BYTES_PER_BODY_BYTE 8u
#define ARENA_BYTES_MAX           (64u << 20)

/*
 * What ApiVersions advertises and what dispatch serves: the same table.
 * Produce and Fetch start at v0 for old clients' feature detection; versions
 * that carry no RecordBatch v2 (Produce < 3, Fetch < 4) answer
 * UNSUPPORTED_VERSION per partition.
 */
static const struct {
    int16_t key;
    int16_t min;
    int16_t max;
    void (*handle)(struct handling *h);
} served[] = {
    {KMSG_API_PRODUCE, 0, 9, handle_produce},
    {KMSG_API_FETCH, 0, 17, handle_fetch},
    {KMSG_API_LIST_OFFSETS, 0, 7, handle_list_offsets},
    {KMSG_API_METADATA, 0, 12, handle_metadata},
    {KMSG_API_OFFSET_COMMIT, 0, 8, handle_offset_commit},
    {KMSG_API_OFFSET_FETCH, 0, 8, handle_offset_fetch},
    {KMSG_API_FIND_COORDINATOR, 0, 4, handle_find_coordinator},
    {KMSG_API_JOIN_GROUP, 0, 9, handle_join_group},
    {KMSG_API_HEARTBEAT, 0, 4, handle_heartbeat},
    {KMSG_API_LEAVE_GROUP, 0, 5, handle_leave_group},
    {KMSG_API_SYNC_GROUP, 0, 5, handle_sync_group},
    {KMSG_API_DESCRIBE_GROUPS, 0, 5, handle_describe_groups},
    {KMSG_API_LIST_GROUPS, 0, 5, handle_list_groups},
    {KMSG_API_DELETE_GROUPS, 0, 2, handle_delete_groups},
    {KMSG_API_INIT_PRODUCER_ID, 0, 5, handle_init_producer_id},
    {KMSG_API_API_VERSIONS, 0, 3, handle_api_versions},
    {KMSG_API_OFFSET_FOR_LEADER_EPOCH, 0, 4, handle_offset_for_leader_epoch},
    {KMSG_API_CREATE_TOPICS, 0, 7, handle_create_topics},
    {KMSG_API_DELETE_TOPICS, 0, 6, handle_delete_topics},
    {KMSG_API_DESCRIBE_CONFIGS, 0, 4, handle_describe_configs},
};

bool broker_api_range(int16_t api_key, int16_t *min, int16_t *max)
{
    for (size_t i = 0; i < sizeof(served) / sizeof(served[0]); i++) {
        if (served[i].key == api_key) {
            *min = served[i].min;
            *max = served[i].max;
            return true;
        }
    }
    return false;
}

void *handling_alloc(struct handling *h, size_t n)
{
    void *p = karena_alloc(&h->arena, n);
    if (p != NULL) {
        memset(p, 0, n);
    }
    return p;
}

struct kstr handling_printf(struct handling *h, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? 0 : ((size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
    char *s = handling_alloc(h, len + 1);
    if (s == NULL) {
        return (struct kstr){NULL, -1};
    }
    memcpy(s, tmp, len);
    s[len] = '\0';
    return (struct kstr){s, (int32_t)len};
}

static void handling_free(struct handling *h)
{
    free(h->arena_mem);
    free(h);
}

void handling_respond(struct handling *h, const void *resp)
{
    struct request *req = h->req;
    int err = kmsg_encode(h->api->response, h->version, resp, &req->response);
    if (err != 0) {
        LOG_ERROR("broker", "response not encodable api=%s version=%d err=%s", h->api->name,
                  h->version, strerror(-err));
        req->response.len = 0;
    }
    handling_free(h);
    server_respond(req);
}

void handling_close(struct handling *h)
{
    struct request *req = h->req;
    handling_free(h);
    req->no_response = true;
    server_close_after(req);
}

/* ApiVersions of an unsupported version: answered in the v0 layout with
 * UNSUPPORTED_VERSION and the ranges, so the client can pick one (KIP-511). */
static void api_versions_unsupported(struct handling *h)
{
    /* Newer clients try their newest version first: worth a line, not a warning. */
    LOG_INFO("broker", "api versions: version %d unsupported, answered in v0 peer=%s", h->version,
             conn_peer(h->req->conn));
    h->version = 0;
    handle_api_versions(h);
}

void broker_dispatch(void *opaque, struct request *req)
{
    struct broker *b = opaque;
    int16_t key = req->header.request_api_key;
    int16_t version = req->header.request_api_version;
    size_t i = 0;
    while (i < sizeof(served) / sizeof(served[0]) && served[i].key != key) {
        i++;
    }
    if (i == sizeof(served) / sizeof(served[0])) {
        /* Kafka closes the connection on an unknown API; an empty response
         * would desynchronise the client. */
        LOG_WARN("broker", "unknown api key=%d version=%d peer=%s: closing", key, version,
                 conn_peer(req->conn));
        req->no_response = true;
        server_close_after(req);
        return;
    }
    struct handling *h = calloc(1, sizeof(*h));
    size_t arena = ARENA_BYTES_MIN + req->body_len * ARENA_BYTES_PER_BODY_BYTE;
    arena = arena > ARENA_BYTES_MAX ? ARENA_BYTES_MAX : arena;
    if (h != NULL) {
        h->arena_mem = malloc(arena);
    }
    if (h == NULL || h->arena_mem == NULL) {
        free(h);
        LOG_ERROR("broker", "out of memory for a request: closing peer=%s", conn_peer(req->conn));
        req->no_response = true;
        server_close_after(req);
        return;
    }
    *h = (struct handling){.broker = b,
                           .req = req,
                           .api = kmsg_api_find(key),
                           .version = version,
                           .arena_mem = h->arena_mem};
    karena_init(&h->arena, h->arena_mem, arena);
    if (version < served[i].min || version > served[i].max) {
        if (key == KMSG_API_API_VERSIONS) {
            api_versions_unsupported(h);
            return;
        }
        LOG_WARN("broker", "unsupported version api=%s version=%d peer=%s: closing", h->api->name,
                 version, conn_peer(req->conn));
        handling_free(h);
        req->no_response = true;
        server_close_after(req);
        return;
    }
    const char *why = NULL;
    void *body = handling_alloc(h, h->api->request->size);
    int err = body == NULL ? -ENOBUFS
                           : kmsg_decode(h->api->request, version, req->body, req->body_len, body,
                                         &h->arena, &why);
    if (err != 0) {
        LOG_WARN("broker", "malformed request api=%s version=%d peer=%s why=%s: closing",
                 h->api->name, version, conn_peer(req->conn), why != NULL ? why : strerror(-err));
        handling_free(h);
        req->no_response = true;
        server_close_after(req);
        return;
    }
    req->handler_data = body;
    served[i].handle(h);
}
