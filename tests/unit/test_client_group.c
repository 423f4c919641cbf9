/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The consumer group's pure parts (client/assignor.c): the range and
 * roundrobin assignors against the assignments the Java client's
 * RangeAssignor and RoundRobinAssignor give for the same members and
 * topics (worked out from their documented algorithms: a group mixing
 * clients must agree), the consumer protocol's Subscription and Assignment
 * bytes (round trips, a hand-built Assignment with user data, every
 * truncation refused without reading past the end), and the parsing of
 * partition.assignment.strategy.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client/internal.h"
#include "common/bytes.h"

/* Members m[i] subscribed to the topics of subs[i] (indexes), "-1"-ended. */
static void setup_members(struct slc_assign_member *m, const char *const *ids, uint32_t n,
                          uint32_t subs[][4])
{
    for (uint32_t i = 0; i < n; i++) {
        m[i] = (struct slc_assign_member){.id = ids[i]};
        m[i].topics = subs[i];
        while (m[i].topic_count < 4 && subs[i][m[i].topic_count] != UINT32_MAX) {
            m[i].topic_count++;
        }
    }
}

/* "t0-0 t0-1 t1-2": a member's assignment as text. */
static const char *parts_text(const struct slc_assign_member *m, const struct slc_assign_topic *t)
{
    static char text[512];
    size_t len = 0;
    text[0] = '\0';
    for (uint32_t i = 0; i < m->count; i++) {
        len += (size_t)snprintf(text + len, sizeof(text) - len, "%s%s-%d", i > 0 ? " " : "",
                                t[m->parts[i].topic].name, m->parts[i].partition);
    }
    return text;
}

static void free_parts(struct slc_assign_member *m, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        free(m[i].parts);
    }
}

static void test_client_group_range_like_java(void **state)
{
    (void)state;
    const struct slc_assign_topic topics[] = {{"t1", 3}, {"t2", 3}};
    /* Ids out of order: the assignor sorts them. */
    const char *ids[] = {"consumer-b", "consumer-a"};
    uint32_t subs[2][4] = {{0, 1, UINT32_MAX}, {0, 1, UINT32_MAX}};
    struct slc_assign_member m[2];
    setup_members(m, ids, 2, subs);
    assert_int_equal(slc_assign("range", m, 2, topics, 2), 0);
    assert_string_equal(m[0].id, "consumer-a");
    assert_string_equal(parts_text(&m[0], topics), "t1-0 t1-1 t2-0 t2-1");
    assert_string_equal(parts_text(&m[1], topics), "t1-2 t2-2");
    free_parts(m, 2);

    /* 7 partitions over 3 members: 3, 2, 2. */
    const struct slc_assign_topic seven[] = {{"t", 7}};
    const char *ids3[] = {"c1", "c2", "c3"};
    uint32_t subs3[3][4] = {{0, UINT32_MAX}, {0, UINT32_MAX}, {0, UINT32_MAX}};
    struct slc_assign_member m3[3];
    setup_members(m3, ids3, 3, subs3);
    assert_int_equal(slc_assign("range", m3, 3, seven, 1), 0);
    assert_string_equal(parts_text(&m3[0], seven), "t-0 t-1 t-2");
    assert_string_equal(parts_text(&m3[1], seven), "t-3 t-4");
    assert_string_equal(parts_text(&m3[2], seven), "t-5 t-6");
    free_parts(m3, 3);

    /* More members than partitions: the last ones get nothing; a topic
     * subscribed by one member only goes to it whole. */
    const struct slc_assign_topic two[] = {{"a", 2}, {"b", 2}};
    uint32_t subs4[3][4] = {{0, UINT32_MAX}, {0, 1, UINT32_MAX}, {0, UINT32_MAX}};
    setup_members(m3, ids3, 3, subs4);
    assert_int_equal(slc_assign("range", m3, 3, two, 2), 0);
    assert_string_equal(parts_text(&m3[0], two), "a-0");
    assert_string_equal(parts_text(&m3[1], two), "a-1 b-0 b-1");
    assert_string_equal(parts_text(&m3[2], two), "");
    free_parts(m3, 3);
}

static void test_client_group_roundrobin_like_java(void **state)
{
    (void)state;
    const struct slc_assign_topic topics[] = {{"t1", 3}, {"t2", 3}};
    const char *ids[] = {"c1", "c0"};
    uint32_t subs[2][4] = {{0, 1, UINT32_MAX}, {0, 1, UINT32_MAX}};
    struct slc_assign_member m[2];
    setup_members(m, ids, 2, subs);
    assert_int_equal(slc_assign("roundrobin", m, 2, topics, 2), 0);
    assert_string_equal(parts_text(&m[0], topics), "t1-0 t1-2 t2-1");
    assert_string_equal(parts_text(&m[1], topics), "t1-1 t2-0 t2-2");
    free_parts(m, 2);

    /* Different subscriptions: a member not subscribed to a topic is passed
     * over, and the turn moves on from whoever took the partition. */
    const struct slc_assign_topic mixed[] = {{"t1", 3}, {"t2", 2}};
    uint32_t subs2[2][4] = {{0, UINT32_MAX}, {0, 1, UINT32_MAX}};
    const char *ids2[] = {"c0", "c1"};
    setup_members(m, ids2, 2, subs2);
    assert_int_equal(slc_assign("roundrobin", m, 2, mixed, 2), 0);
    assert_string_equal(parts_text(&m[0], mixed), "t1-0 t1-2");
    assert_string_equal(parts_text(&m[1], mixed), "t1-1 t2-0 t2-1");
    free_parts(m, 2);

    /* A topic nobody subscribed to, and one that does not exist (0). */
    const struct slc_assign_topic odd[] = {{"gone", 0}, {"t", 2}, {"unwanted", 4}};
    uint32_t subs3[2][4] = {{0, 1, UINT32_MAX}, {1, UINT32_MAX}};
    setup_members(m, ids2, 2, subs3);
    assert_int_equal(slc_assign("roundrobin", m, 2, odd, 3), 0);
    assert_string_equal(parts_text(&m[0], odd), "t-0");
    assert_string_equal(parts_text(&m[1], odd), "t-1");
    free_parts(m, 2);

    assert_int_equal(slc_assign("sticky", m, 2, odd, 3), -ENOTSUP);
}

/* Every partition of every topic exactly once, whatever the shape. */
static void test_client_group_assignors_cover_everything(void **state)
{
    (void)state;
    const char *names[] = {"range", "roundrobin"};
    const char *ids[] = {"m0", "m1", "m2", "m3", "m4"};
    uint64_t rng = 12345;
    for (int round = 0; round < 200; round++) {
        struct slc_assign_topic topics[4] = {{"a", 0}, {"b", 0}, {"c", 0}, {"d", 0}};
        for (int t = 0; t < 4; t++) {
            topics[t].partitions = (int32_t)(slc_rand(&rng) % 9);
        }
        uint32_t n = 1 + (uint32_t)(slc_rand(&rng) % 5);
        uint32_t subs[5][4];
        for (uint32_t i = 0; i < n; i++) {
            uint32_t k = 0;
            for (uint32_t t = 0; t < 4; t++) {
                if (i == 0 || slc_rand(&rng) % 2 == 0) { /* m0 takes all: none orphaned */
                    subs[i][k++] = t;
                }
            }
            while (k < 4) {
                subs[i][k++] = UINT32_MAX;
            }
        }
        struct slc_assign_member m[5];
        setup_members(m, ids, n, subs);
        assert_int_equal(slc_assign(names[round % 2], m, n, topics, 4), 0);
        int seen[4][9] = {{0}};
        for (uint32_t i = 0; i < n; i++) {
            for (uint32_t k = 0; k < m[i].count; k++) {
                const struct slc_assign_tp *tp = &m[i].parts[k];
                assert_true(tp->partition < topics[tp->topic].partitions);
                bool subscribed = false;
                for (uint32_t s = 0; s < m[i].topic_count; s++) {
                    subscribed = subscribed || m[i].topics[s] == tp->topic;
                }
                assert_true(subscribed);
                seen[tp->topic][tp->partition]++;
            }
        }
        for (int t = 0; t < 4; t++) {
            for (int p = 0; p < topics[t].partitions; p++) {
                assert_int_equal(seen[t][p], 1);
            }
        }
        free_parts(m, n);
    }
}

struct names {
    char text[1024];
    size_t len;
};

static int collect(void *arg, const char *name, size_t len, int32_t partition)
{
    struct names *n = arg;
    n->len += (size_t)snprintf(n->text + n->len, sizeof(n->text) - n->len, "%s%.*s:%d",
                               n->len > 0 ? " " : "", (int)len, name, partition);
    return 0;
}

static void test_client_group_protocol_bytes(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 1 << 20);
    const char *topics[] = {"orders", "payments.eu"};
    assert_int_equal(slc_subscription_encode(&b, topics, 2), 0);
    /* version 0, 2 topics, "orders", "payments.eu", null user data */
    assert_int_equal(b.len, 2 + 4 + 2 + 6 + 2 + 11 + 4);
    struct names n = {.len = 0};
    assert_int_equal(slc_subscription_decode(b.data, b.len, collect, &n), 0);
    assert_string_equal(n.text, "orders:-1 payments.eu:-1");
    /* Every truncation is refused without reading past it. */
    for (size_t cut = 0; cut < b.len - 4; cut++) {
        uint8_t *copy = malloc(cut > 0 ? cut : 1);
        memcpy(copy, b.data, cut);
        n.len = 0;
        assert_int_equal(slc_subscription_decode(copy, cut, collect, &n), -EBADMSG);
        free(copy);
    }

    const struct slc_assign_topic ts[] = {{"orders", 4}, {"payments.eu", 2}};
    struct slc_assign_tp parts[] = {{0, 1}, {0, 3}, {1, 0}};
    struct slc_assign_member m = {.id = "x", .parts = parts, .count = 3};
    b.len = 0;
    assert_int_equal(slc_assignment_encode(&b, &m, ts), 0);
    n.len = 0;
    assert_int_equal(slc_assignment_decode(b.data, b.len, collect, &n), 0);
    assert_string_equal(n.text, "orders:1 orders:3 payments.eu:0");
    for (size_t cut = 1; cut < b.len - 4; cut++) {
        uint8_t *copy = malloc(cut);
        memcpy(copy, b.data, cut);
        n.len = 0;
        assert_int_equal(slc_assignment_decode(copy, cut, collect, &n), -EBADMSG);
        free(copy);
    }
    /* Empty bytes: a member given nothing (Kafka sends those). */
    n.len = 0;
    assert_int_equal(slc_assignment_decode(b.data, 0, collect, &n), 0);
    assert_int_equal(n.len, 0);

    /* A later version with user data and a field we do not know. */
    static const uint8_t v1[] = {0, 1, 0, 0, 0, 1, 0, 1, 't', 0,   0, 0, 1,
                                 0, 0, 0, 7, 0, 0, 0, 2, 'u', 'd', 9, 9, 9};
    n.len = 0;
    assert_int_equal(slc_assignment_decode(v1, sizeof(v1), collect, &n), 0);
    assert_string_equal(n.text, "t:7");
    /* A negative count, a bad topic name, a negative partition. */
    static const uint8_t bad_count[] = {0, 0, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t bad_name[] = {0, 0, 0, 0, 0, 1, 0, 1, '/', 0, 0, 0, 0};
    static const uint8_t bad_part[] = {0, 0, 0, 0, 0, 1, 0, 1, 't', 0, 0, 0, 1, 0xff, 0, 0, 0};
    assert_int_equal(slc_assignment_decode(bad_count, sizeof(bad_count), collect, &n), -EBADMSG);
    assert_int_equal(slc_assignment_decode(bad_name, sizeof(bad_name), collect, &n), -EBADMSG);
    assert_int_equal(slc_assignment_decode(bad_part, sizeof(bad_part), collect, &n), -EBADMSG);
    buf_deinit(&b);
}

static void test_client_group_strategy_parse(void **state)
{
    (void)state;
    char names[SLC_ASSIGNORS_MAX][SLC_ASSIGNOR_NAME_BYTES];
    size_t n;
    assert_int_equal(slc_assignors_parse("range,roundrobin", names, SLC_ASSIGNORS_MAX, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(names[0], "range");
    assert_string_equal(names[1], "roundrobin");
    assert_int_equal(slc_assignors_parse(" roundrobin ", names, SLC_ASSIGNORS_MAX, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(names[0], "roundrobin");
    assert_int_equal(slc_assignors_parse("org.apache.kafka.clients.consumer.RangeAssignor", names,
                                         SLC_ASSIGNORS_MAX, &n),
                     0);
    assert_string_equal(names[0], "range");
    assert_int_equal(slc_assignors_parse("", names, SLC_ASSIGNORS_MAX, &n), -EINVAL);
    assert_int_equal(slc_assignors_parse("sticky", names, SLC_ASSIGNORS_MAX, &n), -EINVAL);
    assert_int_equal(slc_assignors_parse("range,range", names, SLC_ASSIGNORS_MAX, &n), -EINVAL);
    assert_int_equal(slc_assignors_parse("rangeX", names, SLC_ASSIGNORS_MAX, &n), -EINVAL);

    /* A consumer refuses a bad strategy when made, naming the key. */
    sl_conf *conf = sl_conf_new();
    char err[512];
    assert_int_equal(sl_conf_set(conf, "bootstrap.servers", "127.0.0.1:9", err, sizeof(err)),
                     SL_OK);
    assert_int_equal(sl_conf_set(conf, "group.id", "g", err, sizeof(err)), SL_OK);
    assert_int_equal(
        sl_conf_set(conf, "partition.assignment.strategy", "cooperative-sticky", err, sizeof(err)),
        SL_OK);
    assert_null(sl_consumer_new(conf, err, sizeof(err)));
    assert_non_null(strstr(err, "partition.assignment.strategy"));
    sl_conf_free(conf);
}

static void test_client_group_api_refusals(void **state)
{
    (void)state;
    char err[512];
    sl_conf *conf = sl_conf_new();
    assert_int_equal(sl_conf_set(conf, "bootstrap.servers", "127.0.0.1:9", err, sizeof(err)),
                     SL_OK);
    sl_client *c = sl_consumer_new(conf, err, sizeof(err));
    assert_non_null(c);
    const char *topics[] = {"t"};
    /* No group.id: no subscription, no commits. */
    assert_int_equal(sl_subscribe(c, topics, 1), SL_ERR_INVALID_ARG);
    assert_int_equal(sl_commit(c, NULL, 0, 1), SL_ERR_INVALID_ARG);
    assert_int_equal(sl_seek(c, "t", 0, 5), SL_ERR_UNKNOWN_PARTITION);
    assert_int_equal(sl_assign(c, "t", 0, 5), SL_OK);
    assert_int_equal(sl_seek(c, "t", 0, 7), SL_OK);
    sl_topic_partition *parts;
    size_t n;
    assert_int_equal(sl_assignment(c, &parts, &n), SL_OK);
    assert_int_equal(n, 1);
    assert_string_equal(parts[0].topic, "t");
    assert_int_equal(parts[0].offset, 7);
    free(parts);
    sl_close(c, 0);

    conf = sl_conf_new();
    assert_int_equal(sl_conf_set(conf, "bootstrap.servers", "127.0.0.1:9", err, sizeof(err)),
                     SL_OK);
    assert_int_equal(sl_conf_set(conf, "group.id", "g", err, sizeof(err)), SL_OK);
    c = sl_consumer_new(conf, err, sizeof(err));
    assert_non_null(c);
    const char *bad[] = {"no/slash"};
    assert_int_equal(sl_subscribe(c, bad, 1), SL_ERR_INVALID_ARG);
    assert_int_equal(sl_subscribe(c, topics, 0), SL_ERR_INVALID_ARG);
    assert_int_equal(sl_subscribe(c, topics, 1), SL_OK);
    /* Subscribed: the group assigns, sl_assign is refused. */
    assert_int_equal(sl_assign(c, "t", 0, 0), SL_ERR_STATE);
    /* Nothing consumed: nothing to commit. */
    assert_int_equal(sl_commit(c, NULL, 0, 0), SL_OK);
    sl_topic_partition neg = {"t", 0, -5, SL_OK};
    assert_int_equal(sl_commit(c, &neg, 1, 1), SL_ERR_INVALID_ARG);
    sl_close(c, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_group_range_like_java),
        cmocka_unit_test(test_client_group_roundrobin_like_java),
        cmocka_unit_test(test_client_group_assignors_cover_everything),
        cmocka_unit_test(test_client_group_protocol_bytes),
        cmocka_unit_test(test_client_group_strategy_parse),
        cmocka_unit_test(test_client_group_api_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
