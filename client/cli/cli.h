/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sluice CLI's shared pieces: exit codes, the options every command
 * takes (-b, -X), and the client configuration they make. Each command is
 * one cli_<name>() in its own file, listed in main.c's command table.
 */
#ifndef SL_CLIENT_CLI_H
#define SL_CLIENT_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "client/sluice.h"

/* Exit codes, documented in `sluice --help`. */
enum cli_exit {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAILED = 1,      /* some records were not delivered, or a partition stopped */
    CLI_EXIT_USAGE = 2,       /* bad usage or configuration; command not yet implemented */
    CLI_EXIT_UNREACHABLE = 3, /* no broker could be reached */
    CLI_EXIT_NO_TOPIC = 4,    /* the topic or partition does not exist */
    CLI_EXIT_INPUT = 5,       /* the input could not be read */
};

/* -X settings a command may take. */
#define CLI_SETTINGS_MAX 64

/* The options every command takes. */
struct cli_common {
    const char *brokers;                    /* -b, else $SLUICE_BROKERS, else CLI_DEFAULT_BROKERS */
    const char *settings[CLI_SETTINGS_MAX]; /* -X key=value, in order */
    size_t setting_count;
};

#define CLI_DEFAULT_BROKERS "127.0.0.1:9092"

/* getopt_long descriptions of -b and -X, to splice into a command's own. */
#define CLI_COMMON_SHORTOPTS "b:X:"
#define CLI_COMMON_LONGOPTS                                                                        \
    {"brokers", required_argument, NULL, 'b'},                                                     \
    {                                                                                              \
        "set", required_argument, NULL, 'X'                                                        \
    }

/* Handles opt if it is a common option: 1 handled, 0 not ours, -1 bad (said). */
int cli_common_option(struct cli_common *common, int opt, const char *arg, const char *cmd);

/* A command's own option: true when taken, false when bad (said). */
typedef bool cli_own_option_fn(void *opaque, int opt, const char *arg);

/*
 * The options of a command that names one topic: getopt_long over the
 * common options and the command's (shortopts and longopts include both,
 * -h/--help included), each common one to common, each other to own, then
 * exactly one positional argument, the topic. Returns -1 with *topic set when
 * all is well, else the exit code (help printed, to stdout when asked for).
 */
int cli_parse_topic_command(int argc, char **argv, const char *shortopts,
                            const struct option *longopts, struct cli_common *common,
                            const char *cmd, cli_own_option_fn *own, void *opaque,
                            void (*help)(FILE *out), const char **topic);
/* A configuration from the common options, then extra "key=value" settings
 * (the command's own, applied after -X so that they win only when given).
 * NULL after printing why. */
sl_conf *cli_conf(const struct cli_common *common, const char *cmd, const char *const *extra,
                  size_t extra_count);
/* Prints "sluice CMD: " and the message to stderr. */
void cli_err(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The effective broker list (for messages). */
const char *cli_brokers(const struct cli_common *common);

int cli_produce(int argc, char **argv);
int cli_consume(int argc, char **argv);

#endif
