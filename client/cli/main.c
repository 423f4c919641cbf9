/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sluice: the command-line client, on libsluice. `sluice COMMAND [OPTIONS]`;
 * each command is a function in its own file, found in the table below.
 */
#include <stdio.h>
#include <string.h>

#include "client/cli/cli.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"produce", cli_produce, "produce lines from stdin or a file to a topic"},
    {"consume", cli_consume, "print a topic's records (every partition, or as a group member)"},
    {"topic", cli_topic, "create, delete, list, describe topics"},
    {"group", cli_group, "list, describe, seek, delete consumer groups"},
    {"cluster", cli_cluster, "cluster information: id, controller, brokers"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: sluice COMMAND [OPTIONS] ...\n"
                 "       sluice COMMAND --help\n\n"
                 "Commands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
    }
    fprintf(out,
            "\nEvery command takes:\n"
            "  -b, --brokers HOST:PORT[,HOST:PORT...]  brokers to start from (default\n"
            "                              $SLUICE_BROKERS, else " CLI_DEFAULT_BROKERS ")\n"
            "  -X, --set KEY=VALUE         any libsluice setting (docs/client.md), repeatable\n"
            "\ntopic, group and cluster (`sluice topic --help` lists the subcommands) take:\n"
            "  -J, --json                  one JSON document instead of tables\n"
            "\nExit codes:\n"
            "  0  success\n"
            "  1  some records were not delivered (each failure is counted in the summary),\n"
            "     or a partition stopped on an error while consuming, or the broker refused\n"
            "     an admin request (its error is printed: TOPIC_ALREADY_EXISTS, ...)\n"
            "  2  bad usage or configuration\n"
            "  3  no broker could be reached (the address and the cause are printed)\n"
            "  4  the topic, partition or group does not exist\n"
            "  5  the input could not be read\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(name, "--version") == 0) {
        printf("sluice %s\n", sl_version_str());
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(commands[i].name, name) != 0) {
            continue;
        }
        return commands[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "sluice: unknown command \"%s\"\n", name);
    usage(stderr);
    return CLI_EXIT_USAGE;
}
