/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of common/conf: defaults, files with comments and odd whitespace,
 * overrides, every refusal with its exact message, listener lists (IPv6,
 * several names), and conf_dump output that loads back to the same config.
 * Each test writes its files in its own temporary directory.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/conf.h"
#include "tests/lib/testutil.h"

/* A small broker-like config: one field of every type. */
struct test_config {
    int32_t node_id;
    bool auto_create_topics;
    int32_t num_partitions;
    int32_t segment_bytes;
    int64_t retention_ms;
    char log_dirs[64];
    int flush_policy;
    struct conf_listeners listeners;
    struct conf_listeners advertised_listeners;
    char cluster_id[8];
};

enum { FLUSH_ALWAYS, FLUSH_INTERVAL, FLUSH_NEVER };
static const char *const flush_policies[] = {"always", "interval", "never", NULL};

static const struct conf_key test_keys[] = {
    {.name = "node.id",
     .type = CONF_INT32,
     CONF_FIELD(struct test_config, node_id),
     .def = "1",
     .min = 0,
     .max = INT32_MAX,
     .doc = "this node's id in the cluster"},
    {.name = "auto.create.topics.enable",
     .type = CONF_BOOL,
     CONF_FIELD(struct test_config, auto_create_topics),
     .def = "true",
     .doc = "create a topic on first use"},
    {.name = "num.partitions",
     .type = CONF_INT32,
     CONF_FIELD(struct test_config, num_partitions),
     .def = "1",
     .min = 1,
     .max = 10000,
     .doc = "partitions of an automatically created topic"},
    {.name = "log.segment.bytes",
     .type = CONF_INT32,
     CONF_FIELD(struct test_config, segment_bytes),
     .def = "1073741824",
     .min = 4096,
     .max = INT32_MAX,
     .doc = "roll a segment at this size"},
    {.name = "log.retention.ms",
     .type = CONF_INT64,
     CONF_FIELD(struct test_config, retention_ms),
     .def = "604800000",
     .min = -1,
     .max = INT64_MAX,
     .doc = "delete segments older than this; -1: never"},
    {.name = "log.dirs",
     .type = CONF_STRING,
     CONF_FIELD(struct test_config, log_dirs),
     .def = "/var/lib/sluice",
     .doc = "where partitions live"},
    {.name = "log.flush.policy",
     .type = CONF_ENUM,
     CONF_FIELD(struct test_config, flush_policy),
     .def = "always",
     .choices = flush_policies,
     .doc = "when an append is acknowledged"},
    {.name = "listeners",
     .type = CONF_LISTENERS,
     CONF_FIELD(struct test_config, listeners),
     .def = "PLAINTEXT://127.0.0.1:9092",
     .doc = "addresses to listen on"},
    {.name = "advertised.listeners",
     .type = CONF_LISTENERS,
     CONF_FIELD(struct test_config, advertised_listeners),
     .doc = "addresses given to clients; empty: listeners"},
    {.name = "cluster.id",
     .type = CONF_STRING,
     CONF_FIELD(struct test_config, cluster_id),
     .doc = "short on purpose, to test the length limit"},
};

#define NKEYS (sizeof(test_keys) / sizeof(test_keys[0]))
/* Room for a message that names a test's file twice. */
#define ERRSTR_BYTES    2048
#define TEST_DIR_BYTES  512
#define TEST_PATH_BYTES 640

/* A test's private directory; tu_tmpdir's buffer is reused by the next call. */
static void make_dir(char *dir, size_t size, const char *test_name)
{
    snprintf(dir, size, "%s", tu_tmpdir(test_name));
}

static void write_file(char *path, size_t size, const char *dir, const char *name, const char *text,
                       size_t len)
{
    snprintf(path, size, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void write_conf(char *path, size_t size, const char *dir, const char *text)
{
    write_file(path, size, dir, "sluice.conf", text, strlen(text));
}

/* Loads text as sluice.conf with overrides; returns conf_load's result. */
static int load_text(const char *dir, const char *text, const char *const *overrides,
                     size_t noverrides, struct test_config *config, char *errstr)
{
    char path[TEST_PATH_BYTES];
    write_conf(path, sizeof(path), dir, text);
    memset(config, 0, sizeof(*config));
    return conf_load(test_keys, NKEYS, config, path, overrides, noverrides, errstr, ERRSTR_BYTES);
}

/* Asserts that text, as sluice.conf, is refused with -EINVAL and the message
 * fmt, in which the single %s stands for the file's path. */
__attribute__((format(printf, 3, 4))) static void assert_refused(const char *dir, const char *text,
                                                                 const char *fmt, ...)
{
    char path[TEST_PATH_BYTES];
    char expected[ERRSTR_BYTES];
    char errstr[ERRSTR_BYTES];
    struct test_config config;
    snprintf(path, sizeof(path), "%s/sluice.conf", dir);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(expected, sizeof(expected), fmt, ap);
    va_end(ap);
    assert_int_equal(load_text(dir, text, NULL, 0, &config, errstr), -EINVAL);
    assert_string_equal(errstr, expected);
}

/* Asserts that conf_set refuses assignment with -EINVAL and message, and
 * leaves the config as it was. */
static void assert_set_refused(const char *assignment, const char *message)
{
    struct test_config config, before;
    char errstr[ERRSTR_BYTES];
    memset(&config, 0, sizeof(config));
    assert_int_equal(conf_load(test_keys, NKEYS, &config, NULL, NULL, 0, errstr, sizeof(errstr)),
                     0);
    memcpy(&before, &config, sizeof(config));
    assert_int_equal(
        conf_set(test_keys, NKEYS, &config, assignment, "--set", errstr, sizeof(errstr)), -EINVAL);
    assert_string_equal(errstr, message);
    assert_memory_equal(&config, &before, sizeof(config));
}

static void assert_listener(const struct conf_listener *l, const char *name, const char *host,
                            uint16_t port)
{
    assert_string_equal(l->name, name);
    assert_string_equal(l->host, host);
    assert_int_equal(l->port, port);
}

/* ------------------------------------------------------------- parsing */

static void test_conf_defaults_applied(void **state)
{
    (void)state;
    struct test_config config;
    char errstr[ERRSTR_BYTES] = "stale";
    memset(&config, 0xa5, sizeof(config));
    assert_int_equal(conf_load(test_keys, NKEYS, &config, NULL, NULL, 0, errstr, sizeof(errstr)),
                     0);
    assert_string_equal(errstr, "");
    assert_int_equal(config.node_id, 1);
    assert_true(config.auto_create_topics);
    assert_int_equal(config.num_partitions, 1);
    assert_int_equal(config.segment_bytes, 1073741824);
    assert_int_equal(config.retention_ms, 604800000);
    assert_string_equal(config.log_dirs, "/var/lib/sluice");
    assert_int_equal(config.flush_policy, FLUSH_ALWAYS);
    assert_int_equal(config.listeners.count, 1);
    assert_listener(&config.listeners.list[0], "PLAINTEXT", "127.0.0.1", 9092);
    assert_int_equal(config.advertised_listeners.count, 0);
    assert_string_equal(config.cluster_id, "");
}

static void test_conf_file_comments_and_whitespace(void **state)
{
    (void)state;
    char dir[TEST_DIR_BYTES];
    make_dir(dir, sizeof(dir), "test_conf_file_comments_and_whitespace");
    struct test_config config;
    char errstr[ERRSTR_BYTES];
    const char *text = "\xef\xbb\xbf# Sluice test configuration\n"
                       "\n"
                       "   \t\n"
                       "    # an indented comment = with an equals sign\n"
                       "node.id=7\n"
                       "  num.partitions   =   12   # trailing comment\n"
                       "\tlog.retention.ms\t=\t-1\t\n"
                       "log.dirs = /data/a#b=c\n"
                       "log.flush.policy = interval\r\n"
                       "auto.create.topics.enable = FALSE\n"
                       "cluster.id =   # empty value, then a comment\n"
                       "log.segment.bytes = +4096";
    assert_int_equal(load_text(dir, text, NULL, 0, &config, errstr), 0);
    assert_int_equal(config.node_id, 7);
    assert_int_equal(config.num_partitions, 12);
    assert_int_equal(config.retention_ms, -1);
    /* '#' after a non-space byte belongs to the value, as does every '=' after the first. */
    assert_string_equal(config.log_dirs, "/data/a#b=c");
    assert_int_equal(config.flush_policy, FLUSH_INTERVAL);
    assert_false(config.auto_create_topics);
    assert_string_equal(config.cluster_id, "");
    assert_int_equal(config.segment_bytes, 4096);
    /* Keys the file does not name keep their defaults. */
    assert_int_equal(config.listeners.count, 1);
    tu_rmtree(dir);
}

static void test_conf_overrides_win(void **state)
{
    (void)state;
    char dir[TEST_DIR_BYTES];
    make_dir(dir, sizeof(dir), "test_conf_overrides_win");
    struct test_config config;
    char errstr[ERRSTR_BYTES];
    const char *const overrides[] = {
        "node.id=3",
        "  num.partitions = 4  ",
        "log.dirs=/x # not a comment on the command line",
        "node.id=5", /* a later override wins over an earlier one */
        "log.retention.ms=",
    };
    const char *text = "node.id = 2\nnum.partitions = 8\nlog.flush.policy = never\n";
    /* The last override is refused: overrides are applied after the file, in order. */
    assert_int_equal(load_text(dir, text, overrides, 5, &config, errstr), -EINVAL);
    assert_string_equal(errstr, "config: log.retention.ms = \"\" (--set): not an integer; "
                                "allowed -1..9223372036854775807");
    assert_int_equal(load_text(dir, text, overrides, 4, &config, errstr), 0);
    assert_int_equal(config.node_id, 5);
    assert_int_equal(config.num_partitions, 4);
    assert_string_equal(config.log_dirs, "/x # not a comment on the command line");
    assert_int_equal(config.flush_policy, FLUSH_NEVER);
    tu_rmtree(dir);
}

static void test_conf_set_single(void **state)
{
    (void)state;
    struct test_config config;
    char errstr[ERRSTR_BYTES];
    memset(&config, 0, sizeof(config));
    assert_int_equal(conf_load(test_keys, NKEYS, &config, NULL, NULL, 0, errstr, sizeof(errstr)),
                     0);
    assert_int_equal(conf_set(test_keys, NKEYS, &config, "log.retention.ms=-9223372036854775808",
                              "--set", errstr, sizeof(errstr)),
                     -EINVAL);
    assert_string_equal(errstr, "config: log.retention.ms = \"-9223372036854775808\" (--set): out "
                                "of range; allowed -1..9223372036854775807");
    assert_int_equal(conf_set(test_keys, NKEYS, &config, "log.retention.ms=9223372036854775807",
                              "--set", errstr, sizeof(errstr)),
                     0);
    assert_int_equal(config.retention_ms, INT64_MAX);
    /* conf_set_value takes the pair as it is: no trimming, the source is the caller's. */
    assert_int_equal(conf_set_value(test_keys, NKEYS, &config, "log.dirs", " /spaced ",
                                    "CreateTopics", errstr, sizeof(errstr)),
                     0);
    assert_string_equal(config.log_dirs, " /spaced ");
    assert_int_equal(conf_set_value(test_keys, NKEYS, &config, "num.partitions", " 3",
                                    "CreateTopics", errstr, sizeof(errstr)),
                     -EINVAL);
    assert_string_equal(errstr, "config: num.partitions = \" 3\" (CreateTopics): not an integer; "
                                "allowed 1..10000");
    assert_ptr_equal(conf_find(test_keys, NKEYS, "listeners"), &test_keys[7]);
    assert_null(conf_find(test_keys, NKEYS, "listener"));
    /* errstr may be absent. */
    assert_int_equal(conf_set(test_keys, NKEYS, &config, "node.id=x", "--set", NULL, 0), -EINVAL);
}

static void test_conf_listeners_parsed(void **state)
{
    (void)state;
    struct test_config config;
    char errstr[ERRSTR_BYTES];
    memset(&config, 0, sizeof(config));
    assert_int_equal(conf_load(test_keys, NKEYS, &config, NULL, NULL, 0, errstr, sizeof(errstr)),
                     0);
    assert_int_equal(conf_set(test_keys, NKEYS, &config,
                              "listeners = PLAINTEXT://[::1]:9092 , controller://:9093,"
                              "INTERNAL_2://broker-1.example.com:0,V6://[fe80::1%eth0]:65535,"
                              "ANY://0.0.0.0:19092",
                              "--set", errstr, sizeof(errstr)),
                     0);
    assert_int_equal(config.listeners.count, 5);
    assert_listener(&config.listeners.list[0], "PLAINTEXT", "::1", 9092);
    /* Names are upper-cased as Kafka does; an empty host means every interface. */
    assert_listener(&config.listeners.list[1], "CONTROLLER", "", 9093);
    assert_listener(&config.listeners.list[2], "INTERNAL_2", "broker-1.example.com", 0);
    assert_listener(&config.listeners.list[3], "V6", "fe80::1%eth0", 65535);
    assert_listener(&config.listeners.list[4], "ANY", "0.0.0.0", 19092);

    char text[CONF_LINE_BYTES_MAX];
    assert_int_equal(conf_format(&test_keys[7], &config, text, sizeof(text)), 0);
    assert_string_equal(text, "PLAINTEXT://[::1]:9092,CONTROLLER://:9093,"
                              "INTERNAL_2://broker-1.example.com:0,V6://[fe80::1%eth0]:65535,"
                              "ANY://0.0.0.0:19092");
    /* Eight listeners fit. */
    assert_int_equal(conf_set(test_keys, NKEYS, &config,
                              "listeners=A://:1,B://:2,C://:3,D://:4,E://:5,F://:6,G://:7,H://:8",
                              "--set", errstr, sizeof(errstr)),
                     0);
    assert_int_equal(config.listeners.count, 8);
    assert_listener(&config.listeners.list[7], "H", "", 8);
    /* An empty list is allowed: advertised.listeners then defaults elsewhere. */
    assert_int_equal(
        conf_set(test_keys, NKEYS, &config, "listeners =  ", "--set", errstr, sizeof(errstr)), 0);
    assert_int_equal(config.listeners.count, 0);
}

/* ------------------------------------------------------------- refusals */

static void test_conf_unknown_key_suggests(void **state)
{
    (void)state;
    char dir[TEST_DIR_BYTES];
    make_dir(dir, sizeof(dir), "test_conf_unknown_key_suggests");
    assert_refused(dir, "node.id = 1\n\nlog.segmnt.bytes = 1024\n",
                   "config: log.segmnt.bytes = \"1024\" (%s/sluice.conf:3): unknown key; did you "
                   "mean log.segment.bytes?",
                   dir);
    /* A swap of neighbours is one edit. */
    assert_refused(dir, "node.di = 1\n",
                   "config: node.di = \"1\" (%s/sluice.conf:1): unknown key; did you mean node.id?",
                   dir);
    assert_refused(dir, "Listners=PLAINTEXT://:9092\n",
                   "config: Listners = \"PLAINTEXT://:9092\" (%s/sluice.conf:1): unknown key; did "
                   "you mean listeners?",
                   dir);
    /* Three edits away from every key: no suggestion. */
    assert_refused(dir, "broker.id = 1\n",
                   "config: broker.id = \"1\" (%s/sluice.conf:1): unknown key", dir);
    assert_set_refused("node = 1", "config: node = \"1\" (--set): unknown key");
    tu_rmtree(dir);
}

static void test_conf_bad_integer(void **state)
{
    (void)state;
    char dir[TEST_DIR_BYTES];
    make_dir(dir, sizeof(dir), "test_conf_bad_integer");
    assert_refused(dir, "# c\nnode.id = 1\nlog.segment.bytes = 12x\n",
                   "config: log.segment.bytes = \"12x\" (%s/sluice.conf:3): not an integer; "
                   "allowed 4096..2147483647",
                   dir);
    /* Kafka's plain integers only: no hex, units, underscores, inner spaces or bare signs. */
    static const char *const bad[] = {"0x10", "1k", "1_000", "1 000", "-", "+", "", "1.5"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char assignment[64], message[ERRSTR_BYTES];
        snprintf(assignment, sizeof(assignment), "node.id=%s", bad[i]);
        snprintf(message, sizeof(message),
                 "config: node.id = \"%s\" (--set): not an integer; allowed 0..2147483647", bad[i]);
        assert_set_refused(assignment, message);
    }
    /* Overflowing digits followed by junk are still "not an integer". */
    assert_set_refused("log.retention.ms=99999999999999999999x",
                       "config: log.retention.ms = \"99999999999999999999x\" (--set): not an "
                       "integer; allowed -1..9223372036854775807");
    tu_rmtree(dir);
}

static void test_conf_out_of_range(void **state)
{
    (void)state;
    char dir[TEST_DIR_BYTES];
    make_dir(dir, sizeof(dir), "test_conf_out_of_range");
    assert_refused(dir, "num.partitions = 0\n",
                   "config: num.partitions = \"0\" (%s/sluice.conf:1): out of range; allowed "
                   "1..10000",
                   dir);
    assert_set_refused("num.partitions=10001", "config: num.partitions = \"10001\" (--set): out of "
                                               "range; allowed 1..10000");
    assert_set_refused("log.segment.bytes=2147483648",
                       "config: log.segment.bytes = \"2147483648\" (--set): out of range; allowed "
                       "4096..2147483647");
    assert_set_refused("log.retention.ms=9223372036854775808",
                       "config: log.retention.ms = \"9223372036854775808\" (--set): out of range; "
                       "allowed -1..9223372036854775807");
    assert_set_refused("log.retention.ms=-2", "config: log.retention.ms = \"-2\" (--set): out of "
                                              "range; allowed -1..9223372036854775807");
    tu_rmtree(dir);
}

static void test_conf_bad_bool(void **state)
{
    (void)state;
    assert_set_refused("auto.create.topics.enable = yes",
                       "config: auto.create.topics.enable = \"yes\" (--set): not a boolean; "
                       "allowed true, false");
    assert_set_refused("auto.create.topics.enable=1",
                       "config: auto.create.topics.enable = \"1\" (--set): not a boolean; allowed "
                       "true, false");
}

static void test_conf_bad_enum_lists_choices(void **state)
{
    (void)state;
    char dir[TEST_DIR_BYTES];
    make_dir(dir, sizeof(dir), "test_conf_bad_enum_lists_choices");
    assert_refused(dir, "log.flush.policy = sometimes\n",
                   "config: log.flush.policy = \"sometimes\" (%s/sluice.conf:1): unknown value; "
                   "allowed always, interval, never",
                   dir);
    /* Choices match exactly, as Kafka's ValidString does. */
    assert_set_refused("log.flush.policy=Always",
                       "config: log.flush.policy = \"Always\" (--set): unknown value; allowed "
                       "always, interval, never");
    tu_rmtree(dir);
}

static void test_conf_bad_listener(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        const char *why;
    } cases[] = {
        {"127.0.0.1:9092", "listener 1 has no \"://\""},
        {"://127.0.0.1:9092", "listener 1 has no name before \"://\""},
        {"PLAIN TEXT://h:1", "listener 1 name has a byte other than letters, digits, '_' and '-'"},
        {"PLAINTEXT://127.0.0.1", "listener 1 has no \":PORT\""},
        {"PLAINTEXT://h:", "listener 1 port is not a number 0..65535"},
        {"PLAINTEXT://h:65536", "listener 1 port is not a number 0..65535"},
        {"PLAINTEXT://h:99999999999", "listener 1 port is not a number 0..65535"},
        {"PLAINTEXT://h:-1", "listener 1 port is not a number 0..65535"},
        {"PLAINTEXT://h:9092,SSL://h:x", "listener 2 port is not a number 0..65535"},
        {"PLAINTEXT://::1:9092", "listener 1 has an IPv6 host without brackets"},
        {"PLAINTEXT://[::1:9092", "listener 1 has '[' without ']'"},
        {"PLAINTEXT://[::1]9092", "listener 1 has no \":PORT\" after ']'"},
        {"PLAINTEXT://[]:9092", "listener 1 has empty brackets"},
        {"PLAINTEXT://h/x:9092",
         "listener 1 host has a byte other than letters, digits, '.', '-', '_', '%' and ':'"},
        {"PLAINTEXT://h:1,,SSL://h:2", "listener 2 is empty"},
        {"PLAINTEXT://h:1,", "listener 2 is empty"},
        {"PLAINTEXT://h:1,plaintext://h:2", "listeners 1 and 2 are both named PLAINTEXT"},
        {"A://:1,B://:2,C://:3,D://:4,E://:5,F://:6,G://:7,H://:8,I://:9", "more than 8 listeners"},
        {"ABCDEFGHIJKLMNOPQRSTUVWXYZ_ABCDEF://h:1", "listener 1 name is longer than 31 bytes"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char assignment[256], message[ERRSTR_BYTES];
        snprintf(assignment, sizeof(assignment), "listeners=%s", cases[i].value);
        snprintf(message, sizeof(message),
                 "config: listeners = \"%s\" (--set): %s; allowed NAME://HOST:PORT, "
                 "comma-separated (at most 8), IPv6 hosts in brackets",
                 cases[i].value, cases[i].why);
        assert_set_refused(assignment, message);
    }
    /* A host over the DNS limit; messages show a value's first 61 bytes and "...". */
    char assignment[512], host[300], message[ERRSTR_BYTES];
    memset(host, 'h', 256);
    host[256] = '\0';
    snprintf(assignment, sizeof(assignment), "listeners=P://%s:1", host);
    snprintf(message, sizeof(message),
             "config: listeners = \"P://%.57s...\" (--set): listener 1 host is longer than 255 "
             "bytes; allowed NAME://HOST:PORT, comma-separated (at most 8), IPv6 hosts in brackets",
             host);
    assert_set_refused(assignment, message);
}

static void test_conf_duplicate_key(void **state)
{
    (void)state;
    char dir[TEST_DIR_BYTES];
    make_dir(dir, sizeof(dir), "test_conf_duplicate_key");
    assert_refused(dir, "node.id = 1\nnum.partitions = 3\n# again\nnode.id = 2\n",
                   "config: node.id = \"2\" (%s/sluice.conf:4): duplicate key; first set at "
                   "%s/sluice.conf:1",
                   dir, dir);
    tu_rmtree(dir);
}

static void test_conf_string_too_long(void **state)
{
    (void)state;
    char dir[TEST_DIR_BYTES];
    make_dir(dir, sizeof(dir), "test_conf_string_too_long");
    assert_refused(dir, "cluster.id = abcdefgh\n",
                   "config: cluster.id = \"abcdefgh\" (%s/sluice.conf:1): too long (8 bytes); "
                   "allowed at most 7 bytes",
                   dir);
    /* One byte less fits, with its NUL. */
    struct test_config config;
    char errstr[ERRSTR_BYTES];
    assert_int_equal(load_text(dir, "cluster.id = abcdefg\n", NULL, 0, &config, errstr), 0);
    assert_string_equal(config.cluster_id, "abcdefg");
    tu_rmtree(dir);
}

static void test_conf_missing_file(void **state)
{
    (void)state;
    char dir[TEST_DIR_BYTES], path[TEST_PATH_BYTES], expected[ERRSTR_BYTES];
    char errstr[ERRSTR_BYTES];
    struct test_config config;
    make_dir(dir, sizeof(dir), "test_conf_missing_file");
    snprintf(path, sizeof(path), "%s/absent.conf", dir);
    assert_int_equal(conf_load(test_keys, NKEYS, &config, path, NULL, 0, errstr, sizeof(errstr)),
                     -ENOENT);
    snprintf(expected, sizeof(expected), "config: cannot read %s: No such file or directory", path);
    assert_string_equal(errstr, expected);
    /* A directory opens but does not read. */
    assert_int_equal(conf_load(test_keys, NKEYS, &config, dir, NULL, 0, errstr, sizeof(errstr)),
                     -EISDIR);
    snprintf(expected, sizeof(expected), "config: cannot read %s: Is a directory", dir);
    assert_string_equal(errstr, expected);
    tu_rmtree(dir);
}

static void test_conf_line_too_long(void **state)
{
    (void)state;
    char dir[TEST_DIR_BYTES];
    make_dir(dir, sizeof(dir), "test_conf_line_too_long");
    size_t len = CONF_LINE_BYTES_MAX + 64;
    char *text = malloc(len + 1);
    assert_non_null(text);
    /* A line of exactly the limit is read (line 2: a short setting padded with spaces). */
    memset(text, ' ', len);
    memcpy(text, "node.id = 1\nlog.dirs = x", 24);
    text[12 + CONF_LINE_BYTES_MAX] = '\n';
    memcpy(text + 13 + CONF_LINE_BYTES_MAX, "num.partitions = 2", 18);
    text[len] = '\0';
    struct test_config config;
    char errstr[ERRSTR_BYTES];
    assert_int_equal(load_text(dir, text, NULL, 0, &config, errstr), 0);
    assert_int_equal(config.num_partitions, 2);
    assert_string_equal(config.log_dirs, "x");
    /* One byte more is refused. */
    text[12 + CONF_LINE_BYTES_MAX] = ' ';
    text[13 + CONF_LINE_BYTES_MAX] = '\n';
    assert_refused(dir, text, "config: %s/sluice.conf:2: line longer than 4096 bytes", dir);
    memset(text, 'x', len);
    text[len] = '\0';
    assert_set_refused(text, "config: --set: longer than 4096 bytes");
    free(text);
    tu_rmtree(dir);
}

static void test_conf_missing_equals(void **state)
{
    (void)state;
    char dir[TEST_DIR_BYTES];
    make_dir(dir, sizeof(dir), "test_conf_missing_equals");
    assert_refused(dir, "node.id = 1\nlisteners PLAINTEXT://:9092  # oops\n",
                   "config: %s/sluice.conf:2: expected key = value, got \"listeners "
                   "PLAINTEXT://:9092\"",
                   dir);
    assert_refused(dir, "  = 5\n", "config: %s/sluice.conf:1: no key before '=', got \"= 5\"", dir);
    assert_set_refused("node.id", "config: --set: expected key = value, got \"node.id\"");
    assert_set_refused("", "config: --set: expected key = value, got \"\"");
    tu_rmtree(dir);
}

static void test_conf_not_a_text_file(void **state)
{
    (void)state;
    char dir[TEST_DIR_BYTES], path[TEST_PATH_BYTES], expected[ERRSTR_BYTES];
    char errstr[ERRSTR_BYTES];
    struct test_config config;
    make_dir(dir, sizeof(dir), "test_conf_not_a_text_file");
    write_file(path, sizeof(path), dir, "binary.conf", "node.id = 1\nx\0y = 2\n", 20);
    assert_int_equal(conf_load(test_keys, NKEYS, &config, path, NULL, 0, errstr, sizeof(errstr)),
                     -EINVAL);
    snprintf(expected, sizeof(expected), "config: %s:2: NUL byte; not a text file", path);
    assert_string_equal(errstr, expected);

    /* Over the size limit: refused before any line is parsed. */
    size_t len = CONF_FILE_BYTES_MAX + 1;
    char *big = malloc(len);
    assert_non_null(big);
    memset(big, '\n', len);
    write_file(path, sizeof(path), dir, "big.conf", big, len);
    assert_int_equal(conf_load(test_keys, NKEYS, &config, path, NULL, 0, errstr, sizeof(errstr)),
                     -EFBIG);
    snprintf(expected, sizeof(expected), "config: %s is larger than 1048576 bytes", path);
    assert_string_equal(errstr, expected);
    /* At the limit it is read (all blank lines). */
    write_file(path, sizeof(path), dir, "big.conf", big, len - 1);
    assert_int_equal(conf_load(test_keys, NKEYS, &config, path, NULL, 0, errstr, sizeof(errstr)),
                     0);
    free(big);
    tu_rmtree(dir);
}

static void test_conf_bad_default(void **state)
{
    (void)state;
    struct {
        int32_t port;
    } config;
    const struct conf_key keys[] = {
        {.name = "port",
         .type = CONF_INT32,
         .offset = 0,
         .size = sizeof(int32_t),
         .def = "0",
         .min = 1,
         .max = 65535},
    };
    char errstr[ERRSTR_BYTES];
    assert_int_equal(conf_load(keys, 1, &config, NULL, NULL, 0, errstr, sizeof(errstr)), -EINVAL);
    assert_string_equal(errstr, "config: port = \"0\" (default): out of range; allowed 1..65535");
    /* A short errstr is cut, still NUL-terminated. */
    char short_errstr[16];
    assert_int_equal(conf_load(keys, 1, &config, NULL, NULL, 0, short_errstr, sizeof(short_errstr)),
                     -EINVAL);
    assert_string_equal(short_errstr, "config: port = ");
}

/* -------------------------------------------------------------- output */

static void test_conf_dump(void **state)
{
    (void)state;
    char dir[TEST_DIR_BYTES], path[TEST_PATH_BYTES];
    make_dir(dir, sizeof(dir), "test_conf_dump");
    struct test_config config, reloaded;
    char errstr[ERRSTR_BYTES];
    const char *const overrides[] = {
        "listeners=PLAINTEXT://[::1]:9092,controller://localhost:9093",
        "log.flush.policy=never",
        "log.dirs=/data/sluice",
        "cluster.id=abc",
    };
    memset(&config, 0, sizeof(config));
    assert_int_equal(
        conf_load(test_keys, NKEYS, &config, NULL, overrides, 4, errstr, sizeof(errstr)), 0);

    char *out = NULL;
    size_t out_len = 0;
    FILE *f = open_memstream(&out, &out_len);
    assert_non_null(f);
    conf_dump(test_keys, NKEYS, &config, f);
    assert_int_equal(fclose(f), 0);
    assert_string_equal(out, "node.id = 1\n"
                             "auto.create.topics.enable = true\n"
                             "num.partitions = 1\n"
                             "log.segment.bytes = 1073741824\n"
                             "log.retention.ms = 604800000\n"
                             "log.dirs = /data/sluice\n"
                             "log.flush.policy = never\n"
                             "listeners = PLAINTEXT://[::1]:9092,CONTROLLER://localhost:9093\n"
                             "advertised.listeners =\n"
                             "cluster.id = abc\n");

    /* The dump is a configuration file that loads back to the same struct. */
    write_conf(path, sizeof(path), dir, out);
    memset(&reloaded, 0, sizeof(reloaded));
    assert_int_equal(conf_load(test_keys, NKEYS, &reloaded, path, NULL, 0, errstr, sizeof(errstr)),
                     0);
    assert_memory_equal(&reloaded, &config, sizeof(config));
    free(out);

    char small[8];
    assert_int_equal(conf_format(&test_keys[4], &config, small, sizeof(small)), -ENOBUFS);
    assert_int_equal(conf_format(&test_keys[0], &config, small, sizeof(small)), 0);
    assert_string_equal(small, "1");
    assert_int_equal(conf_format(&test_keys[7], &config, small, sizeof(small)), -ENOBUFS);
    tu_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conf_defaults_applied),
        cmocka_unit_test(test_conf_file_comments_and_whitespace),
        cmocka_unit_test(test_conf_overrides_win),
        cmocka_unit_test(test_conf_set_single),
        cmocka_unit_test(test_conf_listeners_parsed),
        cmocka_unit_test(test_conf_unknown_key_suggests),
        cmocka_unit_test(test_conf_bad_integer),
        cmocka_unit_test(test_conf_out_of_range),
        cmocka_unit_test(test_conf_bad_bool),
        cmocka_unit_test(test_conf_bad_enum_lists_choices),
        cmocka_unit_test(test_conf_bad_listener),
        cmocka_unit_test(test_conf_duplicate_key),
        cmocka_unit_test(test_conf_string_too_long),
        cmocka_unit_test(test_conf_missing_file),
        cmocka_unit_test(test_conf_line_too_long),
        cmocka_unit_test(test_conf_missing_equals),
        cmocka_unit_test(test_conf_not_a_text_file),
        cmocka_unit_test(test_conf_bad_default),
        cmocka_unit_test(test_conf_dump),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
