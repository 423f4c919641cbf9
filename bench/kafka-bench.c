/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kafka-bench: a producer/consumer throughput driver on Debian's librdkafka,
 * the same client code against sluiced and against librdkafka's in-memory
 * mock broker, so that bench/broker-bench.sh can set the two side by side.
 *
 *   produce   sends --count messages (or for --seconds) of --size bytes to
 *             the topic's partitions in turn, at most queue.buffering.max.*
 *             of them not yet acknowledged, and waits for every delivery
 *             report. Throughput counts acknowledged value bytes only.
 *             With --delete the topic goes afterwards (its disk space too).
 *   consume   assigns every partition of the topic from its beginning (no
 *             group, no commits) and reads until --count messages or, without
 *             --count, up to the high watermarks seen at the start; --passes
 *             does that again from the beginning, timed as one run. --prefill
 *             produces first, untimed.
 *
 * --msg-id gives each produced message a header "msg-id" (the broker's
 * dedup.window.ms key, broker/msgids.h) of "<run prefix>-<counter>": the
 * prefix is 64 random bits per run, so no two messages of any two runs share
 * an id and a dedup topic never finds a duplicate; what it costs is the
 * lookup, not the dropping. --topic-config key=value settings go with the
 * CreateTopics of --create.
 *
 * --mock runs a one-broker librdkafka mock cluster inside this process
 * (rd_kafka_mock_cluster_new, what test.mock.num.brokers=1 does per handle)
 * and points the clients at it. The cluster outlives the producer, so
 * `consume --mock --prefill N` has something to read. The mock keeps
 * messages in memory and syncs nothing: it is the client's ceiling, not a
 * durable broker.
 *
 * Each run prints one line for people and one line starting with "JSON " for
 * the script. MB/s and GB/s are decimal (10^6, 10^9 bytes per second) of
 * message values, not counting keys, headers or protocol framing. Every
 * failed delivery is counted and named; the exit status is 1 if any message
 * failed or a consume did not reach its end, 2 on bad usage.
 *
 * Invariants: delivered + failed == produced once the producer is flushed;
 * a message's delivery report fires exactly once (librdkafka's promise).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench/driver.h"
#include "common/assert.h"
#include "common/clock.h"

/* -X key=value pairs at most: more than librdkafka has settings worth a bench. */
#define XCONF_MAX 64
/* --topic-config settings at most: more than the broker has topic settings. */
#define TOPIC_CONFIG_MAX 16
/* The header --msg-id sets, by the name the broker looks for (broker/msgids.h). */
#define MSG_ID_HEADER "msg-id"
/* A msg-id: the run's prefix in hex digits, '-', a 64-bit counter in decimal, NUL. */
#define MSG_ID_PREFIX_CHARS 16
#define MSG_ID_BYTES_MAX    (MSG_ID_PREFIX_CHARS + 1 + 20 + 1)
/* A message's size at most; librdkafka refuses past message.max.bytes anyway. */
#define MSG_BYTES_MAX (16u << 20)
/* Partitions of a created topic at most, like the broker's own bound. */
#define PARTITIONS_MAX 1024
/* Messages produced between two looks at the clock and the delivery reports. */
#define PRODUCE_POLL_EVERY 256
/* Messages taken from the consumer queue per call. */
#define CONSUME_BATCH 4096
/* Latency histogram: 8 sub-buckets per power of two (12% resolution) up to 2^40 us. */
#define HIST_SUB_BITS 3
#define HIST_BUCKETS  (40 << HIST_SUB_BITS)
/* How long a metadata or admin request may take before the run gives up. */
#define SETUP_TIMEOUT_MS 15000

/* ============================================================== options */

enum mode { MODE_PRODUCE, MODE_CONSUME };

struct opts {
    enum mode mode;
    const char *brokers;
    const char *topic;
    const char *label; /* names the target in the output: "sluiced", "mock" */
    const char *acks;  /* request.required.acks */
    const char *compression;
    const char *stats_path; /* librdkafka statistics JSON, one blob a line */
    bool mock;
    bool create;
    uint64_t size;
    uint64_t count; /* 0: by --seconds (produce) or to the end (consume) */
    double seconds;
    double linger_ms;
    uint64_t batch_bytes;
    uint64_t inflight_msgs;
    uint64_t inflight_kbytes;
    uint64_t prefill;
    int partitions;
    int timeout_s;
    int passes;
    bool delete_after;
    bool msg_id; /* each produced message carries a unique MSG_ID_HEADER */
    const char *xconf[XCONF_MAX][2];
    int nxconf;
    const char *topic_config[TOPIC_CONFIG_MAX][2]; /* for CreateTopics */
    int ntopic_config;
};

static void usage(void)
{
    fprintf(
        stderr,
        "usage: kafka-bench produce|consume (--brokers HOST:PORT | --mock) --topic T [options]\n"
        "  --label NAME          name of the target in the output (default: sluiced or mock)\n"
        "  --create              create the topic first with --partitions partitions\n"
        "  --topic-config K=V    a setting of the created topic (repeatable; not for --mock)\n"
        "  --partitions P        partitions of a created topic (default 1)\n"
        "  --size B              value bytes per message (default 1024)\n"
        "  --count N             messages to produce, or to consume (default: to the end)\n"
        "  --seconds S           produce for S seconds instead of --count\n"
        "  --acks A              all, 1 or 0 (default all)\n"
        "  --linger-ms MS        linger.ms (default 5)\n"
        "  --batch-bytes B       batch.size (default librdkafka's, 1000000)\n"
        "  --compression C       none, gzip, snappy, lz4, zstd (default none)\n"
        "  --inflight-msgs N     queue.buffering.max.messages (default 100000)\n"
        "  --inflight-kbytes K   queue.buffering.max.kbytes (default 1048576)\n"
        "  --prefill N           consume: first produce N messages of --size, untimed\n"
        "  --passes N            consume: read the topic N times over (default 1)\n"
        "  --delete              produce: delete the topic afterwards (the mock's end anyway)\n"
        "  --msg-id              each message carries a header msg-id, unique across runs\n"
        "  --timeout-s S         message.timeout.ms and consume stall limit (default 60)\n"
        "  --stats FILE          write librdkafka statistics (statistics.interval.ms=1000)\n"
        "  -X key=value          any librdkafka setting, applied last\n"
        "Sizes and counts take k, m, g suffixes (powers of 1024).\n");
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    uint64_t v;
    if (bench_parse_size(s, &v) != 0 || v < (uint64_t)lo || v > (uint64_t)hi) {
        return -EINVAL;
    }
    *out = (int)v;
    return 0;
}

/* key=value (-X, --topic-config): kept as two pointers into argv, split at
 * the first '=', in pairs[*n] while there is room for it. */
static int parse_pair(char *arg, const char *pairs[][2], int *n, int max)
{
    char *eq = strchr(arg, '=');
    if (eq == NULL || eq == arg || *n >= max) {
        return -EINVAL;
    }
    *eq = '\0';
    pairs[*n][0] = arg;
    pairs[*n][1] = eq + 1;
    (*n)++;
    return 0;
}

static int parse_opt(int c, char *arg, struct opts *o)
{
    switch (c) {
    case 'b':
        o->brokers = arg;
        return 0;
    case 'M':
        o->mock = true;
        return 0;
    case 't':
        o->topic = arg;
        return 0;
    case 'L':
        o->label = arg;
        return 0;
    case 'C':
        o->create = true;
        return 0;
    case 'p':
        return parse_int(arg, 1, PARTITIONS_MAX, &o->partitions);
    case 's':
        return bench_parse_size(arg, &o->size);
    case 'n':
        return bench_parse_size(arg, &o->count);
    case 'S':
        return bench_parse_double(arg, &o->seconds);
    case 'a':
        o->acks = strcmp(arg, "all") == 0 ? "-1" : arg;
        return 0;
    case 'l':
        return bench_parse_double(arg, &o->linger_ms);
    case 'B':
        return bench_parse_size(arg, &o->batch_bytes);
    case 'c':
        o->compression = arg;
        return 0;
    case 'i':
        return bench_parse_size(arg, &o->inflight_msgs);
    case 'k':
        return bench_parse_size(arg, &o->inflight_kbytes);
    case 'P':
        return bench_parse_size(arg, &o->prefill);
    case 'T':
        return parse_int(arg, 1, 3600, &o->timeout_s);
    case 'f':
        o->stats_path = arg;
        return 0;
    case 'r':
        return parse_int(arg, 1, 1000000, &o->passes);
    case 'D':
        o->delete_after = true;
        return 0;
    case 'I':
        o->msg_id = true;
        return 0;
    case 'K':
        return parse_pair(arg, o->topic_config, &o->ntopic_config, TOPIC_CONFIG_MAX);
    case 'X':
        return parse_pair(arg, o->xconf, &o->nxconf, XCONF_MAX);
    default:
        return -EINVAL;
    }
}

static int opts_check(struct opts *o)
{
    if (o->mock == (o->brokers != NULL) || o->topic == NULL) {
        fprintf(stderr, "kafka-bench: give --topic and one of --brokers or --mock\n");
        return -EINVAL;
    }
    if (o->size == 0 || o->size > MSG_BYTES_MAX) {
        fprintf(stderr, "kafka-bench: --size must be 1..%u\n", MSG_BYTES_MAX);
        return -EINVAL;
    }
    if (o->mode == MODE_PRODUCE && (o->count == 0) == (o->seconds <= 0)) {
        fprintf(stderr, "kafka-bench: produce takes one of --count and --seconds\n");
        return -EINVAL;
    }
    if (o->mode == MODE_PRODUCE && o->prefill != 0) {
        fprintf(stderr, "kafka-bench: --prefill belongs to consume\n");
        return -EINVAL;
    }
    if (o->ntopic_config > 0 && !o->create) {
        fprintf(stderr, "kafka-bench: --topic-config goes with --create\n");
        return -EINVAL;
    }
    if (o->label == NULL) {
        o->label = o->mock ? "mock" : "sluiced";
    }
    return 0;
}

static int opts_parse(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"brokers", required_argument, NULL, 'b'},
        {"mock", no_argument, NULL, 'M'},
        {"topic", required_argument, NULL, 't'},
        {"label", required_argument, NULL, 'L'},
        {"create", no_argument, NULL, 'C'},
        {"partitions", required_argument, NULL, 'p'},
        {"size", required_argument, NULL, 's'},
        {"count", required_argument, NULL, 'n'},
        {"seconds", required_argument, NULL, 'S'},
        {"acks", required_argument, NULL, 'a'},
        {"linger-ms", required_argument, NULL, 'l'},
        {"batch-bytes", required_argument, NULL, 'B'},
        {"compression", required_argument, NULL, 'c'},
        {"inflight-msgs", required_argument, NULL, 'i'},
        {"inflight-kbytes", required_argument, NULL, 'k'},
        {"prefill", required_argument, NULL, 'P'},
        {"timeout-s", required_argument, NULL, 'T'},
        {"stats", required_argument, NULL, 'f'},
        {"passes", required_argument, NULL, 'r'},
        {"delete", no_argument, NULL, 'D'},
        {"msg-id", no_argument, NULL, 'I'},
        {"topic-config", required_argument, NULL, 'K'},
        {NULL, 0, NULL, 0},
    };
    *o = (struct opts){.size = 1024,
                       .acks = "-1",
                       .linger_ms = 5,
                       .compression = "none",
                       .partitions = 1,
                       .timeout_s = 60,
                       .passes = 1};
    if (argc < 2 || (strcmp(argv[1], "produce") != 0 && strcmp(argv[1], "consume") != 0)) {
        usage();
        return -EINVAL;
    }
    o->mode = strcmp(argv[1], "produce") == 0 ? MODE_PRODUCE : MODE_CONSUME;
    int c;
    int index = -1;
    optind = 2;
    while ((c = getopt_long(argc, argv, "X:", longopts, &index)) != -1) {
        if (c == '?') {
            return -EINVAL; /* getopt named the option */
        }
        if (parse_opt(c, optarg, o) != 0) {
            fprintf(stderr, "kafka-bench: bad value for %s%s: %s\n", index >= 0 ? "--" : "-",
                    index >= 0 ? longopts[index].name : "X", optarg);
            return -EINVAL;
        }
        index = -1;
    }
    if (optind != argc) {
        fprintf(stderr, "kafka-bench: unexpected argument: %s\n", argv[optind]);
        return -EINVAL;
    }
    return opts_check(o);
}

/* ============================================================ statistics */

/* Log-linear histogram of microseconds: exact below 8, then 8 sub-buckets
 * per power of two. */
struct hist {
    uint64_t counts[HIST_BUCKETS];
    uint64_t total;
};

static unsigned hist_index(uint64_t v)
{
    if (v < (1u << HIST_SUB_BITS)) {
        return (unsigned)v;
    }
    unsigned exp = 63u - (unsigned)__builtin_clzll(v);
    unsigned sub = (unsigned)(v >> (exp - HIST_SUB_BITS)) & ((1u << HIST_SUB_BITS) - 1);
    unsigned idx = ((exp - HIST_SUB_BITS + 1) << HIST_SUB_BITS) + sub;
    return idx < HIST_BUCKETS ? idx : HIST_BUCKETS - 1;
}

/* The smallest value that falls in bucket idx. */
static uint64_t hist_value(unsigned idx)
{
    if (idx < (1u << HIST_SUB_BITS)) {
        return idx;
    }
    unsigned exp = (idx >> HIST_SUB_BITS) + HIST_SUB_BITS - 1;
    uint64_t sub = idx & ((1u << HIST_SUB_BITS) - 1);
    return ((1ull << HIST_SUB_BITS) | sub) << (exp - HIST_SUB_BITS);
}

static void hist_add(struct hist *h, uint64_t v)
{
    h->counts[hist_index(v)]++;
    h->total++;
}

static double hist_percentile(const struct hist *h, double p)
{
    if (h->total == 0) {
        return 0;
    }
    uint64_t rank = (uint64_t)(p / 100.0 * (double)(h->total - 1)) + 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            return (double)hist_value(i);
        }
    }
    return (double)hist_value(HIST_BUCKETS - 1);
}

/* Failures by error code, so that the report names what went wrong. */
static const char *err_name(int code)
{
    return rd_kafka_err2name((rd_kafka_resp_err_t)code);
}

/* ======================================================= client set-up */

/* The cluster the clients talk to: sluiced's address or the mock's. */
struct target {
    const struct opts *o;
    rd_kafka_t *mock_host; /* owns the mock cluster; NULL without --mock */
    rd_kafka_mock_cluster_t *mock;
    const char *bootstrap;
    FILE *stats;
};

static int conf_set(rd_kafka_conf_t *conf, const char *key, const char *value)
{
    char errstr[512];
    if (rd_kafka_conf_set(conf, key, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "kafka-bench: %s=%s: %s\n", key, value, errstr);
        return -EINVAL;
    }
    return 0;
}

static int stats_cb(rd_kafka_t *rk, char *json, size_t json_len, void *opaque)
{
    (void)rk;
    struct target *t = opaque;
    fprintf(t->stats, "%.*s\n", (int)json_len, json);
    return 0; /* librdkafka frees json */
}

/* A configuration with the target's bootstrap and the user's -X settings,
 * which come last so that they override the options'. */
static rd_kafka_conf_t *conf_for(struct target *t, const char *const (*pairs)[2], int npairs)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int err = conf_set(conf, "bootstrap.servers", t->bootstrap);
    err = err ? err : conf_set(conf, "client.id", "kafka-bench");
    for (int i = 0; i < npairs && err == 0; i++) {
        err = conf_set(conf, pairs[i][0], pairs[i][1]);
    }
    if (err == 0 && t->stats != NULL) {
        err = conf_set(conf, "statistics.interval.ms", "1000");
        rd_kafka_conf_set_stats_cb(conf, stats_cb);
    }
    for (int i = 0; i < t->o->nxconf && err == 0; i++) {
        err = conf_set(conf, t->o->xconf[i][0], t->o->xconf[i][1]);
    }
    rd_kafka_conf_set_opaque(conf, t);
    if (err != 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

/* Creates a client; consumes conf whether it succeeds or not. */
static rd_kafka_t *client_new(rd_kafka_type_t type, rd_kafka_conf_t *conf)
{
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "kafka-bench: rd_kafka_new: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

static void target_down(struct target *t)
{
    if (t->mock != NULL) {
        rd_kafka_mock_cluster_destroy(t->mock);
    }
    if (t->mock_host != NULL) {
        rd_kafka_destroy(t->mock_host);
    }
    if (t->stats != NULL) {
        fclose(t->stats);
    }
}

static int target_up(struct target *t, const struct opts *o)
{
    *t = (struct target){.o = o, .bootstrap = o->brokers};
    if (o->stats_path != NULL && (t->stats = fopen(o->stats_path, "w")) == NULL) {
        fprintf(stderr, "kafka-bench: %s: %s\n", o->stats_path, strerror(errno));
        return -errno;
    }
    if (!o->mock) {
        return 0;
    }
    /* A handle of its own, so that the cluster outlives producer and consumer. */
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* Quiet: it is never meant to connect anywhere, which librdkafka notes. */
    if (conf_set(conf, "log_level", "3") != 0) {
        rd_kafka_conf_destroy(conf);
        return -EINVAL;
    }
    t->mock_host = client_new(RD_KAFKA_PRODUCER, conf);
    t->mock = t->mock_host ? rd_kafka_mock_cluster_new(t->mock_host, 1) : NULL;
    if (t->mock == NULL) {
        fprintf(stderr, "kafka-bench: could not start the mock cluster\n");
        target_down(t);
        return -EIO;
    }
    t->bootstrap = rd_kafka_mock_cluster_bootstraps(t->mock);
    return 0;
}

/* The topic's partition count from a metadata request; 0 while it is
 * unknown or some partition has no leader yet, -errno on failure. */
static int topic_partitions(rd_kafka_t *rk, const char *topic)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (rkt == NULL) {
        return -EINVAL;
    }
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 5000);
    rd_kafka_topic_destroy(rkt);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "kafka-bench: metadata: %s\n", rd_kafka_err2str(err));
        return -EIO;
    }
    int n = 0;
    if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        n = md->topics[0].partition_cnt;
        for (int i = 0; i < md->topics[0].partition_cnt; i++) {
            if (md->topics[0].partitions[i].leader < 0) {
                n = 0;
            }
        }
    }
    rd_kafka_metadata_destroy(md);
    return n;
}

/* Waits until the topic is known with a leader for every partition. */
static int topic_wait(rd_kafka_t *rk, const char *topic)
{
    int64_t deadline_ns = time_mono_ns() + (int64_t)SETUP_TIMEOUT_MS * 1000000;
    int n;
    while ((n = topic_partitions(rk, topic)) == 0 && time_mono_ns() < deadline_ns) {
        usleep(50000);
    }
    if (n == 0) {
        fprintf(stderr, "kafka-bench: topic %s did not appear\n", topic);
        return -ETIMEDOUT;
    }
    return n;
}

/* A new topic with the --topic-config settings; NULL (and said why) on failure. */
static rd_kafka_NewTopic_t *topic_new(const struct opts *o)
{
    char errstr[512];
    rd_kafka_NewTopic_t *nt =
        rd_kafka_NewTopic_new(o->topic, o->partitions, 1, errstr, sizeof(errstr));
    if (nt == NULL) {
        fprintf(stderr, "kafka-bench: topic %s: %s\n", o->topic, errstr);
        return NULL;
    }
    for (int i = 0; i < o->ntopic_config; i++) {
        /* Only the client's own checks (name not NULL): the broker judges the setting. */
        rd_kafka_resp_err_t err =
            rd_kafka_NewTopic_set_config(nt, o->topic_config[i][0], o->topic_config[i][1]);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "kafka-bench: topic %s: %s=%s: %s\n", o->topic, o->topic_config[i][0],
                    o->topic_config[i][1], rd_kafka_err2str(err));
            rd_kafka_NewTopic_destroy(nt);
            return NULL;
        }
    }
    return nt;
}

/* CreateTopics through the admin API; a topic that exists is fine when it has
 * the partitions asked for (its settings are not compared). The mock has no
 * CreateTopics, nor topic settings: it gets its own call, and a note that
 * --topic-config means nothing there. */
static int topic_create(struct target *t, rd_kafka_t *rk)
{
    const struct opts *o = t->o;
    if (t->mock != NULL) {
        if (o->ntopic_config > 0) {
            fprintf(stderr, "kafka-bench: note: --topic-config ignored: the mock has no topic "
                            "settings\n");
        }
        rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(t->mock, o->topic, o->partitions, 1);
        return err == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -EIO;
    }
    rd_kafka_NewTopic_t *nt = topic_new(o);
    if (nt == NULL) {
        return -EINVAL;
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, SETUP_TIMEOUT_MS);
    const rd_kafka_CreateTopics_result_t *res = ev ? rd_kafka_event_CreateTopics_result(ev) : NULL;
    size_t n = 0;
    const rd_kafka_topic_result_t **tr = res ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL;
    rd_kafka_resp_err_t err = ev == NULL    ? RD_KAFKA_RESP_ERR__TIMED_OUT
                              : res == NULL ? rd_kafka_event_error(ev)
                              : n == 1      ? rd_kafka_topic_result_error(tr[0])
                                            : RD_KAFKA_RESP_ERR__BAD_MSG;
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        fprintf(stderr, "kafka-bench: CreateTopics %s: %s (%s)\n", o->topic, rd_kafka_err2name(err),
                n == 1 && rd_kafka_topic_result_error_string(tr[0])
                    ? rd_kafka_topic_result_error_string(tr[0])
                    : rd_kafka_err2str(err));
    }
    if (ev != NULL) {
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    return err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS
               ? 0
               : -EIO;
}

/* DeleteTopics from a handle of its own: the producer is gone by then. */
static int topic_delete(struct target *t)
{
    rd_kafka_conf_t *conf = conf_for(t, NULL, 0);
    rd_kafka_t *rk = conf ? client_new(RD_KAFKA_PRODUCER, conf) : NULL;
    if (rk == NULL) {
        return -EINVAL;
    }
    rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new(t->o->topic);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_DeleteTopics(rk, &dt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, SETUP_TIMEOUT_MS);
    const rd_kafka_DeleteTopics_result_t *res = ev ? rd_kafka_event_DeleteTopics_result(ev) : NULL;
    size_t n = 0;
    const rd_kafka_topic_result_t **tr = res ? rd_kafka_DeleteTopics_result_topics(res, &n) : NULL;
    rd_kafka_resp_err_t err = ev == NULL    ? RD_KAFKA_RESP_ERR__TIMED_OUT
                              : res == NULL ? rd_kafka_event_error(ev)
                              : n == 1      ? rd_kafka_topic_result_error(tr[0])
                                            : RD_KAFKA_RESP_ERR__BAD_MSG;
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "kafka-bench: DeleteTopics %s: %s\n", t->o->topic, rd_kafka_err2name(err));
    }
    if (ev != NULL) {
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_queue_destroy(q);
    rd_kafka_DeleteTopic_destroy(dt);
    rd_kafka_destroy(rk);
    return err == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -EIO;
}

/* ============================================================== produce */

struct produce_run {
    uint64_t produced;
    uint64_t delivered;
    uint64_t delivered_bytes;
    uint64_t queue_full; /* times produce() found the queue full and waited */
    int64_t start_ns;
    int64_t last_report_ns;
    struct bench_errors failed;
    struct hist latency_us;
};

static void delivered_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    (void)rk;
    struct produce_run *run = msg->_private; /* the per-message opaque */
    (void)opaque;
    run->last_report_ns = time_mono_ns();
    if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        bench_errors_add(&run->failed, msg->err, 1);
        return;
    }
    run->delivered++;
    run->delivered_bytes += msg->len;
    int64_t latency = rd_kafka_message_latency(msg);
    hist_add(&run->latency_us, latency > 0 ? (uint64_t)latency : 0);
}

static void pair_add(const char *pairs[][2], int *n, const char *key, const char *value)
{
    pairs[*n][0] = key;
    pairs[*n][1] = value;
    (*n)++;
}

static rd_kafka_t *producer_new(struct target *t)
{
    const struct opts *o = t->o;
    char linger[32], batch[32], msgs[32], kbytes[32], timeout[32];
    snprintf(linger, sizeof(linger), "%g", o->linger_ms);
    snprintf(batch, sizeof(batch), "%" PRIu64, o->batch_bytes);
    snprintf(msgs, sizeof(msgs), "%" PRIu64, o->inflight_msgs);
    snprintf(kbytes, sizeof(kbytes), "%" PRIu64, o->inflight_kbytes);
    snprintf(timeout, sizeof(timeout), "%d", o->timeout_s * 1000);
    const char *pairs[8][2];
    int n = 0;
    pair_add(pairs, &n, "acks", o->acks);
    pair_add(pairs, &n, "linger.ms", linger);
    pair_add(pairs, &n, "compression.type", o->compression);
    pair_add(pairs, &n, "message.timeout.ms", timeout);
    /* Options left at 0 keep librdkafka's defaults. */
    if (o->batch_bytes != 0) {
        pair_add(pairs, &n, "batch.size", batch);
    }
    if (o->inflight_msgs != 0) {
        pair_add(pairs, &n, "queue.buffering.max.messages", msgs);
    }
    if (o->inflight_kbytes != 0) {
        pair_add(pairs, &n, "queue.buffering.max.kbytes", kbytes);
    }
    SL_ASSERT(n <= (int)SL_ARRAY_LEN(pairs)); /* one slot per option above */
    rd_kafka_conf_t *conf = conf_for(t, (const char *const(*)[2])pairs, n);
    if (conf == NULL) {
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, delivered_cb);
    return client_new(RD_KAFKA_PRODUCER, conf);
}

/* The msg-id prefix of this run: 64 random bits in hex, so that ids of
 * different runs never meet in a dedup topic's window. */
static void msg_id_prefix(char out[MSG_ID_PREFIX_CHARS + 1])
{
    uint64_t r = 0;
    if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
        /* No entropy source: the clock and the pid still set runs apart. */
        uint64_t state = (uint64_t)time_mono_ns() ^ ((uint64_t)getpid() << 32);
        r = bench_next_random(&state);
    }
    _Static_assert(MSG_ID_PREFIX_CHARS == 2 * sizeof(r), "two hex digits a byte");
    snprintf(out, MSG_ID_PREFIX_CHARS + 1, "%016" PRIx64, r);
}

/* Queues one message, with its msg-id header when msg_id is not NULL. */
static rd_kafka_resp_err_t produce_call(rd_kafka_t *rk, rd_kafka_topic_t *rkt, int32_t partition,
                                        void *value, size_t len, const char *msg_id,
                                        struct produce_run *run)
{
    /* Flags 0: librdkafka neither copies nor frees the value, which lives
     * in the pool until the producer is gone. */
    if (msg_id == NULL) {
        return rd_kafka_produce(rkt, partition, 0, value, len, NULL, 0, run) == 0
                   ? RD_KAFKA_RESP_ERR_NO_ERROR
                   : rd_kafka_last_error();
    }
    /* The header is copied into the message; on failure librdkafka frees
     * what it made of it. */
    return rd_kafka_producev(rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(partition),
                             RD_KAFKA_V_MSGFLAGS(0), RD_KAFKA_V_VALUE(value, len),
                             RD_KAFKA_V_HEADER(MSG_ID_HEADER, msg_id, (ssize_t)strlen(msg_id)),
                             RD_KAFKA_V_OPAQUE(run), RD_KAFKA_V_END);
}

/* Produces one message, waiting for room in the queue when it is full.
 * 0, or -EIO when librdkafka refuses it for another reason. */
static int produce_one(rd_kafka_t *rk, rd_kafka_topic_t *rkt, int32_t partition, void *value,
                       size_t len, const char *msg_id, struct produce_run *run)
{
    rd_kafka_resp_err_t err;
    while ((err = produce_call(rk, rkt, partition, value, len, msg_id, run)) !=
           RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            fprintf(stderr, "kafka-bench: produce: %s\n", rd_kafka_err2str(err));
            return -EIO;
        }
        run->queue_full++;
        rd_kafka_poll(rk, 1);
    }
    run->produced++;
    return 0;
}

/* Waits for every delivery report. librdkafka fails a message at the latest
 * message.timeout.ms after produce(), so this ends. */
static void produce_drain(rd_kafka_t *rk)
{
    while (rd_kafka_outq_len(rk) > 0) {
        rd_kafka_flush(rk, 100);
    }
    rd_kafka_poll(rk, 0);
}

/* Sends --count messages (count != 0) or for seconds; the run gets every
 * delivery report. */
static int produce_messages(struct target *t, uint64_t count, double seconds,
                            struct produce_run *run, int *partitions_out)
{
    const struct opts *o = t->o;
    uint8_t *pool = bench_payload_pool_new(o->size);
    rd_kafka_t *rk = pool ? producer_new(t) : NULL;
    int err = rk ? 0 : -ENOMEM;
    if (err == 0 && o->create) {
        err = topic_create(t, rk);
    }
    int partitions = err == 0 ? topic_wait(rk, o->topic) : err;
    rd_kafka_topic_t *rkt = partitions > 0 ? rd_kafka_topic_new(rk, o->topic, NULL) : NULL;
    err = rkt ? 0 : partitions < 0 ? partitions : -EINVAL;
    *partitions_out = partitions;
    char prefix[MSG_ID_PREFIX_CHARS + 1];
    char msg_id[MSG_ID_BYTES_MAX];
    msg_id_prefix(prefix);
    run->start_ns = time_mono_ns();
    int64_t end_ns = run->start_ns + (int64_t)(seconds * 1e9);
    size_t offset = 0;
    for (uint64_t i = 0; err == 0 && (count == 0 || i < count); i++) {
        if (o->msg_id) {
            int n = snprintf(msg_id, sizeof(msg_id), "%s-%" PRIu64, prefix, i);
            SL_ASSERT(n > 0 && (size_t)n < sizeof(msg_id)); /* MSG_ID_BYTES_MAX counts it */
        }
        /* Round robin: every partition fills at once, as many producers would. */
        err = produce_one(rk, rkt, (int32_t)(i % (uint64_t)partitions), pool + offset, o->size,
                          o->msg_id ? msg_id : NULL, run);
        offset = (offset + o->size * 7 + 8) % BENCH_PAYLOAD_POOL_BYTES & ~(size_t)7;
        if (i % PRODUCE_POLL_EVERY == 0) {
            rd_kafka_poll(rk, 0);
            if (count == 0 && time_mono_ns() >= end_ns) {
                break;
            }
        }
    }
    if (rk != NULL) {
        produce_drain(rk);
    }
    if (rkt != NULL) {
        rd_kafka_topic_destroy(rkt);
    }
    if (rk != NULL) {
        rd_kafka_destroy(rk);
    }
    free(pool);
    SL_ASSERT(err != 0 || run->delivered + run->failed.total == run->produced); /* drained */
    return err;
}

static int cmd_produce(struct target *t)
{
    const struct opts *o = t->o;
    struct produce_run *run = calloc(1, sizeof(*run)); /* the histogram is large */
    if (run == NULL) {
        return -ENOMEM;
    }
    int partitions = 0;
    double cpu0 = bench_cpu_seconds();
    int err = produce_messages(t, o->count, o->seconds, run, &partitions);
    double cpu = bench_cpu_seconds() - cpu0;
    double secs = (double)(run->last_report_ns - run->start_ns) / 1e9;
    if (err != 0 || run->produced == 0 || secs <= 0) {
        fprintf(stderr, "kafka-bench: produce to %s failed after %" PRIu64 " messages\n", o->label,
                run->produced);
        free(run);
        return err != 0 ? err : -EIO;
    }
    double msgs_s = (double)run->delivered / secs;
    double mb_s = (double)run->delivered_bytes / secs / 1e6;
    double p50 = hist_percentile(&run->latency_us, 50) / 1e3;
    double p99 = hist_percentile(&run->latency_us, 99) / 1e3;
    double max = hist_percentile(&run->latency_us, 100) / 1e3;
    printf("produce %s: %" PRIu64 " msgs of %" PRIu64 " B to %d partition(s) in %.3f s: %.0f "
           "msgs/s, %.1f MB/s, %" PRIu64 " delivery errors, ack p50 %.2f ms p99 %.2f ms, "
           "client cpu %.2f s\n",
           o->label, run->delivered, o->size, partitions, secs, msgs_s, mb_s, run->failed.total,
           p50, p99, cpu);
    printf("JSON {\"mode\":\"produce\",\"target\":\"%s\",\"mock\":%s,\"topic\":\"%s\","
           "\"librdkafka\":\"%s\",\"partitions\":%d,\"size\":%" PRIu64
           ",\"acks\":\"%s\",\"linger_ms\":%g,"
           "\"batch_bytes\":%" PRIu64 ",\"compression\":\"%s\",\"messages\":%" PRIu64
           ",\"bytes\":%" PRIu64 ",\"produced\":%" PRIu64 ",\"seconds\":%.6f,"
           "\"msgs_per_s\":%.1f,\"mb_per_s\":%.3f,\"delivery_errors\":%" PRIu64
           ",\"queue_full_waits\":%" PRIu64 ",\"lat_p50_ms\":%.3f,\"lat_p99_ms\":%.3f,"
           "\"lat_max_ms\":%.3f,\"client_cpu_s\":%.3f,\"msg_id\":%s,\"topic_configs\":%d,"
           "\"errors\":",
           o->label, o->mock ? "true" : "false", o->topic, rd_kafka_version_str(), partitions,
           o->size, o->acks, o->linger_ms, o->batch_bytes, o->compression, run->delivered,
           run->delivered_bytes, run->produced, secs, msgs_s, mb_s, run->failed.total,
           run->queue_full, p50, p99, max, cpu, o->msg_id ? "true" : "false",
           o->mock ? 0 : o->ntopic_config);
    bench_errors_json(&run->failed, err_name, stdout);
    printf("}\n");
    err = run->failed.total == 0 ? 0 : -EIO;
    free(run);
    if (o->delete_after && t->mock == NULL) {
        int derr = topic_delete(t);
        err = err ? err : derr;
    }
    return err;
}

/* ============================================================== consume */

struct consume_run {
    int partitions;
    int64_t *low, *high; /* watermarks at the start, per partition */
    bool *at_end;        /* this pass */
    int ended;           /* partitions at_end, this pass */
    uint64_t target;     /* messages per pass */
    uint64_t pass_consumed;
    uint64_t consumed; /* every pass */
    uint64_t consumed_bytes;
    struct bench_errors failed;
};

static void consume_run_free(struct consume_run *c)
{
    free(c->low);
    free(c->high);
    free(c->at_end);
}

/* Partitions and watermarks; the target is what lies between them, or --count. */
static int consume_plan(rd_kafka_t *rk, const struct opts *o, struct consume_run *c)
{
    c->partitions = topic_wait(rk, o->topic);
    if (c->partitions <= 0) {
        return c->partitions < 0 ? c->partitions : -EIO;
    }
    size_t n = (size_t)c->partitions;
    c->low = calloc(n, sizeof(*c->low));
    c->high = calloc(n, sizeof(*c->high));
    c->at_end = calloc(n, sizeof(*c->at_end));
    if (c->low == NULL || c->high == NULL || c->at_end == NULL) {
        return -ENOMEM;
    }
    uint64_t available = 0;
    for (int p = 0; p < c->partitions; p++) {
        rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(rk, o->topic, p, &c->low[p],
                                                                   &c->high[p], SETUP_TIMEOUT_MS);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "kafka-bench: watermarks of %s [%d]: %s\n", o->topic, p,
                    rd_kafka_err2str(err));
            return -EIO;
        }
        available += (uint64_t)(c->high[p] - c->low[p]);
    }
    c->target = o->count != 0 && o->count < available ? o->count : available;
    if (o->count > available) {
        fprintf(stderr, "kafka-bench: %s holds %" PRIu64 " messages, fewer than --count\n",
                o->topic, available);
        return -ENODATA;
    }
    return 0;
}

/* Starts a pass: every partition from its beginning, none at its end but the
 * empty ones. The previous assignment goes first, and with it whatever
 * librdkafka had fetched for it. */
static int consume_assign(rd_kafka_t *rk, const struct opts *o, struct consume_run *c)
{
    c->pass_consumed = 0;
    c->ended = 0;
    for (int p = 0; p < c->partitions; p++) {
        c->at_end[p] = c->high[p] <= c->low[p];
        c->ended += c->at_end[p];
    }
    rd_kafka_assign(rk, NULL);
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(c->partitions);
    for (int p = 0; p < c->partitions; p++) {
        rd_kafka_topic_partition_list_add(list, o->topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    rd_kafka_resp_err_t err = rd_kafka_assign(rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "kafka-bench: assign: %s\n", rd_kafka_err2str(err));
        return -EIO;
    }
    return 0;
}

/* Counts one message or event of the consumer queue. */
static void consume_take(struct consume_run *c, const rd_kafka_message_t *m)
{
    int32_t p = m->partition;
    bool known = p >= 0 && p < c->partitions;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (known && !c->at_end[p] && m->offset >= c->high[p]) {
            c->at_end[p] = true;
            c->ended++;
        }
        return;
    }
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "kafka-bench: consume: %s\n", rd_kafka_message_errstr(m));
        bench_errors_add(&c->failed, m->err, 1);
        return;
    }
    c->consumed++;
    c->pass_consumed++;
    c->consumed_bytes += m->len;
    if (known && !c->at_end[p] && m->offset + 1 >= c->high[p]) {
        c->at_end[p] = true;
        c->ended++;
    }
}

/* Reads one pass: until the target, every partition's end, or a stall of
 * timeout_s. */
static int consume_loop(rd_kafka_t *rk, const struct opts *o, struct consume_run *c,
                        int64_t *first_ns)
{
    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rk);
    rd_kafka_message_t **msgs = malloc(CONSUME_BATCH * sizeof(*msgs));
    if (q == NULL || msgs == NULL) {
        free(msgs);
        if (q != NULL) {
            rd_kafka_queue_destroy(q);
        }
        return -ENOMEM;
    }
    int64_t progress_ns = time_mono_ns();
    int err = 0;
    while (c->pass_consumed < c->target && c->ended < c->partitions) {
        ssize_t n = rd_kafka_consume_batch_queue(q, 100, msgs, CONSUME_BATCH);
        for (ssize_t i = 0; i < n; i++) {
            consume_take(c, msgs[i]);
            rd_kafka_message_destroy(msgs[i]);
        }
        if (n > 0) {
            progress_ns = time_mono_ns();
            if (*first_ns == 0 && c->consumed > 0) {
                *first_ns = progress_ns;
            }
        } else if (time_mono_ns() - progress_ns > (int64_t)o->timeout_s * 1000000000) {
            fprintf(stderr,
                    "kafka-bench: consume stalled for %d s at %" PRIu64 " of %" PRIu64
                    " messages\n",
                    o->timeout_s, c->pass_consumed, c->target);
            err = -ETIMEDOUT;
            break;
        }
    }
    free(msgs);
    rd_kafka_queue_destroy(q);
    return err;
}

static rd_kafka_t *consumer_new(struct target *t)
{
    /* No group: no coordinator, no commits; EOF events tell where each
     * partition ends. group.id is required by rd_kafka_new for consumers.
     * fetch.wait.max.ms only matters at the end of the log, where a fetch
     * parks: 1 ms, so that the next pass's fetch does not queue behind it
     * (librdkafka has one fetch in flight per broker; at 10 ms, a pass of
     * 4 MiB took three times as long, against sluiced and the mock alike). */
    const char *const pairs[][2] = {
        {"group.id", "kafka-bench"},           {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"}, {"enable.partition.eof", "true"},
        {"auto.offset.reset", "earliest"},     {"fetch.wait.max.ms", "1"},
    };
    rd_kafka_conf_t *conf = conf_for(t, pairs, (int)SL_ARRAY_LEN(pairs));
    return conf ? client_new(RD_KAFKA_CONSUMER, conf) : NULL;
}

static void consume_report(const struct opts *o, const struct consume_run *c, int passes,
                           double secs, double first_ms, double cpu)
{
    double msgs_s = secs > 0 ? (double)c->consumed / secs : 0;
    double mb_s = secs > 0 ? (double)c->consumed_bytes / secs / 1e6 : 0;
    printf("consume %s: %" PRIu64 " msgs, %" PRIu64 " B from %d partition(s), %d pass(es), in "
           "%.3f s: %.0f msgs/s, %.1f MB/s (%.3f GB/s), first message after %.1f ms, %" PRIu64
           " errors, client cpu %.2f s\n",
           o->label, c->consumed, c->consumed_bytes, c->partitions, passes, secs, msgs_s, mb_s,
           mb_s / 1e3, first_ms, c->failed.total, cpu);
    printf("JSON {\"mode\":\"consume\",\"target\":\"%s\",\"mock\":%s,\"topic\":\"%s\","
           "\"partitions\":%d,\"passes\":%d,\"messages\":%" PRIu64 ",\"bytes\":%" PRIu64
           ",\"seconds\":%.6f,"
           "\"msgs_per_s\":%.1f,\"mb_per_s\":%.3f,\"first_message_ms\":%.3f,"
           "\"consume_errors\":%" PRIu64 ",\"client_cpu_s\":%.3f,\"errors\":",
           o->label, o->mock ? "true" : "false", o->topic, c->partitions, passes, c->consumed,
           c->consumed_bytes, secs, msgs_s, mb_s, first_ms, c->failed.total, cpu);
    bench_errors_json(&c->failed, err_name, stdout);
    printf("}\n");
}

/* With --prefill, produce first (reported as such, not timed with the consume). */
static int consume_prefill(struct target *t)
{
    const struct opts *o = t->o;
    struct produce_run *run = calloc(1, sizeof(*run));
    if (run == NULL) {
        return -ENOMEM;
    }
    int partitions = 0;
    int err = produce_messages(t, o->prefill, 0, run, &partitions);
    double secs = (double)(run->last_report_ns - run->start_ns) / 1e9;
    printf("prefill %s: %" PRIu64 " msgs of %" PRIu64 " B to %d partition(s) in %.3f s, %" PRIu64
           " delivery errors\n",
           o->label, run->delivered, o->size, partitions, secs, run->failed.total);
    if (err == 0 && run->failed.total != 0) {
        err = -EIO;
    }
    free(run);
    return err;
}

static int cmd_consume(struct target *t)
{
    const struct opts *o = t->o;
    int err = o->prefill != 0 ? consume_prefill(t) : 0;
    if (err != 0) {
        return err;
    }
    rd_kafka_t *rk = consumer_new(t);
    if (rk == NULL) {
        return -EINVAL;
    }
    struct consume_run c = {0};
    int64_t first_ns = 0;
    double cpu0 = bench_cpu_seconds();
    err = consume_plan(rk, o, &c);
    int64_t start_ns = time_mono_ns();
    int pass = 0;
    while (err == 0 && pass < o->passes) {
        err = consume_assign(rk, o, &c);
        err = err ? err : consume_loop(rk, o, &c, &first_ns);
        pass++;
        if (err == 0 && c.pass_consumed < c.target) {
            err = -EIO; /* every partition ended short of its high watermark */
        }
    }
    int64_t end_ns = time_mono_ns();
    double cpu = bench_cpu_seconds() - cpu0;
    if (err == 0 || c.consumed > 0) {
        double first_ms = first_ns ? (double)(first_ns - start_ns) / 1e6 : 0;
        consume_report(o, &c, pass, (double)(end_ns - start_ns) / 1e9, first_ms, cpu);
    }
    if (err == 0 && c.failed.total != 0) {
        err = -EIO;
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    consume_run_free(&c);
    return err;
}

/* ================================================================= main */

int main(int argc, char **argv)
{
    struct opts o;
    if (opts_parse(argc, argv, &o) != 0) {
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct target t;
    if (target_up(&t, &o) != 0) {
        return 1;
    }
    int err = o.mode == MODE_PRODUCE ? cmd_produce(&t) : cmd_consume(&t);
    target_down(&t);
    return err == 0 ? 0 : 1;
}
