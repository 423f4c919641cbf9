/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sluice group list|describe|seek|delete: consumer groups seen from
 * outside, through libsluice's admin calls.
 *
 * describe joins three answers: the group and its members (DescribeGroups,
 * with each member's assignment decoded), its committed offsets
 * (OffsetFetch) and the partitions' ends (ListOffsets), into one row per
 * partition that is committed or assigned: CURRENT-OFFSET LOG-END-OFFSET LAG
 * and who reads it. seek sets committed offsets from outside, as
 * kafka-consumer-groups --reset-offsets does, which brokers allow only while
 * the group has no members: it checks first, and the broker checks again.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/cli/cli.h"

/* Rows of one describe: partitions committed or assigned. */
#define ROWS_MAX (1u << 20)

static int cmp_tp(const void *a, const void *b)
{
    const sl_topic_partition *x = a, *y = b;
    int d = strcmp(x->topic, y->topic);
    return d != 0 ? d : (x->partition > y->partition) - (x->partition < y->partition);
}

/* The committed offset of (topic, partition) in sorted offsets, or -1. */
static int64_t committed_of(const sl_group_offsets *offs, const char *topic, int32_t partition)
{
    sl_topic_partition key = {.topic = topic, .partition = partition};
    const sl_topic_partition *hit =
        offs != NULL ? bsearch(&key, offs->offsets, offs->count, sizeof(key), cmp_tp) : NULL;
    return hit != NULL && hit->err == SL_OK ? hit->offset : -1;
}

static int group_fail(const struct cli_admin *a, sl_err err, const char *group)
{
    char what[300];
    snprintf(what, sizeof(what), "group %s", group);
    return cli_admin_fail(a, err, what);
}

/* ================================================================ list */

static void list_help(FILE *out)
{
    fprintf(out, "usage: sluice group list [OPTIONS]\n\n"
                 "Lists the cluster's groups: GROUP STATE PROTOCOL-TYPE.\n\n"
                 "  -J, --json                a JSON array of {group, state, protocol_type}\n"
                 "  -b, --brokers HOST:PORT[,...]  -X, --set KEY=VALUE  (as every command)\n");
}

static int list_run(struct cli_admin *a, const char *name)
{
    (void)name;
    sl_group_list *list = NULL;
    sl_err err = sl_list_groups(a->client, CLI_ADMIN_TIMEOUT_MS, &list);
    int rc = CLI_EXIT_OK;
    if (err != SL_OK) {
        rc = cli_admin_fail(a, err, "list groups");
    } else if (a->json) {
        fputc('[', stdout);
        for (size_t i = 0; i < list->count; i++) {
            fputs(i > 0 ? ",{\"group\":" : "{\"group\":", stdout);
            cli_json_str(stdout, list->groups[i].group_id);
            fputs(",\"state\":", stdout);
            cli_json_str(stdout, list->groups[i].state);
            fputs(",\"protocol_type\":", stdout);
            cli_json_str(stdout, list->groups[i].protocol_type);
            fputc('}', stdout);
        }
        fputs("]\n", stdout);
    } else {
        struct cli_table t;
        cli_table_init(&t, 3);
        cli_table_cell(&t, "GROUP");
        cli_table_cell(&t, "STATE");
        cli_table_cell(&t, "PROTOCOL-TYPE");
        for (size_t i = 0; i < list->count; i++) {
            const sl_group_listing *g = &list->groups[i];
            cli_table_cell(&t, "%s", g->group_id);
            cli_table_cell(&t, "%s", g->state != NULL ? g->state : "-");
            cli_table_cell(&t, "%s", g->protocol_type[0] != '\0' ? g->protocol_type : "-");
        }
        cli_table_print(&t, stdout);
    }
    sl_group_list_free(list);
    return rc;
}

static int group_list(int argc, char **argv)
{
    return cli_admin_simple(argc, argv, "group list", list_help, 0, list_run);
}

/* ================================================================ describe */

/* One partition of a describe. */
struct row {
    const char *topic;
    int32_t partition;
    int64_t current; /* -1: nothing committed */
    int64_t end;     /* -1: unknown */
    const sl_group_member *member;
};

static int cmp_row(const void *a, const void *b)
{
    const struct row *x = a, *y = b;
    int d = strcmp(x->topic, y->topic);
    return d != 0 ? d : (x->partition > y->partition) - (x->partition < y->partition);
}

/* The rows: committed partitions and assigned ones, merged, sorted. */
static struct row *rows_build(const sl_group_description *d, const sl_group_offsets *offs,
                              size_t *count)
{
    size_t n = offs != NULL ? offs->count : 0;
    for (size_t m = 0; m < d->member_count; m++) {
        for (size_t t = 0; t < d->members[m].assignment_count; t++) {
            n += d->members[m].assignment[t].partition_count;
        }
    }
    struct row *rows = n <= ROWS_MAX ? calloc(n + 1, sizeof(*rows)) : NULL;
    if (rows == NULL) {
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; offs != NULL && i < offs->count; i++) {
        if (offs->offsets[i].err == SL_OK && offs->offsets[i].offset >= 0) {
            rows[k++] = (struct row){offs->offsets[i].topic, offs->offsets[i].partition,
                                     offs->offsets[i].offset, -1, NULL};
        }
    }
    for (size_t m = 0; m < d->member_count; m++) {
        for (size_t t = 0; t < d->members[m].assignment_count; t++) {
            const sl_member_topic *mt = &d->members[m].assignment[t];
            for (size_t p = 0; p < mt->partition_count; p++) {
                rows[k++] = (struct row){mt->topic, mt->partitions[p],
                                         committed_of(offs, mt->topic, mt->partitions[p]), -1,
                                         &d->members[m]};
            }
        }
    }
    qsort(rows, k, sizeof(*rows), cmp_row);
    size_t out = 0; /* a committed row and its assigned twin: keep the assigned */
    for (size_t i = 0; i < k; i++) {
        if (out > 0 && cmp_row(&rows[out - 1], &rows[i]) == 0) {
            if (rows[i].member != NULL) {
                rows[out - 1] = rows[i];
            }
            continue;
        }
        rows[out++] = rows[i];
    }
    *count = out;
    return rows;
}

/* Each row's log end; rows whose partition has no answer keep -1. */
static sl_err rows_ends(const struct cli_admin *a, struct row *rows, size_t n)
{
    if (n == 0) {
        return SL_OK;
    }
    sl_topic_partition *parts = calloc(n, sizeof(*parts));
    if (parts == NULL) {
        return SL_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        parts[i] = (sl_topic_partition){rows[i].topic, rows[i].partition, SL_OFFSET_END};
    }
    sl_err err = sl_list_offsets(a->client, parts, n, CLI_ADMIN_TIMEOUT_MS);
    for (size_t i = 0; i < n; i++) {
        rows[i].end = parts[i].err == SL_OK ? parts[i].offset : -1;
    }
    free(parts);
    return err == SL_ERR_ALL_BROKERS_DOWN || err == SL_ERR_TIMED_OUT ? err : SL_OK;
}

static void describe_json(const sl_group_description *d, const struct row *rows, size_t n)
{
    fputs("{\"group\":", stdout);
    cli_json_str(stdout, d->group_id);
    fputs(",\"state\":", stdout);
    cli_json_str(stdout, d->state);
    fputs(",\"protocol_type\":", stdout);
    cli_json_str(stdout, d->protocol_type);
    fputs(",\"protocol\":", stdout);
    cli_json_str(stdout, d->protocol);
    printf(",\"coordinator\":%d,\"members\":[", d->coordinator_id);
    for (size_t m = 0; m < d->member_count; m++) {
        const sl_group_member *mb = &d->members[m];
        fputs(m > 0 ? ",{\"member_id\":" : "{\"member_id\":", stdout);
        cli_json_str(stdout, mb->member_id);
        fputs(",\"group_instance_id\":", stdout);
        cli_json_str(stdout, mb->group_instance_id);
        fputs(",\"client_id\":", stdout);
        cli_json_str(stdout, mb->client_id);
        fputs(",\"host\":", stdout);
        cli_json_str(stdout, mb->host);
        fputs(",\"assignment\":[", stdout);
        for (size_t t = 0; t < mb->assignment_count; t++) {
            fputs(t > 0 ? ",{\"topic\":" : "{\"topic\":", stdout);
            cli_json_str(stdout, mb->assignment[t].topic);
            fputs(",\"partitions\":", stdout);
            cli_json_ids(stdout, mb->assignment[t].partitions, mb->assignment[t].partition_count);
            fputc('}', stdout);
        }
        fputs("]}", stdout);
    }
    fputs("],\"offsets\":[", stdout);
    for (size_t i = 0; i < n; i++) {
        const struct row *r = &rows[i];
        fputs(i > 0 ? ",{\"topic\":" : "{\"topic\":", stdout);
        cli_json_str(stdout, r->topic);
        printf(",\"partition\":%d,\"current_offset\":", r->partition);
        printf(r->current >= 0 ? "%" PRId64 : "null", r->current);
        fputs(",\"log_end_offset\":", stdout);
        printf(r->end >= 0 ? "%" PRId64 : "null", r->end);
        fputs(",\"lag\":", stdout);
        printf(r->current >= 0 && r->end >= 0 ? "%" PRId64 : "null", r->end - r->current);
        fputs(",\"member_id\":", stdout);
        cli_json_str(stdout, r->member != NULL ? r->member->member_id : NULL);
        fputs(",\"client_id\":", stdout);
        cli_json_str(stdout, r->member != NULL ? r->member->client_id : NULL);
        fputs(",\"host\":", stdout);
        cli_json_str(stdout, r->member != NULL ? r->member->host : NULL);
        fputc('}', stdout);
    }
    fputs("]}\n", stdout);
}

static void describe_human(const sl_group_description *d, const struct row *rows, size_t n)
{
    struct cli_table t;
    cli_table_init(&t, 6);
    const char *heads[] = {"GROUP", "COORDINATOR", "STATE", "PROTOCOL-TYPE", "PROTOCOL", "MEMBERS"};
    for (size_t i = 0; i < 6; i++) {
        cli_table_cell(&t, "%s", heads[i]);
    }
    cli_table_cell(&t, "%s", d->group_id);
    cli_table_cell(&t, "%d", d->coordinator_id);
    cli_table_cell(&t, "%s", d->state);
    cli_table_cell(&t, "%s", d->protocol_type[0] != '\0' ? d->protocol_type : "-");
    cli_table_cell(&t, "%s", d->protocol[0] != '\0' ? d->protocol : "-");
    cli_table_cell(&t, "%zu", d->member_count);
    cli_table_print(&t, stdout);
    printf("\n");
    cli_table_init(&t, 8);
    const char *cols[] = {"TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET",
                          "LAG",   "MEMBER-ID", "CLIENT-ID",      "HOST"};
    for (size_t i = 0; i < 8; i++) {
        cli_table_cell(&t, "%s", cols[i]);
    }
    for (size_t i = 0; i < n; i++) {
        const struct row *r = &rows[i];
        cli_table_cell(&t, "%s", r->topic);
        cli_table_cell(&t, "%d", r->partition);
        cli_table_cell(&t, r->current >= 0 ? "%" PRId64 : "-", r->current);
        cli_table_cell(&t, r->end >= 0 ? "%" PRId64 : "-", r->end);
        cli_table_cell(&t, r->current >= 0 && r->end >= 0 ? "%" PRId64 : "-", r->end - r->current);
        cli_table_cell(&t, "%s", r->member != NULL ? r->member->member_id : "-");
        cli_table_cell(&t, "%s", r->member != NULL ? r->member->client_id : "-");
        cli_table_cell(&t, "%s", r->member != NULL ? r->member->host : "-");
    }
    cli_table_print(&t, stdout);
}

static void describe_help(FILE *out)
{
    fprintf(out, "usage: sluice group describe GROUP [OPTIONS]\n\n"
                 "Describes a group: GROUP COORDINATOR STATE PROTOCOL-TYPE PROTOCOL MEMBERS,\n"
                 "then per partition committed or assigned: TOPIC PARTITION CURRENT-OFFSET\n"
                 "LOG-END-OFFSET LAG MEMBER-ID CLIENT-ID HOST.\n\n"
                 "  -J, --json                one JSON object: group, state, protocol_type,\n"
                 "                            protocol, coordinator, members, offsets\n"
                 "  -b, --brokers HOST:PORT[,...]  -X, --set KEY=VALUE  (as every command)\n\n"
                 "Exit codes: 0, 1 a request refused, 2 bad usage, 3 no broker reachable,\n"
                 "4 no such group.\n");
}

/* A group with no members, no offsets and state Dead is one Kafka does not know. */
static bool group_absent(const sl_group_description *d, const sl_group_offsets *offs)
{
    for (size_t i = 0; offs != NULL && i < offs->count; i++) {
        if (offs->offsets[i].offset >= 0) {
            return false;
        }
    }
    return d->member_count == 0 && strcmp(d->state, "Dead") == 0;
}

static int describe_group(struct cli_admin *a, const char *group)
{
    sl_group_description *d = NULL;
    sl_group_offsets *offs = NULL;
    struct row *rows = NULL;
    size_t n = 0;
    sl_err err = sl_describe_group(a->client, group, CLI_ADMIN_TIMEOUT_MS, &d);
    if (err == SL_OK) {
        err = sl_committed_offsets(a->client, group, NULL, 0, CLI_ADMIN_TIMEOUT_MS, &offs);
        err = err == SL_ERR_GROUP_ID_NOT_FOUND ? SL_OK : err;
    }
    if (err == SL_OK && group_absent(d, offs)) {
        err = SL_ERR_GROUP_ID_NOT_FOUND;
    }
    if (err == SL_OK) {
        rows = rows_build(d, offs, &n);
        err = rows == NULL ? SL_ERR_NOMEM : rows_ends(a, rows, n);
    }
    int rc = CLI_EXIT_OK;
    if (err != SL_OK) {
        rc = group_fail(a, err, group);
    } else if (a->json) {
        describe_json(d, rows, n);
    } else {
        describe_human(d, rows, n);
    }
    free(rows);
    sl_group_offsets_free(offs);
    sl_group_description_free(d);
    return rc;
}

static int group_describe(int argc, char **argv)
{
    return cli_admin_simple(argc, argv, "group describe", describe_help, 1, describe_group);
}

/* ================================================================ seek */

struct seek_opts {
    struct cli_admin *a;
    int64_t to; /* an sl_list_offsets spec, or an absolute offset >= 0 */
    bool to_set;
    const char *topic;
    int32_t partition; /* -1: every partition */
};

static void seek_help(FILE *out)
{
    fprintf(out, "usage: sluice group seek GROUP --to WHERE [--topic TOPIC [-p N]] [OPTIONS]\n\n"
                 "Sets the group's committed offsets, as kafka-consumer-groups --reset-offsets:\n"
                 "of every partition the group has committed, or of TOPIC's (one with -p).\n"
                 "Brokers allow it only while the group has no members: stop its consumers.\n\n"
                 "  --to WHERE                beginning, end, an offset, or @TIMESTAMP (ms since\n"
                 "                            the epoch: the first record at or after it)\n"
                 "  -t, --topic TOPIC         the topic's partitions (default: those committed)\n"
                 "  -p, --partition N         only partition N of --topic\n"
                 "  -J, --json                the new offsets as JSON\n"
                 "  -b, --brokers HOST:PORT[,...]  -X, --set KEY=VALUE  (as every command)\n\n"
                 "Exit codes: 0, 1 refused (the group has members), 2 bad usage, 3 no broker\n"
                 "reachable, 4 no such topic, partition, or committed offsets to move.\n");
}

static bool parse_num(const struct cli_admin *a, const char *opt, const char *arg, int64_t max,
                      int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(arg, &end, 10);
    if (errno != 0 || *end != '\0' || end == arg || v < 0 || v > max) {
        cli_err(a->cmd, "%s %s: expected a number from 0 to %" PRId64, opt, arg, max);
        return false;
    }
    *out = v;
    return true;
}

static bool seek_option(void *opaque, int opt, const char *arg)
{
    struct seek_opts *o = opaque;
    int64_t v;
    switch (opt) {
    case 'T':
        o->to_set = true;
        if (strcmp(arg, "beginning") == 0 || strcmp(arg, "earliest") == 0) {
            o->to = SL_OFFSET_BEGINNING;
        } else if (strcmp(arg, "end") == 0 || strcmp(arg, "latest") == 0) {
            o->to = SL_OFFSET_END;
        } else if (arg[0] == '@') {
            if (!parse_num(o->a, "--to", arg + 1, -SL_OFFSET_TIMESTAMP_BASE - 3, &v)) {
                return false;
            }
            o->to = SL_OFFSET_TIMESTAMP(v);
        } else if (!parse_num(o->a, "--to", arg, INT64_MAX, &o->to)) {
            cli_err(o->a->cmd, "--to: expected beginning, end, an offset or @TIMESTAMP");
            return false;
        }
        return true;
    case 't':
        o->topic = arg;
        return true;
    case 'p':
        if (!parse_num(o->a, "-p", arg, INT32_MAX, &v)) {
            return false;
        }
        o->partition = (int32_t)v;
        return true;
    default:
        return false;
    }
}

/* The partitions to move: --topic's (from metadata), else those committed. */
static int seek_targets(struct cli_admin *a, const struct seek_opts *o, const char *group,
                        const sl_group_offsets *offs, sl_topic_partition **parts, size_t *n)
{
    if (o->topic == NULL) {
        *parts = calloc(offs->count + 1, sizeof(**parts));
        if (*parts == NULL) {
            return group_fail(a, SL_ERR_NOMEM, group);
        }
        for (size_t i = 0; i < offs->count; i++) {
            if (offs->offsets[i].err == SL_OK && offs->offsets[i].offset >= 0) {
                (*parts)[(*n)++] = offs->offsets[i];
            }
        }
        if (*n == 0) {
            cli_err(a->cmd, "group %s has no committed offsets: name the partitions with --topic",
                    group);
            return CLI_EXIT_NO_TOPIC;
        }
        return -1;
    }
    sl_metadata *md = NULL;
    char what[300];
    snprintf(what, sizeof(what), "topic %s", o->topic);
    sl_err err = sl_fetch_metadata(a->client, &o->topic, 1, CLI_ADMIN_TIMEOUT_MS, &md);
    err = err != SL_OK ? err : md->topic_count != 1 ? SL_ERR_BAD_RESPONSE : md->topics[0].err;
    if (err != SL_OK) {
        sl_metadata_free(md);
        return cli_admin_fail(a, err, what);
    }
    const sl_topic_info *t = &md->topics[0];
    *parts = calloc(t->partition_count + 1, sizeof(**parts));
    for (size_t i = 0; *parts != NULL && i < t->partition_count; i++) {
        if (o->partition < 0 || t->partitions[i].id == o->partition) {
            (*parts)[(*n)++] = (sl_topic_partition){o->topic, t->partitions[i].id, -1};
        }
    }
    sl_metadata_free(md);
    if (*parts == NULL) {
        return group_fail(a, SL_ERR_NOMEM, group);
    }
    if (*n == 0) {
        cli_err(a->cmd, "topic %s has no partition %d", o->topic, o->partition);
        return CLI_EXIT_NO_TOPIC;
    }
    return -1;
}

/* Each part's new offset from --to. */
static sl_err seek_resolve(const struct cli_admin *a, int64_t to, sl_topic_partition *parts,
                           size_t n)
{
    for (size_t i = 0; i < n; i++) {
        parts[i].offset = to;
        parts[i].err = SL_OK;
    }
    if (to >= 0) {
        return SL_OK;
    }
    sl_err err = sl_list_offsets(a->client, parts, n, CLI_ADMIN_TIMEOUT_MS);
    if (err != SL_OK || to == SL_OFFSET_BEGINNING || to == SL_OFFSET_END) {
        return err;
    }
    /* No record at or after the time: the end, as a consumer would go. */
    for (size_t i = 0; i < n; i++) {
        if (parts[i].offset < 0) {
            parts[i].offset = SL_OFFSET_END;
            err = sl_list_offsets(a->client, &parts[i], 1, CLI_ADMIN_TIMEOUT_MS);
            if (err != SL_OK) {
                return err;
            }
        }
    }
    return SL_OK;
}

static void seek_print(const struct cli_admin *a, const sl_group_offsets *before,
                       const sl_topic_partition *parts, size_t n)
{
    struct cli_table t;
    cli_table_init(&t, 4);
    if (a->json) {
        fputc('[', stdout);
    } else {
        cli_table_cell(&t, "TOPIC");
        cli_table_cell(&t, "PARTITION");
        cli_table_cell(&t, "PREVIOUS-OFFSET");
        cli_table_cell(&t, "NEW-OFFSET");
    }
    for (size_t i = 0; i < n; i++) {
        int64_t prev = committed_of(before, parts[i].topic, parts[i].partition);
        if (a->json) {
            fputs(i > 0 ? ",{\"topic\":" : "{\"topic\":", stdout);
            cli_json_str(stdout, parts[i].topic);
            printf(",\"partition\":%d,\"previous_offset\":", parts[i].partition);
            printf(prev >= 0 ? "%" PRId64 : "null", prev);
            printf(",\"new_offset\":%" PRId64 "}", parts[i].offset);
            continue;
        }
        cli_table_cell(&t, "%s", parts[i].topic);
        cli_table_cell(&t, "%d", parts[i].partition);
        cli_table_cell(&t, prev >= 0 ? "%" PRId64 : "-", prev);
        cli_table_cell(&t, "%" PRId64, parts[i].offset);
    }
    if (a->json) {
        fputs("]\n", stdout);
    } else {
        cli_table_print(&t, stdout);
    }
}

static int refuse_members(const struct cli_admin *a, const char *group, size_t members,
                          const char *state)
{
    cli_err(a->cmd,
            "group %s has %zu active member(s) (state %s): offsets can be set only while the "
            "group is empty; stop its consumers first",
            group, members, state);
    return CLI_EXIT_FAILED;
}

static int seek_group(struct cli_admin *a, const struct seek_opts *o, const char *group)
{
    sl_group_description *d = NULL;
    sl_group_offsets *offs = NULL;
    sl_topic_partition *parts = NULL;
    size_t n = 0;
    int rc = -1;
    sl_err err = sl_describe_group(a->client, group, CLI_ADMIN_TIMEOUT_MS, &d);
    if (err == SL_OK && d->member_count > 0) {
        rc = refuse_members(a, group, d->member_count, d->state);
    }
    if (err == SL_OK && rc < 0) {
        err = sl_committed_offsets(a->client, group, NULL, 0, CLI_ADMIN_TIMEOUT_MS, &offs);
    }
    if (err == SL_OK && rc < 0) {
        rc = seek_targets(a, o, group, offs, &parts, &n);
    }
    if (err == SL_OK && rc < 0) {
        err = seek_resolve(a, o->to, parts, n);
    }
    if (err == SL_OK && rc < 0) {
        err = sl_commit_group_offsets(a->client, group, parts, n, CLI_ADMIN_TIMEOUT_MS);
        if (err == SL_ERR_UNKNOWN_MEMBER_ID || err == SL_ERR_REBALANCE_IN_PROGRESS ||
            err == SL_ERR_ILLEGAL_GENERATION) {
            rc = refuse_members(a, group, 1, "joined meanwhile");
        }
    }
    if (rc < 0 && err != SL_OK) {
        rc = group_fail(a, err, group);
    }
    if (rc < 0) {
        seek_print(a, offs, parts, n);
        rc = CLI_EXIT_OK;
    }
    free(parts);
    sl_group_offsets_free(offs);
    sl_group_description_free(d);
    return rc;
}

static int group_seek(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONGOPTS,
        {"to", required_argument, NULL, 'T'},
        {"topic", required_argument, NULL, 't'},
        {"partition", required_argument, NULL, 'p'},
        {"json", no_argument, NULL, 'J'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct cli_admin a = {.cmd = "group seek"};
    struct seek_opts o = {.a = &a, .partition = -1};
    char *names[1];
    size_t n = 0;
    int rc = cli_admin_parse(&a, argc, argv, CLI_COMMON_SHORTOPTS "t:p:Jh", longopts, seek_option,
                             &o, seek_help, 1, 1, names, &n);
    if (rc >= 0) {
        return rc;
    }
    if (!o.to_set || (o.partition >= 0 && o.topic == NULL)) {
        cli_err(a.cmd, !o.to_set ? "--to is required" : "-p needs --topic");
        seek_help(stderr);
        return CLI_EXIT_USAGE;
    }
    if ((rc = cli_admin_open(&a)) >= 0) {
        return rc;
    }
    rc = seek_group(&a, &o, names[0]);
    cli_admin_close(&a);
    return rc;
}

/* ================================================================ delete */

static void delete_help(FILE *out)
{
    fprintf(out, "usage: sluice group delete GROUP [OPTIONS]\n\n"
                 "Deletes a group and its committed offsets (only while it has no members).\n\n"
                 "  -b, --brokers HOST:PORT[,...]  -X, --set KEY=VALUE  (as every command)\n\n"
                 "Exit codes: 0, 1 refused (NON_EMPTY_GROUP: it has members), 2 bad usage,\n"
                 "3 no broker reachable, 4 no such group.\n");
}

static int group_delete(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONGOPTS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct cli_admin a = {.cmd = "group delete"};
    char *names[1];
    size_t n = 0;
    int rc = cli_admin_parse(&a, argc, argv, CLI_COMMON_SHORTOPTS "h", longopts, NULL, NULL,
                             delete_help, 1, 1, names, &n);
    if (rc >= 0 || (rc = cli_admin_open(&a)) >= 0) {
        return rc;
    }
    sl_err err = sl_delete_group(a.client, names[0], CLI_ADMIN_TIMEOUT_MS);
    if (err == SL_OK) {
        printf("deleted group %s\n", names[0]);
        rc = CLI_EXIT_OK;
    } else if (err == SL_ERR_NON_EMPTY_GROUP) {
        cli_err(a.cmd, "group %s has active members: stop its consumers first (%s)", names[0],
                sl_err_name(err));
        rc = CLI_EXIT_FAILED;
    } else {
        rc = group_fail(&a, err, names[0]);
    }
    cli_admin_close(&a);
    return rc;
}

int cli_group(int argc, char **argv)
{
    static const struct cli_subcommand subs[] = {
        {"list", group_list, "list groups: GROUP STATE PROTOCOL-TYPE"},
        {"describe", group_describe, "members, assignments, committed offsets and lag"},
        {"seek", group_seek, "set committed offsets (--to beginning|end|OFFSET|@TIME)"},
        {"delete", group_delete, "delete a group and its offsets"},
    };
    return cli_dispatch_sub("group", subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}
