/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nats-bench: a JetStream publisher on Debian's libnats, the peer driver that
 * bench/peers.sh sets beside kafka-bench against sluiced.
 *
 * It creates a stream with file storage and one replica (subjects
 * "<stream>.>"), then publishes --count messages (or for --seconds) of --size
 * bytes to "<stream>.msgs" with js_PublishAsync, at most --max-pending of
 * them not yet acknowledged (jsOptions.PublishAsync.MaxPending: the library
 * stalls the publisher at that many, as a Kafka producer does at its
 * in-flight window), and waits for every PubAck with js_PublishAsyncComplete.
 * Throughput counts acknowledged payload bytes only, from the first publish
 * to the last acknowledgement. With --delete the stream goes afterwards (its
 * files too).
 *
 * What an acknowledgement means is the server's business, not this driver's:
 * nats-server 2.9 writes each message to its block file before it sends the
 * PubAck and fsyncs every two minutes (bench/peers.sh says where that comes
 * from).
 *
 * It prints one line for people and one line starting with "JSON " for the
 * script, in kafka-bench's style; MB/s is decimal (10^6 bytes per second).
 * The exit status is 1 if any message failed or went unacknowledged, 2 on
 * bad usage.
 *
 * Invariants: acked + failed == published once js_PublishAsyncComplete has
 * returned NATS_OK; the acknowledgement handler runs once per message
 * (libnats's promise for jsOptions.PublishAsync.AckHandler).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench/driver.h"
#include "common/assert.h"
#include "common/clock.h"

/* nats-server refuses payloads past its max_payload, 1 MiB by default. */
#define MSG_BYTES_MAX (1u << 20)
/* Names at most: a stream name and the subjects made from it. */
#define NAME_BYTES_MAX 128
/* Messages published between two looks at the clock. */
#define PUBLISH_POLL_EVERY 256
/* How long one js_PublishAsync waits for room under MaxPending before it
 * returns NATS_TIMEOUT and the loop tries again (counted as a stall). */
#define STALL_WAIT_MS 1000
/* How long stream requests (create, delete) may take. */
#define SETUP_WAIT_MS 15000
/* Between two connection attempts to a server that is not listening yet. */
#define CONNECT_RETRY_MS 100

/* ============================================================== options */

struct opts {
    const char *server; /* nats://host:port */
    const char *stream;
    const char *label; /* names the target in the output */
    uint64_t size;
    uint64_t count; /* 0: by --seconds */
    double seconds;
    uint64_t max_pending;
    int timeout_s;
    bool delete_after;
};

static void usage(void)
{
    fprintf(stderr, "usage: nats-bench --server nats://HOST:PORT [options]\n"
                    "  --stream NAME        stream to create, file storage (default bench)\n"
                    "  --label NAME         name of the target in the output (default jetstream)\n"
                    "  --size B             payload bytes per message (default 1024)\n"
                    "  --count N            messages to publish\n"
                    "  --seconds S          publish for S seconds instead of --count\n"
                    "  --max-pending N      publishes not yet acknowledged at most (default 4096)\n"
                    "  --timeout-s S        wait for the last acknowledgements (default 60)\n"
                    "  --delete             delete the stream afterwards\n"
                    "Sizes and counts take k, m, g suffixes (powers of 1024).\n");
}

static int parse_opt(int c, char *arg, struct opts *o)
{
    uint64_t v = 0;
    switch (c) {
    case 'u':
        o->server = arg;
        return 0;
    case 'N':
        o->stream = arg;
        return strlen(arg) < NAME_BYTES_MAX / 2 ? 0 : -EINVAL;
    case 'L':
        o->label = arg;
        return 0;
    case 's':
        return bench_parse_size(arg, &o->size);
    case 'n':
        return bench_parse_size(arg, &o->count);
    case 'S':
        return bench_parse_double(arg, &o->seconds);
    case 'm':
        return bench_parse_size(arg, &o->max_pending);
    case 'T':
        if (bench_parse_size(arg, &v) != 0 || v < 1 || v > 3600) {
            return -EINVAL;
        }
        o->timeout_s = (int)v;
        return 0;
    case 'D':
        o->delete_after = true;
        return 0;
    default:
        return -EINVAL;
    }
}

static int opts_check(const struct opts *o)
{
    if (o->server == NULL) {
        fprintf(stderr, "nats-bench: give --server\n");
        return -EINVAL;
    }
    if (o->size == 0 || o->size > MSG_BYTES_MAX) {
        fprintf(stderr, "nats-bench: --size must be 1..%u\n", MSG_BYTES_MAX);
        return -EINVAL;
    }
    if ((o->count == 0) == (o->seconds <= 0)) {
        fprintf(stderr, "nats-bench: give one of --count and --seconds\n");
        return -EINVAL;
    }
    if (o->max_pending == 0 || o->max_pending > INT32_MAX) {
        fprintf(stderr, "nats-bench: --max-pending must be 1..%d\n", INT32_MAX);
        return -EINVAL;
    }
    return 0;
}

static int opts_parse(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"server", required_argument, NULL, 'u'},
        {"stream", required_argument, NULL, 'N'},
        {"label", required_argument, NULL, 'L'},
        {"size", required_argument, NULL, 's'},
        {"count", required_argument, NULL, 'n'},
        {"seconds", required_argument, NULL, 'S'},
        {"max-pending", required_argument, NULL, 'm'},
        {"timeout-s", required_argument, NULL, 'T'},
        {"delete", no_argument, NULL, 'D'},
        {NULL, 0, NULL, 0},
    };
    *o = (struct opts){.stream = "bench",
                       .label = "jetstream",
                       .size = 1024,
                       .max_pending = 4096,
                       .timeout_s = 60};
    int c;
    int index = -1;
    while ((c = getopt_long(argc, argv, "", longopts, &index)) != -1) {
        if (c == '?' || index < 0) {
            usage();
            return -EINVAL; /* getopt named the option */
        }
        if (parse_opt(c, optarg, o) != 0) {
            fprintf(stderr, "nats-bench: bad value for --%s: %s\n", longopts[index].name, optarg);
            return -EINVAL;
        }
        index = -1;
    }
    if (optind != argc) {
        fprintf(stderr, "nats-bench: unexpected argument: %s\n", argv[optind]);
        return -EINVAL;
    }
    return opts_check(o);
}

/* ================================================================= run */

/* Failures by status, so that the report names what went wrong. The
 * counters are written by libnats's acknowledgement thread and read by the
 * publisher: atomics for the counts, a lock for the kinds. */
struct run {
    _Atomic uint64_t acked;
    _Atomic uint64_t acked_bytes;
    _Atomic uint64_t failed;
    _Atomic int64_t last_ack_ns;
    uint64_t published;
    uint64_t stalls; /* js_PublishAsync found MaxPending reached for STALL_WAIT_MS */
    int64_t start_ns;
    pthread_mutex_t lock; /* guards errors */
    struct bench_errors errors;
};

static const char *status_name(int code)
{
    return natsStatus_GetText((natsStatus)code);
}

static void run_failed(struct run *run, natsStatus s, uint64_t n)
{
    atomic_fetch_add(&run->failed, n);
    pthread_mutex_lock(&run->lock);
    bench_errors_add(&run->errors, (int)s, n);
    pthread_mutex_unlock(&run->lock);
}

/* libnats calls this once per message, positive or not; the message is ours
 * to destroy (nats.h, jsPubAckHandler). */
static void ack_cb(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    (void)js;
    struct run *run = closure;
    atomic_store(&run->last_ack_ns, time_mono_ns());
    if (pa != NULL && pae == NULL) {
        atomic_fetch_add(&run->acked, 1);
        atomic_fetch_add(&run->acked_bytes, (uint64_t)natsMsg_GetDataLength(msg));
    } else {
        natsStatus s = pae != NULL ? pae->Err : NATS_ERR;
        if (atomic_load(&run->failed) == 0) {
            fprintf(stderr, "nats-bench: publish failed: %s (%s)\n", natsStatus_GetText(s),
                    pae != NULL && pae->ErrText != NULL ? pae->ErrText : "-");
        }
        run_failed(run, s, 1);
    }
    natsMsg_Destroy(msg);
}

/* ======================================================== NATS set-up */

static int nats_failed(const char *what, natsStatus s)
{
    fprintf(stderr, "nats-bench: %s: %s\n", what, natsStatus_GetText(s));
    nats_PrintLastErrorStack(stderr);
    return -EIO;
}

static void nsleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int connect_to(const struct opts *o, natsConnection **nc)
{
    natsOptions *nopts = NULL;
    natsStatus s = natsOptions_Create(&nopts);
    if (s == NATS_OK) {
        s = natsOptions_SetURL(nopts, o->server);
    }
    if (s == NATS_OK) {
        s = natsOptions_SetTimeout(nopts, SETUP_WAIT_MS);
    }
    /* A server just started may not listen yet: try again for a while. */
    for (int waited_ms = 0; s == NATS_OK || s == NATS_NO_SERVER; waited_ms += CONNECT_RETRY_MS) {
        s = natsConnection_Connect(nc, nopts);
        if (s != NATS_NO_SERVER || waited_ms >= SETUP_WAIT_MS) {
            break;
        }
        nsleep_ms(CONNECT_RETRY_MS);
    }
    natsOptions_Destroy(nopts); /* the connection keeps a copy */
    return s == NATS_OK ? 0 : nats_failed("connect", s);
}

/* The JetStream context, its acknowledgements going to ack_cb with run. */
static int context_new(natsConnection *nc, const struct opts *o, struct run *run, jsCtx **js)
{
    jsOptions jo;
    natsStatus s = jsOptions_Init(&jo);
    if (s != NATS_OK) {
        return nats_failed("jsOptions_Init", s);
    }
    jo.Wait = SETUP_WAIT_MS;
    jo.PublishAsync.MaxPending = (int64_t)o->max_pending;
    jo.PublishAsync.StallWait = STALL_WAIT_MS;
    jo.PublishAsync.AckHandler = ack_cb;
    jo.PublishAsync.AckHandlerClosure = run;
    s = natsConnection_JetStream(js, nc, &jo);
    return s == NATS_OK ? 0 : nats_failed("JetStream context", s);
}

/* A file-storage stream of one replica, the server's other defaults left
 * alone: limits retention, no size cap. One that exists with the same
 * settings is fine (the server answers as for a new one). */
static int stream_create(jsCtx *js, const struct opts *o)
{
    char subjects[NAME_BYTES_MAX];
    snprintf(subjects, sizeof(subjects), "%s.>", o->stream);
    const char *subject_list[] = {subjects};
    jsStreamConfig cfg;
    natsStatus s = jsStreamConfig_Init(&cfg);
    cfg.Name = o->stream;
    cfg.Subjects = subject_list;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.Replicas = 1;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    if (s == NATS_OK) {
        s = js_AddStream(&si, js, &cfg, NULL, &jerr);
    }
    jsStreamInfo_Destroy(si);
    if (s != NATS_OK) {
        fprintf(stderr, "nats-bench: stream %s: JetStream error %d\n", o->stream, (int)jerr);
        return nats_failed("js_AddStream", s);
    }
    return 0;
}

static int stream_delete(jsCtx *js, const struct opts *o)
{
    jsErrCode jerr = 0;
    natsStatus s = js_DeleteStream(js, o->stream, NULL, &jerr);
    return s == NATS_OK ? 0 : nats_failed("js_DeleteStream", s);
}

/* ============================================================= publish */

/* Publishes one message, waiting while MaxPending are unacknowledged, for
 * timeout_s at most: a server that acknowledges nothing for that long is gone. */
static int publish_one(jsCtx *js, const struct opts *o, const char *subject, const void *value,
                       struct run *run)
{
    natsStatus s;
    int waited_ms = 0;
    while ((s = js_PublishAsync(js, subject, value, (int)o->size, NULL)) == NATS_TIMEOUT &&
           waited_ms < o->timeout_s * 1000) {
        run->stalls++; /* the server is slower than the window: wait on */
        waited_ms += STALL_WAIT_MS;
    }
    if (s != NATS_OK) {
        return nats_failed("js_PublishAsync", s);
    }
    run->published++;
    return 0;
}

/* Every acknowledgement, or timeout_s for the last ones; what never came is
 * counted as failed under NATS_TIMEOUT. */
static int publish_complete(jsCtx *js, const struct opts *o, struct run *run)
{
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = (int64_t)o->timeout_s * 1000;
    natsStatus s = js_PublishAsyncComplete(js, &po);
    if (s == NATS_OK) {
        return 0;
    }
    natsMsgList pending = {0};
    if (js_PublishAsyncGetPendingList(&pending, js) == NATS_OK) {
        fprintf(stderr, "nats-bench: %d messages not acknowledged after %d s\n", pending.Count,
                o->timeout_s);
        run_failed(run, NATS_TIMEOUT, (uint64_t)pending.Count);
        natsMsgList_Destroy(&pending);
    }
    return nats_failed("js_PublishAsyncComplete", s);
}

/* Publishes --count messages or for --seconds, then waits for every ack. */
static int publish_messages(jsCtx *js, const struct opts *o, struct run *run)
{
    uint8_t *pool = bench_payload_pool_new(o->size);
    if (pool == NULL) {
        return -ENOMEM;
    }
    char subject[NAME_BYTES_MAX];
    snprintf(subject, sizeof(subject), "%s.msgs", o->stream);
    run->start_ns = time_mono_ns();
    int64_t end_ns = run->start_ns + (int64_t)(o->seconds * 1e9);
    size_t offset = 0;
    int err = 0;
    for (uint64_t i = 0; err == 0 && (o->count == 0 || i < o->count); i++) {
        err = publish_one(js, o, subject, pool + offset, run);
        offset = (offset + o->size * 7 + 8) % BENCH_PAYLOAD_POOL_BYTES & ~(size_t)7;
        if (o->count == 0 && i % PUBLISH_POLL_EVERY == 0 && time_mono_ns() >= end_ns) {
            break;
        }
    }
    int cerr = publish_complete(js, o, run);
    free(pool); /* js_PublishAsync copied every value */
    return err != 0 ? err : cerr;
}

/* ============================================================== report */

static void report(const struct opts *o, struct run *run, double cpu)
{
    uint64_t acked = atomic_load(&run->acked);
    uint64_t bytes = atomic_load(&run->acked_bytes);
    uint64_t failed = atomic_load(&run->failed);
    double secs = (double)(atomic_load(&run->last_ack_ns) - run->start_ns) / 1e9;
    double msgs_s = secs > 0 ? (double)acked / secs : 0;
    double mb_s = secs > 0 ? (double)bytes / secs / 1e6 : 0;
    printf("publish %s: %" PRIu64 " msgs of %" PRIu64 " B to stream %s (file storage) in %.3f s: "
           "%.0f msgs/s, %.1f MB/s, %" PRIu64 " errors, max pending %" PRIu64 ", %" PRIu64
           " stalls, client cpu %.2f s\n",
           o->label, acked, o->size, o->stream, secs, msgs_s, mb_s, failed, o->max_pending,
           run->stalls, cpu);
    printf("JSON {\"mode\":\"publish\",\"target\":\"%s\",\"stream\":\"%s\",\"storage\":\"file\","
           "\"libnats\":\"%s\",\"size\":%" PRIu64 ",\"max_pending\":%" PRIu64
           ",\"messages\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"published\":%" PRIu64
           ",\"seconds\":%.6f,\"msgs_per_s\":%.1f,\"mb_per_s\":%.3f,\"publish_errors\":%" PRIu64
           ",\"stalls\":%" PRIu64 ",\"client_cpu_s\":%.3f,\"errors\":",
           o->label, o->stream, nats_GetVersion(), o->size, o->max_pending, acked, bytes,
           run->published, secs, msgs_s, mb_s, failed, run->stalls, cpu);
    bench_errors_json(&run->errors, status_name, stdout);
    printf("}\n");
}

/* ================================================================= main */

/* Connects, creates the stream, publishes, reports; 0 or -errno. */
static int bench(const struct opts *o, struct run *run)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    int err = connect_to(o, &nc);
    err = err ? err : context_new(nc, o, run, &js);
    err = err ? err : stream_create(js, o);
    double cpu0 = bench_cpu_seconds();
    err = err ? err : publish_messages(js, o, run);
    if (run->published > 0) {
        report(o, run, bench_cpu_seconds() - cpu0);
    }
    if (err == 0) {
        SL_ASSERT(atomic_load(&run->acked) + atomic_load(&run->failed) == run->published);
        err = atomic_load(&run->failed) == 0 ? 0 : -EIO;
    }
    if (js != NULL && o->delete_after) {
        int derr = stream_delete(js, o);
        err = err ? err : derr;
    }
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return err;
}

int main(int argc, char **argv)
{
    struct opts o;
    if (opts_parse(argc, argv, &o) != 0) {
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct run *run = calloc(1, sizeof(*run));
    if (run == NULL) {
        return 1;
    }
    pthread_mutex_init(&run->lock, NULL);
    int err = bench(&o, run);
    /* Waits for libnats's threads, so that no callback outlives run. */
    nats_CloseAndWait(SETUP_WAIT_MS);
    pthread_mutex_destroy(&run->lock);
    free(run);
    return err == 0 ? 0 : 1;
}
