/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The producer's answers logic against a scripted broker: the client's
 * broker connection is one end of a socketpair, and the test, at the other
 * end, decodes every request with proto/'s codec and writes the answers it
 * chooses. Metadata and InitProducerId are answered by the script; Produce
 * requests are handed to the test. Checked:
 *   - retries keep order and sequence numbers: a batch refused with a
 *     retriable error holds its partition until the batches behind it are
 *     back, then all go again, in order, byte for byte the same;
 *   - a batch that fails for good leaves a sequence gap: the producer bumps
 *     its epoch (InitProducerId with its id and epoch) and restarts the
 *     sequence at 0 for the batches still to deliver;
 *   - retries end at delivery.timeout.ms with MSG_TIMED_OUT;
 *   - acks=0: delivered, without an offset, once written;
 *   - sl_fd wakes an external loop for socket work and for linger.ms;
 *   - sl_topic_partitions: a count, or Kafka's error for a missing topic,
 *     whose messages wait and are reported at close.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "client/internal.h"
#include "common/bytes.h"
#include "proto/batch.h"
#include "proto/errors.h"
#include "tests/lib/client_fake.h"

#define NODE        1
#define PID         1000
#define ARENA_BYTES (1u << 20)
#define BATCHES_MAX 16
#define REPORTS_MAX 64

struct reports {
    size_t n;
    sl_delivery d[REPORTS_MAX];
    char topic[REPORTS_MAX][32]; /* d[i].topic is valid during the callback only */
};

struct produced {
    int32_t correlation_id;
    int16_t version;
    int16_t acks;
    int n;
    struct {
        int32_t partition;
        uint8_t *bytes;
        size_t len;
        struct batch_header h;
    } batch[BATCHES_MAX];
};

/* An answer owed: Kafka answers a connection's requests in order, so the
 * script's answers are written only once every earlier one is. */
struct owed {
    int32_t correlation_id;
    bool ready;
    struct buf bytes;
};

#define OWED_MAX 64

struct fake {
    struct owed owed[OWED_MAX]; /* in request order */
    int owed_count;
    sl_client *c;
    int fd; /* the broker's end */
    struct buf in;
    int32_t partitions;
    int16_t epoch; /* what InitProducerId answers */
    int init_requests;
    int64_t init_asked_pid;
    int16_t init_asked_epoch;
    int metadata_requests;
    const char *absent_topic; /* metadata says it does not exist */
    struct reports reports;
};

static void on_delivery(void *opaque, const sl_delivery *d)
{
    struct reports *r = opaque;
    assert_true(r->n < REPORTS_MAX);
    snprintf(r->topic[r->n], sizeof(r->topic[r->n]), "%s", d->topic);
    r->d[r->n++] = *d;
}

/* Errors are expected in these scripts (refusals, retries): shown, not checked. */
static void on_error(void *opaque, sl_err err, const char *reason)
{
    (void)opaque;
    fprintf(stderr, "# client error: %s (%s)\n", reason, sl_err_name(err));
}

/* A producer whose broker NODE is the fake; pairs are extra settings. */
static void fake_open(struct fake *f, const char *const *pairs, size_t n)
{
    memset(f, 0, sizeof(*f));
    f->partitions = 1;
    sl_conf *conf = sl_conf_new();
    char err[512];
    assert_int_equal(sl_conf_set(conf, "bootstrap.servers", "127.0.0.1:1", err, sizeof(err)), 0);
    for (size_t i = 0; i < n; i += 2) {
        if (sl_conf_set(conf, pairs[i], pairs[i + 1], err, sizeof(err)) != SL_OK) {
            fail_msg("%s", err);
        }
    }
    sl_conf_set_delivery_cb(conf, on_delivery);
    sl_conf_set_error_cb(conf, on_error);
    sl_conf_set_opaque(conf, &f->reports);
    f->c = sl_producer_new(conf, err, sizeof(err));
    assert_non_null(f->c);
    static const struct tu_api_version versions[] = {
        {KMSG_API_PRODUCE, 9},
        {KMSG_API_METADATA, 12},
        {KMSG_API_INIT_PRODUCER_ID, 4},
        {KMSG_API_API_VERSIONS, 3},
    };
    f->fd = tu_client_attach(f->c, NODE, versions, sizeof(versions) / sizeof(versions[0]));
    buf_init(&f->in, 64u << 20);
}

static void fake_close(struct fake *f)
{
    sl_close(f->c, 0);
    close(f->fd);
    buf_deinit(&f->in);
    for (int i = 0; i < f->owed_count; i++) {
        buf_deinit(&f->owed[i].bytes);
    }
}

/* A request that wants an answer: its place in the order. */
static void owe(struct fake *f, int32_t correlation_id)
{
    assert_true(f->owed_count < OWED_MAX);
    struct owed *o = &f->owed[f->owed_count++];
    o->correlation_id = correlation_id;
    o->ready = false;
    buf_init(&o->bytes, 1u << 20);
}

/* Writes the answers at the front that are ready. */
static void pay(struct fake *f)
{
    int done = 0;
    while (done < f->owed_count && f->owed[done].ready) {
        tu_write_all(f->fd, f->owed[done].bytes.data, f->owed[done].bytes.len);
        buf_deinit(&f->owed[done].bytes);
        done++;
    }
    memmove(f->owed, f->owed + done, (size_t)(f->owed_count - done) * sizeof(f->owed[0]));
    f->owed_count -= done;
}

static void send_frame(struct fake *f, int32_t correlation_id, int16_t api, int16_t version,
                       const struct kmsg_desc *desc, const void *resp)
{
    struct owed *o = NULL;
    for (int i = 0; i < f->owed_count; i++) {
        if (f->owed[i].correlation_id == correlation_id) {
            o = &f->owed[i];
        }
    }
    assert_non_null(o);
    tu_response_put(&o->bytes, correlation_id, api, version, desc, resp);
    o->ready = true;
    pay(f);
}

static void answer_metadata(struct fake *f, const struct kmsg_request_header *h,
                            const struct kmsg_metadata_request *rq)
{
    f->metadata_requests++;
    struct kmsg_metadata_response resp;
    kmsg_init(&kmsg_metadata_response_desc, &resp);
    struct kmsg_metadata_response_metadata_response_broker broker;
    kmsg_init(&kmsg_metadata_response_metadata_response_broker_desc, &broker);
    broker.node_id = NODE;
    broker.host = (struct kstr){"127.0.0.1", 9};
    broker.port = 9;
    resp.brokers = (struct karray){&broker, 1};
    struct kmsg_metadata_response_metadata_response_topic topics[8];
    struct kmsg_metadata_response_metadata_response_partition parts[8];
    int32_t replicas[1] = {NODE};
    assert_true(rq->topics.count <= 8 && f->partitions <= 8);
    const struct kmsg_metadata_request_metadata_request_topic *asked = rq->topics.items;
    for (int32_t p = 0; p < f->partitions; p++) {
        kmsg_init(&kmsg_metadata_response_metadata_response_partition_desc, &parts[p]);
        parts[p].partition_index = p;
        parts[p].leader_id = NODE;
        parts[p].replica_nodes = (struct karray){replicas, 1};
        parts[p].isr_nodes = (struct karray){replicas, 1};
    }
    for (int32_t i = 0; i < rq->topics.count; i++) {
        kmsg_init(&kmsg_metadata_response_metadata_response_topic_desc, &topics[i]);
        topics[i].name = asked[i].name;
        topics[i].partitions = (struct karray){parts, f->partitions};
        if (f->absent_topic != NULL && asked[i].name.len == (int32_t)strlen(f->absent_topic) &&
            memcmp(asked[i].name.ptr, f->absent_topic, strlen(f->absent_topic)) == 0) {
            topics[i].error_code = KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION;
            topics[i].partitions = (struct karray){NULL, 0};
        }
    }
    resp.topics = (struct karray){rq->topics.count > 0 ? topics : NULL, rq->topics.count};
    send_frame(f, h->correlation_id, KMSG_API_METADATA, h->request_api_version,
               &kmsg_metadata_response_desc, &resp);
}

static void answer_init_pid(struct fake *f, const struct kmsg_request_header *h,
                            const struct kmsg_init_producer_id_request *rq)
{
    f->init_requests++;
    f->init_asked_pid = rq->producer_id;
    f->init_asked_epoch = rq->producer_epoch;
    if (rq->producer_id >= 0) {
        f->epoch = (int16_t)(rq->producer_epoch + 1);
    }
    struct kmsg_init_producer_id_response resp;
    kmsg_init(&kmsg_init_producer_id_response_desc, &resp);
    resp.producer_id = PID;
    resp.producer_epoch = f->epoch;
    send_frame(f, h->correlation_id, KMSG_API_INIT_PRODUCER_ID, h->request_api_version,
               &kmsg_init_producer_id_response_desc, &resp);
}

static void take_produce(const struct kmsg_request_header *h, const struct kmsg_produce_request *rq,
                         struct produced *out)
{
    memset(out, 0, sizeof(*out));
    out->correlation_id = h->correlation_id;
    out->version = h->request_api_version;
    out->acks = rq->acks;
    const struct kmsg_produce_request_topic_produce_data *t = rq->topic_data.items;
    for (int32_t i = 0; i < rq->topic_data.count; i++) {
        const struct kmsg_produce_request_partition_produce_data *p = t[i].partition_data.items;
        for (int32_t j = 0; j < t[i].partition_data.count; j++) {
            assert_true(out->n < BATCHES_MAX);
            out->batch[out->n].partition = p[j].index;
            out->batch[out->n].len = (size_t)p[j].records.len;
            out->batch[out->n].bytes = malloc((size_t)p[j].records.len);
            memcpy(out->batch[out->n].bytes, p[j].records.ptr, (size_t)p[j].records.len);
            assert_int_equal(batch_validate(p[j].records.ptr, (size_t)p[j].records.len,
                                            BATCH_CHECK_FULL, 0, &out->batch[out->n].h, NULL),
                             0);
            out->n++;
        }
    }
}

static void produced_free(struct produced *pr)
{
    for (int i = 0; i < pr->n; i++) {
        free(pr->batch[i].bytes);
    }
    pr->n = 0;
}

/* Handles one whole frame at the front of f->in. Returns 1 when it was a
 * Produce (in *out), 0 for one answered here, -1 when no frame is whole. */
static int handle_frame(struct fake *f, struct produced *out)
{
    if (f->in.len < 4 || f->in.len - 4 < be32_get(f->in.data)) {
        return -1;
    }
    size_t len = be32_get(f->in.data);
    const uint8_t *frame = f->in.data + 4;
    struct kmsg_request_header h;
    size_t consumed;
    assert_int_equal(kmsg_request_header_decode(frame, len, &h, &consumed, NULL), 0);
    const struct kmsg_api *api = kmsg_api_find(h.request_api_key);
    void *mem = malloc(ARENA_BYTES);
    struct karena arena;
    karena_init(&arena, mem, ARENA_BYTES);
    union {
        struct kmsg_metadata_request metadata;
        struct kmsg_init_producer_id_request init_pid;
        struct kmsg_produce_request produce;
    } rq;
    const char *why = NULL;
    if (kmsg_decode(api->request, h.request_api_version, frame + consumed, len - consumed, &rq,
                    &arena, &why) != 0) {
        fail_msg("%s v%d: %s", api->name, h.request_api_version, why);
    }
    if (h.request_api_key != KMSG_API_PRODUCE || rq.produce.acks != 0) {
        owe(f, h.correlation_id);
    }
    int rc = 0;
    switch (h.request_api_key) {
    case KMSG_API_METADATA:
        answer_metadata(f, &h, &rq.metadata);
        break;
    case KMSG_API_INIT_PRODUCER_ID:
        answer_init_pid(f, &h, &rq.init_pid);
        break;
    case KMSG_API_PRODUCE:
        take_produce(&h, &rq.produce, out);
        rc = 1;
        break;
    default:
        fail_msg("unexpected request %s", api->name);
    }
    free(mem);
    memmove(f->in.data, f->in.data + 4 + len, f->in.len - 4 - len);
    f->in.len -= 4 + len;
    return rc;
}

/* Runs the client until it sends a Produce (1) or timeout_ms pass (0). */
static int next_produce(struct fake *f, struct produced *out, int timeout_ms)
{
    int64_t deadline = slc_now_ms() + timeout_ms;
    for (;;) {
        int rc;
        while ((rc = handle_frame(f, out)) >= 0) {
            if (rc == 1) {
                return 1;
            }
        }
        if (slc_now_ms() >= deadline) {
            return 0;
        }
        sl_poll(f->c, 1);
        assert_int_equal(buf_reserve(&f->in, 1u << 16), 0);
        ssize_t n = read(f->fd, f->in.data + f->in.len, f->in.cap - f->in.len);
        if (n > 0) {
            f->in.len += (size_t)n;
        }
    }
}

static void answer_produce(struct fake *f, const struct produced *pr, const int16_t *errors,
                           const int64_t *offsets)
{
    struct kmsg_produce_response resp;
    kmsg_init(&kmsg_produce_response_desc, &resp);
    struct kmsg_produce_response_topic_produce_response topic;
    kmsg_init(&kmsg_produce_response_topic_produce_response_desc, &topic);
    struct kmsg_produce_response_partition_produce_response parts[BATCHES_MAX];
    for (int i = 0; i < pr->n; i++) {
        kmsg_init(&kmsg_produce_response_partition_produce_response_desc, &parts[i]);
        parts[i].index = pr->batch[i].partition;
        parts[i].error_code = errors[i];
        parts[i].base_offset = errors[i] == 0 ? offsets[i] : -1;
    }
    topic.name = (struct kstr){"t", 1};
    topic.partition_responses = (struct karray){parts, pr->n};
    resp.responses = (struct karray){&topic, 1};
    send_frame(f, pr->correlation_id, KMSG_API_PRODUCE, pr->version, &kmsg_produce_response_desc,
               &resp);
}

static void answer_one(struct fake *f, const struct produced *pr, int16_t error, int64_t offset)
{
    assert_int_equal(pr->n, 1);
    answer_produce(f, pr, &error, &offset);
}

static void produce_values(struct fake *f, int first, int n)
{
    for (int i = first; i < first + n; i++) {
        char value[16];
        int len = snprintf(value, sizeof(value), "m%d", i);
        sl_msg m = {.topic = "t",
                    .partition = 0,
                    .value = value,
                    .value_len = (size_t)len,
                    .opaque = (void *)(uintptr_t)i};
        assert_int_equal(sl_produce(f->c, &m), SL_OK);
    }
}

/* Polls until n reports are in. */
static void wait_reports(struct fake *f, size_t n)
{
    int64_t deadline = slc_now_ms() + 5000;
    while (f->reports.n < n && slc_now_ms() < deadline) {
        sl_poll(f->c, 10);
    }
    assert_int_equal(f->reports.n, n);
}

/* Each message its own batch: a record of "mN" takes 9 bytes, a batch
 * header 61, so batch.size 70 fits one. */
static const char *const one_per_batch[] = {
    "batch.size", "70", "linger.ms", "0", "retry.backoff.ms", "1", "retry.backoff.max.ms", "1"};

static void test_client_producer_retries_keep_order(void **state)
{
    (void)state;
    struct fake f;
    fake_open(&f, one_per_batch, 8);
    produce_values(&f, 0, 3);
    struct produced first[3];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(next_produce(&f, &first[i], 2000), 1);
        assert_int_equal(first[i].n, 1);
        assert_int_equal(first[i].batch[0].h.producer_id, PID);
        assert_int_equal(first[i].batch[0].h.producer_epoch, 0);
        assert_int_equal(first[i].batch[0].h.base_sequence, i);
    }
    assert_int_equal(f.init_requests, 1);
    /* The first is refused: nothing goes while the two behind it are out. */
    answer_one(&f, &first[0], KAFKA_ERR_NOT_LEADER_OR_FOLLOWER, -1);
    struct produced extra;
    assert_int_equal(next_produce(&f, &extra, 100), 0);
    answer_one(&f, &first[1], KAFKA_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, -1);
    answer_one(&f, &first[2], KAFKA_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, -1);
    /* Then all three again, in order, the same bytes (same sequences). */
    for (int i = 0; i < 3; i++) {
        struct produced again;
        assert_int_equal(next_produce(&f, &again, 2000), 1);
        assert_int_equal(again.n, 1);
        assert_int_equal(again.batch[0].len, first[i].batch[0].len);
        assert_memory_equal(again.batch[0].bytes, first[i].batch[0].bytes, again.batch[0].len);
        answer_one(&f, &again, KAFKA_ERR_NONE, 10 + i);
        produced_free(&again);
    }
    assert_true(f.metadata_requests >= 2); /* NOT_LEADER asked for fresh metadata */
    assert_int_equal(f.init_requests, 1);  /* and was no reason for a new epoch */
    wait_reports(&f, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(f.reports.d[i].err, SL_OK);
        assert_int_equal((uintptr_t)f.reports.d[i].msg_opaque, (uintptr_t)i);
        assert_int_equal(f.reports.d[i].offset, 10 + i);
        produced_free(&first[i]);
    }
    fake_close(&f);
}

static void test_client_producer_gap_bumps_epoch(void **state)
{
    (void)state;
    struct fake f;
    fake_open(&f, one_per_batch, 8);
    produce_values(&f, 0, 3);
    struct produced first[3];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(next_produce(&f, &first[i], 2000), 1);
    }
    /* The first fails for good; the broker, without it, refuses the others. */
    answer_one(&f, &first[0], KAFKA_ERR_MESSAGE_TOO_LARGE, -1);
    answer_one(&f, &first[1], KAFKA_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, -1);
    answer_one(&f, &first[2], KAFKA_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, -1);
    for (int i = 1; i < 3; i++) {
        struct produced again;
        assert_int_equal(next_produce(&f, &again, 2000), 1);
        /* A new epoch of the same id (KIP-360), the sequence from 0. */
        assert_int_equal(again.batch[0].h.producer_id, PID);
        assert_int_equal(again.batch[0].h.producer_epoch, 1);
        assert_int_equal(again.batch[0].h.base_sequence, i - 1);
        answer_one(&f, &again, KAFKA_ERR_NONE, 20 + i);
        produced_free(&again);
    }
    assert_int_equal(f.init_requests, 2);
    assert_int_equal(f.init_asked_pid, PID);
    assert_int_equal(f.init_asked_epoch, 0);
    wait_reports(&f, 3);
    assert_int_equal(f.reports.d[0].err, SL_ERR_MESSAGE_TOO_LARGE);
    assert_int_equal((uintptr_t)f.reports.d[0].msg_opaque, 0);
    for (int i = 1; i < 3; i++) {
        assert_int_equal(f.reports.d[i].err, SL_OK);
        assert_int_equal((uintptr_t)f.reports.d[i].msg_opaque, (uintptr_t)i);
        assert_int_equal(f.reports.d[i].offset, 20 + i);
    }
    for (int i = 0; i < 3; i++) {
        produced_free(&first[i]);
    }
    fake_close(&f);
}

static void test_client_producer_retries_end_at_delivery_timeout(void **state)
{
    (void)state;
    const char *conf[] = {
        "linger.ms",          "0",   "retry.backoff.ms",    "5",  "retry.backoff.max.ms", "20",
        "request.timeout.ms", "100", "delivery.timeout.ms", "300"};
    struct fake f;
    fake_open(&f, conf, 10);
    produce_values(&f, 0, 1);
    int64_t start = slc_now_ms();
    int sends = 0;
    struct produced pr;
    while (f.reports.n == 0 && next_produce(&f, &pr, 500) == 1) {
        sends++;
        answer_one(&f, &pr, KAFKA_ERR_NOT_ENOUGH_REPLICAS, -1);
        produced_free(&pr);
        sl_poll(f.c, 1);
    }
    wait_reports(&f, 1);
    assert_int_equal(f.reports.d[0].err, SL_ERR_MSG_TIMED_OUT);
    assert_true(sends >= 3); /* it did retry, with backoff */
    assert_true(slc_now_ms() - start >= 300);
    fake_close(&f);
}

static void test_client_producer_acks_zero(void **state)
{
    (void)state;
    const char *conf[] = {"acks", "0", "linger.ms", "0"};
    struct fake f;
    fake_open(&f, conf, 4);
    produce_values(&f, 0, 5);
    struct produced pr;
    assert_int_equal(next_produce(&f, &pr, 2000), 1);
    assert_int_equal(pr.acks, 0);
    assert_int_equal(pr.batch[0].h.producer_id, -1); /* acks=0: not idempotent */
    produced_free(&pr);
    wait_reports(&f, 5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(f.reports.d[i].err, SL_OK);
        assert_int_equal(f.reports.d[i].offset, -1);
    }
    assert_int_equal(f.init_requests, 0);
    fake_close(&f);
}

/* Reads what the client wrote and answers the control requests; true when a
 * Produce request came (in *out). Never polls the client itself. */
static bool fake_read(struct fake *f, struct produced *out)
{
    assert_int_equal(buf_reserve(&f->in, 1u << 16), 0);
    ssize_t n = read(f->fd, f->in.data + f->in.len, f->in.cap - f->in.len);
    if (n > 0) {
        f->in.len += (size_t)n;
    }
    int rc;
    while ((rc = handle_frame(f, out)) >= 0) {
        if (rc == 1) {
            return true;
        }
    }
    return false;
}

/* An external loop that only waits on sl_fd and calls sl_poll(c, 0): the fd
 * must wake it for socket work and for the linger timer. */
static void test_client_producer_fd_wakes_external_loop(void **state)
{
    (void)state;
    const char *conf[] = {"linger.ms", "40"};
    struct fake f;
    fake_open(&f, conf, 2);
    produce_values(&f, 0, 1);
    int64_t produced_ms = slc_now_ms();
    struct produced pr;
    bool got = false;
    int wakeups = 0;
    while (!got) {
        struct pollfd pfd = {sl_fd(f.c), POLLIN, 0};
        int ready = poll(&pfd, 1, 2000);
        assert_int_equal(ready, 1); /* else the fd slept through work to do */
        wakeups++;
        assert_true(sl_poll(f.c, 0) >= 0);
        got = fake_read(&f, &pr);
        assert_true(wakeups < 100);
    }
    /* The batch waited out its linger, and no busy loop got it there. */
    assert_true(slc_now_ms() - produced_ms >= 40);
    assert_true(wakeups < 20);
    answer_one(&f, &pr, KAFKA_ERR_NONE, 7);
    produced_free(&pr);
    while (f.reports.n == 0) {
        struct pollfd pfd = {sl_fd(f.c), POLLIN, 0};
        assert_int_equal(poll(&pfd, 1, 2000), 1);
        sl_poll(f.c, 0);
    }
    assert_int_equal(f.reports.d[0].offset, 7);
    fake_close(&f);
}

/* The script on a thread of its own, for calls that poll the client
 * themselves (sl_topic_partitions): it answers control requests as they come. */
struct server {
    struct fake *f;
    volatile bool stop;
};

static void *serve(void *arg)
{
    struct server *srv = arg;
    while (!srv->stop) {
        struct pollfd pfd = {srv->f->fd, POLLIN, 0};
        if (poll(&pfd, 1, 10) == 1) {
            struct produced none;
            assert_false(fake_read(srv->f, &none)); /* no Produce expected */
        }
    }
    return NULL;
}

static void test_client_producer_topic_partitions(void **state)
{
    (void)state;
    struct fake f;
    fake_open(&f, NULL, 0);
    f.partitions = 3;
    f.absent_topic = "missing";
    struct server srv = {&f, false};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, serve, &srv), 0);
    int32_t count = -1;
    assert_int_equal(sl_topic_partitions(f.c, "t", 5000, &count), SL_OK);
    assert_int_equal(count, 3);
    /* A message for the missing topic waits (it may be created meanwhile)... */
    sl_msg m = {.topic = "missing", .partition = SL_PARTITION_ANY, .value = "x", .value_len = 1};
    assert_int_equal(sl_produce(f.c, &m), SL_OK);
    assert_int_equal(sl_topic_partitions(f.c, "missing", 5000, &count),
                     SL_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    assert_int_equal(sl_queue_len(f.c), 1);
    assert_int_equal(sl_topic_partitions(f.c, "bad name", 5, &count), SL_ERR_INVALID_ARG);
    srv.stop = true;
    pthread_join(thread, NULL);
    /* ...and is reported at close. */
    fake_close(&f);
    assert_int_equal(f.reports.n, 1);
    assert_int_equal(f.reports.d[0].err, SL_ERR_CLOSED_UNSENT);
    assert_int_equal(f.reports.d[0].partition, -1);
    assert_string_equal(f.reports.topic[0], "missing");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_producer_retries_keep_order),
        cmocka_unit_test(test_client_producer_gap_bumps_epoch),
        cmocka_unit_test(test_client_producer_retries_end_at_delivery_timeout),
        cmocka_unit_test(test_client_producer_acks_zero),
        cmocka_unit_test(test_client_producer_fd_wakes_external_loop),
        cmocka_unit_test(test_client_producer_topic_partitions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
