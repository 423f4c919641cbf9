/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libsluice's private types and the functions its files share (prefix slc_).
 * Not installed, not part of the API: client/sluice.h is.
 *
 * The objects and who owns what:
 *
 *   sl_client ─┬─ brokers[]   one connection each (conn.c): out and in buffers,
 *              │              a ring of requests in flight, in send order
 *              ├─ topics      hash table (metadata.c); each topic owns its
 *              │   └─ parts[] partitions; each partition owns
 *              │        ├─ open          the batch being filled (accum.c)
 *              │        └─ q_head..tail  sealed batches waiting to be sent, in
 *              │                         sealing order (retries go back in order)
 *              ├─ active      the partitions that hold any batch (a list)
 *              └─ done        batches and pending messages whose outcome is
 *                             known, waiting for their callbacks (client.c)
 *
 * A batch is in exactly one place at a time: a partition's open slot, its
 * queue, a request in a broker's ring (in flight), or the done list. A
 * message is in exactly one batch, or, before its topic's partitions are
 * known, in the topic's pending list. Every message accepted by sl_produce
 * ends in the done list, whose callbacks are what decrement msg_count: that
 * is how none vanish.
 *
 * Time: internal deadlines use the monotonic clock in ms (slc_now_ms);
 * record timestamps use wall time. Functions that make decisions by time take
 * now_ms as an argument, so tests can drive them.
 */
#ifndef SL_CLIENT_INTERNAL_H
#define SL_CLIENT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client/sluice.h"
#include "common/buf.h"
#include "proto/batch.h"
#include "proto/kmsg.h"

struct ZSTD_CCtx_s; /* zstd's compression context (proto/compress.h) */

/* ================================================================ limits */

/* Brokers a client knows (bootstrap entries and those metadata names). */
#define SLC_BROKERS_MAX 1024
/* Topics a client produces to; each costs a table entry and a metadata row. */
#define SLC_TOPICS_MAX 65536
/* Partitions a consumer may have assigned at once. */
#define SLC_ASSIGNED_MAX 65536
/* Headers of one fetched record (a record with more fails to decode). */
#define SLC_RECORD_HEADERS_MAX 1024
/* Bytes a compressed batch may decompress to: far above any batch a broker
 * accepts (message.max.bytes), low enough to stop a decompression bomb. */
#define SLC_DECOMPRESSED_BYTES_MAX (256u << 20)
/* A consumer does I/O at least every this many records it hands out from
 * its queue, so the next Fetch is under way before the queue runs dry. */
#define SLC_CONSUME_IO_EVERY 256
/* Partitions of one topic accepted from metadata (Kafka has no hard limit;
 * this one keeps a corrupt count from allocating gigabytes). */
#define SLC_PARTITIONS_MAX 65536
/* Kafka's idempotence: the broker keeps 5 batches per producer and partition,
 * so at most 5 may be in flight per partition (max.in.flight is <= 5). */
#define SLC_INFLIGHT_PER_PARTITION_MAX 5
/* Requests other than Produce a connection may have in flight at once:
 * ApiVersions, Metadata, InitProducerId, and one spare. */
#define SLC_CONTROL_INFLIGHT_MAX 4
/* Errors waiting for the error callback; more are counted and dropped. */
#define SLC_ERRORS_QUEUED_MAX 64
/* One error text: an address and a cause. */
#define SLC_ERROR_TEXT_BYTES 320
/* Topic names: Kafka's limit. */
#define SLC_TOPIC_NAME_BYTES_MAX 249
/* A bootstrap.servers list. */
#define SLC_BOOTSTRAP_BYTES 4096
/* A host name with its NUL (DNS names have at most 253 bytes). */
#define SLC_HOST_BYTES 256
/* How long a topic may be reported absent before its pending messages fail:
 * a topic just created elsewhere takes a moment to reach every broker. */
#define SLC_TOPIC_ABSENT_GRACE_MS 30000
/* Bytes read from a socket per event, so one busy broker cannot starve others. */
#define SLC_READ_BYTES_PER_EVENT (4u << 20)
/* The decode arena: 8 bytes per response byte covers Kafka's densest arrays
 * (4-byte ints decoded into 4-byte slots plus structs); capped. */
#define SLC_ARENA_BYTES_MIN      (64u << 10)
#define SLC_ARENA_BYTES_PER_BYTE 8u
#define SLC_ARENA_BYTES_MAX      (256u << 20)
/* API keys the version table covers (Kafka's are below 100; ours below 64). */
#define SLC_API_KEYS 64

_Static_assert(SLC_INFLIGHT_PER_PARTITION_MAX <= 5, "Kafka's dedup window is 5 batches");
_Static_assert(SLC_API_KEYS > KMSG_API_DELETE_GROUPS, "the version table covers every codec API");

/* ================================================================ conf */

enum slc_compression { SLC_COMPRESSION_NONE, SLC_COMPRESSION_ZSTD };
enum slc_partitioner { SLC_PARTITIONER_MURMUR2, SLC_PARTITIONER_CRC32 };
enum slc_reset { SLC_RESET_EARLIEST, SLC_RESET_LATEST, SLC_RESET_NONE };

/* Keys whose defaults depend on whether the user set them. */
#define SLC_SET_ACKS        0x1u
#define SLC_SET_IDEMPOTENCE 0x2u

struct sl_conf {
    char bootstrap_servers[SLC_BOOTSTRAP_BYTES];
    char client_id[256];
    int acks; /* index into the choices: all, -1, 0, 1 */
    int32_t linger_ms;
    int32_t batch_size;
    int compression_type; /* enum slc_compression */
    int32_t compression_level;
    int partitioner; /* enum slc_partitioner */
    bool enable_idempotence;
    int32_t delivery_timeout_ms;
    int32_t request_timeout_ms;
    int32_t retry_backoff_ms;
    int32_t retry_backoff_max_ms;
    int32_t max_in_flight;
    int32_t queue_max_messages;
    int32_t queue_max_kbytes;
    int32_t metadata_max_age_ms;
    int32_t message_max_bytes;
    int32_t max_request_size;
    int32_t receive_message_max_bytes;
    int32_t connect_timeout_ms;
    /* consumer */
    int auto_offset_reset; /* enum slc_reset */
    int32_t fetch_min_bytes;
    int32_t fetch_max_wait_ms;
    int32_t fetch_max_bytes;
    int32_t max_partition_fetch_bytes;
    int32_t queued_max_kbytes;
    bool enable_partition_eof;
    /* consumer groups */
    char group_id[256];
    char group_instance_id[256];
    int32_t session_timeout_ms;
    int32_t heartbeat_interval_ms;
    int32_t max_poll_interval_ms;
    char assignment_strategy[64];
    bool enable_auto_commit;
    int32_t auto_commit_interval_ms;
    uint32_t set_keys; /* SLC_SET_* */
    void *opaque;
    sl_delivery_cb *delivery_cb;
    sl_error_cb *error_cb;
    sl_rebalance_cb *rebalance_cb;
    sl_commit_cb *commit_cb;
};

/* Kafka's acks value: -1, 0 or 1. */
int16_t slc_conf_acks(const sl_conf *conf);
/* Whether the producer is idempotent, after the acks rule of sluice.h. */
bool slc_conf_idempotent(const sl_conf *conf);
/* Rules across keys, checked when a client is made. 0 or -EINVAL + errstr. */
int slc_conf_check(const sl_conf *conf, char *errstr, size_t errstr_size);
/* The same for a consumer. */
int slc_conf_check_consumer(const sl_conf *conf, char *errstr, size_t errstr_size);
/* "host:port" or "[v6]:port" of len bytes into host and *port. 0 or -EINVAL. */
int slc_hostport_parse(const char *s, size_t len, char *host, size_t host_size, uint16_t *port);

/* ================================================================ util */

int64_t slc_now_ms(void);
/* xorshift64*: the client's own generator (jitter, sticky choice); state != 0. */
uint64_t slc_rand(uint64_t *state);
/*
 * Backoff before retry number attempt (1 = the first retry): base * 2^(attempt-1),
 * capped at max, times a random factor in [0.8, 1.2], and never above max.
 */
int64_t slc_backoff_ms(int32_t base_ms, int32_t max_ms, uint32_t attempt, uint64_t *rng);
/* The zlib/IEEE CRC-32 (polynomial 0xEDB88320 reflected), librdkafka's rd_crc32. */
uint32_t slc_crc32(const void *data, size_t len);
/* The partition of a non-null key: murmur2 as Java's client, or crc32 as
 * librdkafka's "consistent" partitioner. count > 0. */
int32_t slc_partition_of_key(int partitioner, const void *key, size_t key_len, int32_t count);
/* Kafka's legal topic names: 1..249 of [a-zA-Z0-9._-], not "." or "..". */
bool slc_topic_name_valid(const char *name, size_t len);

/* ================================================================ batches */

/* What a delivery report needs of each message, kept until it is reported. */
struct slc_msgref {
    void *opaque;
    int64_t timestamp;
};

struct slc_part;

/*
 * A batch: open (records accumulate in arena, already in their wire form
 * after room for the header), then sealed (wire holds the encoded
 * RecordBatch; the open state is freed). Sealed bytes never
 * change again except for the producer fields, stamped on the first send
 * (slc_batch_stamp): a retry resends the same bytes, which is what lets the
 * broker recognise it.
 */
struct slc_batch {
    struct slc_batch *next; /* queue, request, or done list */
    struct slc_part *part;
    uint32_t count;
    struct slc_msgref *msgs; /* count of them */
    uint32_t msgs_cap;
    size_t payload_bytes;  /* key + value + header bytes, for the queue bound */
    int64_t oldest_enq_ms; /* the oldest message's sl_produce time: delivery timeout */
    int64_t opened_ms;     /* linger starts here */
    int64_t first_timestamp;
    size_t encoded_bytes; /* uncompressed batch size so far, header included */
    /* open */
    struct buf arena;
    /* sealed */
    uint8_t *wire;
    size_t wire_len;
    uint64_t order;       /* sealing order within the partition */
    int32_t base_seq;     /* -1 until stamped */
    uint32_t attempts;    /* sends so far */
    int32_t request_node; /* broker of the request it is in, while in flight */
    /* outcome */
    sl_err err;
    int64_t base_offset;
    int64_t log_append_time;
    /* compression thread (compressor.c) */
    bool compressing;        /* queued but still the thread's: not sent, expired or freed */
    int zerr;                /* the thread's outcome: 0, -ENOMEM, -EIO */
    struct slc_batch *znext; /* its lists, under its lock */
};

/* A new open batch; NULL when out of memory. */
struct slc_batch *slc_batch_new(int64_t now_ms);
void slc_batch_free(struct slc_batch *b);
/* The bytes the message adds to b's encoding (its record, length prefix
 * included), exactly as batch_encode will write it. */
size_t slc_record_bytes(const struct slc_batch *b, const sl_msg *m, int64_t timestamp);
/* Whether a record of rec_bytes fits in b under batch_size (an empty batch
 * takes any record, so a large message gets a batch of its own). */
bool slc_batch_fits(const struct slc_batch *b, size_t rec_bytes, int32_t batch_size);
/* Copies the message into b, encoded. 0, -ENOMEM, or -EINVAL when its
 * timestamp is too far from the batch's first for a delta. */
int slc_batch_append(struct slc_batch *b, const sl_msg *m, int64_t timestamp, int64_t enq_ms);
/* Encodes b (producer fields -1), compressed when asked (level -1: zstd's
 * default) with the zstd context given (borrowed; NULL: one for the call);
 * frees the open state. 0, -ENOMEM, or -EIO when compression failed. scratch
 * is reused between calls (its block may be exchanged for the batch's). */
int slc_batch_seal(struct slc_batch *b, int compression, int level, struct ZSTD_CCtx_s *zstd,
                   struct buf *scratch);
/* slc_batch_seal in two steps, for the compression thread: the header (the
 * arena becomes the plain batch), then its compression into wire, which
 * frees the arena. slc_batch_compress touches only arena and wire. */
void slc_batch_seal_plain(struct slc_batch *b);
int slc_batch_compress(struct slc_batch *b, int level, struct ZSTD_CCtx_s *zstd,
                       struct buf *scratch);
/* Writes producer id, epoch and base sequence into the sealed batch and
 * recomputes its CRC. */
void slc_batch_stamp(struct slc_batch *b, int64_t producer_id, int16_t epoch, int32_t base_seq);
/* Kafka's sequence arithmetic: seq + n, wrapping past INT32_MAX to 0. */
int32_t slc_seq_add(int32_t seq, uint32_t n);

/* ================================================================ compressor */

/* A producer's compression thread (compressor.c). start: 0 or -errno (the
 * producer then compresses on the caller's thread). submit: b, sealed plain
 * and already in its partition's queue, is compressed there (b->compressing
 * until reaped). reap: on its event in the epoll set, hands finished batches
 * back (compressing false, zerr set). wait: until nothing is compressing,
 * then reaps. stop: waits, joins, frees; NULL compressor is a no-op. */
struct slc_compressor;
int slc_compressor_start(sl_client *c);
void slc_compressor_submit(sl_client *c, struct slc_batch *b);
bool slc_compressor_owns_event(const sl_client *c, const void *ptr);
void slc_compressor_reap(sl_client *c);
void slc_compressor_wait(sl_client *c);
void slc_compressor_stop(sl_client *c);

/* ================================================================ topics */

struct slc_topic;

struct slc_part {
    struct slc_topic *topic;
    int32_t id;
    int32_t leader; /* node id; -1 unknown */
    int32_t leader_epoch;
    struct slc_batch *open;
    struct slc_batch *q_head, *q_tail; /* sealed, in `order` */
    uint32_t inflight;                 /* batches in flight */
    int32_t inflight_node;             /* the broker they went to */
    /* A batch came back for a retry: nothing is sent until every batch in
     * flight has come back, so that the retry goes out first, in order. */
    bool hold;
    int64_t retry_at_ms;
    int32_t next_seq;  /* idempotence: base sequence of the next batch stamped */
    int32_t acked_seq; /* idempotence: the sequence after the last acknowledged batch */
    uint64_t next_order;
    uint32_t seal_gen; /* counts sealed batches: the sticky partitioner moves on */
    bool active;
    struct slc_part *active_prev, *active_next;
};

/* A message waiting for its topic's partition count. One allocation: the
 * struct, then the header array, then the bytes the sl_msg points to. */
struct slc_pending {
    struct slc_pending *next;
    sl_msg msg; /* points into this allocation; topic NULL */
    int64_t enq_ms;
    size_t payload_bytes;
    sl_err err; /* once failed */
    struct slc_topic *topic;
};

struct slc_topic {
    char *name;
    uint32_t hash;
    int32_t partition_count; /* -1 until metadata says */
    struct slc_part **parts;
    int32_t parts_cap;
    int16_t err;             /* the last metadata error for it */
    int64_t absent_since_ms; /* -1 unless metadata says it does not exist */
    struct slc_pending *pend_head, *pend_tail;
    int32_t sticky; /* keyless messages go here until its batch is sealed */
    uint32_t sticky_gen;
    struct slc_topic *hnext;
    struct slc_topic *list_next;
};

/* ================================================================ brokers */

enum slc_conn_state {
    SLC_CONN_DOWN,
    SLC_CONN_CONNECTING, /* connect() in progress */
    SLC_CONN_HANDSHAKE,  /* ApiVersions in flight */
    SLC_CONN_UP,
};

enum slc_req_kind {
    SLC_REQ_API_VERSIONS,
    SLC_REQ_METADATA,
    SLC_REQ_INIT_PID,
    SLC_REQ_PRODUCE,
    SLC_REQ_FETCH,
    SLC_REQ_LIST_OFFSETS,
    SLC_REQ_CALL, /* the answer goes to req->call (admin, group protocol) */
};

struct slc_broker;

/*
 * The owner of an SLC_REQ_CALL request: called exactly once per request
 * sent, with the decoded answer (valid during the call only), or with resp
 * NULL and err saying why there is none (connection lost, timed out, not
 * decodable, client closing). arg is the request's call_arg; whatever it
 * owns is the function's to free.
 */
typedef void slc_call_fn(sl_client *c, struct slc_broker *b, void *arg, const void *resp,
                         sl_err err, int64_t now_ms);

/* Every response body a client decodes: the decode target of a frame. */
union slc_response {
    struct kmsg_api_versions_response api_versions;
    struct kmsg_metadata_response metadata;
    struct kmsg_init_producer_id_response init_pid;
    struct kmsg_produce_response produce;
    struct kmsg_fetch_response fetch;
    struct kmsg_list_offsets_response list_offsets;
    struct kmsg_create_topics_response create_topics;
    struct kmsg_delete_topics_response delete_topics;
    struct kmsg_describe_configs_response describe_configs;
    struct kmsg_list_groups_response list_groups;
    struct kmsg_describe_groups_response describe_groups;
    struct kmsg_delete_groups_response delete_groups;
    struct kmsg_find_coordinator_response find_coordinator;
    struct kmsg_join_group_response join_group;
    struct kmsg_sync_group_response sync_group;
    struct kmsg_heartbeat_response heartbeat;
    struct kmsg_leave_group_response leave_group;
    struct kmsg_offset_commit_response offset_commit;
    struct kmsg_offset_fetch_response offset_fetch;
};

struct slc_req {
    enum slc_req_kind kind;
    slc_call_fn *call; /* SLC_REQ_CALL */
    void *call_arg;
    int32_t timeout_ms; /* 0: request.timeout.ms */
    int32_t correlation_id;
    int16_t api_key, version;
    int64_t sent_ms;
    uint64_t end_pos; /* stream position after its last byte */
    bool expects_response;
    struct slc_batch *batches; /* Produce: linked through next */
};

struct slc_broker {
    int32_t node_id; /* bootstrap entries: -1, -2, ... */
    char host[SLC_HOST_BYTES];
    uint16_t port;
    char addr[SLC_HOST_BYTES + 8]; /* "host:port", for messages */
    int fd;
    enum slc_conn_state state;
    int64_t state_since_ms;
    uint32_t events; /* epoll interest */
    struct buf out;
    size_t out_off;      /* written from out.data up to here */
    uint64_t queued_pos; /* bytes ever appended to out */
    uint64_t sent_pos;   /* bytes ever written to the socket */
    struct buf in;
    struct slc_req *ring; /* requests in flight, in send order */
    uint32_t ring_head, ring_count, ring_cap;
    uint32_t produce_inflight;
    int64_t reconnect_at_ms;
    uint32_t generation;            /* counts sockets closed: tells a handler its connection went */
    uint32_t failures;              /* consecutive failed connections */
    bool failed_last;               /* the last connection attempt failed */
    uint32_t addr_index;            /* which resolved address to try */
    int16_t api_versions_version;   /* the ApiVersions version to ask with */
    int16_t versions[SLC_API_KEYS]; /* negotiated; -1: unusable */
    int16_t broker_min[SLC_API_KEYS], broker_max[SLC_API_KEYS]; /* advertised; -1: absent */
    bool fetch_inflight; /* consumer: one Fetch at a time per broker */
    bool list_inflight;  /* consumer: one ListOffsets at a time per broker */
};

/* ================================================================ client */

enum slc_pid_state {
    SLC_PID_NONE,       /* not idempotent, or not asked yet */
    SLC_PID_REQUESTING, /* InitProducerId in flight */
    SLC_PID_ASSIGNED,
};

struct slc_error {
    sl_err err;
    char text[SLC_ERROR_TEXT_BYTES];
};

struct sl_client {
    sl_conf *conf;
    int16_t acks;
    bool idempotent;
    int epfd, timerfd;
    int64_t timer_armed_ms; /* INT64_MAX: disarmed */
    uint64_t rng;
    int32_t next_correlation_id;
    /* brokers */
    struct slc_broker **brokers;
    uint32_t broker_count;
    uint32_t connect_rr; /* round robin for control connections */
    bool all_down;       /* every broker's last attempt failed (reported once) */
    /* topics */
    struct slc_topic **buckets;
    uint32_t bucket_count;
    struct slc_topic *topics; /* every topic, newest first */
    uint32_t topic_count;
    struct slc_topic *last_topic; /* sl_produce's one-entry cache */
    struct slc_part *active;      /* partitions holding batches */
    uint32_t pending_count;       /* messages in topics' pending lists */
    /* messages held: the bound of sl_produce */
    size_t msg_count;
    size_t msg_bytes;
    /* metadata */
    bool md_inflight;
    bool md_wanted;
    int64_t md_ok_ms;   /* last complete answer */
    int64_t md_next_ms; /* no request before this (backoff) */
    uint32_t md_failures;
    uint64_t md_answers; /* counts answers, so a waiter can tell a fresh one */
    /* idempotence */
    enum slc_pid_state pid_state;
    int64_t producer_id;
    int16_t producer_epoch;
    bool bump_wanted; /* new epoch and sequences before anything more is sent */
    int64_t pid_next_ms;
    uint32_t pid_failures;
    bool fatal;
    sl_err fatal_err;
    uint32_t produce_inflight; /* over every broker */
    /* outcomes waiting for callbacks */
    struct slc_batch *done_head, *done_tail;
    struct slc_pending *done_pend_head, *done_pend_tail;
    struct slc_error errors[SLC_ERRORS_QUEUED_MAX];
    uint32_t errors_head, errors_count, errors_dropped;
    bool in_callback;
    bool flushing; /* linger cut short */
    bool closing;
    /* scratch */
    struct buf scratch;
    struct ZSTD_CCtx_s *zstd; /* zstd on the caller's thread, only without the compressor */
    struct slc_compressor *compressor; /* zstd's thread (compressor.c), NULL without */
    void *arena_mem;
    size_t arena_cap;
    /* consumer: NULL for a producer */
    struct slc_consumer *cons;
    /* consumer with a group.id: membership and commits (group.c) */
    struct slc_group *group;
};

/* ---- client.c ---- */
/* Queues an error for the error callback (printf-style text). */
void slc_error(sl_client *c, sl_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The partition's batches are done: to the done list with err (callbacks later). */
void slc_done_batch(sl_client *c, struct slc_batch *b, sl_err err);
void slc_done_pending(sl_client *c, struct slc_pending *m, sl_err err);
/* Makes sure the fd wakes an external loop by deadline_ms. */
void slc_wake_at(sl_client *c, int64_t deadline_ms);
/* One round of work at now_ms: seals, expiries, metadata, connections,
 * sends. Lowers *next_ms to the next deadline it knows. */
void slc_timers(sl_client *c, int64_t now_ms, int64_t *next_ms);
/* Fires the callbacks of the done list and the error queue; their number. */
int slc_dispatch(sl_client *c);
/* Does the client's work in slices until done(c, arg) or timeout_ms (-1: no
 * limit) passes; whether done. */
bool slc_poll_until(sl_client *c, int timeout_ms, bool (*done)(sl_client *, void *), void *arg);

/* ---- conn.c ---- */
/* The broker with this node id, or NULL. */
struct slc_broker *slc_broker_find(sl_client *c, int32_t node_id);
/* Adds a broker or updates its address. NULL when the table is full. */
struct slc_broker *slc_broker_upsert(sl_client *c, int32_t node_id, const char *host,
                                     size_t host_len, uint16_t port);
void slc_broker_free(struct slc_broker *b);
/* Starts connecting when down and past its backoff (else lowers *next_ms to
 * the end of the backoff). */
void slc_broker_connect(sl_client *c, struct slc_broker *b, int64_t now_ms, int64_t *next_ms);
/* Writes what the output buffer holds, as far as the socket takes it. */
void slc_broker_flush(sl_client *c, struct slc_broker *b, int64_t now_ms);
/* Closes the connection: every request in flight fails (retriably) with err. */
void slc_broker_close(sl_client *c, struct slc_broker *b, sl_err err, const char *why,
                      int64_t now_ms);
/* Whether a request of this kind may be sent now. */
bool slc_broker_can_send(const sl_client *c, const struct slc_broker *b, enum slc_req_kind kind);
/* Encodes and queues a request (req->kind, batches set by the caller), then
 * tries to write. 0, or -ENOBUFS (out buffer full), -EINVAL (not encodable). */
int slc_broker_send(sl_client *c, struct slc_broker *b, struct slc_req *req, const void *body,
                    int64_t now_ms);
/* Handles epoll events of a broker's socket. */
void slc_broker_event(sl_client *c, struct slc_broker *b, uint32_t events, int64_t now_ms);
/* Closes connections whose oldest request or connection setup is overdue;
 * lowers *next_ms to the next such deadline. */
void slc_brokers_check_timeouts(sl_client *c, int64_t now_ms, int64_t *next_ms);
/*
 * Sends an SLC_REQ_CALL request of api_key at the highest version the broker
 * and the codec share within [min_version, max_version]; fn(arg) gets the
 * answer. Returns 0 (fn will be called exactly once), -ENOTSUP (no shared
 * version), -EAGAIN (the connection cannot take it now), -ENOBUFS or
 * -EINVAL; on an error fn is never called.
 */
int slc_call(sl_client *c, struct slc_broker *b, int16_t api_key, int16_t min_version,
             int16_t max_version, const void *body, slc_call_fn *fn, void *arg, int64_t now_ms);
/* slc_call with its own deadline (a JoinGroup may wait a rebalance timeout). */
int slc_call_timed(sl_client *c, struct slc_broker *b, int16_t api_key, int16_t min_version,
                   int16_t max_version, const void *body, slc_call_fn *fn, void *arg,
                   int32_t timeout_ms, int64_t now_ms);
/* Calls every SLC_REQ_CALL owner still waiting with SL_ERR_STATE (the client
 * is being freed); their requests stay in the rings, answered by no one. */
void slc_brokers_end_calls(sl_client *c, int64_t now_ms);
/* The version slc_call would use, or -1. */
int16_t slc_call_version(const struct slc_broker *b, int16_t api_key, int16_t min_version,
                         int16_t max_version);
/* An UP broker that can take a control request (the least busy), or NULL
 * after starting a connection to one that may become so. */
struct slc_broker *slc_control_broker(sl_client *c, int64_t now_ms, int64_t *next_ms);
/* Decode arena for one response of len bytes; NULL when over the cap. */
struct karena slc_arena(sl_client *c, size_t len, bool *ok);

/* ---- metadata.c ---- */
struct slc_topic *slc_topic_get(sl_client *c, const char *name, size_t len, bool create);
void slc_topic_free(struct slc_topic *t);
/* Sets partition count and leaders as metadata would (also used by tests). */
int slc_topic_set_partitions(sl_client *c, struct slc_topic *t, int32_t count, int64_t now_ms);
void slc_metadata_tick(sl_client *c, int64_t now_ms, int64_t *next_ms);
/* resp is the decoded answer, or NULL when there is none (err says why). */
void slc_metadata_response(sl_client *c, struct slc_broker *b, const struct slc_req *req,
                           const void *resp, sl_err err, int64_t now_ms);
void slc_part_activate(sl_client *c, struct slc_part *p);
void slc_part_deactivate(sl_client *c, struct slc_part *p);

/* ---- records.c ---- */
/* Called per record at or after the position; rec borrows from the batch
 * (or the decompression buffer). 0, or a negative errno to stop. */
typedef int slc_record_fn(void *arg, const struct batch_record *rec, int64_t offset,
                          int timestamp_type);
/*
 * Decodes a Fetch answer's records (RecordBatch v2 back to back) for a
 * partition at *position: skips records below it and control batches, takes
 * each record's offset from its batch's base offset plus its offset delta
 * (compacted and deduplicated batches have gaps), decompresses compressed
 * batches into scratch, and moves *position past every batch read whole
 * (also past empty batches). A batch cut off at the end is left for the
 * next Fetch. Returns 0; -EMSGSIZE when the first batch is cut off (it
 * would never come whole); -EBADMSG for a bad batch (*why says how; the
 * records before it were delivered); or fn's error.
 */
int slc_records_decode(const uint8_t *data, size_t len, int64_t *position, struct buf *scratch,
                       slc_record_fn *fn, void *arg, const char **why);

/* ---- assignor.c ---- */
/* Assignor names: "range", "roundrobin". */
#define SLC_ASSIGNOR_NAME_BYTES 16
#define SLC_ASSIGNORS_MAX       2

struct slc_assign_tp {
    uint32_t topic; /* index into the topic table */
    int32_t partition;
};

/* A member as the leader sees it: what it subscribed to, what it gets. */
struct slc_assign_member {
    const char *id;   /* NUL-terminated member id */
    uint32_t *topics; /* indexes into the topic table */
    uint32_t topic_count;
    struct slc_assign_tp *parts; /* out: sorted by topic, then partition */
    uint32_t count, cap;
};

/* A topic of the group's subscriptions: the table is sorted by name. */
struct slc_assign_topic {
    const char *name;
    int32_t partitions; /* 0 when the topic does not exist */
};

/* Called per topic name of a subscription (partition -1) or per partition of
 * an assignment; name is not NUL-terminated. 0, or an error to stop. */
typedef int slc_name_fn(void *arg, const char *name, size_t len, int32_t partition);
int slc_subscription_encode(struct buf *out, const char *const *topics, size_t count);
int slc_subscription_decode(const uint8_t *p, size_t len, slc_name_fn *fn, void *arg);
int slc_assignment_encode(struct buf *out, const struct slc_assign_member *m,
                          const struct slc_assign_topic *topics);
int slc_assignment_decode(const uint8_t *p, size_t len, slc_name_fn *fn, void *arg);
/* Runs the assignor named protocol: sorts members by id and fills each
 * one's parts. 0, -ENOTSUP (unknown assignor) or -ENOMEM. */
int slc_assign(const char *protocol, struct slc_assign_member *members, uint32_t n,
               const struct slc_assign_topic *topics, uint32_t topic_count);
/* partition.assignment.strategy into names, in order. 0 or -EINVAL. */
int slc_assignors_parse(const char *list, char names[][SLC_ASSIGNOR_NAME_BYTES], size_t max,
                        size_t *count);

/* ---- consumer.c ---- */
void slc_consumer_tick(sl_client *c, int64_t now_ms, int64_t *next_ms);
/* Whether sl_consume has something to hand out. */
bool slc_consumer_ready(const sl_client *c);
void slc_fetch_response(sl_client *c, struct slc_broker *b, const void *resp, sl_err err,
                        int64_t now_ms);
void slc_list_offsets_response(sl_client *c, struct slc_broker *b, const void *resp, sl_err err,
                               int64_t now_ms);
void slc_consumer_free(struct slc_consumer *cons);
/* sl_assign without its group check (the group assigns through it). */
sl_err slc_consumer_assign(sl_client *c, const char *topic, int32_t partition, int64_t offset);
/* Assigns the partition stopped, with an event of err (no offset to start at). */
sl_err slc_consumer_stop(sl_client *c, const char *topic, int32_t partition, sl_err err);
/* Partitions assigned now. */
uint32_t slc_consumer_assigned(const sl_client *c);
/* Unassigns every partition and drops their queued records. */
void slc_consumer_clear(sl_client *c);
/* The assigned partitions, sorted, with what a commit would say
 * (consumed_only: only those with one) or their positions; names borrowed
 * from the topic table. One allocation for free(); NULL when out of memory. */
sl_topic_partition *slc_consumer_offsets(sl_client *c, bool consumed_only, size_t *count);

/* ---- group.c ---- */
struct slc_group;
/* Whether sl_subscribe was called (the group assigns the partitions). */
bool slc_group_subscribed(const sl_client *c);
/* sl_consume was called: the max.poll.interval.ms clock restarts. */
void slc_group_polled(sl_client *c);
void slc_group_tick(sl_client *c, int64_t now_ms, int64_t *next_ms);
/* Fires the rebalance and commit callbacks due; their number. */
int slc_group_dispatch(sl_client *c);
/* sl_close's part: revoke, final commit and LeaveGroup, within timeout_ms. */
void slc_group_close(sl_client *c, int timeout_ms);
void slc_group_free(struct slc_group *g);
/* The group of a consumer with a group.id (none without). 0, or -EINVAL /
 * -ENOMEM with errstr. */
int slc_group_new(sl_client *c, char *errstr, size_t errstr_size);

/* ---- producer.c ---- */
/* A client of either kind (consumer: conf checked as a consumer's). */
sl_client *slc_client_new(sl_conf *conf, bool consumer, char *errstr, size_t errstr_size);
/* Places one message: into a partition's batch, or the topic's pending list. */
sl_err slc_place(sl_client *c, struct slc_topic *t, const sl_msg *m, int64_t timestamp,
                 int64_t enq_ms, int64_t now_ms);
/* Places the pending messages of a topic whose partitions just became known. */
void slc_place_pending(sl_client *c, struct slc_topic *t, int64_t now_ms);
/* Seals p's open batch (to its queue, or to done on a compression failure). */
void slc_part_seal(sl_client *c, struct slc_part *p);
void slc_producer_tick(sl_client *c, int64_t now_ms, int64_t *next_ms);
/* resp NULL: no answer; err SL_OK means none was expected (acks=0). */
void slc_produce_response(sl_client *c, struct slc_broker *b, struct slc_req *req, const void *resp,
                          sl_err err, int64_t now_ms);
void slc_init_pid_response(sl_client *c, struct slc_broker *b, const void *resp, sl_err err,
                           int64_t now_ms);
/* Fails every message held (close, fatal error): unsent for those never
 * sent, inflight for those sent (and, with_inflight, those in flight now). */
void slc_fail_all(sl_client *c, sl_err unsent, sl_err inflight, bool with_inflight);

#endif
