/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libsluice: the C client library of Sluice, speaking the Apache Kafka wire
 * protocol to sluiced or any Kafka-compatible broker. This is its only public
 * header; everything else in client/ is private.
 *
 * This version has the producer and the consumer with manual assignment
 * (sl_assign; groups come next). Admin calls will join the same handle type
 * (sl_client) and the same conventions.
 *
 * Conventions (librdkafka's, where the two differ from the rest of Sluice):
 *   - Handles are opaque. A configuration (sl_conf) is set key by key with
 *     Kafka's names (bootstrap.servers, linger.ms, ...); a refusal says why in
 *     the caller's errstr buffer.
 *   - Calls return an sl_err: SL_OK (0), one of Kafka's error codes (positive,
 *     and UNKNOWN_SERVER_ERROR = -1, with Kafka's numbers and names), or a
 *     local error (negative, from -100 down). sl_err_str() names any of them.
 *   - A call that fails synchronously never calls back for what it refused.
 *
 * Threading model: caller-driven; one thread of its own only to compress.
 *   A producer with compression.type=zstd compresses sealed batches on one
 *   internal thread, which runs no callback and touches nothing the caller
 *   sees; it is joined by sl_close(). Apart from that, a client does
 *   nothing between calls. All network I/O, timers (linger,
 *   retries, metadata refresh, timeouts) and callbacks run inside sl_poll(),
 *   sl_flush(), sl_close(), sl_topic_partitions() and sl_consume(), on the
 *   thread that calls them; no callback ever runs anywhere else, and
 *   sl_produce() and sl_assign() never do I/O and never call back. So an application calls
 * sl_poll() regularly: after a burst of sl_produce() calls, when sl_produce() answers
 *   SL_ERR_QUEUE_FULL, or whenever sl_fd() is readable in its own event loop.
 *   A client is not thread-safe: use it from one thread at a time (any
 *   thread, but never two at once). Separate clients share nothing.
 *   Inside a callback, sl_produce() may be called; sl_poll(), sl_flush(),
 *   sl_close() and sl_topic_partitions() answer SL_ERR_STATE.
 *   Host names are resolved with getaddrinfo(), which may block inside
 *   sl_poll() when a name is not in /etc/hosts; numeric addresses never do.
 *
 * Delivery: sl_produce() copies the message and returns at once; a delivery
 * callback later reports each accepted message exactly once, with its
 * partition and offset or with the error that ended it: delivered, failed
 * (a fatal error from the broker, or delivery.timeout.ms passed), or, at
 * sl_close(), reported as not sent or of unknown outcome. None vanish.
 */
#ifndef SLUICE_H
#define SLUICE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SL_VERSION_STR "0.1.0"

/* ------------------------------------------------------------------ errors */

typedef enum sl_err {
    /* ---- local errors: never on the wire ---- */
    /* sl_produce: queue.buffering.max.messages or .kbytes reached; poll and retry. */
    SL_ERR_QUEUE_FULL = -100,
    /* Not delivered within delivery.timeout.ms (retries included). */
    SL_ERR_MSG_TIMED_OUT = -101,
    /* The message is larger than message.max.bytes. */
    SL_ERR_MSG_SIZE_TOO_LARGE = -102,
    /* The message names a partition the topic does not have. */
    SL_ERR_UNKNOWN_PARTITION = -103,
    /* An argument is invalid (NULL where a value is needed, a bad topic name). */
    SL_ERR_INVALID_ARG = -104,
    /* A connection to a broker failed or was closed. */
    SL_ERR_TRANSPORT = -105,
    /* A broker's host name could not be resolved. */
    SL_ERR_RESOLVE = -106,
    /* No broker can be reached: every one's last connection attempt failed. */
    SL_ERR_ALL_BROKERS_DOWN = -107,
    /* sl_flush, sl_close or sl_topic_partitions ran out of time. */
    SL_ERR_TIMED_OUT = -108,
    /* sl_close: the message was never sent, so it was certainly not written. */
    SL_ERR_CLOSED_UNSENT = -109,
    /* sl_close: the message was sent and not answered: it may have been written. */
    SL_ERR_CLOSED_INFLIGHT = -110,
    /* The producer hit an unrecoverable error (the error callback said which). */
    SL_ERR_FATAL = -111,
    /* The broker lacks an API or version this client needs. */
    SL_ERR_UNSUPPORTED_FEATURE = -112,
    /* A broker sent a response that could not be decoded. */
    SL_ERR_BAD_RESPONSE = -113,
    /* Out of memory. */
    SL_ERR_NOMEM = -114,
    /* sl_conf_set: no such key. */
    SL_ERR_CONF_UNKNOWN = -115,
    /* sl_conf_set: the value is not allowed for the key. */
    SL_ERR_CONF_INVALID = -116,
    /* The call is not allowed now (inside a callback, or on a closed client). */
    SL_ERR_STATE = -117,
    /* Compressing a batch failed. */
    SL_ERR_COMPRESSION = -118,
    /* sl_consume: the partition's position reached its high watermark (an
     * event, not a failure; only with enable.partition.eof = true). */
    SL_ERR_PARTITION_EOF = -119,
    /* A fetched batch could not be read: bad framing, CRC or records, or a
     * compressed one that does not decompress. */
    SL_ERR_BAD_MSG = -120,

    /* ---- Kafka's error codes, with Kafka's numbers (proto/errors.h) ---- */
    SL_ERR_UNKNOWN_SERVER_ERROR = -1,
    SL_ERR_NONE = 0,
    SL_ERR_OFFSET_OUT_OF_RANGE = 1,
    SL_ERR_CORRUPT_MESSAGE = 2,
    SL_ERR_UNKNOWN_TOPIC_OR_PARTITION = 3,
    SL_ERR_INVALID_FETCH_SIZE = 4,
    SL_ERR_LEADER_NOT_AVAILABLE = 5,
    SL_ERR_NOT_LEADER_OR_FOLLOWER = 6,
    SL_ERR_REQUEST_TIMED_OUT = 7,
    SL_ERR_BROKER_NOT_AVAILABLE = 8,
    SL_ERR_REPLICA_NOT_AVAILABLE = 9,
    SL_ERR_MESSAGE_TOO_LARGE = 10,
    SL_ERR_STALE_CONTROLLER_EPOCH = 11,
    SL_ERR_OFFSET_METADATA_TOO_LARGE = 12,
    SL_ERR_NETWORK_EXCEPTION = 13,
    SL_ERR_COORDINATOR_LOAD_IN_PROGRESS = 14,
    SL_ERR_COORDINATOR_NOT_AVAILABLE = 15,
    SL_ERR_NOT_COORDINATOR = 16,
    SL_ERR_INVALID_TOPIC_EXCEPTION = 17,
    SL_ERR_RECORD_LIST_TOO_LARGE = 18,
    SL_ERR_NOT_ENOUGH_REPLICAS = 19,
    SL_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND = 20,
    SL_ERR_INVALID_REQUIRED_ACKS = 21,
    SL_ERR_ILLEGAL_GENERATION = 22,
    SL_ERR_INCONSISTENT_GROUP_PROTOCOL = 23,
    SL_ERR_INVALID_GROUP_ID = 24,
    SL_ERR_UNKNOWN_MEMBER_ID = 25,
    SL_ERR_INVALID_SESSION_TIMEOUT = 26,
    SL_ERR_REBALANCE_IN_PROGRESS = 27,
    SL_ERR_INVALID_COMMIT_OFFSET_SIZE = 28,
    SL_ERR_TOPIC_AUTHORIZATION_FAILED = 29,
    SL_ERR_GROUP_AUTHORIZATION_FAILED = 30,
    SL_ERR_CLUSTER_AUTHORIZATION_FAILED = 31,
    SL_ERR_INVALID_TIMESTAMP = 32,
    SL_ERR_UNSUPPORTED_SASL_MECHANISM = 33,
    SL_ERR_ILLEGAL_SASL_STATE = 34,
    SL_ERR_UNSUPPORTED_VERSION = 35,
    SL_ERR_TOPIC_ALREADY_EXISTS = 36,
    SL_ERR_INVALID_PARTITIONS = 37,
    SL_ERR_INVALID_REPLICATION_FACTOR = 38,
    SL_ERR_INVALID_REPLICA_ASSIGNMENT = 39,
    SL_ERR_INVALID_CONFIG = 40,
    SL_ERR_NOT_CONTROLLER = 41,
    SL_ERR_INVALID_REQUEST = 42,
    SL_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT = 43,
    SL_ERR_POLICY_VIOLATION = 44,
    SL_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER = 45,
    SL_ERR_DUPLICATE_SEQUENCE_NUMBER = 46,
    SL_ERR_INVALID_PRODUCER_EPOCH = 47,
    SL_ERR_INVALID_TXN_STATE = 48,
    SL_ERR_INVALID_PRODUCER_ID_MAPPING = 49,
    SL_ERR_INVALID_TRANSACTION_TIMEOUT = 50,
    SL_ERR_CONCURRENT_TRANSACTIONS = 51,
    SL_ERR_TRANSACTION_COORDINATOR_FENCED = 52,
    SL_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53,
    SL_ERR_SECURITY_DISABLED = 54,
    SL_ERR_OPERATION_NOT_ATTEMPTED = 55,
    SL_ERR_KAFKA_STORAGE_ERROR = 56,
    SL_ERR_LOG_DIR_NOT_FOUND = 57,
    SL_ERR_SASL_AUTHENTICATION_FAILED = 58,
    SL_ERR_UNKNOWN_PRODUCER_ID = 59,
    SL_ERR_REASSIGNMENT_IN_PROGRESS = 60,
    SL_ERR_DELEGATION_TOKEN_AUTH_DISABLED = 61,
    SL_ERR_DELEGATION_TOKEN_NOT_FOUND = 62,
    SL_ERR_DELEGATION_TOKEN_OWNER_MISMATCH = 63,
    SL_ERR_DELEGATION_TOKEN_REQUEST_NOT_ALLOWED = 64,
    SL_ERR_DELEGATION_TOKEN_AUTHORIZATION_FAILED = 65,
    SL_ERR_DELEGATION_TOKEN_EXPIRED = 66,
    SL_ERR_INVALID_PRINCIPAL_TYPE = 67,
    SL_ERR_NON_EMPTY_GROUP = 68,
    SL_ERR_GROUP_ID_NOT_FOUND = 69,
    SL_ERR_FETCH_SESSION_ID_NOT_FOUND = 70,
    SL_ERR_INVALID_FETCH_SESSION_EPOCH = 71,
    SL_ERR_LISTENER_NOT_FOUND = 72,
    SL_ERR_TOPIC_DELETION_DISABLED = 73,
    SL_ERR_FENCED_LEADER_EPOCH = 74,
    SL_ERR_UNKNOWN_LEADER_EPOCH = 75,
    SL_ERR_UNSUPPORTED_COMPRESSION_TYPE = 76,
    SL_ERR_STALE_BROKER_EPOCH = 77,
    SL_ERR_OFFSET_NOT_AVAILABLE = 78,
    SL_ERR_MEMBER_ID_REQUIRED = 79,
    SL_ERR_PREFERRED_LEADER_NOT_AVAILABLE = 80,
    SL_ERR_GROUP_MAX_SIZE_REACHED = 81,
    SL_ERR_FENCED_INSTANCE_ID = 82,
    SL_ERR_ELIGIBLE_LEADERS_NOT_AVAILABLE = 83,
    SL_ERR_ELECTION_NOT_NEEDED = 84,
    SL_ERR_NO_REASSIGNMENT_IN_PROGRESS = 85,
    SL_ERR_GROUP_SUBSCRIBED_TO_TOPIC = 86,
    SL_ERR_INVALID_RECORD = 87,
    SL_ERR_UNSTABLE_OFFSET_COMMIT = 88,
    SL_ERR_THROTTLING_QUOTA_EXCEEDED = 89,
    SL_ERR_PRODUCER_FENCED = 90,
    SL_ERR_RESOURCE_NOT_FOUND = 91,
    SL_ERR_DUPLICATE_RESOURCE = 92,
    SL_ERR_UNACCEPTABLE_CREDENTIAL = 93,
    SL_ERR_INCONSISTENT_VOTER_SET = 94,
    SL_ERR_INVALID_UPDATE_VERSION = 95,
    SL_ERR_FEATURE_UPDATE_FAILED = 96,
    SL_ERR_PRINCIPAL_DESERIALIZATION_FAILURE = 97,
    SL_ERR_SNAPSHOT_NOT_FOUND = 98,
    SL_ERR_POSITION_OUT_OF_RANGE = 99,
    SL_ERR_UNKNOWN_TOPIC_ID = 100,
    SL_ERR_DUPLICATE_BROKER_REGISTRATION = 101,
    SL_ERR_BROKER_ID_NOT_REGISTERED = 102,
    SL_ERR_INCONSISTENT_TOPIC_ID = 103,
    SL_ERR_INCONSISTENT_CLUSTER_ID = 104,
    SL_ERR_TRANSACTIONAL_ID_NOT_FOUND = 105,
    SL_ERR_FETCH_SESSION_TOPIC_ID_ERROR = 106,
    SL_ERR_INELIGIBLE_REPLICA = 107,
    SL_ERR_NEW_LEADER_ELECTED = 108,
    SL_ERR_OFFSET_MOVED_TO_TIERED_STORAGE = 109,
    SL_ERR_FENCED_MEMBER_EPOCH = 110,
    SL_ERR_UNRELEASED_INSTANCE_ID = 111,
    SL_ERR_UNSUPPORTED_ASSIGNOR = 112,
    SL_ERR_STALE_MEMBER_EPOCH = 113,
    SL_ERR_MISMATCHED_ENDPOINT_TYPE = 114,
    SL_ERR_UNSUPPORTED_ENDPOINT_TYPE = 115,
    SL_ERR_UNKNOWN_CONTROLLER_ID = 116,
    SL_ERR_UNKNOWN_SUBSCRIPTION_ID = 117,
    SL_ERR_TELEMETRY_TOO_LARGE = 118,
    SL_ERR_INVALID_REGISTRATION = 119,
    SL_ERR_TRANSACTION_ABORTABLE = 120,
    SL_ERR_INVALID_RECORD_STATE = 121,
    SL_ERR_SHARE_SESSION_NOT_FOUND = 122,
    SL_ERR_INVALID_SHARE_SESSION_EPOCH = 123,
    SL_ERR_FENCED_STATE_EPOCH = 124,
    SL_ERR_INVALID_VOTER_KEY = 125,
    SL_ERR_DUPLICATE_VOTER = 126,
    SL_ERR_VOTER_NOT_FOUND = 127,
    SL_ERR_INVALID_REGULAR_EXPRESSION = 128,
} sl_err;

#define SL_OK SL_ERR_NONE

/* A short description: "local: queue full" or Kafka's name, "broker:
 * NOT_LEADER_OR_FOLLOWER". Static; never NULL (an unknown code is named so). */
const char *sl_err_str(sl_err err);
/* The code's name without prefix: "QUEUE_FULL", "NOT_LEADER_OR_FOLLOWER". */
const char *sl_err_name(sl_err err);

/* "0.1.0" */
const char *sl_version_str(void);

/* ---------------------------------------------------------- configuration */

typedef struct sl_conf sl_conf;
typedef struct sl_client sl_client;

/* The outcome of one message, given to the delivery callback. Valid during
 * the callback only. */
typedef struct sl_delivery {
    sl_err err;        /* SL_OK: written at (partition, offset) */
    const char *topic; /* NUL-terminated */
    int32_t partition; /* -1 when the message never got one */
    int64_t offset; /* -1 when unknown (err != SL_OK, acks=0, or a duplicate answered without it) */
    int64_t timestamp; /* ms since the epoch; the broker's with LogAppendTime */
    void *msg_opaque;  /* sl_msg.opaque of sl_produce */
} sl_delivery;

/* Called once per message accepted by sl_produce, inside sl_poll, sl_flush,
 * sl_close or sl_topic_partitions. opaque is sl_conf_set_opaque's. */
typedef void sl_delivery_cb(void *opaque, const sl_delivery *report);

/* Called for errors that belong to no single message: a broker unreachable
 * (SL_ERR_TRANSPORT, SL_ERR_RESOLVE, with the address and the cause in
 * reason), all brokers down, a fatal producer error. reason is valid during
 * the call only. Same threads as the delivery callback. */
typedef void sl_error_cb(void *opaque, sl_err err, const char *reason);

/* A configuration with every key at its default; NULL when out of memory. */
sl_conf *sl_conf_new(void);
/* A copy (callbacks and opaque included); NULL when out of memory. */
sl_conf *sl_conf_dup(const sl_conf *conf);
/* sl_conf_free(NULL) is a no-op. Do not free a conf a client took. */
void sl_conf_free(sl_conf *conf);

/*
 * Sets key name to value (text, as in a Kafka .properties file). Returns
 * SL_OK, SL_ERR_CONF_UNKNOWN (no such key; errstr suggests a near one) or
 * SL_ERR_CONF_INVALID (errstr names the allowed values). On failure the conf
 * is unchanged. errstr may be NULL when errstr_size is 0. Keys:
 *
 *   bootstrap.servers          HOST:PORT[,HOST:PORT...] (IPv6 in brackets); required
 *   client.id                  sent with every request                     "sluice"
 *   acks                       0, 1, all (= -1)                             all
 *   linger.ms                  wait this long for a batch to fill           5
 *   batch.size                 bytes of a batch, uncompressed, header incl. 1000000
 *   compression.type           none, zstd                                   none
 *   compression.level          zstd level 1..22, -1 = zstd's default (3)   -1
 *   partitioner                murmur2 (Java's default), crc32 (librdkafka's
 *                              consistent); keyless messages are sticky    murmur2
 *   enable.idempotence         exactly once and in order per partition     true
 *   delivery.timeout.ms        give a message up after this long           120000
 *   request.timeout.ms         a request unanswered this long is retried   30000
 *   retry.backoff.ms           first backoff before a retry                 100
 *   retry.backoff.max.ms       backoff ceiling (doubling, 20% jitter)       1000
 *   max.in.flight.requests.per.connection   1..5                            5
 *   queue.buffering.max.messages  messages held (queued or in flight)      100000
 *   queue.buffering.max.kbytes    their key + value + header bytes, KiB    1048576
 *   metadata.max.age.ms        refresh metadata at least this often         300000
 *   message.max.bytes          largest message (key + value + headers)      1000000
 *   max.request.size           largest Produce request                      1048576
 *   receive.message.max.bytes  largest response accepted                    104857600
 *   socket.connection.setup.timeout.ms  connect + ApiVersions deadline      10000
 *
 * Consumer keys:
 *   auto.offset.reset          earliest, latest, none: where a position
 *                              outside the log moves (none: an event)       latest
 *   fetch.min.bytes            the broker answers a Fetch once it has this  1
 *   fetch.max.wait.ms          ... or after this long                       500
 *   fetch.max.bytes            bytes of one Fetch answer (a first batch
 *                              larger than this still comes whole)          52428800
 *   max.partition.fetch.bytes  bytes per partition of one Fetch answer      1048576
 *   queued.max.messages.kbytes KiB of records (key + value + headers)
 *                              queued; no Fetch while above                 65536
 *   enable.partition.eof       an SL_ERR_PARTITION_EOF event at the end      false
 *
 * Consumer group keys (sl_subscribe; commits):
 *   group.id                   the group; needed by sl_subscribe, sl_commit  ""
 *   group.instance.id          static membership (KIP-345): a restart inside
 *                              session.timeout.ms keeps the partitions      ""
 *   session.timeout.ms         the coordinator drops a silent member after  45000
 *   heartbeat.interval.ms      heartbeats to the coordinator                3000
 *   max.poll.interval.ms       longest gap between sl_consume calls before
 *                              the member leaves the group (and rejoins on
 *                              the next call); also the rebalance timeout  300000
 *   partition.assignment.strategy  assignors offered, in preference order:
 *                              range, roundrobin (the Java names too)       range,roundrobin
 *   enable.auto.commit         commit what sl_consume handed out, in the
 *                              background and before partitions are given up true
 *   auto.commit.interval.ms    how often                                    5000
 *
 * enable.idempotence needs acks=all and max.in.flight <= 5: setting acks to 0
 * or 1 turns idempotence off unless enable.idempotence was set to true
 * explicitly, which is then refused by sl_producer_new (Java's rule).
 */
sl_err sl_conf_set(sl_conf *conf, const char *name, const char *value, char *errstr,
                   size_t errstr_size);
/* The effective value of key name as text into buf (buf_size bytes). Returns
 * SL_OK, SL_ERR_CONF_UNKNOWN, or SL_ERR_INVALID_ARG when buf is too small. */
sl_err sl_conf_get(const sl_conf *conf, const char *name, char *buf, size_t buf_size);

/* Callbacks and their opaque; NULL callbacks are allowed (reports dropped). */
void sl_conf_set_delivery_cb(sl_conf *conf, sl_delivery_cb *cb);
void sl_conf_set_error_cb(sl_conf *conf, sl_error_cb *cb);
void sl_conf_set_opaque(sl_conf *conf, void *opaque);

/* --------------------------------------------------------------- producer */

/*
 * A producer. On success it owns conf (do not use or free it again); on
 * failure conf still belongs to the caller, NULL is returned and errstr says
 * why (a bad bootstrap.servers entry, conflicting keys, out of memory). No
 * connection is made yet: the first sl_poll starts them.
 */
sl_client *sl_producer_new(sl_conf *conf, char *errstr, size_t errstr_size);

/* Any partition: the partitioner chooses (by key, sticky for a null key). */
#define SL_PARTITION_ANY (-1)

typedef struct sl_header {
    const char *name;  /* NUL-terminated, not NULL */
    const void *value; /* NULL: a null value */
    size_t value_len;
} sl_header;

/* A message to produce. Zero-initialise it, so that fields added in later
 * versions take their defaults. */
typedef struct sl_msg {
    const char *topic; /* NUL-terminated */
    int32_t partition; /* SL_PARTITION_ANY, or a partition of the topic */
    const void *key;   /* NULL: a null key */
    size_t key_len;
    const void *value; /* NULL: a null value (a tombstone) */
    size_t value_len;
    const sl_header *headers;
    size_t header_count;
    int64_t timestamp; /* ms since the epoch; 0: now */
    void *opaque;      /* handed back in sl_delivery.msg_opaque */
} sl_msg;

/*
 * Queues a message; never blocks, never calls back. The key, value, headers
 * and topic are copied: msg is borrowed for the call only. Returns SL_OK (the
 * delivery callback will report it), SL_ERR_QUEUE_FULL (poll, then retry),
 * SL_ERR_MSG_SIZE_TOO_LARGE, SL_ERR_UNKNOWN_PARTITION (the partition is known
 * not to exist), SL_ERR_INVALID_ARG, SL_ERR_FATAL, SL_ERR_STATE (not a
 * producer) or SL_ERR_NOMEM.
 */
sl_err sl_produce(sl_client *client, const sl_msg *msg);

/* Messages accepted and not yet reported. */
size_t sl_queue_len(const sl_client *client);

/* --------------------------------------------------------------- consumer */

/*
 * A consumer with manual assignment (no group: sl_assign names each
 * partition and where to start). On success it owns conf; on failure conf
 * still belongs to the caller, NULL is returned and errstr says why. No
 * connection is made yet: the first sl_consume or sl_poll starts them.
 */
sl_client *sl_consumer_new(sl_conf *conf, char *errstr, size_t errstr_size);

/* Where sl_assign starts: the partition's first offset (log start). */
#define SL_OFFSET_BEGINNING (-2)
/* The partition's end (high watermark): only records written from now on. */
#define SL_OFFSET_END (-1)
/* The first record whose timestamp is at or after ms (ms since the epoch,
 * >= 0), as ListOffsets finds it; a partition with none starts at its end. */
#define SL_OFFSET_TIMESTAMP_BASE (-((int64_t)1 << 62))
#define SL_OFFSET_TIMESTAMP(ms)  (SL_OFFSET_TIMESTAMP_BASE + (int64_t)(ms))

/*
 * Adds a partition to the assignment, or moves its position when assigned
 * already (records of the old position still queued are dropped). offset is
 * an absolute offset (>= 0), SL_OFFSET_BEGINNING, SL_OFFSET_END or
 * SL_OFFSET_TIMESTAMP(ms). An absolute offset outside the log is handled by
 * auto.offset.reset. Never blocks, never calls back. Returns SL_OK,
 * SL_ERR_INVALID_ARG, SL_ERR_UNKNOWN_PARTITION (the topic is known to have
 * fewer partitions), SL_ERR_QUEUE_FULL (the client's bound on
 * assigned partitions, 65536), SL_ERR_NOMEM, or SL_ERR_STATE (not a consumer).
 */
sl_err sl_assign(sl_client *client, const char *topic, int32_t partition, int64_t offset);

/*
 * A consumed record, or an event of one partition (err != SL_OK). Made by
 * sl_consume, owned by the caller from then on and freed with
 * sl_record_free; it stays valid after sl_close. Every pointer points into
 * the record's own allocation.
 */
typedef struct sl_record {
    /* SL_OK: a record. Else an event of (topic, partition), with offset the
     * position it happened at:
     *   SL_ERR_PARTITION_EOF        position reached the high watermark
     *                               (enable.partition.eof = true)
     *   SL_ERR_OFFSET_OUT_OF_RANGE  with auto.offset.reset = none; the
     *                               partition stops until sl_assign moves it
     *   SL_ERR_BAD_MSG              a batch did not decode; the partition stops
     *   other Kafka codes           a non-retriable fetch error; it stops */
    sl_err err;
    const char *topic; /* NUL-terminated */
    int32_t partition;
    int64_t offset;
    int64_t timestamp;  /* ms since the epoch */
    int timestamp_type; /* 0: CreateTime (the producer's), 1: LogAppendTime */
    const void *key;    /* NULL: a null key */
    size_t key_len;
    const void *value; /* NULL: a null value */
    size_t value_len;
    const sl_header *headers; /* header_count of them, in record order */
    size_t header_count;
    int64_t high_watermark; /* the partition's, as of the fetch that brought it */
} sl_record;

/*
 * The next record or event of the assigned partitions, in offset order per
 * partition. Does the client's work (I/O, timers, the error callback) for
 * up to timeout_ms (0: only what is ready; -1: no limit) until one is
 * queued. Returns it (free it with sl_record_free), or NULL when the time
 * passed, or when called on a producer, inside a callback or with nothing
 * assigned (then at once).
 */
sl_record *sl_consume(sl_client *client, int timeout_ms);

/* Frees a record of sl_consume. sl_record_free(NULL) is a no-op. */
void sl_record_free(sl_record *record);

/*
 * The position (next offset to be returned by sl_consume, -1 while not
 * known yet) and the last high watermark seen (-1 before the first fetch)
 * of an assigned partition. SL_OK, or SL_ERR_UNKNOWN_PARTITION when it is
 * not assigned, or SL_ERR_STATE.
 */
sl_err sl_position(sl_client *client, const char *topic, int32_t partition, int64_t *offset,
                   int64_t *high_watermark);

/* ---------------------------------------------------------- consumer groups */

/* A partition and an offset: what commits, the rebalance callback and the
 * commit callback carry. */
typedef struct sl_topic_partition {
    const char *topic; /* NUL-terminated */
    int32_t partition;
    int64_t offset; /* commits: the next offset to read; -1: none */
    sl_err err;     /* the commit callback: this partition's outcome */
} sl_topic_partition;

/* What a rebalance callback is told. */
typedef enum sl_rebalance {
    /* The partitions are the consumer's now; each starts at the group's
     * committed offset (else auto.offset.reset). sl_seek may move them. */
    SL_REBALANCE_ASSIGN = 1,
    /* The partitions are being given up (a rebalance, leaving the group, or
     * sl_close). With enable.auto.commit, what sl_consume handed out of them
     * is committed after the callback returns and before the group moves
     * on; sl_commit(..., async = 1) from inside the callback is sent first
     * too. Records of them still queued are dropped. */
    SL_REBALANCE_REVOKE = 2,
    /* Like REVOKE, but the membership was lost already (the session timed
     * out, the member was fenced): commits would be refused, none is made. */
    SL_REBALANCE_LOST = 3,
} sl_rebalance;

/* Called inside sl_consume, sl_poll or sl_close with the whole set of
 * partitions assigned or revoked (sorted by topic, then partition); parts
 * are valid during the call only. */
typedef void sl_rebalance_cb(void *opaque, sl_rebalance kind, const sl_topic_partition *parts,
                             size_t count);
/* The outcome of an asynchronous commit (and of auto-commits), per
 * partition; err is the first error of any, else SL_OK. Same threads. */
typedef void sl_commit_cb(void *opaque, sl_err err, const sl_topic_partition *offsets,
                          size_t count);

void sl_conf_set_rebalance_cb(sl_conf *conf, sl_rebalance_cb *cb);
void sl_conf_set_commit_cb(sl_conf *conf, sl_commit_cb *cb);

/*
 * Joins the consumer's group (group.id) subscribed to these topics: the
 * group's members share their partitions, each partition read by one member
 * at a time, assigned by the leader with the assignor the members agree on
 * (range or roundrobin). Replaces an earlier subscription (a rebalance
 * follows). Never blocks, never calls back: sl_consume does the work and
 * calls the rebalance callback. Returns SL_OK, SL_ERR_INVALID_ARG (no
 * group.id, a bad topic name, none or more than 1024 topics),
 * SL_ERR_STATE (not a consumer, or partitions were sl_assign'ed) or
 * SL_ERR_NOMEM.
 */
sl_err sl_subscribe(sl_client *client, const char *const *topics, size_t count);

/*
 * Commits offsets for the group: offsets NULL commits what sl_consume has
 * handed out of every assigned partition (the offset after the last record
 * of each), else the count entries given. async = 0 waits up to the
 * request timeout for the answer and returns it (not inside a callback:
 * SL_ERR_STATE); async != 0 returns at once and the commit callback gets the
 * outcome. Returns SL_OK, the first partition's error, SL_ERR_INVALID_ARG
 * (no group.id), SL_ERR_STATE, or SL_ERR_TIMED_OUT. With nothing to commit,
 * SL_OK at once (and no callback).
 */
sl_err sl_commit(sl_client *client, const sl_topic_partition *offsets, size_t count, int async);

/*
 * Moves the position of an assigned partition (by sl_assign or by the
 * group): offset as in sl_assign. Queued records of the old position are
 * dropped. SL_OK, SL_ERR_UNKNOWN_PARTITION (not assigned),
 * SL_ERR_INVALID_ARG or SL_ERR_STATE.
 */
sl_err sl_seek(sl_client *client, const char *topic, int32_t partition, int64_t offset);

/*
 * The partitions assigned now, with their positions, sorted; *parts is one
 * allocation (names inside), freed with free(). SL_OK, SL_ERR_NOMEM or
 * SL_ERR_STATE.
 */
sl_err sl_assignment(sl_client *client, sl_topic_partition **parts, size_t *count);

/* ------------------------------------------------------------------ events */

/*
 * Does the client's work: I/O, timers, callbacks. Waits up to timeout_ms
 * (0: do what is ready and return; -1: until something is served) and
 * returns as soon as it has served at least one callback. Returns the number
 * of callbacks served (>= 0), or SL_ERR_STATE.
 */
int sl_poll(sl_client *client, int timeout_ms);

/*
 * A file descriptor for an external event loop: it becomes readable when the
 * client has work to do, and then sl_poll(client, 0) does it. Watch it for
 * reading only, do not read or close it; it is valid until sl_close.
 */
int sl_fd(const sl_client *client);

/*
 * Sends every queued message at once (linger.ms is cut short) and polls
 * until each has been reported or timeout_ms passes (-1: no limit). Returns
 * SL_OK when the queue is empty, SL_ERR_TIMED_OUT, or SL_ERR_STATE.
 */
sl_err sl_flush(sl_client *client, int timeout_ms);

/*
 * The partition count of topic, asking the brokers for metadata when it is
 * not known yet (which, as for a first sl_produce, may create the topic where
 * brokers auto-create topics). Polls (and serves callbacks) for up to
 * timeout_ms. Returns SL_OK with *count set, Kafka's
 * SL_ERR_UNKNOWN_TOPIC_OR_PARTITION, SL_ERR_ALL_BROKERS_DOWN (as soon as every
 * broker has failed; the error callback said why), SL_ERR_TIMED_OUT,
 * SL_ERR_INVALID_ARG or SL_ERR_STATE.
 */
sl_err sl_topic_partitions(sl_client *client, const char *topic, int timeout_ms, int32_t *count);

/*
 * Flushes for up to timeout_ms (0: not at all), then reports every message
 * still held: SL_ERR_CLOSED_UNSENT for those never sent, SL_ERR_CLOSED_INFLIGHT
 * for those sent and not answered. Then closes the connections and frees the
 * client. Returns SL_OK when nothing was left to report so (every message
 * had been delivered or had failed before), else SL_ERR_TIMED_OUT. Call it
 * outside callbacks (else SL_ERR_STATE, and nothing is closed).
 * sl_close(NULL, ...) is a no-op.
 */
sl_err sl_close(sl_client *client, int timeout_ms);

/* ------------------------------------------------------------------ admin */

/*
 * Admin calls work on any client (producer, consumer, or one of
 * sl_admin_new). Each is synchronous: it polls the client (serving its
 * callbacks, as sl_flush does) until the answer comes or timeout_ms passes
 * (-1: no limit), and is refused inside a callback (SL_ERR_STATE). A call
 * that times out leaves its requests in flight; their answers are dropped.
 * Each result is one heap object, freed with its own free function (NULL
 * is a no-op); every pointer inside points into it. Besides the outcomes
 * named per call, every call may return SL_ERR_INVALID_ARG, SL_ERR_NOMEM,
 * SL_ERR_TIMED_OUT, SL_ERR_ALL_BROKERS_DOWN (the error callback said why),
 * SL_ERR_TRANSPORT (the connection was lost mid-call), SL_ERR_BAD_RESPONSE
 * or SL_ERR_UNSUPPORTED_FEATURE (the broker lacks the API or a version it
 * needs); on any of those no result is made (*out is NULL).
 */

/*
 * A client for admin calls: a producer with idempotence off, so that it
 * never asks for a producer id (InitProducerId); it is not meant for
 * sl_produce. Ownership of conf as sl_producer_new; close it with sl_close.
 */
sl_client *sl_admin_new(sl_conf *conf, char *errstr, size_t errstr_size);

/* A topic to create. */
typedef struct sl_new_topic {
    const char *name;
    int32_t partitions;         /* -1: the broker's num.partitions */
    int16_t replication_factor; /* -1: the broker's default.replication.factor */
    const char *const *configs; /* config_count "key=value" settings of the topic */
    size_t config_count;
} sl_new_topic;

/* The outcome for one topic of a create or delete. */
typedef struct sl_topic_result {
    const char *name;
    sl_err err;
    const char *message; /* the broker's explanation; NULL when it gave none */
} sl_topic_result;

typedef struct sl_topic_results {
    sl_topic_result *results; /* in the order the broker answered */
    size_t count;
} sl_topic_results;

/*
 * Creates topics (CreateTopics at the controller), or only checks that they
 * could be created (validate_only != 0). Borrows topics. Returns SL_OK when
 * every topic was created, else the first topic's error (such as
 * SL_ERR_TOPIC_ALREADY_EXISTS, SL_ERR_INVALID_REPLICATION_FACTOR,
 * SL_ERR_INVALID_CONFIG), with *out set either way when the broker
 * answered: each topic's error and message. Free with sl_topic_results_free.
 */
sl_err sl_create_topics(sl_client *client, const sl_new_topic *topics, size_t count,
                        int validate_only, int timeout_ms, sl_topic_results **out);

/* Deletes topics by name; results as sl_create_topics (a missing topic:
 * SL_ERR_UNKNOWN_TOPIC_OR_PARTITION). */
sl_err sl_delete_topics(sl_client *client, const char *const *names, size_t count, int timeout_ms,
                        sl_topic_results **out);

void sl_topic_results_free(sl_topic_results *results);

typedef struct sl_broker_info {
    int32_t id;
    const char *host;
    int32_t port;
    const char *rack; /* NULL: none */
} sl_broker_info;

typedef struct sl_partition_info {
    int32_t id;
    sl_err err;           /* SL_OK, or LEADER_NOT_AVAILABLE ... */
    int32_t leader;       /* node id, -1: none */
    int32_t leader_epoch; /* -1: unknown (old versions) */
    const int32_t *replicas;
    size_t replica_count;
    const int32_t *isr;
    size_t isr_count;
    const int32_t *offline; /* replicas offline */
    size_t offline_count;
} sl_partition_info;

typedef struct sl_topic_info {
    const char *name;
    uint8_t id[16];                /* all zero when the broker does not say (before v10) */
    int internal;                  /* 1: a topic of the broker's own (__consumer_offsets) */
    sl_err err;                    /* SL_OK, SL_ERR_UNKNOWN_TOPIC_OR_PARTITION ... */
    sl_partition_info *partitions; /* sorted by id */
    size_t partition_count;
} sl_topic_info;

typedef struct sl_metadata {
    const char *cluster_id;  /* NULL: the broker has none */
    int32_t controller_id;   /* -1: unknown */
    sl_broker_info *brokers; /* sorted by id */
    size_t broker_count;
    sl_topic_info *topics; /* sorted by name */
    size_t topic_count;
} sl_metadata;

/*
 * The cluster's brokers and topics (Metadata). topics NULL (count 0):
 * every topic; non-NULL with count 0: none (the brokers only); else those
 * named, each with its own error when it does not exist (never created by
 * asking). Returns SL_OK with *out set; free it with sl_metadata_free.
 */
sl_err sl_fetch_metadata(sl_client *client, const char *const *topics, size_t count, int timeout_ms,
                         sl_metadata **out);

void sl_metadata_free(sl_metadata *metadata);

/* Kafka's ConfigSource values, as sl_config_entry.source. */
#define SL_CONFIG_SOURCE_UNKNOWN                0
#define SL_CONFIG_SOURCE_TOPIC                  1 /* set on the topic */
#define SL_CONFIG_SOURCE_DYNAMIC_BROKER         2
#define SL_CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER 3
#define SL_CONFIG_SOURCE_STATIC_BROKER          4 /* the broker's configuration file */
#define SL_CONFIG_SOURCE_DEFAULT                5 /* Kafka's built-in default */

typedef struct sl_config_entry {
    const char *name;
    const char *value; /* NULL: none, or sensitive */
    int source;        /* SL_CONFIG_SOURCE_* */
    int read_only;
    int is_default; /* not set on the topic itself */
    int sensitive;
} sl_config_entry;

typedef struct sl_configs {
    sl_config_entry *entries; /* sorted by name */
    size_t count;
} sl_configs;

/*
 * A topic's configuration (DescribeConfigs): every key, with its value and
 * where the value comes from. Returns SL_OK with *out set (free it with
 * sl_configs_free), or the broker's error for the topic (such as
 * SL_ERR_UNKNOWN_TOPIC_OR_PARTITION), then *out is NULL.
 */
sl_err sl_describe_topic_configs(sl_client *client, const char *topic, int timeout_ms,
                                 sl_configs **out);

void sl_configs_free(sl_configs *configs);

/*
 * Offsets of partitions by time (ListOffsets at each partition's leader):
 * in each entry, the caller sets topic, partition and offset =
 * SL_OFFSET_BEGINNING (the log start), SL_OFFSET_END (the high watermark)
 * or SL_OFFSET_TIMESTAMP(ms) (the first record at or after ms; -1 when none
 * is); on return offset holds the answer and err the partition's outcome
 * (-1 offset when err != SL_OK). A partition may appear once per call
 * (else SL_ERR_INVALID_ARG). Returns SL_OK when every partition was
 * answered, else the first partition's error (every entry has its own).
 */
sl_err sl_list_offsets(sl_client *client, sl_topic_partition *parts, size_t count, int timeout_ms);

typedef struct sl_group_listing {
    const char *group_id;
    const char *protocol_type; /* "consumer" for Kafka consumers; "" for offsets only */
    const char *state;         /* "Stable", "Empty" ...; NULL: the broker does not say */
} sl_group_listing;

typedef struct sl_group_list {
    sl_group_listing *groups; /* sorted by id */
    size_t count;
} sl_group_list;

/* Every group of the cluster (ListGroups at every broker). Returns SL_OK
 * with *out set (free it with sl_group_list_free), or a broker's error. */
sl_err sl_list_groups(sl_client *client, int timeout_ms, sl_group_list **out);

void sl_group_list_free(sl_group_list *list);

/* One topic of a member's assignment. */
typedef struct sl_member_topic {
    const char *topic;
    int32_t *partitions;
    size_t partition_count;
} sl_member_topic;

typedef struct sl_group_member {
    const char *member_id;
    const char *group_instance_id; /* NULL: not a static member */
    const char *client_id;
    const char *host;
    /* The assignment, decoded from the consumer protocol's bytes (protocol
     * type "consumer"); none when the group is of another type or the
     * bytes do not decode. */
    sl_member_topic *assignment;
    size_t assignment_count;
} sl_group_member;

typedef struct sl_group_description {
    const char *group_id;
    const char *state; /* "Stable", "Empty", "PreparingRebalance", "Dead" (no such group) ... */
    const char *protocol_type; /* "consumer", ... */
    const char *protocol;      /* the assignor: "range", ... */
    int32_t coordinator_id;
    sl_group_member *members;
    size_t member_count;
} sl_group_description;

/*
 * A group and its members (FindCoordinator, then DescribeGroups at the
 * coordinator). A group that does not exist is described, as Kafka does,
 * with state "Dead" and no members. Returns SL_OK with *out set (free it
 * with sl_group_description_free), or the group's error.
 */
sl_err sl_describe_group(sl_client *client, const char *group, int timeout_ms,
                         sl_group_description **out);

void sl_group_description_free(sl_group_description *description);

typedef struct sl_group_offsets {
    sl_topic_partition *offsets; /* offset -1: nothing committed; sorted */
    size_t count;
} sl_group_offsets;

/*
 * The offsets committed by a group (OffsetFetch at its coordinator): for
 * the partitions named (offset and err of each are not read), or with
 * parts NULL (count 0) for every partition it has committed. Returns SL_OK
 * with *out set (free it with sl_group_offsets_free), or the group's error.
 */
sl_err sl_committed_offsets(sl_client *client, const char *group, const sl_topic_partition *parts,
                            size_t count, int timeout_ms, sl_group_offsets **out);

void sl_group_offsets_free(sl_group_offsets *offsets);

/*
 * Commits offsets for a group from outside it (OffsetCommit with no
 * generation and no member, as kafka-consumer-groups --reset-offsets): each
 * entry's offset (>= 0) becomes the partition's committed offset, and its
 * err is set to the partition's outcome. The coordinator refuses while the
 * group has members (SL_ERR_UNKNOWN_MEMBER_ID from Kafka and sluiced).
 * Returns SL_OK, or the first partition's error.
 */
sl_err sl_commit_group_offsets(sl_client *client, const char *group, sl_topic_partition *parts,
                               size_t count, int timeout_ms);

/* Deletes a group and its committed offsets (DeleteGroups at its
 * coordinator). SL_OK, or the group's error: SL_ERR_NON_EMPTY_GROUP while
 * it has members, SL_ERR_GROUP_ID_NOT_FOUND. */
sl_err sl_delete_group(sl_client *client, const char *group, int timeout_ms);

#ifdef __cplusplus
}
#endif

#endif
