/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The admin calls against a scripted broker: the client's connection to
 * node 1 is one end of a socketpair, and a thread at the other end decodes
 * each request with proto/'s codec and answers as the test set it up.
 * Checked:
 *   - members' assignment bytes are read bounded: a well-formed one (with
 *     user data and unknown trailing bytes) decodes; truncated ones, lying
 *     counts and negative lengths give no assignment, never a bad read;
 *   - a coordinator that is not available yet is looked up again;
 *   - a call that times out abandons its request: the late answer is
 *     dropped, and the client goes on (and frees it at close);
 *   - arguments are refused before anything is sent, a partition asked
 *     twice in one sl_list_offsets included.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "client/internal.h"
#include "common/bytes.h"
#include "proto/errors.h"
#include "tests/lib/client_fake.h"

#define NODE        1
#define ARENA_BYTES (1u << 20)
#define MEMBERS_MAX 8

struct fake {
    sl_client *c;
    int fd; /* the broker's end */
    struct buf in;
    pthread_t thread;
    atomic_bool stop;
    /* the script */
    struct kbytes assignments[MEMBERS_MAX];
    int32_t member_count;
    atomic_int coordinator_refusals; /* FindCoordinator answers to refuse first */
    atomic_int finds;
    atomic_bool hold_configs;    /* keep DescribeConfigs unanswered... */
    atomic_bool release_configs; /* ...until this is set */
    int32_t held_correlation;
    int16_t held_version;
    bool holding;
};

static void send_frame(struct fake *f, int32_t correlation_id, int16_t api, int16_t version,
                       const struct kmsg_desc *desc, const void *resp)
{
    struct buf out;
    buf_init(&out, 1u << 20);
    tu_response_put(&out, correlation_id, api, version, desc, resp);
    tu_write_all(f->fd, out.data, out.len);
    buf_deinit(&out);
}

static void answer_metadata(struct fake *f, const struct kmsg_request_header *h,
                            const struct kmsg_metadata_request *rq)
{
    struct kmsg_metadata_response resp;
    kmsg_init(&kmsg_metadata_response_desc, &resp);
    struct kmsg_metadata_response_metadata_response_broker broker;
    kmsg_init(&kmsg_metadata_response_metadata_response_broker_desc, &broker);
    broker.node_id = NODE;
    broker.host = kstr_cstr("127.0.0.1");
    broker.port = 9;
    resp.brokers = (struct karray){&broker, 1};
    resp.controller_id = NODE;
    struct kmsg_metadata_response_metadata_response_topic topics[4];
    struct kmsg_metadata_response_metadata_response_partition parts[2];
    int32_t replicas[1] = {NODE};
    for (int32_t p = 0; p < 2; p++) {
        kmsg_init(&kmsg_metadata_response_metadata_response_partition_desc, &parts[p]);
        parts[p].partition_index = p;
        parts[p].leader_id = NODE;
        parts[p].replica_nodes = (struct karray){replicas, 1};
        parts[p].isr_nodes = (struct karray){replicas, 1};
    }
    int32_t n = rq->topics.count > 0 ? rq->topics.count : 0;
    assert_true(n <= 4);
    const struct kmsg_metadata_request_metadata_request_topic *asked = rq->topics.items;
    for (int32_t i = 0; i < n; i++) {
        kmsg_init(&kmsg_metadata_response_metadata_response_topic_desc, &topics[i]);
        topics[i].name = asked[i].name;
        topics[i].partitions = (struct karray){parts, 2};
    }
    resp.topics = (struct karray){n > 0 ? topics : NULL, n};
    send_frame(f, h->correlation_id, KMSG_API_METADATA, h->request_api_version,
               &kmsg_metadata_response_desc, &resp);
}

static void answer_find(struct fake *f, const struct kmsg_request_header *h,
                        const struct kmsg_find_coordinator_request *rq)
{
    atomic_fetch_add(&f->finds, 1);
    bool refuse = atomic_fetch_sub(&f->coordinator_refusals, 1) > 0;
    struct kmsg_find_coordinator_response resp;
    kmsg_init(&kmsg_find_coordinator_response_desc, &resp);
    struct kmsg_find_coordinator_response_coordinator k;
    kmsg_init(&kmsg_find_coordinator_response_coordinator_desc, &k);
    k.key = ((const struct kstr *)rq->coordinator_keys.items)[0];
    k.error_code = refuse ? KAFKA_ERR_COORDINATOR_NOT_AVAILABLE : KAFKA_ERR_NONE;
    k.node_id = resp.node_id = NODE;
    k.host = resp.host = kstr_cstr("127.0.0.1");
    k.port = resp.port = 9;
    resp.error_code = k.error_code;
    resp.coordinators = (struct karray){&k, 1};
    send_frame(f, h->correlation_id, KMSG_API_FIND_COORDINATOR, h->request_api_version,
               &kmsg_find_coordinator_response_desc, &resp);
}

static void answer_describe_groups(struct fake *f, const struct kmsg_request_header *h,
                                   const struct kmsg_describe_groups_request *rq)
{
    struct kmsg_describe_groups_response_described_group_member m[MEMBERS_MAX];
    for (int32_t i = 0; i < f->member_count; i++) {
        kmsg_init(&kmsg_describe_groups_response_described_group_member_desc, &m[i]);
        m[i].member_id = kstr_cstr("member");
        m[i].client_id = kstr_cstr("client");
        m[i].client_host = kstr_cstr("/127.0.0.1");
        m[i].member_metadata = (struct kbytes){(const uint8_t *)"", 0};
        m[i].member_assignment = f->assignments[i];
    }
    struct kmsg_describe_groups_response_described_group g;
    kmsg_init(&kmsg_describe_groups_response_described_group_desc, &g);
    g.group_id = ((const struct kstr *)rq->groups.items)[0];
    g.group_state = kstr_cstr("Stable");
    g.protocol_type = kstr_cstr("consumer");
    g.protocol_data = kstr_cstr("range");
    g.members = (struct karray){m, f->member_count};
    struct kmsg_describe_groups_response resp;
    kmsg_init(&kmsg_describe_groups_response_desc, &resp);
    resp.groups = (struct karray){&g, 1};
    send_frame(f, h->correlation_id, KMSG_API_DESCRIBE_GROUPS, h->request_api_version,
               &kmsg_describe_groups_response_desc, &resp);
}

static void answer_configs(struct fake *f, int32_t correlation_id, int16_t version)
{
    struct kmsg_describe_configs_response_describe_configs_resource_result e;
    kmsg_init(&kmsg_describe_configs_response_describe_configs_resource_result_desc, &e);
    e.name = kstr_cstr("retention.ms");
    e.value = kstr_cstr("1000");
    e.config_source = 1;
    struct kmsg_describe_configs_response_describe_configs_result r;
    kmsg_init(&kmsg_describe_configs_response_describe_configs_result_desc, &r);
    r.resource_type = 2;
    r.resource_name = kstr_cstr("t");
    r.configs = (struct karray){&e, 1};
    struct kmsg_describe_configs_response resp;
    kmsg_init(&kmsg_describe_configs_response_desc, &resp);
    resp.results = (struct karray){&r, 1};
    send_frame(f, correlation_id, KMSG_API_DESCRIBE_CONFIGS, version,
               &kmsg_describe_configs_response_desc, &resp);
}

/* Answers one whole request at the front of f->in; false when none is whole. */
static bool serve_one(struct fake *f)
{
    if (f->in.len < 4 || f->in.len - 4 < be32_get(f->in.data)) {
        return false;
    }
    size_t len = be32_get(f->in.data);
    const uint8_t *frame = f->in.data + 4;
    struct kmsg_request_header h;
    size_t consumed;
    assert_int_equal(kmsg_request_header_decode(frame, len, &h, &consumed, NULL), 0);
    const struct kmsg_api *api = kmsg_api_find(h.request_api_key);
    void *mem = malloc(ARENA_BYTES);
    struct karena arena;
    karena_init(&arena, mem, ARENA_BYTES);
    union {
        struct kmsg_metadata_request metadata;
        struct kmsg_find_coordinator_request find;
        struct kmsg_describe_groups_request describe;
    } rq;
    const char *why = NULL;
    if (kmsg_decode(api->request, h.request_api_version, frame + consumed, len - consumed, &rq,
                    &arena, &why) != 0) {
        fail_msg("%s v%d: %s", api->name, h.request_api_version, why);
    }
    switch (h.request_api_key) {
    case KMSG_API_METADATA:
        answer_metadata(f, &h, &rq.metadata);
        break;
    case KMSG_API_FIND_COORDINATOR:
        answer_find(f, &h, &rq.find);
        break;
    case KMSG_API_DESCRIBE_GROUPS:
        answer_describe_groups(f, &h, &rq.describe);
        break;
    case KMSG_API_DESCRIBE_CONFIGS:
        if (atomic_load(&f->hold_configs)) {
            f->holding = true; /* Kafka answers in order: nothing else comes meanwhile */
            f->held_correlation = h.correlation_id;
            f->held_version = h.request_api_version;
        } else {
            answer_configs(f, h.correlation_id, h.request_api_version);
        }
        break;
    default:
        fail_msg("unexpected request %s", api->name);
    }
    free(mem);
    memmove(f->in.data, f->in.data + 4 + len, f->in.len - 4 - len);
    f->in.len -= 4 + len;
    return true;
}

static void *serve(void *arg)
{
    struct fake *f = arg;
    while (!atomic_load(&f->stop)) {
        if (f->holding && atomic_load(&f->release_configs)) {
            answer_configs(f, f->held_correlation, f->held_version);
            f->holding = false;
            while (!f->holding && serve_one(f)) { /* what came meanwhile */
            }
        }
        struct pollfd pfd = {f->fd, POLLIN, 0};
        if (poll(&pfd, 1, 5) != 1) {
            continue;
        }
        assert_int_equal(buf_reserve(&f->in, 1u << 16), 0);
        ssize_t n = read(f->fd, f->in.data + f->in.len, f->in.cap - f->in.len);
        if (n <= 0) {
            continue;
        }
        f->in.len += (size_t)n;
        while (!f->holding && serve_one(f)) {
        }
    }
    return NULL;
}

/* An admin client whose node 1 is the fake, served by a thread. */
static void fake_open(struct fake *f)
{
    sl_conf *conf = sl_conf_new();
    char err[512];
    assert_int_equal(sl_conf_set(conf, "bootstrap.servers", "127.0.0.1:1", err, sizeof(err)), 0);
    f->c = sl_admin_new(conf, err, sizeof(err));
    assert_non_null(f->c);
    assert_false(f->c->idempotent); /* an admin client asks for no producer id */
    f->fd = tu_client_attach(f->c, NODE, NULL, 0);
    buf_init(&f->in, 64u << 20);
    atomic_store(&f->stop, false);
    assert_int_equal(pthread_create(&f->thread, NULL, serve, f), 0);
}

static void fake_close(struct fake *f)
{
    atomic_store(&f->stop, true);
    pthread_join(f->thread, NULL);
    sl_close(f->c, 0);
    close(f->fd);
    buf_deinit(&f->in);
}

/* Assignment bytes: version, topics ("t0" [0, 1], "t1" [5]), user data,
 * and trailing bytes a later version might add. */
static const uint8_t good_assignment[] = {
    0,    3,                              /* version */
    0,    0,    0,   2,                   /* two topics */
    0,    2,    't', '0',                 /* "t0" */
    0,    0,    0,   2,   0,   0,   0, 0, /* [0, */
    0,    0,    0,   1,                   /*  1] */
    0,    2,    't', '1',                 /* "t1" */
    0,    0,    0,   1,   0,   0,   0, 5, /* [5] */
    0,    0,    0,   2,   'u', 'd',       /* user data */
    0xde, 0xad,                           /* unknown */
};

static void test_client_admin_assignment_bounded(void **state)
{
    (void)state;
    static const uint8_t lying_topics[] = {0, 0, 0x7f, 0xff, 0xff, 0xff, 0, 1, 'x'};
    static const uint8_t lying_parts[] = {0, 0, 0, 0, 0, 1, 0, 1, 'x', 0x7f, 0xff, 0xff, 0xff, 0};
    static const uint8_t negative_name[] = {0, 0, 0, 0, 0, 1, 0xff, 0xff, 0, 0, 0, 0};
    struct fake f = {0};
    f.assignments[0] = (struct kbytes){good_assignment, sizeof(good_assignment)};
    /* Every cut of the good bytes short of its topics' end, then the liars. */
    f.assignments[1] = (struct kbytes){good_assignment, 25};
    f.assignments[2] = (struct kbytes){good_assignment, 1};
    f.assignments[3] = (struct kbytes){lying_topics, sizeof(lying_topics)};
    f.assignments[4] = (struct kbytes){lying_parts, sizeof(lying_parts)};
    f.assignments[5] = (struct kbytes){negative_name, sizeof(negative_name)};
    f.assignments[6] = (struct kbytes){(const uint8_t *)"", 0};
    f.member_count = 7;
    fake_open(&f);
    sl_group_description *d = NULL;
    assert_int_equal(sl_describe_group(f.c, "g", 5000, &d), SL_OK);
    assert_string_equal(d->group_id, "g");
    assert_string_equal(d->state, "Stable");
    assert_string_equal(d->protocol, "range");
    assert_int_equal(d->coordinator_id, NODE);
    assert_int_equal(d->member_count, 7);
    const sl_group_member *m = &d->members[0];
    assert_string_equal(m->client_id, "client");
    assert_null(m->group_instance_id);
    assert_int_equal(m->assignment_count, 2);
    assert_string_equal(m->assignment[0].topic, "t0");
    assert_int_equal(m->assignment[0].partition_count, 2);
    assert_int_equal(m->assignment[0].partitions[1], 1);
    assert_string_equal(m->assignment[1].topic, "t1");
    assert_int_equal(m->assignment[1].partition_count, 1);
    assert_int_equal(m->assignment[1].partitions[0], 5);
    for (size_t i = 1; i < 7; i++) {
        assert_int_equal(d->members[i].assignment_count, 0);
    }
    sl_group_description_free(d);
    fake_close(&f);
}

static void test_client_admin_coordinator_retried(void **state)
{
    (void)state;
    struct fake f = {0};
    atomic_store(&f.coordinator_refusals, 2);
    fake_open(&f);
    sl_group_description *d = NULL;
    assert_int_equal(sl_describe_group(f.c, "g", 5000, &d), SL_OK);
    assert_int_equal(atomic_load(&f.finds), 3);
    assert_int_equal(d->member_count, 0);
    sl_group_description_free(d);
    fake_close(&f);
}

static void test_client_admin_timeout_abandons(void **state)
{
    (void)state;
    struct fake f = {0};
    atomic_store(&f.hold_configs, true);
    fake_open(&f);
    sl_configs *cfg = NULL;
    assert_int_equal(sl_describe_topic_configs(f.c, "t", 100, &cfg), SL_ERR_TIMED_OUT);
    assert_null(cfg);
    /* The late answer comes while the next call waits: it is dropped, and
     * the next call gets its own. */
    atomic_store(&f.hold_configs, false);
    atomic_store(&f.release_configs, true);
    assert_int_equal(sl_describe_topic_configs(f.c, "t", 5000, &cfg), SL_OK);
    assert_int_equal(cfg->count, 1);
    assert_string_equal(cfg->entries[0].name, "retention.ms");
    assert_string_equal(cfg->entries[0].value, "1000");
    assert_int_equal(cfg->entries[0].source, SL_CONFIG_SOURCE_TOPIC);
    assert_false(cfg->entries[0].is_default);
    sl_configs_free(cfg);
    /* One more abandoned, never answered: sl_close frees it. */
    atomic_store(&f.release_configs, false);
    atomic_store(&f.hold_configs, true);
    assert_int_equal(sl_describe_topic_configs(f.c, "t", 50, &cfg), SL_ERR_TIMED_OUT);
    fake_close(&f);
}

static void test_client_admin_refuses_bad_args(void **state)
{
    (void)state;
    struct fake f = {0};
    fake_open(&f);
    sl_topic_results *res = NULL;
    sl_new_topic bad_name = {.name = "a b", .partitions = 1, .replication_factor = 1};
    assert_int_equal(sl_create_topics(f.c, &bad_name, 1, 0, 1000, &res), SL_ERR_INVALID_ARG);
    const char *no_eq[] = {"retention.ms"};
    sl_new_topic bad_cfg = {
        .name = "t", .partitions = 1, .replication_factor = 1, .configs = no_eq, .config_count = 1};
    assert_int_equal(sl_create_topics(f.c, &bad_cfg, 1, 0, 1000, &res), SL_ERR_INVALID_ARG);
    sl_new_topic zero = {.name = "t", .partitions = 0, .replication_factor = 1};
    assert_int_equal(sl_create_topics(f.c, &zero, 1, 0, 1000, &res), SL_ERR_INVALID_ARG);
    assert_null(res);
    sl_topic_partition twice[] = {{"t", 0, SL_OFFSET_END}, {"t", 0, SL_OFFSET_BEGINNING}};
    assert_int_equal(sl_list_offsets(f.c, twice, 2, 1000), SL_ERR_INVALID_ARG);
    sl_topic_partition bad_spec[] = {{"t", 0, 7}};
    assert_int_equal(sl_list_offsets(f.c, bad_spec, 1, 1000), SL_ERR_INVALID_ARG);
    sl_topic_partition negative[] = {{"t", 0, -5}};
    assert_int_equal(sl_commit_group_offsets(f.c, "g", negative, 1, 1000), SL_ERR_INVALID_ARG);
    assert_int_equal(sl_delete_group(f.c, "", 1000), SL_ERR_INVALID_ARG);
    sl_metadata *md = NULL;
    assert_int_equal(sl_fetch_metadata(f.c, NULL, 3, 1000, &md), SL_ERR_INVALID_ARG);
    assert_int_equal(sl_fetch_metadata(NULL, NULL, 0, 1000, &md), SL_ERR_STATE);
    /* And a good one through the same client. */
    const char *names[] = {"t"};
    assert_int_equal(sl_fetch_metadata(f.c, names, 1, 5000, &md), SL_OK);
    assert_int_equal(md->controller_id, NODE);
    assert_int_equal(md->topic_count, 1);
    assert_int_equal(md->topics[0].partition_count, 2);
    assert_int_equal(md->topics[0].partitions[1].leader, NODE);
    sl_metadata_free(md);
    fake_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_admin_assignment_bounded),
        cmocka_unit_test(test_client_admin_coordinator_retried),
        cmocka_unit_test(test_client_admin_timeout_abandons),
        cmocka_unit_test(test_client_admin_refuses_bad_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
