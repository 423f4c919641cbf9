/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sl_conf: every key's default, refusals that say why (unknown keys with a
 * suggestion, values out of range or not among the choices), the rules across
 * keys that sl_producer_new enforces (bootstrap list, idempotence and acks,
 * backoff and timeout relations), and the error enum's names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "client/internal.h"
#include "proto/errors.h"

static void assert_value(const sl_conf *conf, const char *key, const char *want)
{
    char buf[256];
    assert_int_equal(sl_conf_get(conf, key, buf, sizeof(buf)), SL_OK);
    assert_string_equal(buf, want);
}

static void test_client_conf_defaults(void **state)
{
    (void)state;
    sl_conf *conf = sl_conf_new();
    assert_non_null(conf);
    static const char *const defaults[][2] = {
        {"bootstrap.servers", ""},
        {"client.id", "sluice"},
        {"acks", "all"},
        {"linger.ms", "5"},
        {"batch.size", "1000000"},
        {"compression.type", "none"},
        {"compression.level", "-1"},
        {"partitioner", "murmur2"},
        {"enable.idempotence", "true"},
        {"delivery.timeout.ms", "120000"},
        {"request.timeout.ms", "30000"},
        {"retry.backoff.ms", "100"},
        {"retry.backoff.max.ms", "1000"},
        {"max.in.flight.requests.per.connection", "5"},
        {"queue.buffering.max.messages", "100000"},
        {"queue.buffering.max.kbytes", "1048576"},
        {"metadata.max.age.ms", "300000"},
        {"message.max.bytes", "1000000"},
        {"max.request.size", "1048576"},
        {"receive.message.max.bytes", "104857600"},
        {"socket.connection.setup.timeout.ms", "10000"},
    };
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
        assert_value(conf, defaults[i][0], defaults[i][1]);
    }
    assert_true(slc_conf_idempotent(conf));
    assert_int_equal(slc_conf_acks(conf), -1);
    sl_conf_free(conf);
}

static void test_client_conf_refusals_say_why(void **state)
{
    (void)state;
    sl_conf *conf = sl_conf_new();
    char err[512];
    assert_int_equal(sl_conf_set(conf, "linger.msec", "5", err, sizeof(err)), SL_ERR_CONF_UNKNOWN);
    assert_non_null(strstr(err, "did you mean linger.ms"));
    static const char *const bad[][3] = {
        {"acks", "2", "allowed all, -1, 0, 1"},
        {"linger.ms", "-1", "allowed 0..900000"},
        {"linger.ms", "5ms", "not an integer"},
        {"compression.type", "gzip", "allowed none, zstd"},
        {"compression.level", "23", "allowed -1..22"},
        {"partitioner", "random", "allowed murmur2, crc32"},
        {"enable.idempotence", "yes", "allowed true, false"},
        {"max.in.flight.requests.per.connection", "6", "allowed 1..5"},
        {"queue.buffering.max.messages", "0", "allowed 1..10000000"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(sl_conf_set(conf, bad[i][0], bad[i][1], err, sizeof(err)),
                         SL_ERR_CONF_INVALID);
        assert_non_null(strstr(err, bad[i][0]));
        if (strstr(err, bad[i][2]) == NULL) {
            fail_msg("%s = %s: \"%s\" lacks \"%s\"", bad[i][0], bad[i][1], err, bad[i][2]);
        }
    }
    /* A refused value leaves the key as it was. */
    assert_value(conf, "linger.ms", "5");
    assert_int_equal(sl_conf_set(conf, "linger.ms", "20", err, sizeof(err)), SL_OK);
    assert_value(conf, "linger.ms", "20");
    assert_int_equal(sl_conf_set(conf, NULL, "1", err, sizeof(err)), SL_ERR_INVALID_ARG);
    assert_int_equal(sl_conf_set(conf, "acks", "1", NULL, 0), SL_OK);
    assert_int_equal(sl_conf_get(conf, "nope", err, sizeof(err)), SL_ERR_CONF_UNKNOWN);
    sl_conf_free(conf);
}

/* sl_producer_new refuses conf (set by pairs) with a message holding want. */
static void assert_refused(const char *const *pairs, size_t n, const char *want)
{
    sl_conf *conf = sl_conf_new();
    char err[512];
    for (size_t i = 0; i < n; i += 2) {
        assert_int_equal(sl_conf_set(conf, pairs[i], pairs[i + 1], err, sizeof(err)), SL_OK);
    }
    err[0] = '\0';
    sl_client *c = sl_producer_new(conf, err, sizeof(err));
    assert_null(c);
    if (strstr(err, want) == NULL) {
        fail_msg("refusal \"%s\" lacks \"%s\"", err, want);
    }
    sl_conf_free(conf); /* still ours after a refusal */
}

static void test_client_conf_producer_rules(void **state)
{
    (void)state;
    assert_refused(NULL, 0, "bootstrap.servers is not set");
    const char *no_port[] = {"bootstrap.servers", "a:1,hostonly"};
    assert_refused(no_port, 2, "\"hostonly\"");
    const char *zero_port[] = {"bootstrap.servers", "[::1]:0"};
    assert_refused(zero_port, 2, "not HOST:PORT");
    const char *idem_acks[] = {
        "bootstrap.servers", "h:1", "enable.idempotence", "true", "acks", "1"};
    assert_refused(idem_acks, 6, "needs acks = all");
    const char *backoff[] = {"bootstrap.servers", "h:1", "retry.backoff.ms", "2000"};
    assert_refused(backoff, 4, "retry.backoff.max.ms");
    const char *timeout[] = {"bootstrap.servers", "h:1", "delivery.timeout.ms", "1000"};
    assert_refused(timeout, 4, "linger.ms + request.timeout.ms");
    const char *size[] = {"bootstrap.servers", "h:1", "message.max.bytes", "2000000"};
    assert_refused(size, 4, "max.request.size");

    /* acks=1 alone turns the default idempotence off, as in Java. */
    sl_conf *conf = sl_conf_new();
    assert_int_equal(sl_conf_set(conf, "acks", "1", NULL, 0), SL_OK);
    assert_false(slc_conf_idempotent(conf));
    assert_int_equal(slc_conf_acks(conf), 1);
    assert_int_equal(sl_conf_set(conf, "bootstrap.servers", "127.0.0.1:1, [::1]:2", NULL, 0),
                     SL_OK);
    char err[256];
    sl_client *c = sl_producer_new(conf, err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(sl_close(c, 0), SL_OK);
}

static void test_client_conf_hostport(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *host; /* NULL: refused */
        uint16_t port;
    } cases[] = {
        {"localhost:9092", "localhost", 9092},
        {"[::1]:9092", "::1", 9092},
        {" h:1 ", "h", 1},
        {"10.0.0.1:65535", "10.0.0.1", 65535},
        {"h", NULL, 0},
        {"h:", NULL, 0},
        {":9092", NULL, 0},
        {"h:0", NULL, 0},
        {"h:65536", NULL, 0},
        {"h:9x", NULL, 0},
        {"::1:9092", NULL, 0},
        {"[::1]9092", NULL, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char host[SLC_HOST_BYTES];
        uint16_t port = 0;
        int rc = slc_hostport_parse(cases[i].in, strlen(cases[i].in), host, sizeof(host), &port);
        if (cases[i].host == NULL) {
            assert_int_not_equal(rc, 0);
            continue;
        }
        assert_int_equal(rc, 0);
        assert_string_equal(host, cases[i].host);
        assert_int_equal(port, cases[i].port);
    }
}

static void test_client_conf_error_names(void **state)
{
    (void)state;
    assert_string_equal(sl_err_name(SL_ERR_QUEUE_FULL), "QUEUE_FULL");
    assert_string_equal(sl_err_str(SL_OK), "no error");
    assert_non_null(strstr(sl_err_str(SL_ERR_MSG_TIMED_OUT), "delivery.timeout.ms"));
    assert_string_equal(sl_err_str(SL_ERR_NOT_LEADER_OR_FOLLOWER),
                        "broker: NOT_LEADER_OR_FOLLOWER");
    /* Every Kafka code is ours with its name; local codes stay clear of them. */
    for (int code = KAFKA_ERR_CODE_MIN; code <= KAFKA_ERR_CODE_MAX; code++) {
        assert_string_equal(sl_err_name((sl_err)code), kafka_error_name(code));
    }
    for (int code = SL_ERR_COMPRESSION; code <= SL_ERR_QUEUE_FULL; code++) {
        assert_true(code < KAFKA_ERR_CODE_MIN);
        assert_string_not_equal(sl_err_name((sl_err)code), "UNKNOWN_ERROR_CODE");
        assert_non_null(strstr(sl_err_str((sl_err)code), "local: "));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_conf_defaults),
        cmocka_unit_test(test_client_conf_refusals_say_why),
        cmocka_unit_test(test_client_conf_producer_rules),
        cmocka_unit_test(test_client_conf_hostport),
        cmocka_unit_test(test_client_conf_error_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
