/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The broker's network layer: a non-blocking listener, connections that read
 * Kafka frames, decode their request headers, hand requests to the dispatcher
 * and write the responses back in request order.
 *
 * Wire layout, per frame, both directions:
 *   offset 0  int32 big-endian  size of what follows (not counting itself)
 *   offset 4  request header (v1, or v2 for flexible versions) and body, or
 *             response header (v0, or v1 for flexible versions; always v0
 *             for ApiVersions) and body
 *
 * A connection's life:
 *   open      fd >= 0. Bytes are read into `in` (CONN_READ_BYTES, taken only
 *             while unparsed bytes are held: an idle connection holds none,
 *             so 10,000 of them cost a few MB); a frame's
 *             size is checked against request_max_bytes before anything is
 *             allocated, then the frame gets a buffer of exactly its size.
 *             While a frame is being filled, `in` is empty and reads go
 *             straight into the frame. A complete frame becomes a request,
 *             appended to the queue and dispatched.
 *   closed    fd == -1, watchers stopped. Responses already made are dropped;
 *             requests still in a handler keep the conn struct alive
 *             (in_flight counts them) so that their server_respond is safe.
 *             The struct is freed when the last is answered.
 *
 * The queue holds every request of an open connection from dispatch until its
 * response is written, in request order: first the framed ones (response
 * header built, bytes being written), then, from `unframed` on, the ones
 * whose response is not framed yet (in a handler, or done behind one that is
 * not). Only a done request at `unframed` gets framed, which is what keeps
 * responses in request order whatever order handlers finish in.
 *
 * Bounds: connections per server (max_connections, counting closed ones a
 * handler still holds, so that memory stays bounded), frame size
 * (request_max_bytes), requests per connection (in_flight_max: the queue's
 * length), response bytes queued per connection (response_queue_max_bytes).
 * At the last two the connection stops reading until the queue drains:
 * backpressure, not refusal.
 *
 * Re-entrance: a handler may call server_respond from inside dispatch, and a
 * response written may let reading resume. `processing` keeps the frame loop
 * from nesting (the outer loop goes on), and `holds` keeps a conn alive while
 * a function of this file runs on it; a conn is freed only when it is closed,
 * owes nothing and is held by nobody.
 */
#include "broker/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/assert.h"
#include "common/bytes.h"
#include "common/log.h"

/* The largest response body a handler may build. A Fetch response is bounded
 * by the client's fetch.max.bytes (50 MiB by default in Kafka); beyond this the
 * handler's buf_put fails with -ENOBUFS and the handler must answer with less. */
#ifndef RESPONSE_MAX_BYTES
#define RESPONSE_MAX_BYTES (64u << 20)
#endif
/* The frame's size is an int32: the body plus its header must fit. */
_Static_assert(RESPONSE_MAX_BYTES <= INT32_MAX - 64, "response size must fit a frame's int32");

/* Bytes read per read(2) when no frame is being filled: many small pipelined
 * requests per system call, and a fixed part of the connection's memory. */
#ifndef CONN_READ_BYTES
#define CONN_READ_BYTES (16u << 10)
#endif
_Static_assert(CONN_READ_BYTES >= 4, "the size prefix must fit the read buffer");
/* Read buffers kept for reuse when connections go idle: enough for the busy
 * ones of a loop iteration, not a pool that grows with idle connections. */
#define SPARE_READ_BUFFERS 64

/* Reads per readability event: one busy connection must not starve the others. */
#define CONN_READS_PER_EVENT 16
/* Accepts per readability event of the listener, for the same reason. */
#define SERVER_ACCEPTS_PER_EVENT 64
/* iovecs per sendmsg: two per response (header, body). */
#define CONN_WRITE_IOVS 64
/* A response frame's head: the int32 size, the correlation id and, in header
 * v1, the empty tagged-field section (one byte). Room to spare. */
#define RESPONSE_HEAD_MAX 16
/* The smallest request header: api key, api version, correlation id. */
#define REQUEST_FRAME_MIN 8
/* "[" + IPv6 literal + "]:" + port + NUL. */
#define PEER_MAX (INET6_ADDRSTRLEN + 8)
/* How long to stop accepting when out of file descriptors or memory: accept
 * would fail again at once and the level-triggered listener would spin. */
#define ACCEPT_PAUSE_SECONDS 0.1

/* A request as the server holds it; req comes first so a request pointer
 * leads back to its slot. */
struct slot {
    struct request req;
    uint8_t head[RESPONSE_HEAD_MAX]; /* size + response header, once framed */
    size_t head_len;
    size_t written; /* bytes of head and body already sent */
    bool framed;
};

struct conn {
    struct server *server;
    struct conn *prev, *next; /* the server's list */
    int fd;                   /* -1 once closed */
    ev_io read_watcher;
    ev_io write_watcher;
    char peer[PEER_MAX];
    /* Unparsed bytes are in[in_start, in_end). */
    size_t in_start, in_end;
    /* The frame being filled, when frame != NULL: frame_filled of frame_len. */
    uint8_t *frame;
    size_t frame_len, frame_filled;
    struct slot *head, *tail; /* the queue, in request order */
    struct slot *unframed;    /* first in the queue whose response is not framed */
    /* Open: requests in the queue. Closed: requests still in a handler. */
    unsigned in_flight;
    size_t out_bytes;   /* framed bytes not yet written */
    unsigned holds;     /* functions of this file running on the conn */
    bool closing;       /* server_close_after: read no more, close once drained */
    bool processing;    /* the frame loop is on the stack */
    struct buf scratch; /* response header encoding, allocated once */
    uint8_t *in;        /* CONN_READ_BYTES, or NULL while nothing is unparsed */
};

struct server {
    struct ev_loop *loop;
    struct server_config config; /* host is not kept: NULL */
    server_dispatch_fn *dispatch;
    void *opaque;
    int listen_fd; /* -1 once stopped */
    uint16_t port;
    ev_io accept_watcher;
    ev_timer accept_pause;
    struct conn *conns;       /* open and closed-but-owing connections */
    unsigned conn_total;      /* length of conns */
    unsigned conn_open_count; /* of which open */
    bool stopping;
    /* Read buffers given back by connections, kept for the next reads. */
    uint8_t *spare_in[SPARE_READ_BUFFERS];
    unsigned spare_count;
};

/* A read buffer for a connection about to read; NULL when out of memory. */
static uint8_t *in_take(struct server *server)
{
    return server->spare_count > 0 ? server->spare_in[--server->spare_count]
                                   : malloc(CONN_READ_BYTES);
}

static void in_give(struct server *server, uint8_t *in)
{
    if (in == NULL) {
        return;
    }
    if (server->spare_count < SPARE_READ_BUFFERS) {
        server->spare_in[server->spare_count++] = in;
    } else {
        free(in);
    }
}

static void conn_progress(struct conn *conn);

/* ------------------------------------------------------------ requests */

static void slot_free(struct slot *slot)
{
    free(slot->req.frame);
    buf_deinit(&slot->req.response);
    free(slot);
}

/* Bytes of the response frame: nothing for a request that gets no response. */
static size_t slot_total(const struct slot *slot)
{
    SL_ASSERT(slot->framed); /* the head is built at framing */
    return slot->req.no_response ? 0 : slot->head_len + slot->req.response.len;
}

/* ------------------------------------------------------------ connection life */

static void conn_maybe_free(struct conn *conn)
{
    if (conn->fd >= 0 || conn->in_flight > 0 || conn->holds > 0) {
        return;
    }
    SL_ASSERT(conn->head == NULL); /* the queue is dropped at close */
    struct server *server = conn->server;
    if (conn->prev != NULL) {
        conn->prev->next = conn->next;
    } else {
        server->conns = conn->next;
    }
    if (conn->next != NULL) {
        conn->next->prev = conn->prev;
    }
    SL_ASSERT(server->conn_total > 0); /* conn was counted when linked */
    server->conn_total--;
    buf_deinit(&conn->scratch);
    in_give(server, conn->in);
    free(conn);
}

static void conn_hold(struct conn *conn)
{
    conn->holds++;
}

static void conn_release(struct conn *conn)
{
    SL_ASSERT(conn->holds > 0); /* paired with conn_hold */
    conn->holds--;
    conn_maybe_free(conn);
}

/*
 * Closes the socket and drops what the peer can no longer receive: the frame
 * being read and every answered request. Requests in a handler stay counted
 * in in_flight; the queue itself is forgotten (server_respond does not need
 * it once the connection is closed). May free conn unless it is held.
 */
static void conn_close(struct conn *conn, const char *reason)
{
    if (conn->fd < 0) {
        return;
    }
    struct server *server = conn->server;
    LOG_DEBUG("server", "connection closed peer=%s reason=%s in_flight=%u", conn->peer, reason,
              conn->in_flight);
    ev_io_stop(server->loop, &conn->read_watcher);
    ev_io_stop(server->loop, &conn->write_watcher);
    close(conn->fd);
    conn->fd = -1;
    free(conn->frame);
    conn->frame = NULL;
    unsigned owed = 0;
    struct slot *next;
    for (struct slot *slot = conn->head; slot != NULL; slot = next) {
        next = (struct slot *)slot->req.next;
        if (slot->req.done) {
            slot_free(slot);
        } else {
            owed++;
        }
    }
    SL_ASSERT(owed <= conn->in_flight); /* the queue held in_flight requests */
    conn->head = conn->tail = conn->unframed = NULL;
    conn->in_flight = owed;
    conn->out_bytes = 0;
    SL_ASSERT(server->conn_open_count > 0); /* conn was open */
    server->conn_open_count--;
    conn_maybe_free(conn);
}

/* ------------------------------------------------------------ reading */

static bool conn_want_read(const struct conn *conn)
{
    const struct server *server = conn->server;
    return conn->fd >= 0 && !server->stopping && !conn->closing &&
           conn->in_flight < server->config.in_flight_max &&
           conn->out_bytes < server->config.response_queue_max_bytes;
}

static void conn_update_read(struct conn *conn)
{
    if (conn->fd < 0) {
        return;
    }
    /* Starting an active watcher or stopping an inactive one is a no-op in libev. */
    if (conn_want_read(conn)) {
        ev_io_start(conn->server->loop, &conn->read_watcher);
    } else {
        ev_io_stop(conn->server->loop, &conn->read_watcher);
    }
}

/* Turns the complete frame into a request and dispatches it. Returns 1, or a
 * negative errno when the connection was closed (bad header, no memory, or
 * by whatever the handler's response led to). */
static int conn_dispatch_frame(struct conn *conn)
{
    struct server *server = conn->server;
    SL_ASSERT(conn->frame != NULL && conn->frame_filled == conn->frame_len); /* caller's check */
    struct slot *slot = calloc(1, sizeof(*slot));
    if (slot == NULL) {
        LOG_WARN("server", "no memory for a request, closing peer=%s", conn->peer);
        conn_close(conn, "out of memory");
        return -ENOMEM;
    }
    struct request *req = &slot->req;
    req->frame = conn->frame;
    req->frame_len = conn->frame_len;
    conn->frame = NULL;
    buf_init(&req->response, RESPONSE_MAX_BYTES);
    size_t consumed = 0;
    const char *why = "unknown";
    int rc = kmsg_request_header_decode(req->frame, req->frame_len, &req->header, &consumed, &why);
    if (rc < 0) {
        LOG_WARN("server", "bad request header, closing peer=%s size=%zu why=%s", conn->peer,
                 req->frame_len, why);
        slot_free(slot);
        conn_close(conn, "bad request header");
        return rc;
    }
    SL_ASSERT(consumed <= req->frame_len); /* the decoder stays inside the frame */
    req->body = req->frame + consumed;
    req->body_len = req->frame_len - consumed;
    req->conn = conn;
    if (conn->tail != NULL) {
        conn->tail->req.next = req;
    } else {
        conn->head = slot;
    }
    conn->tail = slot;
    if (conn->unframed == NULL) {
        conn->unframed = slot;
    }
    conn->in_flight++;
    server->dispatch(server->opaque, req);
    return conn->fd >= 0 ? 1 : -ECONNRESET;
}

/*
 * Takes the next frame out of the bytes read. Returns 1 when a request was
 * dispatched, 0 when more bytes are needed, a negative errno when the
 * connection was closed.
 */
static int conn_next_frame(struct conn *conn)
{
    const struct server_config *config = &conn->server->config;
    size_t avail = conn->in_end - conn->in_start;
    if (conn->frame == NULL) {
        if (avail < 4) {
            return 0;
        }
        int32_t size = (int32_t)be32_get(conn->in + conn->in_start);
        if (size < REQUEST_FRAME_MIN || (uint32_t)size > config->request_max_bytes) {
            LOG_WARN("server", "bad frame size, closing peer=%s size=%" PRId32 " limit=%" PRIu32,
                     conn->peer, size, config->request_max_bytes);
            conn_close(conn, "bad frame size");
            return -EMSGSIZE;
        }
        conn->in_start += 4;
        avail -= 4;
        /* Bounded by request_max_bytes, checked above; the malloc is what
         * socket.request.max.bytes exists to limit. */
        conn->frame = malloc((size_t)size);
        if (conn->frame == NULL) {
            LOG_WARN("server", "no memory for a frame, closing peer=%s size=%" PRId32, conn->peer,
                     size);
            conn_close(conn, "out of memory");
            return -ENOMEM;
        }
        conn->frame_len = (size_t)size;
        conn->frame_filled = 0;
    }
    size_t take = SL_MIN(avail, conn->frame_len - conn->frame_filled);
    if (take > 0) { /* in is NULL while nothing is unparsed */
        memcpy(conn->frame + conn->frame_filled, conn->in + conn->in_start, take);
    }
    conn->frame_filled += take;
    conn->in_start += take;
    if (conn->frame_filled < conn->frame_len) {
        SL_ASSERT(conn->in_start == conn->in_end); /* everything read went into the frame */
        return 0;
    }
    return conn_dispatch_frame(conn);
}

/* Dispatches the complete frames read, as long as the bounds allow. */
static void conn_process(struct conn *conn)
{
    if (conn->processing) {
        /* Called back from a handler inside the loop below: it goes on. */
        return;
    }
    conn->processing = true;
    while (conn_want_read(conn)) {
        if (conn_next_frame(conn) <= 0) {
            break;
        }
    }
    conn->processing = false;
    if (conn->in_start == conn->in_end) {
        conn->in_start = conn->in_end = 0;
        in_give(conn->server, conn->in); /* idle: the buffer goes back */
        conn->in = NULL;
    }
}

/* One read(2). Returns 1 when bytes came, 0 when none are there, a negative
 * errno when the connection was closed. */
static int conn_read_once(struct conn *conn)
{
    uint8_t *dst;
    size_t room;
    if (conn->frame != NULL) {
        /* `in` is empty while a frame is filled: read straight into it. */
        SL_ASSERT(conn->in_start == conn->in_end);
        dst = conn->frame + conn->frame_filled;
        room = conn->frame_len - conn->frame_filled;
    } else {
        if (conn->in == NULL) {
            conn->in = in_take(conn->server);
            if (conn->in == NULL) {
                LOG_WARN("server", "no memory for a read buffer, closing peer=%s", conn->peer);
                conn_close(conn, "out of memory");
                return -ENOMEM;
            }
        }
        size_t avail = conn->in_end - conn->in_start;
        memmove(conn->in, conn->in + conn->in_start, avail);
        conn->in_start = 0;
        conn->in_end = avail;
        dst = conn->in + conn->in_end;
        room = CONN_READ_BYTES - conn->in_end;
    }
    /* conn_process consumed every complete frame (reading is allowed) and
     * moved a partial one into its own buffer: fewer than 4 bytes remain. */
    SL_ASSERT(room > 0);
    ssize_t n = read(conn->fd, dst, room);
    if (n == 0) {
        conn_close(conn, "peer closed");
        return -ECONNRESET;
    }
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            return errno == EINTR ? 1 : 0;
        }
        int rc = -errno;
        LOG_DEBUG("server", "read failed peer=%s err=%s", conn->peer, strerror(-rc));
        conn_close(conn, "read failed");
        return rc;
    }
    if (conn->frame != NULL) {
        conn->frame_filled += (size_t)n;
    } else {
        conn->in_end += (size_t)n;
    }
    return 1;
}

static void conn_read_cb(struct ev_loop *loop, ev_io *watcher, int revents)
{
    (void)loop;
    (void)revents;
    struct conn *conn = watcher->data;
    conn_hold(conn);
    for (int i = 0; i < CONN_READS_PER_EVENT && conn_want_read(conn); i++) {
        if (conn_read_once(conn) <= 0) {
            break;
        }
        conn_process(conn);
    }
    conn_update_read(conn);
    conn_release(conn);
}

/* ------------------------------------------------------------ writing */

/* Builds the frame head of every answered request at `unframed`, in order. */
static void conn_frame_ready(struct conn *conn)
{
    while (conn->unframed != NULL && conn->unframed->req.done) {
        struct slot *slot = conn->unframed;
        struct request *req = &slot->req;
        /* The handler is done with the request: its bytes can go now. */
        free(req->frame);
        req->frame = NULL;
        req->body = NULL;
        req->body_len = 0;
        if (!req->no_response) {
            int16_t version = kmsg_response_header_version(req->header.request_api_key,
                                                           req->header.request_api_version);
            buf_reset(&conn->scratch);
            int rc = kmsg_response_header_encode(&conn->scratch, req->header.correlation_id,
                                                 version == 1);
            /* scratch was reserved at accept with room for any header: no allocation. */
            SL_ASSERT(rc == 0 && conn->scratch.len + 4 <= sizeof(slot->head));
            size_t size = conn->scratch.len + req->response.len;
            SL_ASSERT(size <= INT32_MAX); /* RESPONSE_MAX_BYTES is checked at compile time */
            be32_put(slot->head, (uint32_t)size);
            memcpy(slot->head + 4, conn->scratch.data, conn->scratch.len);
            slot->head_len = 4 + conn->scratch.len;
        }
        slot->framed = true;
        conn->out_bytes += slot_total(slot);
        conn->unframed = (struct slot *)req->next;
    }
}

/* Frees the requests at the head whose response is fully written. */
static void conn_pop_written(struct conn *conn)
{
    while (conn->head != NULL && conn->head->framed &&
           conn->head->written == slot_total(conn->head)) {
        struct slot *slot = conn->head;
        conn->head = (struct slot *)slot->req.next;
        if (conn->head == NULL) {
            conn->tail = NULL;
        }
        SL_ASSERT(conn->in_flight > 0); /* every queued request is counted */
        conn->in_flight--;
        slot_free(slot);
    }
}

/* Gathers the unwritten bytes of the framed responses; returns the count. */
static int conn_gather(const struct conn *conn, struct iovec *iov, int iov_max)
{
    int n = 0;
    for (struct slot *slot = conn->head; slot != NULL && slot->framed && n + 2 <= iov_max;
         slot = (struct slot *)slot->req.next) {
        if (slot->req.no_response) {
            continue;
        }
        size_t written = slot->written;
        if (written < slot->head_len) {
            iov[n].iov_base = slot->head + written;
            iov[n].iov_len = slot->head_len - written;
            n++;
            written = slot->head_len;
        }
        size_t body_done = written - slot->head_len;
        if (body_done < slot->req.response.len) {
            iov[n].iov_base = slot->req.response.data + body_done;
            iov[n].iov_len = slot->req.response.len - body_done;
            n++;
        }
    }
    return n;
}

/* Accounts for `sent` bytes, front to back. */
static void conn_consume(struct conn *conn, size_t sent)
{
    SL_ASSERT(sent <= conn->out_bytes); /* the kernel took at most what we gave */
    conn->out_bytes -= sent;
    for (struct slot *slot = conn->head; slot != NULL && sent > 0;
         slot = (struct slot *)slot->req.next) {
        SL_ASSERT(slot->framed); /* only framed bytes were handed out */
        size_t take = SL_MIN(sent, slot_total(slot) - slot->written);
        slot->written += take;
        sent -= take;
    }
}

/* Writes what the socket takes. Returns 0, or a negative errno when the
 * connection was closed. */
static int conn_write(struct conn *conn)
{
    struct server *server = conn->server;
    for (;;) {
        conn_pop_written(conn);
        struct iovec iov[CONN_WRITE_IOVS];
        int n = conn_gather(conn, iov, CONN_WRITE_IOVS);
        if (n == 0) {
            break;
        }
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        /* MSG_NOSIGNAL: a peer gone must be an error to handle, not a SIGPIPE. */
        ssize_t sent = sendmsg(conn->fd, &msg, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                ev_io_start(server->loop, &conn->write_watcher);
                return 0;
            }
            int rc = -errno;
            LOG_DEBUG("server", "write failed peer=%s err=%s", conn->peer, strerror(-rc));
            conn_close(conn, "write failed");
            return rc;
        }
        conn_consume(conn, (size_t)sent);
    }
    SL_ASSERT(conn->out_bytes == 0); /* everything framed was written */
    ev_io_stop(server->loop, &conn->write_watcher);
    return 0;
}

/*
 * After a response or a writable socket: frame what is ready, write, close if
 * the server is stopping and nothing is left, else read on if the bounds now
 * allow it. The caller holds conn.
 */
static void conn_progress(struct conn *conn)
{
    if (conn->fd < 0) {
        return;
    }
    conn_frame_ready(conn);
    if (conn_write(conn) < 0) {
        return;
    }
    if (conn->server->stopping && conn->head == NULL) {
        conn_close(conn, "server stopping");
        return;
    }
    if (conn->closing && conn->head == NULL) {
        conn_close(conn, "request refused by closing, as Kafka does");
        return;
    }
    /* Frames read while the bounds held reading back are already in `in`:
     * no readability event will come for them. */
    conn_process(conn);
    conn_update_read(conn);
}

static void conn_write_cb(struct ev_loop *loop, ev_io *watcher, int revents)
{
    (void)loop;
    (void)revents;
    struct conn *conn = watcher->data;
    conn_hold(conn);
    conn_progress(conn);
    conn_release(conn);
}

void server_respond(struct request *req)
{
    struct slot *slot = SL_CONTAINER_OF(req, struct slot, req);
    struct conn *conn = req->conn;
    SL_ASSERT(!req->done); /* exactly one server_respond per request */
    req->done = true;
    if (conn->fd < 0) {
        /* Nobody to answer: the queue was dropped at close, only the count is left. */
        SL_ASSERT(conn->in_flight > 0); /* the closed conn counted this request */
        conn->in_flight--;
        slot_free(slot);
        conn_maybe_free(conn);
        return;
    }
    conn_hold(conn);
    conn_progress(conn);
    conn_release(conn);
}

void server_close_after(struct request *req)
{
    /* Reading stops now; responses already owed still go out, then close. */
    req->conn->closing = true;
    req->no_response = true;
    server_respond(req);
}

/* ------------------------------------------------------------ accepting */

static void format_peer(const struct sockaddr_storage *addr, char *out, size_t out_size)
{
    char ip[INET6_ADDRSTRLEN];
    if (addr->ss_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)(const void *)addr;
        inet_ntop(AF_INET, &in4->sin_addr, ip, sizeof(ip));
        snprintf(out, out_size, "%s:%u", ip, (unsigned)ntohs(in4->sin_port));
    } else if (addr->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)addr;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        snprintf(out, out_size, "[%s]:%u", ip, (unsigned)ntohs(in6->sin6_port));
    } else {
        snprintf(out, out_size, "family-%u", (unsigned)addr->ss_family);
    }
}

/* Takes over fd on success only. */
static int conn_new(struct server *server, int fd, const char *peer)
{
    int rc = -ENOMEM;
    struct conn *conn = calloc(1, sizeof(*conn));
    if (conn == NULL) {
        goto err;
    }
    buf_init(&conn->scratch, RESPONSE_HEAD_MAX);
    rc = buf_reserve(&conn->scratch, RESPONSE_HEAD_MAX);
    if (rc < 0) {
        goto err;
    }
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0) {
        /* Latency, not correctness: serve the connection anyway. */
        LOG_DEBUG("server", "TCP_NODELAY not set peer=%s err=%s", peer, strerror(errno));
    }
    conn->server = server;
    conn->fd = fd;
    snprintf(conn->peer, sizeof(conn->peer), "%s", peer);
    ev_io_init(&conn->read_watcher, conn_read_cb, fd, EV_READ);
    conn->read_watcher.data = conn;
    ev_io_init(&conn->write_watcher, conn_write_cb, fd, EV_WRITE);
    conn->write_watcher.data = conn;
    conn->next = server->conns;
    if (server->conns != NULL) {
        server->conns->prev = conn;
    }
    server->conns = conn;
    server->conn_total++;
    server->conn_open_count++;
    ev_io_start(server->loop, &conn->read_watcher);
    LOG_DEBUG("server", "connection accepted peer=%s connections=%u", conn->peer,
              server->conn_open_count);
    return 0;
err:
    if (conn != NULL) {
        buf_deinit(&conn->scratch);
        free(conn);
    }
    return rc;
}

static void server_accept_cb(struct ev_loop *loop, ev_io *watcher, int revents)
{
    (void)revents;
    struct server *server = watcher->data;
    for (int i = 0; i < SERVER_ACCEPTS_PER_EVENT; i++) {
        struct sockaddr_storage addr;
        socklen_t addr_len = sizeof(addr);
        int fd = accept4(server->listen_fd, (struct sockaddr *)&addr, &addr_len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return;
            }
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) {
                continue; /* that peer is gone, or a signal: the next one may be there */
            }
            LOG_WARN("server", "accept failed, pausing err=%s pause_s=%.1f", strerror(errno),
                     ACCEPT_PAUSE_SECONDS);
            ev_io_stop(loop, &server->accept_watcher);
            ev_timer_set(&server->accept_pause, ACCEPT_PAUSE_SECONDS, 0.);
            ev_timer_start(loop, &server->accept_pause);
            return;
        }
        char peer[PEER_MAX];
        format_peer(&addr, peer, sizeof(peer));
        if (server->conn_total >= server->config.max_connections) {
            LOG_WARN("server", "connection refused peer=%s connections=%u limit=%" PRIu32, peer,
                     server->conn_total, server->config.max_connections);
            close(fd);
            continue;
        }
        int rc = conn_new(server, fd, peer);
        if (rc < 0) {
            LOG_WARN("server", "connection dropped peer=%s err=%s", peer, strerror(-rc));
            close(fd);
        }
    }
}

static void server_accept_pause_cb(struct ev_loop *loop, ev_timer *timer, int revents)
{
    (void)revents;
    struct server *server = timer->data;
    if (!server->stopping) {
        ev_io_start(loop, &server->accept_watcher);
    }
}

/* ------------------------------------------------------------ listening */

/* Fills addr from a literal host: "" or NULL (any), IPv4, IPv6 with or
 * without brackets. Names are refused: resolving one would block the loop. */
static int parse_host(const char *host, uint16_t port, struct sockaddr_storage *addr,
                      socklen_t *addr_len)
{
    memset(addr, 0, sizeof(*addr));
    struct sockaddr_in *in4 = (struct sockaddr_in *)(void *)addr;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)addr;
    if (host == NULL || host[0] == '\0') {
        in6->sin6_family = AF_INET6;
        in6->sin6_addr = in6addr_any;
        in6->sin6_port = htons(port);
        *addr_len = sizeof(*in6);
        return 0;
    }
    char literal[INET6_ADDRSTRLEN];
    size_t len = strlen(host);
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
        host++;
        len -= 2;
    }
    if (len >= sizeof(literal)) {
        return -EINVAL;
    }
    memcpy(literal, host, len);
    literal[len] = '\0';
    if (inet_pton(AF_INET, literal, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(port);
        *addr_len = sizeof(*in4);
        return 0;
    }
    if (inet_pton(AF_INET6, literal, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        *addr_len = sizeof(*in6);
        return 0;
    }
    return -EINVAL;
}

/* Opens, binds and listens; sets listen_fd and port. */
static int server_listen(struct server *server, const char *host, uint16_t port)
{
    struct sockaddr_storage addr;
    socklen_t addr_len;
    int rc = parse_host(host, port, &addr, &addr_len);
    if (rc < 0) {
        return rc;
    }
    bool any = host == NULL || host[0] == '\0';
    int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 && any && errno == EAFNOSUPPORT) {
        /* No IPv6 on this host: "any" falls back to every IPv4 address. */
        struct sockaddr_in *in4 = (struct sockaddr_in *)(void *)&addr;
        memset(&addr, 0, sizeof(addr));
        in4->sin_family = AF_INET;
        in4->sin_addr.s_addr = htonl(INADDR_ANY);
        in4->sin_port = htons(port);
        addr_len = sizeof(*in4);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    }
    if (fd < 0) {
        return -errno;
    }
    int one = 1;
    int zero = 0;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        (addr.ss_family == AF_INET6 && any &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) < 0) ||
        bind(fd, (struct sockaddr *)&addr, addr_len) < 0 || listen(fd, SOMAXCONN) < 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &addr_len) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    server->listen_fd = fd;
    server->port = addr.ss_family == AF_INET
                       ? ntohs(((struct sockaddr_in *)(void *)&addr)->sin_port)
                       : ntohs(((struct sockaddr_in6 *)(void *)&addr)->sin6_port);
    return 0;
}

/* ------------------------------------------------------------ server */

struct server *server_new(struct ev_loop *loop, const struct server_config *config,
                          server_dispatch_fn *dispatch, void *opaque, int *err)
{
    int rc = -EINVAL;
    struct server *server = NULL;
    if (loop == NULL || config == NULL || dispatch == NULL || config->max_connections == 0 ||
        config->request_max_bytes < REQUEST_FRAME_MIN || config->request_max_bytes > INT32_MAX ||
        config->in_flight_max == 0 || config->response_queue_max_bytes == 0) {
        goto err;
    }
    rc = -ENOMEM;
    server = calloc(1, sizeof(*server));
    if (server == NULL) {
        goto err;
    }
    server->loop = loop;
    server->config = *config;
    server->config.host = NULL; /* borrowed for server_listen only */
    server->dispatch = dispatch;
    server->opaque = opaque;
    server->listen_fd = -1;
    rc = server_listen(server, config->host, config->port);
    if (rc < 0) {
        LOG_WARN("server", "cannot listen host=%s port=%u err=%s",
                 config->host != NULL ? config->host : "", (unsigned)config->port, strerror(-rc));
        goto err;
    }
    ev_io_init(&server->accept_watcher, server_accept_cb, server->listen_fd, EV_READ);
    server->accept_watcher.data = server;
    ev_init(&server->accept_pause, server_accept_pause_cb);
    server->accept_pause.data = server;
    ev_io_start(loop, &server->accept_watcher);
    LOG_INFO("server", "listening host=%s port=%u", config->host != NULL ? config->host : "",
             (unsigned)server->port);
    return server;
err:
    free(server);
    if (err != NULL) {
        *err = rc;
    }
    return NULL;
}

static void server_stop_listening(struct server *server)
{
    ev_io_stop(server->loop, &server->accept_watcher);
    ev_timer_stop(server->loop, &server->accept_pause);
    if (server->listen_fd >= 0) {
        close(server->listen_fd);
        server->listen_fd = -1;
    }
}

void server_stop(struct server *server)
{
    if (server->stopping) {
        return;
    }
    server->stopping = true;
    server_stop_listening(server);
    struct conn *next;
    for (struct conn *conn = server->conns; conn != NULL; conn = next) {
        next = conn->next;
        if (conn->fd < 0) {
            continue;
        }
        ev_io_stop(server->loop, &conn->read_watcher);
        if (conn->head == NULL) {
            conn_close(conn, "server stopping");
        }
        /* Others close in conn_progress once their last response is written. */
    }
}

bool server_stopped(const struct server *server)
{
    return server->stopping && server->conns == NULL;
}

void server_free(struct server *server)
{
    if (server == NULL) {
        return;
    }
    server_stop_listening(server);
    struct conn *next;
    for (struct conn *conn = server->conns; conn != NULL; conn = next) {
        next = conn->next;
        for (struct slot *slot = conn->head; slot != NULL; slot = (struct slot *)slot->req.next) {
            SL_ASSERT(slot->req.done); /* a handler still holds a request: caller's bug */
        }
        SL_ASSERT(conn->holds == 0); /* server_free from inside a callback of this conn */
        conn_close(conn, "server freed");
    }
    SL_ASSERT(server->conns == NULL); /* closed conns owing responses would be left */
    while (server->spare_count > 0) {
        free(server->spare_in[--server->spare_count]);
    }
    free(server);
}

uint16_t server_port(const struct server *server)
{
    return server->port;
}

unsigned server_connection_count(const struct server *server)
{
    return server->conn_open_count;
}

/* ------------------------------------------------------------ conn accessors */

const char *conn_peer(const struct conn *conn)
{
    return conn->peer;
}

bool conn_open(const struct conn *conn)
{
    return conn->fd >= 0;
}
