/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sluice-bench's client threads: one per producer and one per consumer, each
 * the only caller of its sl_client (so libsluice's caller-driven model holds
 * without locks around it, and a consumer blocks in sl_consume, waking on its
 * socket, so its latency is not that of a shared busy loop).
 *
 * A producer sends until bench.stop_producing, paced to its share of --rate
 * (open loop: it catches up after a stall, at most PRODUCE_BURST_MAX at a
 * time) or as fast as the queue allows; then sl_close flushes what is held.
 * With --count it stops after its share of the count instead.
 * A consumer reads its partitions from their end until bench.stop_consuming,
 * and computes each record's end-to-end latency from the stamp in its value.
 * With --groups it subscribes as a member of its group instead, which
 * assigns it partitions (the rebalance callback records them); with
 * --consume-existing it reads its partitions from their start until each
 * has reached its end (PARTITION_EOF), and times only that.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/bench/bench.h"

/* Messages, and value bytes, produced between two sl_poll(0). libsluice does
 * its I/O only inside sl_poll, on this thread: a burst is as long as an
 * answer waits to be read and a half-sent request waits for the rest of its
 * bytes, so it is kept to about what the socket takes in one go. */
#define PRODUCE_BURST_MAX       1000
#define PRODUCE_BURST_BYTES_MAX (64 * 1024)
/* How long a producer waits in sl_poll when it is ahead or the queue is full. */
#define PRODUCER_WAIT_MS 1
/* sl_consume's wait, so that stop_consuming is seen. */
#define CONSUME_SLICE_MS 100
/* sl_close of a group member: its LeaveGroup. */
#define CONSUMER_CLOSE_MS 5000
/* sl_close's flush of the producers' last messages. */
#define PRODUCER_CLOSE_MS 30000

_Static_assert(sizeof(void *) >= sizeof(int64_t), "the send time travels in msg_opaque");

/* msg_opaque of a message: its send time (us since the run's start) above
 * OPAQUE_SIZE_BITS, its value size below; a day of run fits 2^37 us. */
#define OPAQUE_SIZE_BITS 20
_Static_assert(BENCH_SIZE_MAX < (1 << OPAQUE_SIZE_BITS), "a size fits its bits");

static void *opaque_of(const struct bench *b, int64_t sent_ns, uint32_t size)
{
    uint64_t us = (uint64_t)(sent_ns - b->clock.start_ns) / 1000;
    return (void *)(uintptr_t)((us << OPAQUE_SIZE_BITS) | size);
}

static int64_t opaque_sent_ns(const struct bench *b, const void *opaque)
{
    return b->clock.start_ns + (int64_t)((uintptr_t)opaque >> OPAQUE_SIZE_BITS) * 1000;
}

static uint32_t opaque_size(const void *opaque)
{
    return (uint32_t)((uintptr_t)opaque & ((1u << OPAQUE_SIZE_BITS) - 1));
}

int64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void stamp_put(uint8_t *p, int64_t ns)
{
    uint64_t v = (uint64_t)ns;
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static int64_t stamp_get(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    return (int64_t)v;
}

int32_t bench_slot(const struct bench *b, const char *topic, int32_t partition)
{
    if (partition < 0 || partition >= b->partitions_used) {
        return -1;
    }
    for (int t = 0; t < b->opt.topics; t++) {
        if (strcmp(b->topic_names[t], topic) == 0) {
            return t * b->partitions_used + partition;
        }
    }
    return -1;
}

/* The topic and partition of a slot. */
static const char *slot_topic(const struct bench *b, int32_t slot)
{
    return b->topic_names[slot / b->partitions_used];
}

static int32_t slot_partition(const struct bench *b, int32_t slot)
{
    return slot % b->partitions_used;
}

static bool in_window(const struct bench *b, int64_t sent_ns)
{
    return sent_ns >= b->clock.measure_start_ns && sent_ns < b->clock.measure_end_ns;
}

/* ---------------------------------------------------------------- producer */

static void on_delivery(void *opaque, const sl_delivery *d)
{
    struct bench_producer *p = opaque;
    int64_t sent_ns = opaque_sent_ns(p->bench, d->msg_opaque);
    uint32_t size = opaque_size(d->msg_opaque);
    int64_t now_ns = bench_now_ns();
    p->last_delivery_ns = now_ns;
    if (d->err != SL_OK) {
        if (atomic_fetch_add(&p->failed, 1) == 0) {
            atomic_store(&p->first_error, (int)d->err);
        }
        return;
    }
    atomic_fetch_add_explicit(&p->delivered, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->delivered_bytes, size, memory_order_relaxed);
    if (in_window(p->bench, sent_ns)) {
        atomic_fetch_add_explicit(&p->delivered_measured, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&p->delivered_bytes_measured, size, memory_order_relaxed);
        int64_t latency_ns = now_ns - sent_ns;
        hist_record(&p->ack_latency, latency_ns > 0 ? (uint64_t)latency_ns / 1000 : 0);
    }
}

static void on_producer_error(void *opaque, sl_err err, const char *reason)
{
    struct bench_producer *p = opaque;
    if (p->errors_printed++ < BENCH_ERRORS_PRINTED) {
        fprintf(stderr, "sluice-bench: producer %d: %s (%s)\n", p->index, reason, sl_err_name(err));
    }
}

/* This producer's part of --count: an even share, the remainder to the first. */
static uint64_t producer_quota(const struct bench_producer *p)
{
    const struct bench *b = p->bench;
    uint64_t producers = (uint64_t)b->opt.producers;
    return b->opt.count / producers + ((uint64_t)p->index < b->opt.count % producers ? 1 : 0);
}

/* How many messages the producer may send now: its share of the rate since
 * start, less what it sent, at most a burst, and no more than is left of its
 * quota (left: UINT64_MAX without --count). */
static uint64_t producer_due(const struct bench_producer *p, uint64_t sent, uint64_t left)
{
    const struct bench *b = p->bench;
    uint64_t burst = PRODUCE_BURST_BYTES_MAX / b->opt.size_max;
    burst = burst < 1 ? 1 : burst > PRODUCE_BURST_MAX ? PRODUCE_BURST_MAX : burst;
    if (b->opt.rate <= 0) {
        return left < burst ? left : burst;
    }
    double per_producer = b->opt.rate / b->opt.producers;
    double elapsed_s = (double)(bench_now_ns() - b->clock.start_ns) / 1e9;
    double due = elapsed_s * per_producer - (double)sent;
    if (due <= 0) {
        return 0;
    }
    uint64_t most = left < burst ? left : burst;
    return due > (double)most ? most : (uint64_t)due;
}

static void *producer_main(void *arg)
{
    struct bench_producer *p = arg;
    struct bench *b = p->bench;
    uint8_t *pool = p->pool;
    /* Each value is the next size bytes of the pool, which wraps: no two
     * values of a batch are alike, as with independent random values. */
    size_t offset = 0;
    sl_msg msg = {.partition = SL_PARTITION_ANY};
    uint32_t span = b->opt.size_max - b->opt.size + 1; /* sizes to choose from */
    uint64_t rng = 0x2545f4914f6cdd1dull * (uint64_t)(p->index + 1);
    uint64_t sent = 0;
    uint64_t quota = b->opt.count > 0 ? producer_quota(p) : UINT64_MAX;
    while (sent < quota && !atomic_load_explicit(&b->stop_producing, memory_order_relaxed)) {
        uint64_t due = producer_due(p, sent, quota - sent);
        bool full = false;
        for (uint64_t i = 0; i < due; i++) {
            int64_t now_ns = bench_now_ns();
            uint32_t size = b->opt.size;
            if (span > 1) {
                rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
                size += (uint32_t)(rng % span);
            }
            uint8_t *value = pool + offset;
            offset = (offset + size) % BENCH_POOL_BYTES;
            if (b->opt.consumers > 0) {
                stamp_put(value, now_ns);
            }
            msg.topic = b->topic_names[sent % (uint64_t)b->opt.topics];
            msg.value = value;
            msg.value_len = size;
            msg.opaque = opaque_of(b, now_ns, size);
            sl_err err = sl_produce(p->client, &msg);
            if (err == SL_ERR_QUEUE_FULL) {
                full = true;
                break;
            }
            if (err != SL_OK) {
                fprintf(stderr, "sluice-bench: producer %d: %s\n", p->index, sl_err_str(err));
                atomic_store(&b->aborted, true);
                atomic_store(&b->stop_producing, true);
                break;
            }
            sent++;
        }
        sl_poll(p->client, due == 0 || full ? PRODUCER_WAIT_MS : 0);
    }
    sl_err err = sl_close(p->client, PRODUCER_CLOSE_MS);
    if (err != SL_OK) {
        fprintf(stderr, "sluice-bench: producer %d: close: %s\n", p->index, sl_err_str(err));
    }
    p->client = NULL;
    atomic_fetch_add(&b->producers_closed, 1);
    return NULL;
}

int bench_producer_pool(struct bench_producer *p)
{
    size_t bytes = BENCH_POOL_BYTES + p->bench->opt.size_max;
    p->pool = malloc(bytes);
    if (p->pool == NULL) {
        return -ENOMEM;
    }
    uint64_t rng = 0x9e3779b97f4a7c15ull * (uint64_t)(p->index + 1);
    for (size_t i = 0; i < bytes; i++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        p->pool[i] = (uint8_t)rng;
    }
    return 0;
}

int bench_producer_start(struct bench_producer *p)
{
    if (p->pool == NULL) {
        return -EINVAL; /* bench_producer_pool comes first */
    }
    hist_init(&p->ack_latency);
    atomic_init(&p->delivered, 0);
    atomic_init(&p->delivered_measured, 0);
    atomic_init(&p->delivered_bytes, 0);
    atomic_init(&p->delivered_bytes_measured, 0);
    atomic_init(&p->failed, 0);
    atomic_init(&p->first_error, SL_OK);
    p->last_delivery_ns = 0;
    return -pthread_create(&p->thread, NULL, producer_main, p);
}

void bench_producer_conf(sl_conf *conf, struct bench_producer *p)
{
    sl_conf_set_delivery_cb(conf, on_delivery);
    sl_conf_set_error_cb(conf, on_producer_error);
    sl_conf_set_opaque(conf, p);
}

/* ---------------------------------------------------------------- consumer */

static void on_consumer_error(void *opaque, sl_err err, const char *reason)
{
    struct bench_consumer *c = opaque;
    if (c->errors_printed++ < BENCH_ERRORS_PRINTED) {
        fprintf(stderr, "sluice-bench: consumer %d: %s (%s)\n", c->index, reason, sl_err_name(err));
    }
}

/* The group's assignment (on the consumer's own thread, inside sl_consume). */
static void on_rebalance(void *opaque, sl_rebalance kind, const sl_topic_partition *parts,
                         size_t count)
{
    struct bench_consumer *c = opaque;
    c->partition_count = 0;
    if (kind != SL_REBALANCE_ASSIGN) {
        return;
    }
    int32_t slots = c->bench->partitions_used * c->bench->opt.topics;
    for (size_t i = 0; i < count && c->partition_count < slots; i++) {
        int32_t slot = bench_slot(c->bench, parts[i].topic, parts[i].partition);
        if (slot >= 0) {
            c->partitions[c->partition_count++] = slot;
        }
    }
    c->assigned = true;
}

void bench_consumer_conf(sl_conf *conf, struct bench_consumer *c)
{
    sl_conf_set_error_cb(conf, on_consumer_error);
    sl_conf_set_rebalance_cb(conf, on_rebalance);
    sl_conf_set_opaque(conf, c);
}

/* --consume-existing: a partition reached its end. */
static void consumer_at_end(struct bench_consumer *c, const char *topic, int32_t partition)
{
    int32_t slot = bench_slot(c->bench, topic, partition);
    if (c->at_end == NULL || slot < 0 || c->at_end[slot]) {
        return;
    }
    c->at_end[slot] = true;
    if (--c->ends_due == 0) {
        c->done_ns = bench_now_ns();
        atomic_store(&c->done, true);
    }
}

static bool consumer_positions_known(struct bench_consumer *c)
{
    for (int32_t i = 0; i < c->partition_count; i++) {
        int64_t offset, high_watermark;
        if (sl_position(c->client, slot_topic(c->bench, c->partitions[i]),
                        slot_partition(c->bench, c->partitions[i]), &offset,
                        &high_watermark) != SL_OK ||
            offset < 0) {
            return false;
        }
    }
    return true;
}

static void consumer_record(struct bench_consumer *c, const sl_record *r)
{
    if (r->err == SL_ERR_PARTITION_EOF) {
        consumer_at_end(c, r->topic, r->partition);
        return;
    }
    if (r->err != SL_OK) {
        atomic_fetch_add(&c->failed, 1);
        if (c->errors_printed++ < BENCH_ERRORS_PRINTED) {
            fprintf(stderr, "sluice-bench: consumer %d: %s [%d] at %lld: %s\n", c->index, r->topic,
                    r->partition, (long long)r->offset, sl_err_str(r->err));
        }
        return;
    }
    atomic_fetch_add_explicit(&c->consumed, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->consumed_bytes, r->value_len, memory_order_relaxed);
    if (c->bench->opt.consume_existing) {
        /* Old records: their stamps say when they were written, not sent
         * now. Every one counts; none is timed. */
        atomic_fetch_add_explicit(&c->consumed_measured, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&c->consumed_bytes_measured, r->value_len, memory_order_relaxed);
        return;
    }
    if (r->value == NULL || r->value_len < BENCH_STAMP_BYTES) {
        return; /* not one of ours: counted, not timed */
    }
    int64_t sent_ns = stamp_get(r->value);
    int64_t latency_ns = bench_now_ns() - sent_ns;
    uint64_t latency_us = latency_ns > 0 ? (uint64_t)latency_ns / 1000 : 0;
    pthread_mutex_lock(&c->lock);
    hist_record(&c->interval, latency_us);
    pthread_mutex_unlock(&c->lock);
    if (in_window(c->bench, sent_ns)) {
        atomic_fetch_add_explicit(&c->consumed_measured, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&c->consumed_bytes_measured, r->value_len, memory_order_relaxed);
        hist_record(&c->e2e, latency_us);
    }
}

static void *consumer_main(void *arg)
{
    struct bench_consumer *c = arg;
    struct bench *b = c->bench;
    if (b->opt.groups > 0) {
        sl_err err = sl_subscribe(c->client, b->topic_list, (size_t)b->opt.topics);
        if (err != SL_OK) {
            fprintf(stderr, "sluice-bench: consumer %d: subscribe: %s\n", c->index,
                    sl_err_str(err));
        }
    }
    int64_t start = b->opt.consume_existing ? SL_OFFSET_BEGINNING : SL_OFFSET_END;
    for (int32_t i = 0; b->opt.groups == 0 && i < c->partition_count; i++) {
        const char *topic = slot_topic(b, c->partitions[i]);
        int32_t partition = slot_partition(b, c->partitions[i]);
        sl_err err = sl_assign(c->client, topic, partition, start);
        if (err != SL_OK) {
            fprintf(stderr, "sluice-bench: consumer %d: assign %s [%d]: %s\n", c->index, topic,
                    partition, sl_err_str(err));
        }
    }
    while (!atomic_load_explicit(&b->stop_consuming, memory_order_relaxed)) {
        if (c->partition_count == 0 && b->opt.groups == 0) {
            /* More consumers than partitions: this one idles (sl_consume
             * would return at once with nothing assigned). */
            struct timespec slice = {.tv_nsec = CONSUME_SLICE_MS * 1000000L};
            nanosleep(&slice, NULL);
            continue;
        }
        sl_record *r = sl_consume(c->client, CONSUME_SLICE_MS);
        if (r != NULL) {
            consumer_record(c, r);
            sl_record_free(r);
        }
        if (!atomic_load_explicit(&c->ready, memory_order_relaxed) && c->assigned &&
            consumer_positions_known(c)) {
            atomic_store(&c->ready, true);
        }
    }
    /* A member leaves its group at once, so the next run's group starts clean. */
    sl_close(c->client, b->opt.groups > 0 ? CONSUMER_CLOSE_MS : 0);
    c->client = NULL;
    return NULL;
}

/* Partitions assigned by hand (no group): known before the thread starts. */
static bool b_is_manual(const struct bench_consumer *c)
{
    return c->bench->opt.groups == 0;
}

int bench_consumer_start(struct bench_consumer *c)
{
    hist_init(&c->interval);
    hist_init(&c->e2e);
    atomic_init(&c->ready, c->partition_count == 0 && b_is_manual(c));
    atomic_init(&c->done, c->partition_count == 0 && b_is_manual(c));
    atomic_init(&c->consumed, 0);
    atomic_init(&c->consumed_bytes, 0);
    atomic_init(&c->consumed_measured, 0);
    atomic_init(&c->consumed_bytes_measured, 0);
    atomic_init(&c->failed, 0);
    int err = pthread_mutex_init(&c->lock, NULL);
    if (err != 0) {
        return -err;
    }
    return -pthread_create(&c->thread, NULL, consumer_main, c);
}
