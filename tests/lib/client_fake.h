/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The scripted broker of libsluice's unit tests (test_client_producer,
 * test_client_consumer, test_client_admin): one end of a socketpair stands
 * in for a broker's connection, already past ApiVersions, and the test reads
 * requests and writes responses at the other end. Header only and cmocka's
 * asserts: include it after <cmocka.h>, in client tests only (it reaches
 * into client/internal.h).
 */
#ifndef SL_TESTS_CLIENT_FAKE_H
#define SL_TESTS_CLIENT_FAKE_H

#include <errno.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/internal.h"
#include "common/bytes.h"

/* An API version the fake broker's connection has negotiated. */
struct tu_api_version {
    int16_t api;
    int16_t version;
};

/*
 * Makes broker `node` of c an UP connection to a socketpair and returns the
 * test's end. versions: the negotiated versions (count of them); NULL gives
 * every API of the codec at its newest, and the broker's ranges too (what
 * the generic request path, slc_call, negotiates against).
 */
static inline int tu_client_attach(sl_client *c, int32_t node,
                                   const struct tu_api_version *versions, size_t count)
{
    struct slc_broker *b = slc_broker_upsert(c, node, "127.0.0.1", 9, 9);
    assert_non_null(b);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    b->fd = sv[0];
    b->state = SLC_CONN_UP;
    for (int16_t k = 0; versions == NULL && k < SLC_API_KEYS; k++) {
        const struct kmsg_api *api = kmsg_api_find(k);
        b->broker_min[k] = api != NULL ? api->min_version : -1;
        b->broker_max[k] = api != NULL ? api->max_version : -1;
        b->versions[k] = api != NULL ? api->max_version : -1;
    }
    for (size_t i = 0; versions != NULL && i < count; i++) {
        b->versions[versions[i].api] = versions[i].version;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = b};
    assert_int_equal(epoll_ctl(c->epfd, EPOLL_CTL_ADD, b->fd, &ev), 0);
    b->events = EPOLLIN;
    return sv[1];
}

/* Appends one response frame (size, header, body) to out. */
static inline void tu_response_put(struct buf *out, int32_t correlation_id, int16_t api,
                                   int16_t version, const struct kmsg_desc *desc, const void *resp)
{
    size_t start = out->len;
    assert_int_equal(buf_put_be32(out, 0), 0);
    bool flexible = kmsg_response_header_version(api, version) == 1;
    assert_int_equal(kmsg_response_header_encode(out, correlation_id, flexible), 0);
    assert_int_equal(kmsg_encode(desc, version, resp, out), 0);
    be32_put(out->data + start, (uint32_t)(out->len - start - 4));
}

/* Writes all of p to a non-blocking fd, waiting while it is full. */
static inline void tu_write_all(int fd, const void *p, size_t len)
{
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, (const uint8_t *)p + off, len - off);
        if (w < 0 && errno == EAGAIN) {
            struct pollfd pfd = {fd, POLLOUT, 0};
            poll(&pfd, 1, 100);
            continue;
        }
        assert_true(w > 0);
        off += (size_t)w;
    }
}

#endif
