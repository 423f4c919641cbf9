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
    CLI_EXIT_USAGE = 2,       /* bad usage or configuration */
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

/* ---- admin commands (topic.c, group.c, cluster.c; shared parts in adm.c) ---- */

int cli_topic(int argc, char **argv);
int cli_group(int argc, char **argv);
int cli_cluster(int argc, char **argv);

/* How long one admin command waits for its answers. */
#define CLI_ADMIN_TIMEOUT_MS 15000

/* A subcommand of topic, group or cluster. */
struct cli_subcommand {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand's name */
    const char *summary;
};

/* Runs the subcommand argv[1] of cmd from table (help for --help or none). */
int cli_dispatch_sub(const char *cmd, const struct cli_subcommand *table, size_t count, int argc,
                     char **argv);

/* An admin command's state: its options and its client. */
struct cli_admin {
    struct cli_common common;
    const char *cmd; /* "topic create", for messages */
    bool json;       /* --json */
    sl_client *client;
};

/*
 * The options of an admin subcommand: the common ones, --json (-J), -h, the
 * command's own (to own), then between min_pos and max_pos positional
 * arguments into pos[] (*pos_count of them). Returns -1 when all is well,
 * else the exit code (help printed).
 */
int cli_admin_parse(struct cli_admin *a, int argc, char **argv, const char *shortopts,
                    const struct option *longopts, cli_own_option_fn *own, void *opaque,
                    void (*help)(FILE *out), size_t min_pos, size_t max_pos, char **pos,
                    size_t *pos_count);
/* The admin client of a->common; -1 when made, else the exit code (said why). */
int cli_admin_open(struct cli_admin *a);
void cli_admin_close(struct cli_admin *a);
/* Says why an admin call failed (what: the object, "topic demo") and
 * returns the exit code: 3 unreachable, 4 no such topic/partition/group, 1
 * refused by the broker. */
int cli_admin_fail(const struct cli_admin *a, sl_err err, const char *what);
/* The exit code of err alone (as cli_admin_fail, without a message). */
int cli_admin_exit_code(sl_err err);
/* What a plain admin subcommand does once its client is open: name is its
 * one positional argument (NULL for those that take none). The exit code. */
typedef int cli_admin_fn(struct cli_admin *a, const char *name);
/* A subcommand with only the common options and --json, and `names` (0 or
 * 1) positional names, required: parses, opens the client, runs fn,
 * closes. The exit code. */
int cli_admin_simple(int argc, char **argv, const char *cmd, void (*help)(FILE *out), size_t names,
                     cli_admin_fn *fn);

/* ---- output (output.c): aligned tables and JSON ---- */

/* Cells a table may hold: far above any cluster's partitions. */
#define CLI_TABLE_CELLS_MAX (16u << 20)

/* A table printed with aligned columns, like rpk's. */
struct cli_table {
    size_t cols;
    char **cells; /* row after row */
    size_t count, cap;
    bool truncated; /* CLI_TABLE_CELLS_MAX reached: later cells dropped */
};

void cli_table_init(struct cli_table *t, size_t cols);
/* Appends one cell (printf-style); rows fill left to right. */
void cli_table_cell(struct cli_table *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prints every row, columns two spaces apart, then frees the cells. */
void cli_table_print(struct cli_table *t, FILE *out);
/* A JSON string of s (NULL: null), escaped. */
void cli_json_str(FILE *out, const char *s);
/* A JSON array of n int32s. */
void cli_json_ids(FILE *out, const int32_t *ids, size_t n);
/* "[1,2,3]" of n int32s into buf (truncated to size). */
const char *cli_ids_str(char *buf, size_t size, const int32_t *ids, size_t n);

#endif
