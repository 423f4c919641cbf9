/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sluice-bench's shared state: the options, one context per producer and
 * consumer thread, and the run's clock. Each client (sl_client) lives on its
 * own thread, which alone calls into it (libsluice's threading rule); the
 * threads share only the atomic counters below and each consumer's
 * per-second histogram, under that consumer's mutex.
 *
 * Message layout (the value of every message): bytes 0..7 the send time,
 * CLOCK_REALTIME in ns since the epoch, big-endian; the rest random bytes,
 * cut from a pool of BENCH_POOL_BYTES per producer, so that no two values of
 * a batch repeat each other (incompressible: zstd's ratio on a batch is ~1).
 * Keys are null. Without consumers (--consumers 0) nothing reads the stamp,
 * and it is left out: the value is all random bytes, like kafka-bench's. The
 * stamps' common high bytes, one every value, are matches zstd stops for:
 * with them zstd spends about twice the CPU on a batch of 1 KiB values.
 */
#ifndef SLUICE_BENCH_H
#define SLUICE_BENCH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "client/bench/hist.h"
#include "client/sluice.h"

/* Limits of the options; each has the reason beside it. */
#define BENCH_CLIENTS_MAX    64      /* producers, consumers: a thread each */
#define BENCH_STAMP_BYTES    8       /* the send time at the head of each value */
#define BENCH_SIZE_MAX       1000000 /* libsluice's default message.max.bytes */
#define BENCH_SECONDS_MAX    86400   /* warm-up and duration: the timeline's bound */
#define BENCH_PARTITIONS_MAX 65536   /* libsluice's bound on assigned partitions */
#define BENCH_ERRORS_PRINTED 10      /* error callbacks printed per client */
#define BENCH_SETTINGS_MAX   32      /* -X options: more is a mistake */
/* Random bytes the values are cut from: more than a batch (batch.size
 * defaults to 1 MB), so that a batch holds no repeats for zstd to find. */
#define BENCH_POOL_BYTES (8u << 20)
/* --count at most: it is parsed as a long, 32 bits on some platforms. */
#define BENCH_COUNT_MAX 2000000000L
/* --topics at most: each is a CreateTopics and a metadata entry per client. */
#define BENCH_TOPICS_MAX 256
/* Bytes of a topic name: --topic plus "-NNN". */
#define BENCH_TOPIC_NAME_BYTES 256

struct bench_options {
    const char *brokers;
    const char *topic;  /* the topic, or with --topics N the names' stem: T-0..T-(N-1) */
    int topics;         /* topics written and read, in turn message by message */
    int32_t partitions; /* of each topic, when created; an existing one keeps its own */
    int producers;
    int consumers;
    uint32_t size;           /* value bytes, BENCH_STAMP_BYTES..BENCH_SIZE_MAX: the least */
    uint32_t size_max;       /* the most: each value's size is uniform in size..size_max */
    double rate;             /* messages/s over all producers; 0: as fast as possible */
    const char *acks;        /* "1" or "all" */
    const char *compression; /* "none" or "zstd" */
    bool idempotence;        /* default: on with acks=all, off with acks=1 (libsluice's rule) */
    const char *settings[BENCH_SETTINGS_MAX]; /* -X KEY=VALUE, for every client */
    int setting_count;
    uint64_t count;        /* messages over all producers; 0: produce for the duration */
    int groups;            /* 0: consumers share the partitions by assignment; else
                            * consumer i joins group i % groups, each reading all */
    uint64_t prefill;      /* messages written before the run, untimed */
    bool consume_existing; /* consumers read the topic from its start to its end */
    int warmup_s;
    int duration_s;        /* with count: the deadline */
    int drain_s;           /* the longest wait for consumers to catch up at the end */
    const char *json_path; /* NULL: no JSON */
    bool quick;
};

/* The run's clock, CLOCK_REALTIME ns: fixed before any producer starts. */
struct bench_clock {
    int64_t start_ns;         /* producers start */
    int64_t measure_start_ns; /* warm-up ends */
    int64_t measure_end_ns;   /* producers stop */
};

struct bench;

struct bench_producer {
    struct bench *bench;
    int index;
    sl_client *client;
    pthread_t thread;
    atomic_uint_least64_t delivered;                /* SL_OK reports, whole run */
    atomic_uint_least64_t delivered_measured;       /* ... of messages sent in the window */
    atomic_uint_least64_t delivered_bytes;          /* their value bytes, whole run */
    atomic_uint_least64_t delivered_bytes_measured; /* ... in the window */
    atomic_uint_least64_t failed;                   /* reports with an error */
    atomic_int first_error;                         /* sl_err of the first failure */
    int64_t last_delivery_ns;                       /* this thread's; read after the join */
    uint8_t *pool; /* the values' bytes: BENCH_POOL_BYTES + size, filled before the clock */
    uint64_t errors_printed;
    struct hist ack_latency; /* send to delivery report, measured window; this thread's */
};

struct bench_consumer {
    struct bench *bench;
    int index;
    sl_client *client;
    pthread_t thread;
    /* Slots assigned: topic t's partition p is slot t * partitions_used + p
     * (bench_slot); partition_count of them (a group's: as it says). */
    int32_t *partitions;
    int32_t partition_count;
    bool assigned;                        /* by hand, or the group's first assignment came */
    bool *at_end;                         /* --consume-existing: per slot */
    int32_t ends_due;                     /* partitions not at their end yet */
    atomic_bool done;                     /* --consume-existing: every partition read to its end */
    int64_t done_ns;                      /* when; read after the join */
    atomic_bool ready;                    /* every partition's start (its end) is resolved */
    atomic_uint_least64_t consumed;       /* records, whole run */
    atomic_uint_least64_t consumed_bytes; /* their value bytes */
    atomic_uint_least64_t consumed_measured;       /* records sent in the window */
    atomic_uint_least64_t consumed_bytes_measured; /* their value bytes */
    atomic_uint_least64_t failed;                  /* error events */
    uint64_t errors_printed;
    pthread_mutex_t lock; /* guards interval */
    struct hist interval; /* e2e latency since the last per-second line */
    struct hist e2e;      /* e2e latency of messages sent in the window; this thread's */
};

/* One per-second line, kept for the JSON timeline. */
struct bench_tick {
    int t_s; /* seconds since producers started */
    bool measuring;
    double produce_msgs_per_s;
    double produce_mb_per_s;
    double consume_msgs_per_s;
    double consume_mb_per_s;
    uint64_t e2e_p50_us;
    uint64_t e2e_p99_us;
};

struct bench {
    struct bench_options opt;
    int32_t partitions_used;                     /* of each topic (the least, when they differ) */
    char (*topic_names)[BENCH_TOPIC_NAME_BYTES]; /* opt.topics of them */
    const char **topic_list;                     /* the same, as a list */
    struct bench_clock clock;
    atomic_bool stop_producing;
    atomic_bool stop_consuming;
    atomic_bool aborted;         /* a producer stopped on an sl_produce error */
    atomic_int producers_closed; /* producers past sl_close */
    double measured_s;           /* the duration; with count, first send to last report; with
                                  * --consume-existing, start to the last partition's end */
    struct bench_producer *producers;
    struct bench_consumer *consumers;
    struct bench_tick *ticks; /* tick_capacity of them */
    int tick_count;
    int tick_capacity;
    bool drained; /* consumers caught up with every delivered message */
    double drain_s;
    char started_at[32]; /* ISO 8601, UTC */
};

/* Nanoseconds of CLOCK_REALTIME. */
int64_t bench_now_ns(void);
/* The slot of (topic, partition), -1 when not one of the run's. */
int32_t bench_slot(const struct bench *b, const char *topic, int32_t partition);

/* workers.c: the client threads. A start returns 0 or -errno (pthread_create). */
/* Sets the callbacks (and their opaque) a client's conf needs, before sl_*_new. */
void bench_producer_conf(sl_conf *conf, struct bench_producer *p);
void bench_consumer_conf(sl_conf *conf, struct bench_consumer *c);
int bench_producer_start(struct bench_producer *p);
/* Fills p->pool, before the run's clock starts (so that a --count run does
 * not time it); 0 or -ENOMEM. bench_free frees it. */
int bench_producer_pool(struct bench_producer *p);
int bench_consumer_start(struct bench_consumer *c);

/* report.c: output. */
void bench_tick_print(struct bench *b, struct bench_tick *tick, const struct hist *interval);
void bench_summary_print(const struct bench *b, const struct hist *e2e, const struct hist *ack);
/* 0, or -errno when the file cannot be written. */
int bench_json_write(const struct bench *b, const struct hist *e2e, const struct hist *ack);

#endif
