/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sluice cluster info: the cluster id, the controller and the brokers, from
 * one Metadata answer (no topics asked for).
 */
#include <stdio.h>

#include "client/cli/cli.h"

static void info_help(FILE *out)
{
    fprintf(out, "usage: sluice cluster info [OPTIONS]\n\n"
                 "The cluster's id, its controller, and its brokers: ID HOST PORT RACK\n"
                 "(the controller marked with *).\n\n"
                 "  -J, --json                one JSON object: cluster_id, controller, brokers\n"
                 "  -b, --brokers HOST:PORT[,...]  -X, --set KEY=VALUE  (as every command)\n\n"
                 "Exit codes: 0, 2 bad usage, 3 no broker reachable.\n");
}

static void info_print(const struct cli_admin *a, const sl_metadata *md)
{
    if (a->json) {
        fputs("{\"cluster_id\":", stdout);
        cli_json_str(stdout, md->cluster_id);
        printf(",\"controller\":%d,\"brokers\":[", md->controller_id);
        for (size_t i = 0; i < md->broker_count; i++) {
            const sl_broker_info *b = &md->brokers[i];
            printf("%s{\"id\":%d,\"host\":", i > 0 ? "," : "", b->id);
            cli_json_str(stdout, b->host);
            printf(",\"port\":%d,\"rack\":", b->port);
            cli_json_str(stdout, b->rack);
            fputc('}', stdout);
        }
        fputs("]}\n", stdout);
        return;
    }
    struct cli_table t;
    cli_table_init(&t, 2);
    cli_table_cell(&t, "CLUSTER");
    cli_table_cell(&t, "%s", md->cluster_id != NULL ? md->cluster_id : "-");
    cli_table_cell(&t, "CONTROLLER");
    cli_table_cell(&t, "%d", md->controller_id);
    cli_table_print(&t, stdout);
    printf("\n");
    cli_table_init(&t, 4);
    cli_table_cell(&t, "ID");
    cli_table_cell(&t, "HOST");
    cli_table_cell(&t, "PORT");
    cli_table_cell(&t, "RACK");
    for (size_t i = 0; i < md->broker_count; i++) {
        const sl_broker_info *b = &md->brokers[i];
        cli_table_cell(&t, "%d%s", b->id, b->id == md->controller_id ? "*" : "");
        cli_table_cell(&t, "%s", b->host);
        cli_table_cell(&t, "%d", b->port);
        cli_table_cell(&t, "%s", b->rack != NULL ? b->rack : "-");
    }
    cli_table_print(&t, stdout);
}

static int info_run(struct cli_admin *a, const char *name)
{
    (void)name;
    sl_metadata *md = NULL;
    const char *none[1] = {NULL}; /* non-NULL, count 0: brokers only, no topics */
    sl_err err = sl_fetch_metadata(a->client, none, 0, CLI_ADMIN_TIMEOUT_MS, &md);
    int rc = CLI_EXIT_OK;
    if (err == SL_OK) {
        info_print(a, md);
    } else {
        rc = cli_admin_fail(a, err, "metadata");
    }
    sl_metadata_free(md);
    return rc;
}

static int cluster_info(int argc, char **argv)
{
    return cli_admin_simple(argc, argv, "cluster info", info_help, 0, info_run);
}

int cli_cluster(int argc, char **argv)
{
    static const struct cli_subcommand subs[] = {
        {"info", cluster_info, "cluster id, controller, brokers"},
    };
    return cli_dispatch_sub("cluster", subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}
