/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Options every sluice command takes, and the client configuration made of
 * them: -b HOST:PORT[,...] (else $SLUICE_BROKERS, else 127.0.0.1:9092) and
 * -X key=value for any key of sl_conf_set.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/cli/cli.h"

void cli_err(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "sluice %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cli_parse_topic_command(int argc, char **argv, const char *shortopts,
                            const struct option *longopts, struct cli_common *common,
                            const char *cmd, cli_own_option_fn *own, void *opaque,
                            void (*help)(FILE *out), const char **topic)
{
    int opt;
    while ((opt = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        if (opt == 'h') {
            help(stdout);
            return CLI_EXIT_OK;
        }
        int taken = cli_common_option(common, opt, optarg, cmd);
        if (taken < 0 || (taken == 0 && (opt == '?' || !own(opaque, opt, optarg)))) {
            if (opt == '?') {
                help(stderr);
            }
            return CLI_EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        cli_err(cmd, optind >= argc ? "no topic given" : "one topic, after the options");
        help(stderr);
        return CLI_EXIT_USAGE;
    }
    *topic = argv[optind];
    return -1;
}

const char *cli_brokers(const struct cli_common *common)
{
    if (common->brokers != NULL) {
        return common->brokers;
    }
    const char *env = getenv("SLUICE_BROKERS");
    return env != NULL && *env != '\0' ? env : CLI_DEFAULT_BROKERS;
}

int cli_common_option(struct cli_common *common, int opt, const char *arg, const char *cmd)
{
    switch (opt) {
    case 'b':
        common->brokers = arg;
        return 1;
    case 'X':
        if (strchr(arg, '=') == NULL) {
            cli_err(cmd, "-X %s: expected key=value", arg);
            return -1;
        }
        if (common->setting_count == CLI_SETTINGS_MAX) {
            cli_err(cmd, "more than %d -X settings", CLI_SETTINGS_MAX);
            return -1;
        }
        common->settings[common->setting_count++] = arg;
        return 1;
    default:
        return 0;
    }
}

/* Applies one "key=value". */
static bool apply(sl_conf *conf, const char *cmd, const char *setting)
{
    char key[256];
    const char *eq = strchr(setting, '=');
    size_t len = eq != NULL ? (size_t)(eq - setting) : 0;
    if (eq == NULL || len == 0 || len >= sizeof(key)) {
        cli_err(cmd, "bad setting \"%s\": expected key=value", setting);
        return false;
    }
    memcpy(key, setting, len);
    key[len] = '\0';
    char errstr[512];
    if (sl_conf_set(conf, key, eq + 1, errstr, sizeof(errstr)) != SL_OK) {
        cli_err(cmd, "%s", errstr);
        return false;
    }
    return true;
}

sl_conf *cli_conf(const struct cli_common *common, const char *cmd, const char *const *extra,
                  size_t extra_count)
{
    sl_conf *conf = sl_conf_new();
    if (conf == NULL) {
        cli_err(cmd, "out of memory");
        return NULL;
    }
    char errstr[512];
    bool ok = sl_conf_set(conf, "client.id", "sluice-cli", errstr, sizeof(errstr)) == SL_OK &&
              sl_conf_set(conf, "bootstrap.servers", cli_brokers(common), errstr, sizeof(errstr)) ==
                  SL_OK;
    if (!ok) {
        cli_err(cmd, "%s", errstr);
    }
    for (size_t i = 0; ok && i < common->setting_count; i++) {
        ok = apply(conf, cmd, common->settings[i]);
    }
    for (size_t i = 0; ok && i < extra_count; i++) {
        ok = apply(conf, cmd, extra[i]);
    }
    if (!ok) {
        sl_conf_free(conf);
        return NULL;
    }
    return conf;
}
