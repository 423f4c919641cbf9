/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the admin commands (topic, group, cluster) share: subcommand
 * dispatch, option parsing with positional arguments, the admin client
 * (sl_admin_new) with an error callback that prints each broker failure,
 * and the mapping of an sl_err to a message and an exit code.
 */
#include <stdio.h>
#include <string.h>

#include "client/cli/cli.h"

int cli_dispatch_sub(const char *cmd, const struct cli_subcommand *table, size_t count, int argc,
                     char **argv)
{
    const char *sub = argc >= 2 ? argv[1] : NULL;
    bool asked = sub != NULL &&
                 (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0);
    for (size_t i = 0; sub != NULL && !asked && i < count; i++) {
        if (strcmp(table[i].name, sub) == 0) {
            return table[i].run(argc - 1, argv + 1);
        }
    }
    FILE *out = asked ? stdout : stderr;
    if (sub != NULL && !asked) {
        fprintf(stderr, "sluice %s: unknown subcommand \"%s\"\n", cmd, sub);
    }
    fprintf(out, "usage: sluice %s SUBCOMMAND [OPTIONS] ...\n\nSubcommands:\n", cmd);
    for (size_t i = 0; i < count; i++) {
        fprintf(out, "  %-9s %s\n", table[i].name, table[i].summary);
    }
    fprintf(out, "\n`sluice %s SUBCOMMAND --help` describes each.\n", cmd);
    return asked ? CLI_EXIT_OK : CLI_EXIT_USAGE;
}

int cli_admin_parse(struct cli_admin *a, int argc, char **argv, const char *shortopts,
                    const struct option *longopts, cli_own_option_fn *own, void *opaque,
                    void (*help)(FILE *out), size_t min_pos, size_t max_pos, char **pos,
                    size_t *pos_count)
{
    int opt;
    while ((opt = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        if (opt == 'h') {
            help(stdout);
            return CLI_EXIT_OK;
        }
        if (opt == 'J') {
            a->json = true;
            continue;
        }
        int taken = cli_common_option(&a->common, opt, optarg, a->cmd);
        if (taken < 0 || (taken == 0 && (opt == '?' || own == NULL || !own(opaque, opt, optarg)))) {
            if (opt == '?') {
                help(stderr);
            }
            return CLI_EXIT_USAGE;
        }
    }
    size_t n = (size_t)(argc - optind);
    if (n < min_pos || n > max_pos) {
        cli_err(a->cmd, n < min_pos ? "missing argument" : "too many arguments");
        help(stderr);
        return CLI_EXIT_USAGE;
    }
    for (size_t i = 0; i < n; i++) {
        pos[i] = argv[optind + (int)i];
    }
    *pos_count = n;
    return -1;
}

static void on_error(void *opaque, sl_err err, const char *reason)
{
    const struct cli_admin *a = opaque;
    fprintf(stderr, "sluice %s: %s (%s)\n", a->cmd, reason, sl_err_name(err));
}

int cli_admin_open(struct cli_admin *a)
{
    sl_conf *conf = cli_conf(&a->common, a->cmd, NULL, 0);
    if (conf == NULL) {
        return CLI_EXIT_USAGE;
    }
    sl_conf_set_error_cb(conf, on_error);
    sl_conf_set_opaque(conf, a);
    char errstr[512];
    a->client = sl_admin_new(conf, errstr, sizeof(errstr));
    if (a->client == NULL) {
        cli_err(a->cmd, "%s", errstr);
        sl_conf_free(conf);
        return CLI_EXIT_USAGE;
    }
    return -1;
}

void cli_admin_close(struct cli_admin *a)
{
    sl_close(a->client, 0);
    a->client = NULL;
}

int cli_admin_exit_code(sl_err err)
{
    switch (err) {
    case SL_OK:
        return CLI_EXIT_OK;
    case SL_ERR_ALL_BROKERS_DOWN:
    case SL_ERR_TRANSPORT:
    case SL_ERR_RESOLVE:
    case SL_ERR_TIMED_OUT:
        return CLI_EXIT_UNREACHABLE;
    case SL_ERR_UNKNOWN_TOPIC_OR_PARTITION:
    case SL_ERR_UNKNOWN_PARTITION:
    case SL_ERR_GROUP_ID_NOT_FOUND:
    case SL_ERR_UNKNOWN_TOPIC_ID:
        return CLI_EXIT_NO_TOPIC;
    case SL_ERR_INVALID_ARG:
        return CLI_EXIT_USAGE;
    default:
        return CLI_EXIT_FAILED;
    }
}

int cli_admin_fail(const struct cli_admin *a, sl_err err, const char *what)
{
    const char *brokers = cli_brokers(&a->common);
    switch (err) {
    case SL_ERR_ALL_BROKERS_DOWN:
        cli_err(a->cmd, "no broker reachable at %s", brokers);
        break;
    case SL_ERR_TRANSPORT:
    case SL_ERR_RESOLVE:
        cli_err(a->cmd, "%s: connection to the broker failed (%s)", what, sl_err_name(err));
        break;
    case SL_ERR_TIMED_OUT:
        cli_err(a->cmd, "%s: no answer from %s within %d ms", what, brokers, CLI_ADMIN_TIMEOUT_MS);
        break;
    case SL_ERR_UNKNOWN_TOPIC_OR_PARTITION:
    case SL_ERR_UNKNOWN_PARTITION:
        cli_err(a->cmd, "%s does not exist", what);
        break;
    case SL_ERR_GROUP_ID_NOT_FOUND:
        cli_err(a->cmd, "%s does not exist", what);
        break;
    case SL_ERR_UNSUPPORTED_FEATURE:
        cli_err(a->cmd, "%s: the broker does not support this request", what);
        break;
    default:
        cli_err(a->cmd, "%s: %s", what, sl_err_str(err));
        break;
    }
    return cli_admin_exit_code(err);
}

int cli_admin_simple(int argc, char **argv, const char *cmd, void (*help)(FILE *out), size_t names,
                     cli_admin_fn *fn)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONGOPTS,
        {"json", no_argument, NULL, 'J'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct cli_admin a = {.cmd = cmd};
    char *pos[1] = {NULL};
    size_t n = 0;
    int rc = cli_admin_parse(&a, argc, argv, CLI_COMMON_SHORTOPTS "Jh", longopts, NULL, NULL, help,
                             names, names, pos, &n);
    if (rc >= 0 || (rc = cli_admin_open(&a)) >= 0) {
        return rc;
    }
    rc = fn(&a, pos[0]);
    cli_admin_close(&a);
    return rc;
}
