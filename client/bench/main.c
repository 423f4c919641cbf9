/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sluice-bench: a throughput and end-to-end latency benchmark on libsluice,
 * shaped like the OpenMessaging Benchmark's workloads. In one process it runs
 * --producers producers and --consumers consumers of one topic, a thread per
 * client (workers.c); consumers read by manual assignment (partition p goes
 * to consumer p % consumers) from the partitions' end, and producers start
 * once every consumer knows where that end is, so every message produced is
 * consumed. After --warmup seconds the --duration window is measured; then
 * producers stop and flush, and consumers drain until they have read every
 * delivered message (or --drain seconds pass). Output: a line a second, a
 * summary, and a JSON result (--json FILE; report.c).
 *
 * With --count N the producers send N messages between them instead, with
 * no warm-up, and the figures are N over the time from the first send to the
 * last delivery report: the measure of bench/kafka-bench.c's --count, so
 * that bench/client-bench.sh can set libsluice beside librdkafka.
 * --duration is then a deadline; a run that misses it ends early and fails.
 *
 * The topic: libsluice has no admin calls yet (no CreateTopics), so the
 * topic is made by asking for its partitions (sl_topic_partitions), which a
 * broker with auto.create.topics.enable creates with its num.partitions. The
 * run uses the partitions the topic has; when that differs from
 * --partitions, it says so and records both.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/bench/bench.h"

#define DEFAULT_BROKERS "127.0.0.1:9092"
/* How long the start waits for the topic's metadata. */
#define METADATA_WAIT_MS 15000
/* How long --prefill's producer may take to deliver its last messages. */
#define PREFILL_CLOSE_MS 120000
/* How long producers wait for every consumer's start position. */
#define CONSUMERS_READY_WAIT_S 15
#define DRAIN_DEFAULT_S        10

enum { EXIT_USAGE = 2, EXIT_SETUP = 3 };

static void help(FILE *out)
{
    fprintf(
        out,
        "usage: sluice-bench [OPTIONS]\n\n"
        "Produces to and consumes from one topic in one process; prints throughput and\n"
        "end-to-end latency every second, a summary, and a JSON result.\n\n"
        "  -b, --brokers HOST:PORT[,...]  brokers (default $SLUICE_BROKERS, else " DEFAULT_BROKERS
        ")\n"
        "      --topic T               topic (default sluice-bench)\n"
        "      --topics N              N topics, T-0 .. T-(N-1), written in turn message by\n"
        "                              message and all read (default 1: T itself)\n"
        "      --partitions P          partitions of the topic when it is created (default 1)\n"
        "      --producers N           producer threads (default 1, at most 64)\n"
        "      --consumers M           consumer threads (default 1, at most 64)\n"
        "      --groups G              consumers join G consumer groups (consumer i in\n"
        "                              group i %% G), each group reading every message\n"
        "                              (default 0: consumers share the partitions, assigned)\n"
        "      --size BYTES|MIN-MAX    value size, 8..1000000 (default 1024); MIN-MAX:\n"
        "                              each value's size uniform in MIN..MAX\n"
        "      --rate MSGS_PER_S|max   total target rate (default max)\n"
        "      --count N               send N messages in all, then stop (no warm-up;\n"
        "                              --duration becomes the deadline)\n"
        "      --acks 1|all            (default all)\n"
        "      --compression none|zstd (default none)\n"
        "      --idempotence on|off    (default on with --acks all, else off)\n"
        "  -X, --set KEY=VALUE         a libsluice setting for every client, repeatable\n"
        "                              (docs/client.md), e.g. -X linger.ms=0\n"
        "      --warmup S              seconds not measured (default 10)\n"
        "      --duration S            seconds measured (default 60)\n"
        "      --drain S               longest wait for consumers at the end (default 10)\n"
        "      --json FILE             write the result as JSON\n"
        "      --quick                 warm-up 1 s, duration 2 s (for regression checks)\n"
        "      --prefill N             write N messages first, untimed, then measure the\n"
        "                              consumers reading them (implies --consume-existing)\n"
        "      --consume-existing      no producers: consumers read the topic from its start\n"
        "                              to its end, timed from start to the last partition's\n"
        "                              end (--duration is the deadline)\n\n"
        "A missing topic is created (CreateTopics) with --partitions; an existing one\n"
        "is used with the partitions it has.\n"
        "Exit: 0 done; 1 delivery errors or records not consumed; 2 usage; 3 no broker\n"
        "or topic.\n");
}

static int parse_int(const char *name, const char *text, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "sluice-bench: --%s: %s is not a number in %ld..%ld\n", name, text, min,
                max);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

static int parse_choice(const char *name, const char *text, const char *a, const char *b)
{
    if (strcmp(text, a) == 0 || strcmp(text, b) == 0) {
        return 0;
    }
    fprintf(stderr, "sluice-bench: --%s: %s is not %s or %s\n", name, text, a, b);
    return -EINVAL;
}

/* --size BYTES, or MIN-MAX: each value's size uniform in MIN..MAX. */
static int parse_size(const char *text, struct bench_options *o)
{
    char least[32];
    const char *dash = strchr(text, '-');
    size_t len = dash != NULL ? (size_t)(dash - text) : strlen(text);
    if (len >= sizeof(least)) {
        fprintf(stderr, "sluice-bench: --size: %s is not BYTES or MIN-MAX\n", text);
        return -EINVAL;
    }
    memcpy(least, text, len);
    least[len] = '\0';
    long lo, hi;
    if (parse_int("size", least, BENCH_STAMP_BYTES, BENCH_SIZE_MAX, &lo) != 0 ||
        parse_int("size", dash != NULL ? dash + 1 : least, lo, BENCH_SIZE_MAX, &hi) != 0) {
        return -EINVAL;
    }
    o->size = (uint32_t)lo;
    o->size_max = (uint32_t)hi;
    return 0;
}

static int parse_rate(const char *text, double *rate)
{
    if (strcmp(text, "max") == 0) {
        *rate = 0;
        return 0;
    }
    long v;
    if (parse_int("rate", text, 1, 1000000000L, &v) != 0) {
        return -EINVAL;
    }
    *rate = (double)v;
    return 0;
}

static void options_default(struct bench_options *o)
{
    const char *env = getenv("SLUICE_BROKERS");
    *o = (struct bench_options){
        .brokers = env != NULL && *env != '\0' ? env : DEFAULT_BROKERS,
        .topic = "sluice-bench",
        .topics = 1,
        .partitions = 1,
        .producers = 1,
        .consumers = 1,
        .size = 1024,
        .size_max = 1024,
        .rate = 0,
        .acks = "all",
        .compression = "none",
        .idempotence = true,
        .warmup_s = 10,
        .duration_s = 60,
        .drain_s = DRAIN_DEFAULT_S,
    };
}

/* Rules across options; 0 or -EINVAL. */
static int options_check(struct bench_options *o)
{
    if (o->prefill > 0) {
        o->consume_existing = true;
    }
    if (o->consume_existing) {
        if (o->producers != 0 || o->consumers == 0 || o->groups > 0) {
            fprintf(stderr, "sluice-bench: --consume-existing and --prefill take --producers 0, "
                            "--consumers 1 or more and no --groups\n");
            return -EINVAL;
        }
        o->warmup_s = 0;
    } else if (o->producers == 0) {
        fprintf(stderr, "sluice-bench: --producers 0 only with --consume-existing or --prefill\n");
        return -EINVAL;
    }
    if (o->groups > 0 && o->consumers < o->groups) {
        fprintf(stderr, "sluice-bench: --groups %d needs at least as many --consumers\n",
                o->groups);
        return -EINVAL;
    }
    return 0;
}

enum {
    OPT_TOPIC = 256,
    OPT_PARTITIONS,
    OPT_PRODUCERS,
    OPT_CONSUMERS,
    OPT_SIZE,
    OPT_RATE,
    OPT_MESSAGES,
    OPT_ACKS,
    OPT_COMPRESSION,
    OPT_IDEMPOTENCE,
    OPT_WARMUP,
    OPT_DURATION,
    OPT_DRAIN,
    OPT_JSON,
    OPT_QUICK,
    OPT_GROUPS,
    OPT_PREFILL,
    OPT_CONSUME_EXISTING,
    OPT_TOPICS,
    OPT_COUNT
};

static const struct option longopts[] = {
    {"brokers", required_argument, NULL, 'b'},
    {"set", required_argument, NULL, 'X'},
    {"set", required_argument, NULL, 'X'},
    {"topic", required_argument, NULL, OPT_TOPIC},
    {"partitions", required_argument, NULL, OPT_PARTITIONS},
    {"producers", required_argument, NULL, OPT_PRODUCERS},
    {"consumers", required_argument, NULL, OPT_CONSUMERS},
    {"size", required_argument, NULL, OPT_SIZE},
    {"rate", required_argument, NULL, OPT_RATE},
    {"count", required_argument, NULL, OPT_MESSAGES},
    {"acks", required_argument, NULL, OPT_ACKS},
    {"compression", required_argument, NULL, OPT_COMPRESSION},
    {"idempotence", required_argument, NULL, OPT_IDEMPOTENCE},
    {"warmup", required_argument, NULL, OPT_WARMUP},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"drain", required_argument, NULL, OPT_DRAIN},
    {"json", required_argument, NULL, OPT_JSON},
    {"quick", no_argument, NULL, OPT_QUICK},
    {"groups", required_argument, NULL, OPT_GROUPS},
    {"prefill", required_argument, NULL, OPT_PREFILL},
    {"consume-existing", no_argument, NULL, OPT_CONSUME_EXISTING},
    {"topics", required_argument, NULL, OPT_TOPICS},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* One option into o; 0 or -EINVAL (the reason printed). */
static int parse_one(struct bench_options *o, int opt, const char *arg, bool *set)
{
    long v = 0;
    int rc = 0;
    switch (opt) {
    case 'b':
        o->brokers = arg;
        break;
    case 'X':
        if (o->setting_count == BENCH_SETTINGS_MAX || strchr(arg, '=') == NULL) {
            fprintf(stderr, "sluice-bench: -X %s: want KEY=VALUE, at most %d of them\n", arg,
                    BENCH_SETTINGS_MAX);
            return -EINVAL;
        }
        o->settings[o->setting_count++] = arg;
        break;
    case OPT_TOPIC:
        o->topic = arg;
        break;
    case OPT_PARTITIONS:
        rc = parse_int("partitions", arg, 1, BENCH_PARTITIONS_MAX, &v);
        o->partitions = (int32_t)v;
        break;
    case OPT_PRODUCERS:
        rc = parse_int("producers", arg, 0, BENCH_CLIENTS_MAX, &v);
        o->producers = (int)v;
        break;
    case OPT_CONSUMERS:
        rc = parse_int("consumers", arg, 0, BENCH_CLIENTS_MAX, &v);
        o->consumers = (int)v;
        break;
    case OPT_SIZE:
        rc = parse_size(arg, o);
        break;
    case OPT_RATE:
        rc = parse_rate(arg, &o->rate);
        break;
    case OPT_MESSAGES:
        rc = parse_int("count", arg, 1, BENCH_COUNT_MAX, &v);
        o->count = (uint64_t)v;
        break;
    case OPT_ACKS:
        rc = parse_choice("acks", arg, "1", "all");
        o->acks = arg;
        break;
    case OPT_COMPRESSION:
        rc = parse_choice("compression", arg, "none", "zstd");
        o->compression = arg;
        break;
    case OPT_IDEMPOTENCE:
        rc = parse_choice("idempotence", arg, "on", "off");
        o->idempotence = strcmp(arg, "on") == 0;
        set[OPT_IDEMPOTENCE - OPT_TOPIC] = true;
        break;
    case OPT_WARMUP:
        rc = parse_int("warmup", arg, 0, BENCH_SECONDS_MAX, &v);
        o->warmup_s = (int)v;
        set[OPT_WARMUP - OPT_TOPIC] = true;
        break;
    case OPT_DURATION:
        rc = parse_int("duration", arg, 1, BENCH_SECONDS_MAX, &v);
        o->duration_s = (int)v;
        set[OPT_DURATION - OPT_TOPIC] = true;
        break;
    case OPT_DRAIN:
        rc = parse_int("drain", arg, 0, BENCH_SECONDS_MAX, &v);
        o->drain_s = (int)v;
        break;
    case OPT_JSON:
        o->json_path = arg;
        break;
    case OPT_QUICK:
        o->quick = true;
        break;
    case OPT_GROUPS:
        rc = parse_int("groups", arg, 0, BENCH_CLIENTS_MAX, &v);
        o->groups = (int)v;
        break;
    case OPT_PREFILL:
        rc = parse_int("prefill", arg, 1, BENCH_COUNT_MAX, &v);
        o->prefill = (uint64_t)v;
        break;
    case OPT_CONSUME_EXISTING:
        o->consume_existing = true;
        break;
    case OPT_TOPICS:
        rc = parse_int("topics", arg, 1, BENCH_TOPICS_MAX, &v);
        o->topics = (int)v;
        break;
    default:
        return -EINVAL;
    }
    return rc;
}

/* 0, 1 (--help: done) or -EINVAL. */
static int parse_options(int argc, char **argv, struct bench_options *o)
{
    options_default(o);
    bool set[OPT_COUNT - OPT_TOPIC] = {false}; /* which long options were given */
    int opt;
    while ((opt = getopt_long(argc, argv, "b:X:h", longopts, NULL)) != -1) {
        if (opt == 'h') {
            help(stdout);
            return 1;
        }
        if (parse_one(o, opt, optarg, set) != 0) {
            return -EINVAL;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "sluice-bench: unexpected argument %s\n", argv[optind]);
        return -EINVAL;
    }
    if (o->quick) {
        o->warmup_s = set[OPT_WARMUP - OPT_TOPIC] ? o->warmup_s : 1;
        o->duration_s = set[OPT_DURATION - OPT_TOPIC] ? o->duration_s : 2;
    }
    if (o->count > 0) {
        o->warmup_s = 0; /* the count is the whole run */
    }
    if (!set[OPT_IDEMPOTENCE - OPT_TOPIC]) {
        o->idempotence = strcmp(o->acks, "all") == 0;
    }
    if (o->idempotence && strcmp(o->acks, "all") != 0) {
        fprintf(stderr, "sluice-bench: --idempotence on needs --acks all\n");
        return -EINVAL;
    }
    return options_check(o);
}

/* ------------------------------------------------------------------ clients */

/* A conf for a producer (producer = true) or a consumer; NULL on a refusal. */
static sl_conf *conf_make(const struct bench_options *o, bool producer)
{
    char errstr[512];
    sl_conf *conf = sl_conf_new();
    if (conf == NULL) {
        fprintf(stderr, "sluice-bench: out of memory\n");
        return NULL;
    }
    const char *settings[][2] = {
        {"bootstrap.servers", o->brokers},
        {"client.id", "sluice-bench"},
        {"acks", o->acks},
        {"compression.type", o->compression},
        {"enable.idempotence", o->idempotence ? "true" : "false"},
    };
    size_t count = producer ? sizeof(settings) / sizeof(settings[0]) : 2;
    for (size_t i = 0; i < count; i++) {
        if (sl_conf_set(conf, settings[i][0], settings[i][1], errstr, sizeof(errstr)) != SL_OK) {
            fprintf(stderr, "sluice-bench: %s=%s: %s\n", settings[i][0], settings[i][1], errstr);
            sl_conf_free(conf);
            return NULL;
        }
    }
    for (int i = 0; i < o->setting_count; i++) {
        char key[256];
        const char *eq = strchr(o->settings[i], '=');
        snprintf(key, sizeof(key), "%.*s", (int)(eq - o->settings[i]), o->settings[i]);
        if (sl_conf_set(conf, key, eq + 1, errstr, sizeof(errstr)) != SL_OK) {
            fprintf(stderr, "sluice-bench: -X %s: %s\n", o->settings[i], errstr);
            sl_conf_free(conf);
            return NULL;
        }
    }
    return conf;
}

static void on_setup_error(void *opaque, sl_err err, const char *reason)
{
    (void)opaque;
    fprintf(stderr, "sluice-bench: %s (%s)\n", reason, sl_err_name(err));
}

/* The names of the run's topics: --topic, or with --topics N, --topic-0 ..
 * --topic-(N-1). 0 or EXIT_USAGE (a name too long). */
static int topic_names(struct bench *b)
{
    int n = b->opt.topics;
    b->topic_names = calloc((size_t)n, sizeof(*b->topic_names));
    b->topic_list = calloc((size_t)n, sizeof(*b->topic_list));
    if (b->topic_names == NULL || b->topic_list == NULL) {
        fprintf(stderr, "sluice-bench: out of memory\n");
        return EXIT_SETUP;
    }
    for (int t = 0; t < n; t++) {
        int len =
            n == 1 ? snprintf(b->topic_names[t], BENCH_TOPIC_NAME_BYTES, "%s", b->opt.topic)
                   : snprintf(b->topic_names[t], BENCH_TOPIC_NAME_BYTES, "%s-%d", b->opt.topic, t);
        if (len < 0 || len >= BENCH_TOPIC_NAME_BYTES) {
            fprintf(stderr, "sluice-bench: --topic %s: too long\n", b->opt.topic);
            return EXIT_USAGE;
        }
        b->topic_list[t] = b->topic_names[t];
    }
    return 0;
}

/* Creates the topics with --partitions unless they exist. 0 or EXIT_SETUP. */
static int topics_create(struct bench *b)
{
    char errstr[512];
    sl_conf *conf = conf_make(&b->opt, false);
    if (conf == NULL) {
        return EXIT_USAGE;
    }
    sl_conf_set_error_cb(conf, on_setup_error);
    sl_client *admin = sl_admin_new(conf, errstr, sizeof(errstr));
    if (admin == NULL) {
        fprintf(stderr, "sluice-bench: %s\n", errstr);
        sl_conf_free(conf);
        return EXIT_USAGE;
    }
    int rc = 0;
    for (int t = 0; t < b->opt.topics && rc == 0; t++) {
        sl_new_topic topic = {
            .name = b->topic_names[t], .partitions = b->opt.partitions, .replication_factor = -1};
        sl_topic_results *results = NULL;
        sl_err err = sl_create_topics(admin, &topic, 1, 0, METADATA_WAIT_MS, &results);
        if (err != SL_OK && err != SL_ERR_TOPIC_ALREADY_EXISTS) {
            const char *why =
                results != NULL && results->count > 0 ? results->results[0].message : NULL;
            fprintf(stderr, "sluice-bench: create topic %s at %s: %s%s%s\n", topic.name,
                    b->opt.brokers, sl_err_str(err), why != NULL ? ": " : "",
                    why != NULL ? why : "");
            rc = EXIT_SETUP;
        }
        sl_topic_results_free(results);
    }
    sl_close(admin, 0);
    return rc;
}

/* The topics' partition count (the least of them) into b->partitions_used;
 * 0 or EXIT_SETUP. */
static int topic_setup(struct bench *b)
{
    char errstr[512];
    int rc = topic_names(b);
    rc = rc != 0 ? rc : topics_create(b);
    if (rc != 0) {
        return rc;
    }
    sl_conf *conf = conf_make(&b->opt, true);
    if (conf == NULL) {
        return EXIT_USAGE;
    }
    sl_conf_set_error_cb(conf, on_setup_error);
    sl_client *client = sl_producer_new(conf, errstr, sizeof(errstr));
    if (client == NULL) {
        fprintf(stderr, "sluice-bench: %s\n", errstr);
        sl_conf_free(conf);
        return EXIT_USAGE;
    }
    int32_t least = INT32_MAX;
    for (int t = 0; t < b->opt.topics && rc == 0; t++) {
        int32_t count = 0;
        sl_err err = sl_topic_partitions(client, b->topic_names[t], METADATA_WAIT_MS, &count);
        if (err != SL_OK) {
            fprintf(stderr, "sluice-bench: topic %s at %s: %s\n", b->topic_names[t], b->opt.brokers,
                    sl_err_str(err));
            rc = EXIT_SETUP;
        } else if (count != b->opt.partitions) {
            fprintf(stderr, "sluice-bench: topic %s exists with %d partition(s), not %d\n",
                    b->topic_names[t], count, b->opt.partitions);
        }
        least = count < least ? count : least;
    }
    sl_close(client, 0);
    if (rc != 0) {
        return rc;
    }
    /* Slots (topic, partition) must fit the consumers' bound. */
    int32_t per_topic = BENCH_PARTITIONS_MAX / b->opt.topics;
    b->partitions_used = least > per_topic ? per_topic : least;
    return 0;
}

static void on_prefill_delivery(void *opaque, const sl_delivery *d)
{
    uint64_t *failed = opaque;
    *failed += d->err != SL_OK;
}

/* --prefill: N messages of --size random bytes, written before the run and
 * not timed. 0 or EXIT_SETUP. */
static int prefill(struct bench *b)
{
    char errstr[512];
    struct bench_producer filler = {.bench = b, .index = 0};
    sl_conf *conf = conf_make(&b->opt, true);
    if (conf == NULL || bench_producer_pool(&filler) != 0) {
        sl_conf_free(conf);
        return EXIT_SETUP;
    }
    uint64_t failed = 0;
    sl_conf_set_delivery_cb(conf, on_prefill_delivery);
    sl_conf_set_error_cb(conf, on_setup_error);
    sl_conf_set_opaque(conf, &failed);
    sl_client *client = sl_producer_new(conf, errstr, sizeof(errstr));
    if (client == NULL) {
        fprintf(stderr, "sluice-bench: prefill: %s\n", errstr);
        sl_conf_free(conf);
        free(filler.pool);
        return EXIT_SETUP;
    }
    sl_msg msg = {.partition = SL_PARTITION_ANY, .value_len = b->opt.size};
    size_t offset = 0;
    for (uint64_t i = 0; i < b->opt.prefill;) {
        msg.topic = b->topic_names[i % (uint64_t)b->opt.topics];
        msg.value = filler.pool + offset;
        sl_err err = sl_produce(client, &msg);
        if (err == SL_ERR_QUEUE_FULL) {
            sl_poll(client, 1);
            continue;
        }
        if (err != SL_OK) {
            fprintf(stderr, "sluice-bench: prefill: %s\n", sl_err_str(err));
            failed++;
            break;
        }
        offset = (offset + b->opt.size) % BENCH_POOL_BYTES;
        i++;
    }
    sl_err err = sl_close(client, PREFILL_CLOSE_MS);
    free(filler.pool);
    if (err != SL_OK || failed > 0) {
        fprintf(stderr, "sluice-bench: prefill: %llu of %llu messages not written\n",
                (unsigned long long)failed, (unsigned long long)b->opt.prefill);
        return EXIT_SETUP;
    }
    printf("sluice-bench: prefilled %s with %llu messages of %u B\n", b->opt.topic,
           (unsigned long long)b->opt.prefill, b->opt.size);
    return 0;
}

static int clients_create(struct bench *b)
{
    char errstr[512];
    for (int i = 0; i < b->opt.producers; i++) {
        struct bench_producer *p = &b->producers[i];
        *p = (struct bench_producer){.bench = b, .index = i};
        sl_conf *conf = conf_make(&b->opt, true);
        if (conf == NULL) {
            return EXIT_USAGE;
        }
        bench_producer_conf(conf, p);
        p->client = sl_producer_new(conf, errstr, sizeof(errstr));
        if (p->client == NULL) {
            fprintf(stderr, "sluice-bench: producer: %s\n", errstr);
            sl_conf_free(conf);
            return EXIT_USAGE;
        }
        if (bench_producer_pool(p) != 0) {
            fprintf(stderr, "sluice-bench: out of memory\n");
            return EXIT_SETUP;
        }
    }
    for (int i = 0; i < b->opt.consumers; i++) {
        struct bench_consumer *c = &b->consumers[i];
        *c = (struct bench_consumer){.bench = b, .index = i};
        int32_t slots = b->partitions_used * b->opt.topics;
        c->partitions = calloc((size_t)slots + 1, sizeof(int32_t));
        sl_conf *conf = conf_make(&b->opt, false);
        if (c->partitions == NULL || conf == NULL) {
            sl_conf_free(conf);
            return EXIT_USAGE;
        }
        if (b->opt.groups > 0) {
            /* Each run's groups are its own: a group of an earlier run
             * would hand out its committed offsets. */
            char group[96];
            snprintf(group, sizeof(group), "sluice-bench-%s-%d-g%d", b->started_at, (int)getpid(),
                     i % b->opt.groups);
            if (sl_conf_set(conf, "group.id", group, errstr, sizeof(errstr)) != SL_OK ||
                sl_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr)) != SL_OK) {
                fprintf(stderr, "sluice-bench: consumer: %s\n", errstr);
                sl_conf_free(conf);
                return EXIT_USAGE;
            }
        } else {
            for (int32_t slot = i; slot < slots; slot += b->opt.consumers) {
                c->partitions[c->partition_count++] = slot;
            }
            c->assigned = true;
        }
        if (b->opt.consume_existing) {
            c->at_end = calloc((size_t)slots + 1, sizeof(bool));
            c->ends_due = c->partition_count;
            if (c->at_end == NULL || sl_conf_set(conf, "enable.partition.eof", "true", errstr,
                                                 sizeof(errstr)) != SL_OK) {
                sl_conf_free(conf);
                return EXIT_SETUP;
            }
        }
        bench_consumer_conf(conf, c);
        c->client = sl_consumer_new(conf, errstr, sizeof(errstr));
        if (c->client == NULL) {
            fprintf(stderr, "sluice-bench: consumer: %s\n", errstr);
            sl_conf_free(conf);
            return EXIT_USAGE;
        }
    }
    return 0;
}

/* Closes the clients of a run that did not start. */
static void clients_close(struct bench *b)
{
    for (int i = 0; b->producers != NULL && i < b->opt.producers; i++) {
        sl_close(b->producers[i].client, 0);
        b->producers[i].client = NULL;
    }
    for (int i = 0; b->consumers != NULL && i < b->opt.consumers; i++) {
        sl_close(b->consumers[i].client, 0);
        b->consumers[i].client = NULL;
    }
}

/* -------------------------------------------------------------------- run */

static void sleep_until_ns(int64_t when_ns)
{
    struct timespec ts = {.tv_sec = when_ns / 1000000000, .tv_nsec = when_ns % 1000000000};
    while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

static void sleep_ms(long ms)
{
    sleep_until_ns(bench_now_ns() + ms * 1000000);
}

static uint64_t delivered_total(const struct bench *b)
{
    uint64_t n = 0;
    for (int i = 0; i < b->opt.producers; i++) {
        n += atomic_load(&b->producers[i].delivered);
    }
    return n;
}

static void consumed_totals(const struct bench *b, uint64_t *records, uint64_t *bytes)
{
    *records = 0;
    *bytes = 0;
    for (int i = 0; i < b->opt.consumers; i++) {
        *records += atomic_load(&b->consumers[i].consumed);
        *bytes += atomic_load(&b->consumers[i].consumed_bytes);
    }
}

/* 0 once every consumer knows its start, -ETIMEDOUT after the wait. */
static int consumers_wait_ready(struct bench *b)
{
    int64_t deadline_ns = bench_now_ns() + (int64_t)CONSUMERS_READY_WAIT_S * 1000000000;
    for (;;) {
        int ready = 0;
        for (int i = 0; i < b->opt.consumers; i++) {
            ready += atomic_load(&b->consumers[i].ready) ? 1 : 0;
        }
        if (ready == b->opt.consumers) {
            return 0;
        }
        if (bench_now_ns() > deadline_ns) {
            return -ETIMEDOUT;
        }
        sleep_ms(10);
    }
}

static bool producers_all_closed(struct bench *b)
{
    return atomic_load(&b->producers_closed) == b->opt.producers;
}

static bool consumers_all_done(struct bench *b)
{
    for (int i = 0; i < b->opt.consumers; i++) {
        if (!atomic_load(&b->consumers[i].done)) {
            return false;
        }
    }
    return true;
}

/* Whether the run is over before its time: --count sent, or
 * --consume-existing read. */
static bool run_finished(struct bench *b)
{
    return (b->opt.count > 0 && producers_all_closed(b)) ||
           (b->opt.consume_existing && consumers_all_done(b));
}

/* Sleeps until when_ns; with --count or --consume-existing, wakes early once
 * the run is over (no need to wait for the tick). */
static void sleep_tick(struct bench *b, int64_t when_ns)
{
    if (b->opt.count == 0 && !b->opt.consume_existing) {
        sleep_until_ns(when_ns);
        return;
    }
    int64_t now_ns;
    while (!run_finished(b) && (now_ns = bench_now_ns()) < when_ns) {
        int64_t slice_end_ns = now_ns + 10 * 1000000;
        sleep_until_ns(slice_end_ns < when_ns ? slice_end_ns : when_ns);
    }
}

/* The per-second lines until the window ends (or a producer gave up, or
 * with --count every producer is done). */
static void run_ticks(struct bench *b)
{
    struct hist *interval = malloc(sizeof(*interval));
    uint64_t last_delivered = 0, last_consumed = 0, last_bytes = 0, last_sent_bytes = 0;
    int total_s = b->opt.warmup_s + b->opt.duration_s;
    for (int t = 1; t <= total_s && !atomic_load(&b->stop_producing); t++) {
        sleep_tick(b, b->clock.start_ns + (int64_t)t * 1000000000);
        if (run_finished(b)) {
            break; /* a partial second: the summary has the figure */
        }
        if (interval != NULL) {
            hist_init(interval);
            for (int i = 0; i < b->opt.consumers; i++) {
                struct bench_consumer *c = &b->consumers[i];
                pthread_mutex_lock(&c->lock);
                hist_merge(interval, &c->interval);
                hist_init(&c->interval);
                pthread_mutex_unlock(&c->lock);
            }
        }
        uint64_t delivered = delivered_total(b), consumed, bytes, sent_bytes = 0;
        for (int i = 0; i < b->opt.producers; i++) {
            sent_bytes += atomic_load(&b->producers[i].delivered_bytes);
        }
        consumed_totals(b, &consumed, &bytes);
        struct bench_tick tick = {
            .t_s = t,
            .measuring = t > b->opt.warmup_s,
            .produce_msgs_per_s = (double)(delivered - last_delivered),
            .produce_mb_per_s = (double)(sent_bytes - last_sent_bytes) / 1e6,
            .consume_msgs_per_s = (double)(consumed - last_consumed),
            .consume_mb_per_s = (double)(bytes - last_bytes) / 1e6,
        };
        last_delivered = delivered;
        last_sent_bytes = sent_bytes;
        last_consumed = consumed;
        last_bytes = bytes;
        bench_tick_print(b, &tick, interval);
    }
    free(interval);
}

/* Waits until consumers have read every delivered message, or drain_s. */
static void run_drain(struct bench *b)
{
    int64_t start_ns = bench_now_ns();
    int64_t deadline_ns = start_ns + (int64_t)b->opt.drain_s * 1000000000;
    /* With groups, every group reads every message. */
    uint64_t want = delivered_total(b) * (uint64_t)(b->opt.groups > 0 ? b->opt.groups : 1);
    uint64_t consumed, bytes;
    for (;;) {
        consumed_totals(b, &consumed, &bytes);
        b->drained = b->opt.consumers == 0 || consumed >= want || b->opt.consume_existing;
        if (b->drained || bench_now_ns() >= deadline_ns) {
            break;
        }
        sleep_ms(10);
    }
    b->drain_s = (double)(bench_now_ns() - start_ns) / 1e9;
}

/* Starts the threads, measures, stops them. 0 or EXIT_SETUP. */
static int run(struct bench *b)
{
    int started_consumers = 0, started_producers = 0, rc = 0;
    if (b->opt.consume_existing) {
        /* The clock runs from the consumers' start: they read at once. */
        b->clock.start_ns = bench_now_ns();
    }
    for (; started_consumers < b->opt.consumers; started_consumers++) {
        if (bench_consumer_start(&b->consumers[started_consumers]) != 0) {
            rc = EXIT_SETUP;
            break;
        }
    }
    if (rc == 0 && consumers_wait_ready(b) != 0) {
        fprintf(stderr, "sluice-bench: consumers did not find the partitions' end in %d s\n",
                CONSUMERS_READY_WAIT_S);
        rc = EXIT_SETUP;
    }
    if (rc == 0) {
        int64_t now_ns = b->opt.consume_existing ? b->clock.start_ns : bench_now_ns();
        b->clock.start_ns = now_ns;
        b->clock.measure_start_ns = now_ns + (int64_t)b->opt.warmup_s * 1000000000;
        b->clock.measure_end_ns =
            b->opt.count > 0 ? INT64_MAX
                             : b->clock.measure_start_ns + (int64_t)b->opt.duration_s * 1000000000;
        for (; started_producers < b->opt.producers; started_producers++) {
            if (bench_producer_start(&b->producers[started_producers]) != 0) {
                atomic_store(&b->stop_producing, true);
                rc = EXIT_SETUP;
                break;
            }
        }
        run_ticks(b);
    }
    atomic_store(&b->stop_producing, true);
    int64_t last_delivery_ns = b->clock.start_ns;
    for (int i = 0; i < started_producers; i++) {
        pthread_join(b->producers[i].thread, NULL);
        if (b->producers[i].last_delivery_ns > last_delivery_ns) {
            last_delivery_ns = b->producers[i].last_delivery_ns;
        }
    }
    b->measured_s = b->opt.count == 0 ? b->opt.duration_s
                                      : (double)(last_delivery_ns - b->clock.start_ns) / 1e9;
    if (b->opt.consume_existing) {
        int64_t last_ns = b->clock.start_ns;
        for (int i = 0; i < started_consumers; i++) {
            struct bench_consumer *c = &b->consumers[i];
            int64_t end_ns = atomic_load(&c->done) ? c->done_ns : bench_now_ns();
            last_ns = end_ns > last_ns ? end_ns : last_ns;
        }
        b->measured_s = (double)(last_ns - b->clock.start_ns) / 1e9;
    }
    if (rc == 0) {
        run_drain(b);
    }
    atomic_store(&b->stop_consuming, true);
    for (int i = 0; i < started_consumers; i++) {
        pthread_join(b->consumers[i].thread, NULL);
    }
    return rc;
}

/* ----------------------------------------------------------------- result */

/* Merges the threads' histograms; prints and writes the result. 0 or 1. */
static int report(struct bench *b)
{
    struct hist *e2e = malloc(sizeof(*e2e));
    struct hist *ack = malloc(sizeof(*ack));
    if (e2e == NULL || ack == NULL) {
        free(e2e);
        free(ack);
        fprintf(stderr, "sluice-bench: out of memory\n");
        return 1;
    }
    hist_init(e2e);
    hist_init(ack);
    uint64_t failed = 0;
    for (int i = 0; i < b->opt.producers; i++) {
        hist_merge(ack, &b->producers[i].ack_latency);
        failed += atomic_load(&b->producers[i].failed);
    }
    for (int i = 0; i < b->opt.consumers; i++) {
        hist_merge(e2e, &b->consumers[i].e2e);
        failed += atomic_load(&b->consumers[i].failed);
    }
    bench_summary_print(b, e2e, ack);
    uint64_t delivered = delivered_total(b);
    bool short_count = b->opt.count > 0 && delivered < b->opt.count;
    int rc = failed == 0 && b->drained && !atomic_load(&b->aborted) && !short_count ? 0 : 1;
    if (atomic_load(&b->aborted)) {
        fprintf(stderr, "sluice-bench: a producer stopped early: the figures cover less than "
                        "the duration\n");
    }
    if (short_count) {
        fprintf(stderr, "sluice-bench: %llu of %llu messages delivered by the deadline (%d s)\n",
                (unsigned long long)delivered, (unsigned long long)b->opt.count, b->opt.duration_s);
    }
    if (b->opt.json_path != NULL && bench_json_write(b, e2e, ack) != 0) {
        fprintf(stderr, "sluice-bench: %s: %s\n", b->opt.json_path, strerror(errno));
        rc = 1;
    }
    free(e2e);
    free(ack);
    return rc;
}

static int bench_alloc(struct bench *b)
{
    b->producers = calloc((size_t)b->opt.producers, sizeof(*b->producers));
    b->consumers = calloc((size_t)b->opt.consumers + 1, sizeof(*b->consumers));
    b->tick_capacity = b->opt.warmup_s + b->opt.duration_s;
    b->ticks = calloc((size_t)b->tick_capacity, sizeof(*b->ticks));
    return b->producers != NULL && b->consumers != NULL && b->ticks != NULL ? 0 : -ENOMEM;
}

static void bench_free(struct bench *b)
{
    for (int i = 0; b->consumers != NULL && i < b->opt.consumers; i++) {
        free(b->consumers[i].partitions);
        free(b->consumers[i].at_end);
    }
    for (int i = 0; b->producers != NULL && i < b->opt.producers; i++) {
        free(b->producers[i].pool);
    }
    free(b->producers);
    free(b->consumers);
    free(b->ticks);
    free(b->topic_names);
    free(b->topic_list);
}

int main(int argc, char **argv)
{
    static struct bench b; /* large (histograms inline): not on the stack */
    int rc = parse_options(argc, argv, &b.opt);
    if (rc != 0) {
        return rc > 0 ? 0 : EXIT_USAGE;
    }
    time_t now = time(NULL);
    struct tm utc;
    strftime(b.started_at, sizeof(b.started_at), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &utc));
    atomic_init(&b.stop_producing, false);
    atomic_init(&b.stop_consuming, false);
    atomic_init(&b.aborted, false);
    atomic_init(&b.producers_closed, 0);
    rc = topic_setup(&b);
    if (rc == 0 && b.opt.prefill > 0) {
        rc = prefill(&b);
    }
    if (rc == 0 && bench_alloc(&b) != 0) {
        fprintf(stderr, "sluice-bench: out of memory\n");
        rc = EXIT_SETUP;
    }
    if (rc == 0) {
        rc = clients_create(&b);
    }
    if (rc != 0) {
        clients_close(&b);
        bench_free(&b);
        return rc;
    }
    char rate[32], span[64];
    snprintf(rate, sizeof(rate), b.opt.rate > 0 ? "%.0f msgs/s" : "max", b.opt.rate);
    if (b.opt.count > 0) {
        snprintf(span, sizeof(span), "%llu messages (deadline %d s)",
                 (unsigned long long)b.opt.count, b.opt.duration_s);
    } else {
        snprintf(span, sizeof(span), "warm-up %d s, duration %d s", b.opt.warmup_s,
                 b.opt.duration_s);
    }
    printf("sluice-bench: topic %s%s, %d partition(s)%s, %d producer(s), %d consumer(s), %u B, "
           "rate %s, acks=%s, compression=%s, idempotence %s, %s\n",
           b.topic_names[0], b.opt.topics > 1 ? " and the others of --topics" : "",
           b.partitions_used, b.opt.topics > 1 ? " each" : "", b.opt.producers, b.opt.consumers,
           b.opt.size, rate, b.opt.acks, b.opt.compression, b.opt.idempotence ? "on" : "off", span);
    rc = run(&b);
    if (rc == 0) {
        rc = report(&b);
    } else {
        clients_close(&b);
    }
    bench_free(&b);
    return rc;
}
