/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The network side of the broker: listeners, connections, Kafka framing,
 * pipelining. One server per shard, driven by the shard's libev loop.
 *
 * A connection reads 4-byte size-prefixed frames. Each frame becomes a
 * request (header decoded, body left as bytes) handed to the dispatch
 * callback; requests of one connection may complete in any order, but their
 * responses are written in request order (Kafka's rule). Bounds, all from the
 * config: connections per server, frame size (socket.request.max.bytes),
 * requests in flight per connection, response bytes queued per connection.
 * A frame over the limit, or one whose header does not decode, is logged and
 * the connection closed; other connections are untouched.
 */
#ifndef SL_BROKER_SERVER_H
#define SL_BROKER_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "proto/kmsg.h"

struct ev_loop;
struct server;
struct conn;

struct server_config {
    const char *host;                  /* listen address, "" or NULL = any */
    uint16_t port;                     /* 0 = pick one (tests); server_port() tells which */
    uint32_t max_connections;          /* max.connections */
    uint32_t request_max_bytes;        /* socket.request.max.bytes */
    uint32_t in_flight_max;            /* requests in flight per connection */
    uint32_t response_queue_max_bytes; /* response bytes queued per connection */
};

/*
 * One request in a connection's pipeline. The server owns it; the handler
 * borrows it from dispatch until it calls server_respond (at once or later).
 */
struct request {
    struct conn *conn;
    struct kmsg_request_header header; /* client_id points into frame */
    const uint8_t *body;               /* the request body, inside frame */
    size_t body_len;
    uint8_t *frame; /* the whole frame (without its size) */
    size_t frame_len;
    struct buf response; /* the handler writes the response BODY here */
    bool no_response;    /* acks=0 produce: nothing is sent */
    bool done;
    void *handler_data;   /* for asynchronous handlers */
    struct request *next; /* the connection's queue, in order */
};

/* Called for every decoded request; must lead to exactly one server_respond. */
typedef void server_dispatch_fn(void *opaque, struct request *req);

struct server *server_new(struct ev_loop *loop, const struct server_config *config,
                          server_dispatch_fn *dispatch, void *opaque, int *err);
/* Stops accepting, closes idle connections; connections with requests in
 * flight close once their responses are written. */
void server_stop(struct server *server);
/* True once every connection is closed after server_stop. */
bool server_stopped(const struct server *server);
void server_free(struct server *server);
uint16_t server_port(const struct server *server);
unsigned server_connection_count(const struct server *server);

/*
 * Completes a request: the server frames the response (size, header of the
 * version the API calls for, req->response as the body) and writes it when
 * every earlier request of the connection has been answered. If the
 * connection is gone, the request is just freed. Call exactly once.
 */
void server_respond(struct request *req);

/*
 * Completes a request without a response and closes its connection once every
 * earlier response is written: for requests Kafka answers by closing (an
 * unknown API, a malformed body). Instead of server_respond, exactly once.
 */
void server_close_after(struct request *req);

/* A short description of the peer, for log lines ("127.0.0.1:53422"). */
const char *conn_peer(const struct conn *conn);
/* Whether the connection is still open (an async handler may check first). */
bool conn_open(const struct conn *conn);

#endif
