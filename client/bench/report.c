/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sluice-bench's output: a line a second on stdout, the summary, and the
 * JSON result. The JSON (one object) holds:
 *
 *   tool, version (libsluice's), commit (`git rev-parse --short HEAD` in the
 *   working directory, null outside a checkout), started_at (UTC),
 *   machine {cores, kernel, hostname},
 *   config {brokers, topic, topics, partitions (of each topic), partitions_used, producers,
 *           consumers, message_bytes, rate (null: max), count (null: by
 *           duration), acks, compression, idempotence, warmup_s, duration_s,
 *           quick, groups, prefill, consume_existing, message_bytes_max,
 *           size_distribution ("fixed", or "uniform" in message_bytes..max)},
 *   results {measured_s (with count: first send to last delivery report),
 *            produce {messages, msgs_per_s, mb_per_s, produced_total,
 *                     failed, ack_latency_us {percentiles}},
 *            consume {messages, msgs_per_s, mb_per_s, consumed_total, failed},
 *            e2e_latency_us {count, mean, p50, p90, p99, p99_9, p99_99, max},
 *            e2e_latency_curve_us [[percentile, us], ...] (0..100, dense in the tail),
 *            drained, drain_s},
 *   timeline [{t_s, measuring, produce_msgs_per_s, consume_msgs_per_s,
 *              consume_mb_per_s, e2e_p50_us, e2e_p99_us}]
 *
 * "messages" of produce and consume count the messages sent inside the
 * measured window (delivered, and consumed); *_total count the whole run.
 * With --count the window is the whole run.
 * MB are 10^6 bytes of values.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "client/bench/bench.h"

static const struct {
    const char *json_name;
    const char *text_name;
    double percentile;
} percentiles[] = {
    {"p50", "p50", 50.0},     {"p90", "p90", 90.0},        {"p99", "p99", 99.0},
    {"p99_9", "p99.9", 99.9}, {"p99_99", "p99.99", 99.99}, {"max", "max", 100.0},
};
#define PERCENTILE_COUNT (sizeof(percentiles) / sizeof(percentiles[0]))

void bench_tick_print(struct bench *b, struct bench_tick *tick, const struct hist *interval)
{
    if (interval != NULL) {
        tick->e2e_p50_us = hist_percentile(interval, 50.0);
        tick->e2e_p99_us = hist_percentile(interval, 99.0);
    }
    printf("%4ds %-7s produce %9.0f msgs/s %8.2f MB/s   consume %9.0f msgs/s %8.2f MB/s   "
           "e2e p50 %6llu us p99 %7llu us\n",
           tick->t_s, tick->measuring ? "measure" : "warm-up", tick->produce_msgs_per_s,
           tick->produce_mb_per_s, tick->consume_msgs_per_s, tick->consume_mb_per_s,
           (unsigned long long)tick->e2e_p50_us, (unsigned long long)tick->e2e_p99_us);
    fflush(stdout);
    if (b->tick_count < b->tick_capacity) {
        b->ticks[b->tick_count++] = *tick;
    }
}

struct totals {
    uint64_t delivered_measured, delivered, produce_failed, delivered_bytes_measured;
    uint64_t consumed_measured, consumed, consume_failed, consumed_bytes_measured;
    sl_err first_error; /* of the first producer with a failure */
};

static struct totals totals_of(const struct bench *b)
{
    struct totals t = {0};
    for (int i = 0; i < b->opt.producers; i++) {
        t.delivered_measured += atomic_load(&b->producers[i].delivered_measured);
        t.delivered_bytes_measured += atomic_load(&b->producers[i].delivered_bytes_measured);
        t.delivered += atomic_load(&b->producers[i].delivered);
        if (t.produce_failed == 0 && atomic_load(&b->producers[i].failed) > 0) {
            t.first_error = (sl_err)atomic_load(&b->producers[i].first_error);
        }
        t.produce_failed += atomic_load(&b->producers[i].failed);
    }
    for (int i = 0; i < b->opt.consumers; i++) {
        t.consumed_measured += atomic_load(&b->consumers[i].consumed_measured);
        t.consumed_bytes_measured += atomic_load(&b->consumers[i].consumed_bytes_measured);
        t.consumed += atomic_load(&b->consumers[i].consumed);
        t.consume_failed += atomic_load(&b->consumers[i].failed);
    }
    return t;
}

static void percentiles_print(const char *what, const struct hist *h)
{
    printf("%s (us, %llu values):", what, (unsigned long long)h->count);
    for (size_t i = 0; i < PERCENTILE_COUNT; i++) {
        printf(" %s %llu", percentiles[i].text_name,
               (unsigned long long)hist_percentile(h, percentiles[i].percentile));
    }
    printf("\n");
}

void bench_summary_print(const struct bench *b, const struct hist *e2e, const struct hist *ack)
{
    struct totals t = totals_of(b);
    double seconds = b->measured_s > 0 ? b->measured_s : 1e-9;
    if (b->opt.count > 0) {
        printf("\nsummary of %llu messages, first send to last delivery report in %.3f s:\n",
               (unsigned long long)b->opt.count, b->measured_s);
    } else {
        printf("\nsummary over %d s measured (after %d s of warm-up):\n", b->opt.duration_s,
               b->opt.warmup_s);
    }
    printf("produce: %llu msgs, %.0f msgs/s, %.2f MB/s; %llu failed%s%s\n",
           (unsigned long long)t.delivered_measured, t.delivered_measured / seconds,
           t.delivered_bytes_measured / 1e6 / seconds, (unsigned long long)t.produce_failed,
           t.produce_failed > 0 ? ", first: " : "",
           t.produce_failed > 0 ? sl_err_name(t.first_error) : "");
    printf("consume: %llu msgs, %.0f msgs/s, %.2f MB/s; %llu errors\n",
           (unsigned long long)t.consumed_measured, t.consumed_measured / seconds,
           t.consumed_bytes_measured / 1e6 / seconds, (unsigned long long)t.consume_failed);
    percentiles_print("end-to-end latency", e2e);
    percentiles_print("ack latency", ack);
    printf("whole run: %llu delivered, %llu consumed; %s after %.2f s of drain\n",
           (unsigned long long)t.delivered, (unsigned long long)t.consumed,
           b->drained ? "all consumed" : "NOT all consumed", b->drain_s);
}

/* ------------------------------------------------------------------- JSON */

static void json_string(FILE *f, const char *s)
{
    if (s == NULL) {
        fputs("null", f);
        return;
    }
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\') {
            fprintf(f, "\\%c", *p);
        } else if (*p < 0x20) {
            fprintf(f, "\\u%04x", *p);
        } else {
            fputc(*p, f);
        }
    }
    fputc('"', f);
}

static void json_percentiles(FILE *f, const struct hist *h)
{
    fprintf(f, "{\"count\": %llu, \"mean\": %.1f", (unsigned long long)h->count, hist_mean(h));
    for (size_t i = 0; i < PERCENTILE_COUNT; i++) {
        fprintf(f, ", \"%s\": %llu", percentiles[i].json_name,
                (unsigned long long)hist_percentile(h, percentiles[i].percentile));
    }
    fputc('}', f);
}

/* The commit of the working directory's checkout into buf; "" if none. */
static void git_commit(char *buf, size_t size)
{
    buf[0] = '\0';
    FILE *p = popen("git rev-parse --short HEAD 2>/dev/null", "r");
    if (p == NULL) {
        return;
    }
    if (fgets(buf, (int)size, p) == NULL) {
        buf[0] = '\0';
    }
    buf[strcspn(buf, "\r\n")] = '\0';
    pclose(p);
}

static void json_head(FILE *f, const struct bench *b)
{
    char commit[64], host[256] = "";
    struct utsname uts;
    git_commit(commit, sizeof(commit));
    if (uname(&uts) != 0) {
        strcpy(uts.release, "");
    }
    gethostname(host, sizeof(host) - 1);
    fprintf(f, "{\n  \"tool\": \"sluice-bench\",\n  \"version\": ");
    json_string(f, sl_version_str());
    fprintf(f, ",\n  \"commit\": ");
    json_string(f, commit[0] != '\0' ? commit : NULL);
    fprintf(f, ",\n  \"started_at\": ");
    json_string(f, b->started_at);
    fprintf(f, ",\n  \"machine\": {\"cores\": %ld, \"kernel\": ", sysconf(_SC_NPROCESSORS_ONLN));
    json_string(f, uts.release);
    fprintf(f, ", \"hostname\": ");
    json_string(f, host);
    fprintf(f, "},\n  \"config\": {\"brokers\": ");
    json_string(f, b->opt.brokers);
    fprintf(f, ", \"topic\": ");
    json_string(f, b->opt.topic);
    fprintf(f,
            ", \"topics\": %d, \"partitions\": %d, \"partitions_used\": %d, \"producers\": %d, "
            "\"consumers\": %d, \"message_bytes\": %u, ",
            b->opt.topics, b->opt.partitions, b->partitions_used, b->opt.producers,
            b->opt.consumers, b->opt.size);
    if (b->opt.rate > 0) {
        fprintf(f, "\"rate\": %.0f", b->opt.rate);
    } else {
        fprintf(f, "\"rate\": null");
    }
    if (b->opt.count > 0) {
        fprintf(f, ", \"count\": %llu", (unsigned long long)b->opt.count);
    } else {
        fprintf(f, ", \"count\": null");
    }
    fprintf(f, ", \"acks\": ");
    json_string(f, b->opt.acks);
    fprintf(f, ", \"compression\": ");
    json_string(f, b->opt.compression);
    fprintf(f, ", \"idempotence\": %s, \"warmup_s\": %d, \"duration_s\": %d, \"quick\": %s",
            b->opt.idempotence ? "true" : "false", b->opt.warmup_s, b->opt.duration_s,
            b->opt.quick ? "true" : "false");
    fprintf(f, ", \"groups\": %d, \"prefill\": %llu, \"consume_existing\": %s", b->opt.groups,
            (unsigned long long)b->opt.prefill, b->opt.consume_existing ? "true" : "false");
    fprintf(f, ", \"message_bytes_max\": %u, \"size_distribution\": \"%s\"},\n", b->opt.size_max,
            b->opt.size_max > b->opt.size ? "uniform" : "fixed");
}

/* The latency at each of these percentiles: the distribution chart's points,
 * dense towards the tail (bench/plot.py draws them on a "nines" axis). */
static const double curve_points[] = {
    0,     10,    20,    30,     40,     50,     60,      70,      75,   80,   85,
    90,    92.5,  95,    97,     98,     99,     99.5,    99.7,    99.8, 99.9, 99.95,
    99.97, 99.98, 99.99, 99.995, 99.997, 99.999, 99.9995, 99.9999, 100,
};

static void json_curve(FILE *f, const struct hist *h)
{
    fprintf(f, "[");
    for (size_t i = 0; h->count > 0 && i < sizeof(curve_points) / sizeof(curve_points[0]); i++) {
        fprintf(f, "%s[%g, %llu]", i == 0 ? "" : ", ", curve_points[i],
                (unsigned long long)hist_percentile(h, curve_points[i]));
    }
    fprintf(f, "]");
}

static void json_results(FILE *f, const struct bench *b, const struct hist *e2e,
                         const struct hist *ack)
{
    struct totals t = totals_of(b);
    double seconds = b->measured_s > 0 ? b->measured_s : 1e-9;
    fprintf(f, "  \"results\": {\n    \"measured_s\": %.3f,\n", b->measured_s);
    fprintf(f,
            "    \"produce\": {\"messages\": %llu, \"msgs_per_s\": %.1f, \"mb_per_s\": %.3f, "
            "\"produced_total\": %llu, \"failed\": %llu, \"ack_latency_us\": ",
            (unsigned long long)t.delivered_measured, t.delivered_measured / seconds,
            t.delivered_bytes_measured / 1e6 / seconds, (unsigned long long)t.delivered,
            (unsigned long long)t.produce_failed);
    json_percentiles(f, ack);
    fprintf(f,
            "},\n    \"consume\": {\"messages\": %llu, \"msgs_per_s\": %.1f, \"mb_per_s\": %.3f, "
            "\"consumed_total\": %llu, \"failed\": %llu},\n    \"e2e_latency_us\": ",
            (unsigned long long)t.consumed_measured, t.consumed_measured / seconds,
            t.consumed_bytes_measured / 1e6 / seconds, (unsigned long long)t.consumed,
            (unsigned long long)t.consume_failed);
    json_percentiles(f, e2e);
    fprintf(f, ",\n    \"e2e_latency_curve_us\": ");
    json_curve(f, e2e);
    fprintf(f, ",\n    \"drained\": %s, \"drain_s\": %.3f\n  },\n", b->drained ? "true" : "false",
            b->drain_s);
}

int bench_json_write(const struct bench *b, const struct hist *e2e, const struct hist *ack)
{
    FILE *f = fopen(b->opt.json_path, "w");
    if (f == NULL) {
        return -errno;
    }
    json_head(f, b);
    json_results(f, b, e2e, ack);
    fprintf(f, "  \"timeline\": [");
    for (int i = 0; i < b->tick_count; i++) {
        const struct bench_tick *k = &b->ticks[i];
        fprintf(f,
                "%s\n    {\"t_s\": %d, \"measuring\": %s, \"produce_msgs_per_s\": %.0f, "
                "\"consume_msgs_per_s\": %.0f, \"consume_mb_per_s\": %.3f, \"e2e_p50_us\": "
                "%llu, \"e2e_p99_us\": %llu}",
                i == 0 ? "" : ",", k->t_s, k->measuring ? "true" : "false", k->produce_msgs_per_s,
                k->consume_msgs_per_s, k->consume_mb_per_s, (unsigned long long)k->e2e_p50_us,
                (unsigned long long)k->e2e_p99_us);
    }
    fprintf(f, "\n  ]\n}\n");
    int err = ferror(f) ? -EIO : 0;
    if (fclose(f) != 0 && err == 0) {
        err = -errno;
    }
    return err;
}
