/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of the broker's network layer: a real server on 127.0.0.1, port 0, in
 * the test's own libev loop, and raw client sockets in the same process. The
 * clients are blocking sockets (small writes fit the loopback buffers at
 * once); every read polls the client socket for a millisecond at a time and
 * runs the loop once in between, so the server makes progress while the test
 * waits. Every wait has a deadline, so a bug fails a test instead of hanging.
 *
 * The test dispatcher answers with the request body reversed (or with a body
 * of a chosen size), at once or, in deferred mode, when the test says so: that
 * is how tests complete requests out of order or leave them in a handler.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker/server.h"
#include "common/bytes.h"
#include "common/log.h"

/* A test waits at most this long for anything: a failure, not a hang. */
#define WAIT_MS     2000
#define PENDING_MAX 256

struct fix {
    struct ev_loop *loop;
    struct server *server;
    struct server_config config;
    bool defer;            /* keep requests instead of answering */
    size_t response_bytes; /* > 0: answer with this many bytes, not the reversed body */
    struct request *pending[PENDING_MAX];
    unsigned pending_count;
    unsigned dispatched;
    struct kmsg_request_header last_header;
    char last_client_id[64];
    char last_peer[64];
};

/* ------------------------------------------------------------ helpers */

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void answer(struct fix *f, struct request *req)
{
    if (f->response_bytes > 0) {
        assert_int_equal(buf_reserve(&req->response, f->response_bytes), 0);
        memset(req->response.data, 'r', f->response_bytes);
        req->response.len = f->response_bytes;
    } else {
        for (size_t i = req->body_len; i-- > 0;) {
            assert_int_equal(buf_put_u8(&req->response, req->body[i]), 0);
        }
    }
    server_respond(req);
}

static void dispatch(void *opaque, struct request *req)
{
    struct fix *f = opaque;
    f->dispatched++;
    f->last_header = req->header;
    snprintf(f->last_client_id, sizeof(f->last_client_id), "%.*s",
             req->header.client_id.len < 0 ? 0 : (int)req->header.client_id.len,
             req->header.client_id.ptr != NULL ? req->header.client_id.ptr : "");
    snprintf(f->last_peer, sizeof(f->last_peer), "%s", conn_peer(req->conn));
    if (f->defer) {
        assert_true(f->pending_count < PENDING_MAX);
        f->pending[f->pending_count++] = req;
        return;
    }
    answer(f, req);
}

static void fix_start(struct fix *f)
{
    int err = 0;
    f->server = server_new(f->loop, &f->config, dispatch, f, &err);
    assert_non_null(f->server);
    assert_int_equal(err, 0);
    assert_int_not_equal(server_port(f->server), 0);
}

static struct fix *fix_new(void)
{
    struct fix *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(f->loop);
    f->config = (struct server_config){
        .host = "127.0.0.1",
        .port = 0,
        .max_connections = 16,
        .request_max_bytes = 1 << 20,
        .in_flight_max = 128,
        .response_queue_max_bytes = 1 << 20,
    };
    return f;
}

static int setup(void **state)
{
    struct fix *f = fix_new();
    fix_start(f);
    *state = f;
    return 0;
}

static int setup_unstarted(void **state)
{
    *state = fix_new();
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    /* Requests still deferred would trip server_free's assertion. */
    f->defer = false;
    for (unsigned i = 0; i < f->pending_count; i++) {
        if (f->pending[i] != NULL) {
            answer(f, f->pending[i]);
        }
    }
    server_free(f->server);
    ev_loop_destroy(f->loop);
    free(f);
    return 0;
}

static void pump(struct fix *f)
{
    ev_run(f->loop, EVRUN_NOWAIT);
}

/* Runs the loop for about ms milliseconds. */
static void pump_for(struct fix *f, long ms)
{
    long end = now_ms() + ms;
    while (now_ms() < end) {
        pump(f);
        poll(NULL, 0, 1);
    }
}

/* Runs the loop until *count reaches want; false at the deadline. */
static bool pump_until_count(struct fix *f, const unsigned *count, unsigned want)
{
    long end = now_ms() + WAIT_MS;
    while (*count < want && now_ms() < end) {
        pump(f);
        poll(NULL, 0, 1);
    }
    return *count >= want;
}

static bool pump_until_connections(struct fix *f, unsigned want)
{
    long end = now_ms() + WAIT_MS;
    while (server_connection_count(f->server) != want && now_ms() < end) {
        pump(f);
        poll(NULL, 0, 1);
    }
    return server_connection_count(f->server) == want;
}

static int client_connect_to(const char *host, uint16_t port)
{
    struct sockaddr_storage addr = {0};
    socklen_t len;
    struct sockaddr_in *in4 = (struct sockaddr_in *)(void *)&addr;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)&addr;
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(port);
        len = sizeof(*in4);
    } else {
        assert_int_equal(inet_pton(AF_INET6, host, &in6->sin6_addr), 1);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        len = sizeof(*in6);
    }
    int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    /* Loopback connect completes in the kernel's backlog, before accept. */
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, len), 0);
    return fd;
}

static int client_connect(struct fix *f)
{
    return client_connect_to("127.0.0.1", server_port(f->server));
}

static void client_send(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        assert_true(w > 0);
        b += w;
        n -= (size_t)w;
    }
}

/* Reads exactly n bytes while running the server; returns n, or what came
 * before EOF, a reset or the deadline. */
static size_t client_read(struct fix *f, int fd, void *p, size_t n)
{
    uint8_t *b = p;
    size_t got = 0;
    long end = now_ms() + WAIT_MS;
    while (got < n && now_ms() < end) {
        pump(f);
        ssize_t r = recv(fd, b + got, n - got, MSG_DONTWAIT);
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            break;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        poll(&pfd, 1, 1);
    }
    return got;
}

/* Whether the server closed the connection (EOF or reset) within the deadline. */
static bool client_closed(struct fix *f, int fd)
{
    long end = now_ms() + WAIT_MS;
    while (now_ms() < end) {
        pump(f);
        uint8_t byte;
        ssize_t r = recv(fd, &byte, 1, MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            return true;
        }
        assert_true(r < 0); /* the server sends nothing before it closes */
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        poll(&pfd, 1, 1);
    }
    return false;
}

/* Appends a whole request frame: size, header (of the version the API
 * calls for), body. */
static void make_request(struct buf *out, int16_t key, int16_t version, int32_t correlation_id,
                         const char *client_id, const void *body, size_t body_len)
{
    size_t start = out->len;
    assert_int_equal(buf_put_be32(out, 0), 0);
    struct kmsg_request_header hdr = {
        .request_api_key = key,
        .request_api_version = version,
        .correlation_id = correlation_id,
        .client_id = {.ptr = client_id, .len = (int32_t)strlen(client_id)},
    };
    assert_int_equal(kmsg_request_header_encode(out, &hdr), 0);
    assert_int_equal(buf_put(out, body, body_len), 0);
    be32_put(out->data + start, (uint32_t)(out->len - start - 4));
}

static void send_request(int fd, int16_t key, int16_t version, int32_t correlation_id,
                         const char *body)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    make_request(&b, key, version, correlation_id, "test-client", body, strlen(body));
    client_send(fd, b.data, b.len);
    buf_deinit(&b);
}

/*
 * Reads one response frame; checks its correlation id and header version
 * (flexible: an empty tagged-field section follows the id) and returns the
 * body length, the body in body (up to body_max bytes).
 */
static size_t read_response(struct fix *f, int fd, int32_t correlation_id, bool flexible,
                            uint8_t *body, size_t body_max)
{
    uint8_t head[5];
    size_t head_len = flexible ? 5 : 4;
    uint8_t size_bytes[4];
    assert_int_equal(client_read(f, fd, size_bytes, 4), 4);
    uint32_t size = be32_get(size_bytes);
    assert_true(size >= head_len);
    assert_int_equal(client_read(f, fd, head, head_len), head_len);
    assert_int_equal((int32_t)be32_get(head), correlation_id);
    if (flexible) {
        assert_int_equal(head[4], 0);
    }
    size_t body_len = size - head_len;
    size_t kept = body_len < body_max ? body_len : body_max;
    assert_int_equal(client_read(f, fd, body, kept), kept);
    /* Drain the rest of a body larger than the caller's buffer. */
    uint8_t scratch[4096];
    for (size_t left = body_len - kept; left > 0;) {
        size_t n = left < sizeof(scratch) ? left : sizeof(scratch);
        assert_int_equal(client_read(f, fd, scratch, n), n);
        left -= n;
    }
    return body_len;
}

static void expect_reversed(struct fix *f, int fd, int32_t correlation_id, bool flexible,
                            const char *sent)
{
    uint8_t body[256];
    size_t len = read_response(f, fd, correlation_id, flexible, body, sizeof(body));
    size_t sent_len = strlen(sent);
    assert_int_equal(len, sent_len);
    for (size_t i = 0; i < len; i++) {
        assert_int_equal(body[i], (uint8_t)sent[sent_len - 1 - i]);
    }
}

/* ------------------------------------------------------------ tests */

static void test_server_round_trip_v0_header(void **state)
{
    struct fix *f = *state;
    int fd = client_connect(f);
    send_request(fd, KMSG_API_METADATA, 1, 7, "hello");
    expect_reversed(f, fd, 7, false, "hello");
    assert_int_equal(f->dispatched, 1);
    assert_int_equal(f->last_header.request_api_key, KMSG_API_METADATA);
    assert_int_equal(f->last_header.request_api_version, 1);
    assert_int_equal(f->last_header.correlation_id, 7);
    assert_string_equal(f->last_client_id, "test-client");
    assert_true(strncmp(f->last_peer, "127.0.0.1:", 10) == 0);
    assert_int_equal(server_connection_count(f->server), 1);
    close(fd);
    assert_true(pump_until_connections(f, 0));
}

static void test_server_flexible_response_header(void **state)
{
    struct fix *f = *state;
    int fd = client_connect(f);
    /* Metadata v9 is flexible: request header v2, response header v1. */
    send_request(fd, KMSG_API_METADATA, 9, 42, "flexible");
    expect_reversed(f, fd, 42, true, "flexible");
    assert_string_equal(f->last_client_id, "test-client");
    close(fd);
}

static void test_server_api_versions_header_always_v0(void **state)
{
    struct fix *f = *state;
    int fd = client_connect(f);
    /* ApiVersions v3 is flexible, but its response header stays v0 (KIP-511). */
    send_request(fd, KMSG_API_API_VERSIONS, 3, 5, "av3");
    expect_reversed(f, fd, 5, false, "av3");
    assert_int_equal(f->last_header.request_api_version, 3);
    close(fd);
}

static void test_server_pipelining_out_of_order(void **state)
{
    struct fix *f = *state;
    f->defer = true;
    int fd = client_connect(f);
    struct buf b;
    buf_init(&b, 1 << 20);
    char body[32];
    for (int i = 0; i < 100; i++) {
        snprintf(body, sizeof(body), "request-%d", i);
        make_request(&b, KMSG_API_METADATA, 1, 1000 + i, "pipe", body, strlen(body));
    }
    client_send(fd, b.data, b.len);
    buf_deinit(&b);
    assert_true(pump_until_count(f, &f->dispatched, 100));
    /* Answer the last first, then odd, then even: nothing may come out
     * before request 0 is answered, and then all in request order. */
    answer(f, f->pending[99]);
    f->pending[99] = NULL;
    for (int i = 1; i < 99; i += 2) {
        answer(f, f->pending[i]);
        f->pending[i] = NULL;
    }
    pump_for(f, 20);
    uint8_t byte;
    assert_int_equal(recv(fd, &byte, 1, MSG_DONTWAIT), -1);
    for (int i = 0; i < 99; i += 2) {
        answer(f, f->pending[i]);
        f->pending[i] = NULL;
    }
    for (int i = 0; i < 100; i++) {
        snprintf(body, sizeof(body), "request-%d", i);
        expect_reversed(f, fd, 1000 + i, false, body);
    }
    close(fd);
}

static void test_server_bad_frame_sizes_close(void **state)
{
    struct fix *f = *state;
    const uint32_t sizes[] = {
        0xffffffffu,                      /* -1 */
        0x7fffffffu,                      /* 2^31 - 1 */
        f->config.request_max_bytes + 1u, /* just over the limit */
        0x80000000u,                      /* INT32_MIN */
        3,                                /* shorter than any request header */
    };
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        int bad = client_connect(f);
        int good = client_connect(f);
        uint8_t prefix[4];
        be32_put(prefix, sizes[i]);
        client_send(bad, prefix, sizeof(prefix));
        assert_true(client_closed(f, bad));
        /* Another client is untouched. */
        send_request(good, KMSG_API_METADATA, 1, (int32_t)i, "still here");
        expect_reversed(f, good, (int32_t)i, false, "still here");
        close(bad);
        close(good);
    }
    assert_int_equal(f->dispatched, sizeof(sizes) / sizeof(sizes[0]));
    assert_true(pump_until_connections(f, 0));
}

static void test_server_frame_at_limit_accepted(void **state)
{
    struct fix *f = *state;
    f->response_bytes = 1;
    int fd = client_connect(f);
    /* Exactly request_max_bytes, larger than the read buffer: read straight into the frame. */
    struct buf b;
    buf_init(&b, 2u << 20);
    size_t header_len = 2 + 2 + 4 + 2 + strlen("big");
    size_t body_len = f->config.request_max_bytes - header_len;
    uint8_t *body = calloc(1, body_len);
    assert_non_null(body);
    make_request(&b, KMSG_API_PRODUCE, 3, 9, "big", body, body_len);
    assert_int_equal(b.len, 4 + f->config.request_max_bytes);
    client_send(fd, b.data, b.len);
    uint8_t out[1];
    assert_int_equal(read_response(f, fd, 9, false, out, sizeof(out)), 1);
    free(body);
    buf_deinit(&b);
    close(fd);
}

static void test_server_split_frames(void **state)
{
    struct fix *f = *state;
    int fd = client_connect(f);
    struct buf b;
    buf_init(&b, 1 << 20);
    make_request(&b, KMSG_API_METADATA, 1, 1, "split", "abc", 3);
    make_request(&b, KMSG_API_METADATA, 1, 2, "split", "defg", 4);
    /* One byte at a time, the loop running between: every partial state. */
    for (size_t i = 0; i < b.len; i++) {
        client_send(fd, b.data + i, 1);
        pump_for(f, 0);
        pump(f);
    }
    buf_deinit(&b);
    expect_reversed(f, fd, 1, false, "abc");
    expect_reversed(f, fd, 2, false, "defg");
    close(fd);
}

static void test_server_truncated_frame_then_eof(void **state)
{
    struct fix *f = *state;
    int fd = client_connect(f);
    uint8_t bytes[14] = {0};
    be32_put(bytes, 100);
    client_send(fd, bytes, sizeof(bytes));
    assert_true(pump_until_connections(f, 1));
    pump_for(f, 5);
    close(fd);
    /* The partial frame is freed with the connection (ASan would see a leak). */
    assert_true(pump_until_connections(f, 0));
    assert_int_equal(f->dispatched, 0);
}

static void test_server_garbage_closes(void **state)
{
    struct fix *f = *state;
    /* An HTTP request: its first four bytes make a size far over the limit. */
    int fd = client_connect(f);
    const char *http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    client_send(fd, http, strlen(http));
    assert_true(client_closed(f, fd));
    close(fd);
    /* A frame whose header is cut: a client id of 500 bytes in 12 bytes. */
    fd = client_connect(f);
    uint8_t frame[16];
    be32_put(frame, 12);
    be16_put(frame + 4, KMSG_API_METADATA);
    be16_put(frame + 6, 1);
    be32_put(frame + 8, 1);
    be16_put(frame + 12, 500);
    be16_put(frame + 14, 0);
    client_send(fd, frame, sizeof(frame));
    assert_true(client_closed(f, fd));
    close(fd);
    assert_int_equal(f->dispatched, 0);
    assert_true(pump_until_connections(f, 0));
}

static void test_server_unknown_api_key_dispatched(void **state)
{
    struct fix *f = *state;
    int fd = client_connect(f);
    /* Unknown to the codec: the header is read as v1 and the dispatcher decides. */
    send_request(fd, 999, 7, 77, "who");
    expect_reversed(f, fd, 77, false, "who");
    assert_int_equal(f->last_header.request_api_key, 999);
    assert_int_equal(f->last_header.request_api_version, 7);
    assert_string_equal(f->last_client_id, "test-client");
    close(fd);
}

static void test_server_max_connections(void **state)
{
    struct fix *f = *state;
    f->config.max_connections = 2;
    fix_start(f);
    int a = client_connect(f);
    int b = client_connect(f);
    assert_true(pump_until_connections(f, 2));
    int c = client_connect(f);
    assert_true(client_closed(f, c));
    close(c);
    assert_int_equal(server_connection_count(f->server), 2);
    send_request(a, KMSG_API_METADATA, 1, 1, "a");
    expect_reversed(f, a, 1, false, "a");
    close(a);
    assert_true(pump_until_connections(f, 1));
    /* A place freed: the next one gets in. */
    int d = client_connect(f);
    send_request(d, KMSG_API_METADATA, 1, 2, "d");
    expect_reversed(f, d, 2, false, "d");
    close(b);
    close(d);
}

static void test_server_in_flight_backpressure(void **state)
{
    struct fix *f = *state;
    f->config.in_flight_max = 4;
    fix_start(f);
    f->defer = true;
    int fd = client_connect(f);
    struct buf b;
    buf_init(&b, 1 << 20);
    for (int i = 0; i < 10; i++) {
        make_request(&b, KMSG_API_METADATA, 1, i, "bp", "x", 1);
    }
    client_send(fd, b.data, b.len);
    buf_deinit(&b);
    assert_true(pump_until_count(f, &f->dispatched, 4));
    pump_for(f, 20);
    /* Held back, not refused: the connection stays open with the rest unread. */
    assert_int_equal(f->dispatched, 4);
    assert_int_equal(server_connection_count(f->server), 1);
    /* Each answered request lets one more in, never more than four at a time. */
    for (unsigned done = 0; done < 10;) {
        for (; done < f->pending_count; done++) {
            answer(f, f->pending[done]);
            f->pending[done] = NULL;
        }
        unsigned want = done + 4 < 10 ? done + 4 : 10;
        assert_true(pump_until_count(f, &f->dispatched, want));
        pump_for(f, 2);
        assert_int_equal(f->dispatched, want);
    }
    for (int i = 0; i < 10; i++) {
        expect_reversed(f, fd, i, false, "x");
    }
    close(fd);
}

static void test_server_response_queue_backpressure(void **state)
{
    struct fix *f = *state;
    f->config.response_queue_max_bytes = 64 << 10;
    fix_start(f);
    f->response_bytes = 1 << 20;
    enum { REQUESTS = 32 };
    int fd = client_connect(f);
    struct buf b;
    buf_init(&b, 1 << 20);
    for (int i = 0; i < REQUESTS; i++) {
        make_request(&b, KMSG_API_FETCH, 4, i, "bq", "y", 1);
    }
    client_send(fd, b.data, b.len);
    buf_deinit(&b);
    /* The client reads nothing: responses fill the socket, then the queue,
     * and the server stops reading requests. */
    pump_for(f, 50);
    assert_true(f->dispatched < REQUESTS);
    size_t body_max = 1 << 20;
    uint8_t *body = malloc(body_max);
    assert_non_null(body);
    for (int i = 0; i < REQUESTS; i++) {
        body[0] = body[body_max - 1] = 0;
        assert_int_equal(read_response(f, fd, i, false, body, body_max), body_max);
        assert_int_equal(body[0], 'r');
        assert_int_equal(body[body_max - 1], 'r');
    }
    free(body);
    assert_int_equal(f->dispatched, REQUESTS);
    close(fd);
}

static void test_server_client_gone_while_pending(void **state)
{
    struct fix *f = *state;
    f->defer = true;
    int fd = client_connect(f);
    send_request(fd, KMSG_API_FETCH, 4, 1, "long poll");
    send_request(fd, KMSG_API_FETCH, 4, 2, "second");
    assert_true(pump_until_count(f, &f->dispatched, 2));
    /* The second is answered while the first is pending: queued, not written. */
    answer(f, f->pending[1]);
    f->pending[1] = NULL;
    close(fd);
    assert_true(pump_until_connections(f, 0));
    struct request *req = f->pending[0];
    f->pending[0] = NULL;
    assert_false(conn_open(req->conn));
    assert_true(strncmp(conn_peer(req->conn), "127.0.0.1:", 10) == 0);
    assert_int_equal(buf_put(&req->response, "late", 4), 0);
    server_respond(req); /* frees the request and, with it, the connection */
    pump(f);
}

static void test_server_stop_drains(void **state)
{
    struct fix *f = *state;
    f->defer = true;
    int idle = client_connect(f);
    int busy = client_connect(f);
    send_request(busy, KMSG_API_METADATA, 1, 3, "drain me");
    assert_true(pump_until_count(f, &f->dispatched, 1));
    assert_int_equal(server_connection_count(f->server), 2);
    server_stop(f->server);
    assert_true(client_closed(f, idle));
    assert_int_equal(server_connection_count(f->server), 1);
    assert_false(server_stopped(f->server));
    /* No new connections once stopped. */
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(server_port(f->server))};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    int late = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(connect(late, (struct sockaddr *)&addr, sizeof(addr)), -1);
    close(late);
    /* The pending request is still answered, then the connection closes. */
    answer(f, f->pending[0]);
    f->pending[0] = NULL;
    expect_reversed(f, busy, 3, false, "drain me");
    assert_true(client_closed(f, busy));
    assert_true(server_stopped(f->server));
    assert_int_equal(server_connection_count(f->server), 0);
    close(idle);
    close(busy);
}

static void test_server_ipv6_literal(void **state)
{
    struct fix *f = *state;
    f->config.host = "::1";
    int err = 0;
    f->server = server_new(f->loop, &f->config, dispatch, f, &err);
    if (f->server == NULL) {
        /* A host without IPv6 loopback: nothing to test here. */
        assert_true(err == -EADDRNOTAVAIL || err == -EAFNOSUPPORT);
        skip();
    }
    int fd = client_connect_to("::1", server_port(f->server));
    send_request(fd, KMSG_API_METADATA, 1, 6, "six");
    expect_reversed(f, fd, 6, false, "six");
    assert_true(strncmp(f->last_peer, "[::1]:", 6) == 0);
    close(fd);
}

static void test_server_bad_config_refused(void **state)
{
    struct fix *f = *state;
    int err = 0;
    f->config.host = "not-an-address";
    assert_null(server_new(f->loop, &f->config, dispatch, f, &err));
    assert_int_equal(err, -EINVAL);
    f->config.host = "127.0.0.1";
    f->config.in_flight_max = 0;
    assert_null(server_new(f->loop, &f->config, dispatch, f, &err));
    assert_int_equal(err, -EINVAL);
}

int main(void)
{
    /* Protocol errors log at WARN by design; keep the test output to failures. */
    slog_set_level(getenv("SLUICE_TEST_DEBUG") != NULL ? SLOG_DEBUG : SLOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_server_round_trip_v0_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_flexible_response_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_api_versions_header_always_v0, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_pipelining_out_of_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_bad_frame_sizes_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_frame_at_limit_accepted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_split_frames, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_truncated_frame_then_eof, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_garbage_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_unknown_api_key_dispatched, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_max_connections, setup_unstarted, teardown),
        cmocka_unit_test_setup_teardown(test_server_in_flight_backpressure, setup_unstarted,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_server_response_queue_backpressure, setup_unstarted,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_server_client_gone_while_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_stop_drains, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_ipv6_literal, setup_unstarted, teardown),
        cmocka_unit_test_setup_teardown(test_server_bad_config_refused, setup_unstarted, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
