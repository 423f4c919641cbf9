/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sluice topic create|delete|list|describe: topics through libsluice's
 * admin calls. Each prints a table for people, or with --json one JSON
 * document for scripts. A topic that does not exist exits 4, a broker that
 * cannot be reached 3, a request the broker refuses 1 (its error named).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/cli/cli.h"

/* Topics named by one create or delete. */
#define TOPICS_MAX 1024
/* -c settings of one create. */
#define CONFIGS_MAX 256

static bool parse_count(const struct cli_admin *a, const char *opt, const char *arg, int64_t max,
                        int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(arg, &end, 10);
    if (errno != 0 || *end != '\0' || end == arg || v < 1 || v > max) {
        cli_err(a->cmd, "%s %s: expected a number from 1 to %" PRId64, opt, arg, max);
        return false;
    }
    *out = v;
    return true;
}

/* Prints each topic's outcome; the exit code of the first failure. */
static int print_results(const struct cli_admin *a, const sl_topic_results *r)
{
    int rc = CLI_EXIT_OK;
    struct cli_table t;
    cli_table_init(&t, 3);
    if (!a->json) {
        cli_table_cell(&t, "TOPIC");
        cli_table_cell(&t, "STATUS");
        cli_table_cell(&t, "MESSAGE");
    } else {
        fputc('[', stdout);
    }
    for (size_t i = 0; i < r->count; i++) {
        const sl_topic_result *x = &r->results[i];
        if (x->err != SL_OK && rc == CLI_EXIT_OK) {
            rc = cli_admin_exit_code(x->err);
        }
        if (x->err != SL_OK) {
            cli_err(a->cmd, "%s: %s%s%s", x->name, sl_err_name(x->err),
                    x->message != NULL ? ": " : "", x->message != NULL ? x->message : "");
        }
        if (a->json) {
            fputs(i > 0 ? ",{\"topic\":" : "{\"topic\":", stdout);
            cli_json_str(stdout, x->name);
            fputs(",\"error\":", stdout);
            cli_json_str(stdout, x->err != SL_OK ? sl_err_name(x->err) : NULL);
            fputs(",\"message\":", stdout);
            cli_json_str(stdout, x->message);
            fputc('}', stdout);
        } else {
            cli_table_cell(&t, "%s", x->name);
            cli_table_cell(&t, "%s", x->err == SL_OK ? "OK" : sl_err_name(x->err));
            cli_table_cell(&t, "%s", x->message != NULL ? x->message : "");
        }
    }
    if (a->json) {
        fputs("]\n", stdout);
    } else {
        cli_table_print(&t, stdout);
    }
    return rc;
}

/* ================================================================ create */

struct create_opts {
    struct cli_admin *a;
    int64_t partitions, replicas; /* -1: the broker's default */
    const char *configs[CONFIGS_MAX];
    size_t config_count;
    bool validate_only;
};

static void create_help(FILE *out)
{
    fprintf(out,
            "usage: sluice topic create TOPIC... [OPTIONS]\n\n"
            "Creates topics.\n\n"
            "  -p, --partitions N        partitions (default: the broker's num.partitions)\n"
            "  -r, --replicas N          replication factor (default: the broker's)\n"
            "  -c, --config KEY=VALUE    a topic setting (retention.ms=..., cleanup.policy=...),\n"
            "                            repeatable\n"
            "      --validate-only       only check that the topics could be created\n"
            "  -J, --json                print the outcome as JSON\n"
            "  -b, --brokers HOST:PORT[,...]  -X, --set KEY=VALUE  (as every command)\n\n"
            "Exit codes: 0 created, 1 refused by the broker (TOPIC_ALREADY_EXISTS,\n"
            "INVALID_REPLICATION_FACTOR, INVALID_CONFIG...: the reason is printed),\n"
            "2 bad usage, 3 no broker reachable.\n");
}

static bool create_option(void *opaque, int opt, const char *arg)
{
    struct create_opts *o = opaque;
    switch (opt) {
    case 'p':
        return parse_count(o->a, "-p", arg, INT32_MAX, &o->partitions);
    case 'r':
        return parse_count(o->a, "-r", arg, INT16_MAX, &o->replicas);
    case 'c':
        if (strchr(arg, '=') == NULL || arg[0] == '=') {
            cli_err(o->a->cmd, "-c %s: expected key=value", arg);
            return false;
        }
        if (o->config_count == CONFIGS_MAX) {
            cli_err(o->a->cmd, "more than %d -c settings", CONFIGS_MAX);
            return false;
        }
        o->configs[o->config_count++] = arg;
        return true;
    case 'V':
        o->validate_only = true;
        return true;
    default:
        return false;
    }
}

static int topic_create(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONGOPTS,
        {"partitions", required_argument, NULL, 'p'},
        {"replicas", required_argument, NULL, 'r'},
        {"config", required_argument, NULL, 'c'},
        {"validate-only", no_argument, NULL, 'V'},
        {"json", no_argument, NULL, 'J'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct cli_admin a = {.cmd = "topic create"};
    struct create_opts o = {.a = &a, .partitions = -1, .replicas = -1};
    char *names[TOPICS_MAX];
    size_t n = 0;
    int rc = cli_admin_parse(&a, argc, argv, CLI_COMMON_SHORTOPTS "p:r:c:Jh", longopts,
                             create_option, &o, create_help, 1, TOPICS_MAX, names, &n);
    if (rc >= 0 || (rc = cli_admin_open(&a)) >= 0) {
        return rc;
    }
    sl_new_topic topics[TOPICS_MAX];
    for (size_t i = 0; i < n; i++) {
        topics[i] = (sl_new_topic){names[i], (int32_t)o.partitions, (int16_t)o.replicas, o.configs,
                                   o.config_count};
    }
    sl_topic_results *res = NULL;
    sl_err err = sl_create_topics(a.client, topics, n, o.validate_only, CLI_ADMIN_TIMEOUT_MS, &res);
    if (res != NULL) {
        rc = print_results(&a, res);
    } else {
        char what[300];
        snprintf(what, sizeof(what), "create %s%s", names[0], n > 1 ? " ..." : "");
        rc = cli_admin_fail(&a, err, what);
    }
    sl_topic_results_free(res);
    cli_admin_close(&a);
    return rc;
}

/* ================================================================ delete */

static void delete_help(FILE *out)
{
    fprintf(out, "usage: sluice topic delete TOPIC... [OPTIONS]\n\n"
                 "Deletes topics and their records.\n\n"
                 "  -J, --json                print the outcome as JSON\n"
                 "  -b, --brokers HOST:PORT[,...]  -X, --set KEY=VALUE  (as every command)\n\n"
                 "Exit codes: 0 deleted, 1 refused by the broker, 2 bad usage,\n"
                 "3 no broker reachable, 4 no such topic.\n");
}

static int topic_delete(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONGOPTS,
        {"json", no_argument, NULL, 'J'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct cli_admin a = {.cmd = "topic delete"};
    char *names[TOPICS_MAX];
    size_t n = 0;
    int rc = cli_admin_parse(&a, argc, argv, CLI_COMMON_SHORTOPTS "Jh", longopts, NULL, NULL,
                             delete_help, 1, TOPICS_MAX, names, &n);
    if (rc >= 0 || (rc = cli_admin_open(&a)) >= 0) {
        return rc;
    }
    sl_topic_results *res = NULL;
    sl_err err =
        sl_delete_topics(a.client, (const char *const *)names, n, CLI_ADMIN_TIMEOUT_MS, &res);
    if (res != NULL) {
        rc = print_results(&a, res);
    } else {
        char what[300];
        snprintf(what, sizeof(what), "delete %s%s", names[0], n > 1 ? " ..." : "");
        rc = cli_admin_fail(&a, err, what);
    }
    sl_topic_results_free(res);
    cli_admin_close(&a);
    return rc;
}

/* ================================================================ list */

struct list_opts {
    bool internal;
};

static void list_help(FILE *out)
{
    fprintf(out,
            "usage: sluice topic list [OPTIONS]\n\n"
            "Lists the cluster's topics: NAME PARTITIONS REPLICAS.\n\n"
            "  -i, --internal            include the broker's own topics (__consumer_offsets)\n"
            "  -J, --json                a JSON array of {name, id, partitions, replicas,\n"
            "                            internal}\n"
            "  -b, --brokers HOST:PORT[,...]  -X, --set KEY=VALUE  (as every command)\n");
}

static bool list_option(void *opaque, int opt, const char *arg)
{
    (void)arg;
    struct list_opts *o = opaque;
    if (opt == 'i') {
        o->internal = true;
        return true;
    }
    return false;
}

/* Kafka's textual topic id: URL-safe base64 of the 16 bytes, unpadded. */
static const char *topic_id_str(const uint8_t id[16], char out[23])
{
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < 16; i += 3) {
        uint32_t v = (uint32_t)id[i] << 16;
        v |= i + 1 < 16 ? (uint32_t)id[i + 1] << 8 : 0;
        v |= i + 2 < 16 ? id[i + 2] : 0;
        size_t chars = i + 2 < 16 ? 4 : i + 1 < 16 ? 3 : 2;
        for (size_t k = 0; k < chars; k++) {
            out[o++] = digits[(v >> (18 - 6 * k)) & 63];
        }
    }
    out[o] = '\0';
    return out;
}

/* A topic's replication factor as its partitions show it. */
static size_t replicas_of(const sl_topic_info *t)
{
    size_t r = 0;
    for (size_t i = 0; i < t->partition_count; i++) {
        r = t->partitions[i].replica_count > r ? t->partitions[i].replica_count : r;
    }
    return r;
}

static void list_print(const struct cli_admin *a, const sl_metadata *md, bool internal)
{
    struct cli_table t;
    cli_table_init(&t, 3);
    bool first = true;
    if (a->json) {
        fputc('[', stdout);
    } else {
        cli_table_cell(&t, "NAME");
        cli_table_cell(&t, "PARTITIONS");
        cli_table_cell(&t, "REPLICAS");
    }
    for (size_t i = 0; i < md->topic_count; i++) {
        const sl_topic_info *ti = &md->topics[i];
        if ((ti->internal && !internal) || ti->err != SL_OK) {
            continue;
        }
        if (a->json) {
            char id[23];
            fputs(first ? "{\"name\":" : ",{\"name\":", stdout);
            cli_json_str(stdout, ti->name);
            fputs(",\"id\":", stdout);
            cli_json_str(stdout, topic_id_str(ti->id, id));
            printf(",\"partitions\":%zu,\"replicas\":%zu,\"internal\":%s}", ti->partition_count,
                   replicas_of(ti), ti->internal ? "true" : "false");
            first = false;
            continue;
        }
        cli_table_cell(&t, "%s", ti->name);
        cli_table_cell(&t, "%zu", ti->partition_count);
        cli_table_cell(&t, "%zu", replicas_of(ti));
    }
    if (a->json) {
        fputs("]\n", stdout);
    } else {
        cli_table_print(&t, stdout);
    }
}

static int topic_list(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONGOPTS,
        {"internal", no_argument, NULL, 'i'},
        {"json", no_argument, NULL, 'J'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct cli_admin a = {.cmd = "topic list"};
    struct list_opts o = {0};
    size_t n = 0;
    int rc = cli_admin_parse(&a, argc, argv, CLI_COMMON_SHORTOPTS "iJh", longopts, list_option, &o,
                             list_help, 0, 0, NULL, &n);
    if (rc >= 0 || (rc = cli_admin_open(&a)) >= 0) {
        return rc;
    }
    sl_metadata *md = NULL;
    sl_err err = sl_fetch_metadata(a.client, NULL, 0, CLI_ADMIN_TIMEOUT_MS, &md);
    if (err == SL_OK) {
        list_print(&a, md, o.internal);
        rc = CLI_EXIT_OK;
    } else {
        rc = cli_admin_fail(&a, err, "metadata");
    }
    sl_metadata_free(md);
    cli_admin_close(&a);
    return rc;
}

/* ================================================================ describe */

static void describe_help(FILE *out)
{
    fprintf(out, "usage: sluice topic describe TOPIC [OPTIONS]\n\n"
                 "Describes a topic: a summary, its configuration (KEY VALUE SOURCE), and\n"
                 "per partition LEADER EPOCH REPLICAS ISR LOG-START HIGH-WATERMARK.\n\n"
                 "  -J, --json                one JSON object: name, id, internal, configs,\n"
                 "                            partitions\n"
                 "  -b, --brokers HOST:PORT[,...]  -X, --set KEY=VALUE  (as every command)\n\n"
                 "Exit codes: 0, 1 a request refused, 2 bad usage, 3 no broker reachable,\n"
                 "4 no such topic.\n");
}

static const char *source_name(int source)
{
    static const char *const names[] = {
        "UNKNOWN",
        "DYNAMIC_TOPIC_CONFIG",
        "DYNAMIC_BROKER_CONFIG",
        "DYNAMIC_DEFAULT_BROKER_CONFIG",
        "STATIC_BROKER_CONFIG",
        "DEFAULT_CONFIG",
    };
    return source >= 0 && (size_t)source < sizeof(names) / sizeof(names[0]) ? names[source]
                                                                            : "UNKNOWN";
}

/* Log start and high watermark of each partition: offsets[2*i], [2*i+1]
 * (two calls: a partition may appear once per call). */
static sl_err describe_offsets(const struct cli_admin *a, const sl_topic_info *t,
                               sl_topic_partition *offsets)
{
    size_t n = t->partition_count;
    if (n == 0) {
        return SL_OK;
    }
    sl_topic_partition *ask = calloc(n, sizeof(*ask));
    if (ask == NULL) {
        return SL_ERR_NOMEM;
    }
    sl_err err = SL_OK;
    for (int side = 0; side < 2; side++) {
        for (size_t i = 0; i < n; i++) {
            ask[i] = (sl_topic_partition){t->name, t->partitions[i].id,
                                          side == 0 ? SL_OFFSET_BEGINNING : SL_OFFSET_END};
        }
        sl_err e = sl_list_offsets(a->client, ask, n, CLI_ADMIN_TIMEOUT_MS);
        for (size_t i = 0; i < n; i++) {
            offsets[2 * i + (size_t)side] = ask[i];
        }
        /* A partition without a leader just shows no offsets. */
        if (e == SL_ERR_ALL_BROKERS_DOWN || e == SL_ERR_TIMED_OUT) {
            err = e;
        }
    }
    free(ask);
    return err;
}

static void describe_json(const sl_topic_info *t, const sl_configs *cfg,
                          const sl_topic_partition *offsets)
{
    char id[23];
    fputs("{\"name\":", stdout);
    cli_json_str(stdout, t->name);
    fputs(",\"id\":", stdout);
    cli_json_str(stdout, topic_id_str(t->id, id));
    printf(",\"internal\":%s,\"configs\":[", t->internal ? "true" : "false");
    for (size_t i = 0; cfg != NULL && i < cfg->count; i++) {
        const sl_config_entry *e = &cfg->entries[i];
        fputs(i > 0 ? ",{\"name\":" : "{\"name\":", stdout);
        cli_json_str(stdout, e->name);
        fputs(",\"value\":", stdout);
        cli_json_str(stdout, e->value);
        printf(",\"source\":\"%s\",\"read_only\":%s,\"default\":%s,\"sensitive\":%s}",
               source_name(e->source), e->read_only ? "true" : "false",
               e->is_default ? "true" : "false", e->sensitive ? "true" : "false");
    }
    fputs("],\"partitions\":[", stdout);
    for (size_t i = 0; i < t->partition_count; i++) {
        const sl_partition_info *p = &t->partitions[i];
        printf("%s{\"partition\":%d,\"leader\":%d,\"leader_epoch\":%d,\"replicas\":",
               i > 0 ? "," : "", p->id, p->leader, p->leader_epoch);
        cli_json_ids(stdout, p->replicas, p->replica_count);
        fputs(",\"isr\":", stdout);
        cli_json_ids(stdout, p->isr, p->isr_count);
        fputs(",\"offline\":", stdout);
        cli_json_ids(stdout, p->offline, p->offline_count);
        printf(",\"log_start\":%" PRId64 ",\"high_watermark\":%" PRId64 ",\"error\":",
               offsets[2 * i].offset, offsets[2 * i + 1].offset);
        cli_json_str(stdout, p->err != SL_OK ? sl_err_name(p->err) : NULL);
        fputc('}', stdout);
    }
    fputs("]}\n", stdout);
}

static void describe_human(const sl_topic_info *t, const sl_configs *cfg,
                           const sl_topic_partition *offsets)
{
    char id[23];
    struct cli_table s;
    cli_table_init(&s, 2);
    cli_table_cell(&s, "NAME");
    cli_table_cell(&s, "%s", t->name);
    cli_table_cell(&s, "ID");
    cli_table_cell(&s, "%s", topic_id_str(t->id, id));
    cli_table_cell(&s, "INTERNAL");
    cli_table_cell(&s, "%s", t->internal ? "true" : "false");
    cli_table_cell(&s, "PARTITIONS");
    cli_table_cell(&s, "%zu", t->partition_count);
    cli_table_cell(&s, "REPLICAS");
    cli_table_cell(&s, "%zu", replicas_of(t));
    cli_table_print(&s, stdout);
    if (cfg != NULL) {
        printf("\nCONFIGS\n");
        cli_table_init(&s, 3);
        cli_table_cell(&s, "KEY");
        cli_table_cell(&s, "VALUE");
        cli_table_cell(&s, "SOURCE");
        for (size_t i = 0; i < cfg->count; i++) {
            cli_table_cell(&s, "%s", cfg->entries[i].name);
            cli_table_cell(&s, "%s", cfg->entries[i].value != NULL ? cfg->entries[i].value : "-");
            cli_table_cell(&s, "%s", source_name(cfg->entries[i].source));
        }
        cli_table_print(&s, stdout);
    }
    printf("\n");
    cli_table_init(&s, 7);
    const char *heads[] = {"PARTITION", "LEADER",    "EPOCH",         "REPLICAS",
                           "ISR",       "LOG-START", "HIGH-WATERMARK"};
    for (size_t i = 0; i < 7; i++) {
        cli_table_cell(&s, "%s", heads[i]);
    }
    for (size_t i = 0; i < t->partition_count; i++) {
        const sl_partition_info *p = &t->partitions[i];
        char replicas[256], isr[256];
        cli_table_cell(&s, "%d", p->id);
        cli_table_cell(&s, "%d", p->leader);
        cli_table_cell(&s, "%d", p->leader_epoch);
        cli_table_cell(&s, "%s",
                       cli_ids_str(replicas, sizeof(replicas), p->replicas, p->replica_count));
        cli_table_cell(&s, "%s", cli_ids_str(isr, sizeof(isr), p->isr, p->isr_count));
        cli_table_cell(&s, "%" PRId64, offsets[2 * i].offset);
        cli_table_cell(&s, "%" PRId64, offsets[2 * i + 1].offset);
    }
    cli_table_print(&s, stdout);
}

static int describe_topic(struct cli_admin *a, const char *name)
{
    sl_metadata *md = NULL;
    sl_err err = sl_fetch_metadata(a->client, &name, 1, CLI_ADMIN_TIMEOUT_MS, &md);
    char what[300];
    snprintf(what, sizeof(what), "topic %s", name);
    if (err != SL_OK) {
        return cli_admin_fail(a, err, what);
    }
    const sl_topic_info *t = md->topic_count == 1 ? &md->topics[0] : NULL;
    err = t == NULL ? SL_ERR_BAD_RESPONSE : t->err;
    sl_configs *cfg = NULL;
    sl_topic_partition *offsets = NULL;
    if (err == SL_OK) {
        err = sl_describe_topic_configs(a->client, name, CLI_ADMIN_TIMEOUT_MS, &cfg);
        if (err != SL_OK && err != SL_ERR_ALL_BROKERS_DOWN && err != SL_ERR_TIMED_OUT) {
            cli_err(a->cmd, "configs of %s: %s", name, sl_err_str(err));
            err = SL_OK; /* the rest is still worth showing */
        }
    }
    if (err == SL_OK) {
        offsets = calloc(2 * t->partition_count + 1, sizeof(*offsets));
        err = offsets == NULL ? SL_ERR_NOMEM : describe_offsets(a, t, offsets);
    }
    int rc = CLI_EXIT_OK;
    if (err != SL_OK) {
        rc = cli_admin_fail(a, err, what);
    } else if (a->json) {
        describe_json(t, cfg, offsets);
    } else {
        describe_human(t, cfg, offsets);
    }
    free(offsets);
    sl_configs_free(cfg);
    sl_metadata_free(md);
    return rc;
}

static int topic_describe(int argc, char **argv)
{
    return cli_admin_simple(argc, argv, "topic describe", describe_help, 1, describe_topic);
}

int cli_topic(int argc, char **argv)
{
    static const struct cli_subcommand subs[] = {
        {"create", topic_create, "create topics (-p partitions, -r replicas, -c key=value)"},
        {"delete", topic_delete, "delete topics"},
        {"list", topic_list, "list topics: NAME PARTITIONS REPLICAS"},
        {"describe", topic_describe, "a topic's configs and partitions, with offsets"},
    };
    return cli_dispatch_sub("topic", subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}
