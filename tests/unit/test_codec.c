/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of proto/kmsg, the table-driven Kafka codec: round trips of random
 * messages of every API in every version of its range (flexible ones with
 * tagged fields included), exact bytes worked out by hand from Kafka's
 * protocol description, requests captured from real clients (librdkafka
 * 2.0.2 through kcat, and kafka-python 2.0.2), and refusal of malformed input:
 * truncation at every length, huge counts, negative lengths, lengths past the
 * end, nulls where the version allows none, trailing bytes, unsupported
 * versions, a full arena, and a seeded mutation fuzz loop.
 *
 * Every frame handed to the decoder sits in a heap block of exactly its size,
 * so that AddressSanitizer reports a read one byte past the end.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/assert.h"
#include "common/buf.h"
#include "proto/kmsg.h"
#include "tests/lib/testutil.h"

#define ARENA_BYTES            (4u << 20)
#define ROUND_TRIP_ARENA_BYTES (64u << 10) /* random messages are small */
#define BUF_MAX                (16u << 20)
#define FILL_DEPTH             8
#define ROUND_TRIPS            25 /* random messages per API, direction and version */
#define FUZZ_ROUNDS            50000

/* ================================================================== helpers */

/* A heap copy of exactly len bytes, so that ASan catches any over-read. */
static uint8_t *exact_copy(const void *p, size_t len)
{
    uint8_t *copy = malloc(len > 0 ? len : 1);
    assert_non_null(copy);
    if (len > 0) {
        memcpy(copy, p, len);
    }
    return copy;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    fail_msg("bad hex digit %c", c);
    return 0;
}

/* Decodes hex into an exactly sized heap block; the caller frees it. */
static uint8_t *from_hex(const char *hex, size_t *len)
{
    size_t n = strlen(hex);
    assert_int_equal(n % 2, 0);
    uint8_t *out = malloc(n / 2 > 0 ? n / 2 : 1);
    assert_non_null(out);
    for (size_t i = 0; i < n / 2; i++) {
        out[i] = (uint8_t)(hex_digit(hex[2 * i]) << 4 | hex_digit(hex[2 * i + 1]));
    }
    *len = n / 2;
    return out;
}

static void arena_open(struct karena *a, size_t cap)
{
    void *mem = malloc(cap);
    assert_non_null(mem);
    karena_init(a, mem, cap);
}

static void arena_close(struct karena *a)
{
    free(a->base);
}

static bool present(const struct kmsg_field *f, int16_t version)
{
    return version >= f->version_min && version <= f->version_max;
}

static bool nullable(const struct kmsg_field *f, int16_t version)
{
    return version >= f->nullable_min && version <= f->nullable_max;
}

static size_t value_size(uint8_t type, const struct kmsg_desc *sub)
{
    switch (type) {
    case KMSG_BOOL:
        return sizeof(bool);
    case KMSG_INT8:
        return 1;
    case KMSG_INT16:
    case KMSG_UINT16:
        return 2;
    case KMSG_INT32:
    case KMSG_UINT32:
        return 4;
    case KMSG_INT64:
    case KMSG_FLOAT64:
        return 8;
    case KMSG_UUID:
        return 16;
    case KMSG_STRING:
        return sizeof(struct kstr);
    case KMSG_BYTES:
    case KMSG_RECORDS:
        return sizeof(struct kbytes);
    case KMSG_STRUCT:
        return sub->size;
    }
    fail_msg("unknown type %d", type);
    return 0;
}

/* Encodes msg, failing the test on error; the caller frees the result. */
static uint8_t *encode_exact(const struct kmsg_desc *desc, int16_t version, const void *msg,
                             size_t *len)
{
    struct buf b;
    buf_init(&b, BUF_MAX);
    int rc = kmsg_encode(desc, version, msg, &b);
    if (rc != 0) {
        fail_msg("%s v%d: encode failed: %d", desc->name, version, rc);
    }
    size_t size = 0;
    assert_int_equal(kmsg_encoded_size(desc, version, msg, &size), 0);
    assert_int_equal(size, b.len);
    uint8_t *out = exact_copy(b.data, b.len);
    *len = b.len;
    buf_deinit(&b);
    return out;
}

static void assert_encodes_to(const struct kmsg_desc *desc, int16_t version, const void *msg,
                              const char *hex)
{
    size_t want_len;
    uint8_t *want = from_hex(hex, &want_len);
    size_t got_len;
    uint8_t *got = encode_exact(desc, version, msg, &got_len);
    assert_int_equal(got_len, want_len);
    assert_memory_equal(got, want, want_len);
    free(got);
    free(want);
}

/*
 * Decodes from an exactly sized heap copy of [p, p + len). The decoded message
 * points into the copy: it is handed to the caller in *keep (to free once done
 * with the message), or freed at once when keep is NULL.
 */
static int decode_exact(const struct kmsg_desc *desc, int16_t version, const uint8_t *p, size_t len,
                        void *out, struct karena *arena, const char **why, uint8_t **keep)
{
    uint8_t *copy = exact_copy(p, len);
    int rc = kmsg_decode(desc, version, copy, len, out, arena, why);
    if (keep != NULL) {
        *keep = copy;
    } else {
        free(copy);
    }
    return rc;
}

/* The same from hex. */
static int decode_hex(const struct kmsg_desc *desc, int16_t version, const char *hex, void *out,
                      struct karena *arena, const char **why, uint8_t **keep)
{
    size_t len;
    uint8_t *p = from_hex(hex, &len);
    int rc = kmsg_decode(desc, version, p, len, out, arena, why);
    if (keep != NULL) {
        *keep = p;
    } else {
        free(p);
    }
    return rc;
}

static bool kstr_is(struct kstr s, const char *want)
{
    return s.len >= 0 && (size_t)s.len == strlen(want) && memcmp(s.ptr, want, (size_t)s.len) == 0;
}

static struct kstr kstr_of(const char *s)
{
    return (struct kstr){s, (int32_t)strlen(s)};
}

/* ===================================== random messages from the descriptors */

#define TEN_CHARS "0123456789"
#define LONG_TEXT                                                                                  \
    TEN_CHARS TEN_CHARS TEN_CHARS TEN_CHARS TEN_CHARS TEN_CHARS TEN_CHARS TEN_CHARS TEN_CHARS      \
        TEN_CHARS TEN_CHARS TEN_CHARS TEN_CHARS TEN_CHARS TEN_CHARS TEN_CHARS TEN_CHARS TEN_CHARS  \
            TEN_CHARS TEN_CHARS

/* Strings of every length class: empty, short, multi-byte UTF-8, and longer
 * than 127 bytes so that compact lengths take two varint bytes. */
static const char *const fill_words[] = {
    "",
    "a",
    "topic-1",
    "kafka-python",
    "\xc3\xa9t\xc3\xa9 \xe2\x82\xac",
    "__consumer_offsets",
    LONG_TEXT,
};

struct filler {
    uint64_t rng;
    struct karena *arena;
};

static uint64_t fill_rand(struct filler *fl, uint64_t n)
{
    return tu_rand(&fl->rng) % n;
}

static void fill_struct(struct filler *fl, const struct kmsg_desc *desc, int16_t version,
                        uint8_t *dst, int depth);

/* A random value; a quarter of integers take the field's default, so tagged
 * fields are sometimes left out. */
static void fill_value(struct filler *fl, const struct kmsg_field *f, int16_t version,
                       bool may_be_null, void *dst, int depth)
{
    uint64_t r = tu_rand(&fl->rng);
    bool use_default = fill_rand(fl, 4) == 0;
    int64_t v = use_default ? f->default_value : (int64_t)r;
    switch (f->type) {
    case KMSG_BOOL:
        *(bool *)dst = use_default ? f->default_value != 0 : (r & 1) != 0;
        break;
    case KMSG_INT8:
        *(int8_t *)dst = (int8_t)v;
        break;
    case KMSG_INT16:
        *(int16_t *)dst = (int16_t)v;
        break;
    case KMSG_UINT16:
        *(uint16_t *)dst = (uint16_t)v;
        break;
    case KMSG_INT32:
        *(int32_t *)dst = (int32_t)v;
        break;
    case KMSG_UINT32:
        *(uint32_t *)dst = (uint32_t)v;
        break;
    case KMSG_INT64:
        *(int64_t *)dst = v;
        break;
    case KMSG_FLOAT64:
        *(double *)dst = use_default ? 0.0 : (double)(int32_t)r / 7.0;
        break;
    case KMSG_UUID:
        for (int i = 0; i < 16; i++) {
            ((uint8_t *)dst)[i] = use_default ? 0 : (uint8_t)tu_rand(&fl->rng);
        }
        break;
    case KMSG_STRING:
        if (may_be_null && fill_rand(fl, 4) == 0) {
            *(struct kstr *)dst = (struct kstr){NULL, -1};
        } else {
            *(struct kstr *)dst = kstr_of(fill_words[fill_rand(fl, SL_ARRAY_LEN(fill_words))]);
        }
        break;
    case KMSG_BYTES:
    case KMSG_RECORDS:
        if (may_be_null && fill_rand(fl, 4) == 0) {
            *(struct kbytes *)dst = (struct kbytes){NULL, -1};
        } else {
            const char *w = fill_words[fill_rand(fl, SL_ARRAY_LEN(fill_words))];
            *(struct kbytes *)dst = (struct kbytes){(const uint8_t *)w, (int32_t)strlen(w)};
        }
        break;
    case KMSG_STRUCT:
        fill_struct(fl, f->sub, version, dst, depth + 1);
        break;
    default:
        fail_msg("unknown type %d", f->type);
    }
}

/* Fills every member, also those absent from the version: the encoder must
 * leave those out whatever they hold. */
static void fill_struct(struct filler *fl, const struct kmsg_desc *desc, int16_t version,
                        uint8_t *dst, int depth)
{
    assert_true(depth < FILL_DEPTH);
    memset(dst, 0, desc->size);
    for (size_t i = 0; i < desc->field_count; i++) {
        const struct kmsg_field *f = &desc->fields[i];
        void *member = dst + f->offset;
        bool may_be_null = nullable(f, version);
        if (!(f->flags & KMSG_F_ARRAY)) {
            fill_value(fl, f, version, may_be_null, member, depth);
            continue;
        }
        struct karray *a = member;
        if (may_be_null && fill_rand(fl, 5) == 0) {
            *a = (struct karray){NULL, -1};
            continue;
        }
        a->count = (int32_t)fill_rand(fl, depth == 0 ? 4 : 3);
        a->items = NULL;
        if (a->count == 0) {
            continue;
        }
        size_t size = value_size(f->type, f->sub);
        a->items = karena_alloc(fl->arena, (size_t)a->count * size);
        assert_non_null(a->items);
        for (int32_t k = 0; k < a->count; k++) {
            fill_value(fl, f, version, false, (uint8_t *)a->items + (size_t)k * size, depth);
        }
    }
}

/* =============================== comparing messages through the descriptors */

static void assert_struct_equal(const struct kmsg_desc *desc, int16_t version, const uint8_t *want,
                                const uint8_t *got);

static void assert_value_equal(const struct kmsg_field *f, int16_t version, const void *want,
                               const void *got)
{
    switch (f->type) {
    case KMSG_BOOL:
        assert_int_equal(*(const bool *)want, *(const bool *)got);
        break;
    case KMSG_STRING: {
        const struct kstr *a = want;
        const struct kstr *b = got;
        assert_int_equal(a->len, b->len);
        if (a->len > 0) {
            assert_memory_equal(a->ptr, b->ptr, (size_t)a->len);
        }
        break;
    }
    case KMSG_BYTES:
    case KMSG_RECORDS: {
        const struct kbytes *a = want;
        const struct kbytes *b = got;
        assert_int_equal(a->len, b->len);
        if (a->len > 0) {
            assert_memory_equal(a->ptr, b->ptr, (size_t)a->len);
        }
        break;
    }
    case KMSG_STRUCT:
        assert_struct_equal(f->sub, version, want, got);
        break;
    default:
        /* Fixed-width numbers and uuids: the bytes of the member. */
        assert_memory_equal(want, got, value_size(f->type, f->sub));
    }
}

/* A decoded member of a field absent from the version holds the default. */
static void assert_default(const struct kmsg_field *f, const void *got)
{
    int64_t d = f->default_value;
    if (f->flags & KMSG_F_ARRAY) {
        assert_int_equal(((const struct karray *)got)->count, d < 0 ? -1 : 0);
        return;
    }
    switch (f->type) {
    case KMSG_BOOL:
        assert_int_equal(*(const bool *)got, d != 0);
        break;
    case KMSG_INT8:
        assert_int_equal(*(const int8_t *)got, d);
        break;
    case KMSG_INT16:
        assert_int_equal(*(const int16_t *)got, d);
        break;
    case KMSG_UINT16:
        assert_int_equal(*(const uint16_t *)got, d);
        break;
    case KMSG_INT32:
        assert_int_equal(*(const int32_t *)got, d);
        break;
    case KMSG_UINT32:
        assert_int_equal(*(const uint32_t *)got, d);
        break;
    case KMSG_INT64:
        assert_int_equal(*(const int64_t *)got, d);
        break;
    case KMSG_FLOAT64:
        assert_true(*(const double *)got == (double)d);
        break;
    case KMSG_UUID: {
        static const uint8_t zero[16];
        assert_memory_equal(got, zero, 16);
        break;
    }
    case KMSG_STRING:
        assert_int_equal(((const struct kstr *)got)->len, d < 0 ? -1 : 0);
        break;
    case KMSG_BYTES:
    case KMSG_RECORDS:
        assert_int_equal(((const struct kbytes *)got)->len, d < 0 ? -1 : 0);
        break;
    case KMSG_STRUCT:
        for (size_t i = 0; i < f->sub->field_count; i++) {
            const struct kmsg_field *sf = &f->sub->fields[i];
            assert_default(sf, (const uint8_t *)got + sf->offset);
        }
        break;
    }
}

/* Members of fields in the version are equal; the others of got are defaults. */
static void assert_struct_equal(const struct kmsg_desc *desc, int16_t version, const uint8_t *want,
                                const uint8_t *got)
{
    for (size_t i = 0; i < desc->field_count; i++) {
        const struct kmsg_field *f = &desc->fields[i];
        const void *a = want + f->offset;
        const void *b = got + f->offset;
        if (!present(f, version)) {
            assert_default(f, b);
            continue;
        }
        if (!(f->flags & KMSG_F_ARRAY)) {
            assert_value_equal(f, version, a, b);
            continue;
        }
        const struct karray *x = a;
        const struct karray *y = b;
        assert_int_equal(x->count, y->count);
        size_t size = value_size(f->type, f->sub);
        for (int32_t k = 0; k < x->count; k++) {
            assert_value_equal(f, version, (const uint8_t *)x->items + (size_t)k * size,
                               (const uint8_t *)y->items + (size_t)k * size);
        }
    }
}

/*
 * Encodes msg, decodes the bytes, checks the decoded message equals msg in
 * every field of the version, and that it encodes to the same bytes.
 * Returns the encoding (the caller frees it).
 */
static uint8_t *round_trip(const struct kmsg_desc *desc, int16_t version, const void *msg,
                           size_t *len)
{
    uint8_t *wire = encode_exact(desc, version, msg, len);
    struct karena arena;
    arena_open(&arena, ROUND_TRIP_ARENA_BYTES);
    void *decoded = malloc(desc->size);
    assert_non_null(decoded);
    const char *why = NULL;
    int rc = kmsg_decode(desc, version, wire, *len, decoded, &arena, &why);
    if (rc != 0) {
        fail_msg("%s v%d: decode failed: %d (%s)", desc->name, version, rc, why);
    }
    assert_struct_equal(desc, version, msg, decoded);
    size_t again_len;
    uint8_t *again = encode_exact(desc, version, decoded, &again_len);
    assert_int_equal(again_len, *len);
    assert_memory_equal(again, wire, *len);
    free(again);
    free(decoded);
    arena_close(&arena);
    return wire;
}

/* =================================================================== tables */

static void test_codec_api_table(void **state)
{
    (void)state;
    static const struct {
        int16_t key, min_version, max_version, flexible_min;
    } want[] = {
        {KMSG_API_PRODUCE, 0, 11, 9},         {KMSG_API_FETCH, 0, 17, 12},
        {KMSG_API_LIST_OFFSETS, 0, 10, 6},    {KMSG_API_METADATA, 0, 12, 9},
        {KMSG_API_OFFSET_COMMIT, 0, 9, 8},    {KMSG_API_OFFSET_FETCH, 0, 9, 6},
        {KMSG_API_FIND_COORDINATOR, 0, 6, 3}, {KMSG_API_JOIN_GROUP, 0, 9, 6},
        {KMSG_API_HEARTBEAT, 0, 4, 4},        {KMSG_API_LEAVE_GROUP, 0, 5, 4},
        {KMSG_API_SYNC_GROUP, 0, 5, 4},       {KMSG_API_DESCRIBE_GROUPS, 0, 5, 5},
        {KMSG_API_LIST_GROUPS, 0, 5, 3},      {KMSG_API_API_VERSIONS, 0, 4, 3},
        {KMSG_API_CREATE_TOPICS, 0, 7, 5},    {KMSG_API_DELETE_TOPICS, 0, 6, 4},
        {KMSG_API_INIT_PRODUCER_ID, 0, 5, 2}, {KMSG_API_OFFSET_FOR_LEADER_EPOCH, 0, 4, 4},
        {KMSG_API_DESCRIBE_CONFIGS, 0, 4, 4}, {KMSG_API_DELETE_GROUPS, 0, 2, 2},
    };
    assert_int_equal(SL_ARRAY_LEN(want), KMSG_API_COUNT);
    for (size_t i = 0; i < SL_ARRAY_LEN(want); i++) {
        const struct kmsg_api *api = kmsg_api_find(want[i].key);
        assert_non_null(api);
        assert_int_equal(api->key, want[i].key);
        assert_int_equal(api->min_version, want[i].min_version);
        assert_int_equal(api->max_version, want[i].max_version);
        assert_int_equal(api->flexible_min, want[i].flexible_min);
        assert_true(kmsg_api_version_valid(api, want[i].max_version));
        assert_false(kmsg_api_version_valid(api, (int16_t)(want[i].max_version + 1)));
        assert_false(kmsg_api_version_valid(api, -1));
        assert_false(kmsg_api_flexible(api, (int16_t)(want[i].flexible_min - 1)));
        assert_true(kmsg_api_flexible(api, want[i].flexible_min));
        assert_int_equal(api->request->min_version, api->min_version);
        assert_int_equal(api->response->max_version, api->max_version);
    }
    assert_string_equal(kmsg_api_find(KMSG_API_API_VERSIONS)->name, "ApiVersions");
    assert_ptr_equal(kmsg_api_find(KMSG_API_PRODUCE)->request, &kmsg_produce_request_desc);
    assert_null(kmsg_api_find(4)); /* LeaderAndIsr: not served */
    assert_null(kmsg_api_find(-1));
    assert_null(kmsg_api_find(1000));
}

/* Walks a descriptor tree checking what the engine relies on. */
static void check_desc(const struct kmsg_desc *desc, int depth)
{
    assert_true(depth < FILL_DEPTH);
    assert_true(desc->field_count > 0);
    assert_true(desc->min_version <= desc->max_version);
    for (size_t i = 0; i < desc->field_count; i++) {
        const struct kmsg_field *f = &desc->fields[i];
        assert_true(f->type <= KMSG_STRUCT);
        assert_true(f->version_min <= f->version_max);
        size_t member =
            f->flags & KMSG_F_ARRAY ? sizeof(struct karray) : value_size(f->type, f->sub);
        assert_true(f->offset + member <= desc->size);
        assert_true((f->type == KMSG_STRUCT) == (f->sub != NULL));
        if (f->tag >= 0) {
            /* Tagged fields exist only in flexible versions. */
            assert_true(f->version_min >= desc->flexible_min);
        }
        if (f->sub != NULL) {
            assert_int_equal(f->sub->flexible_min, desc->flexible_min);
            check_desc(f->sub, depth + 1);
        }
    }
}

static void test_codec_descriptors_consistent(void **state)
{
    (void)state;
    for (size_t i = 0; i < KMSG_API_COUNT; i++) {
        check_desc(kmsg_apis[i].request, 0);
        check_desc(kmsg_apis[i].response, 0);
        if (i > 0) {
            assert_true(kmsg_apis[i - 1].key < kmsg_apis[i].key);
        }
    }
    check_desc(&kmsg_request_header_desc, 0);
    check_desc(&kmsg_response_header_desc, 0);
}

/* ============================================================== round trips */

static void test_codec_round_trip_every_version(void **state)
{
    (void)state;
    uint64_t seed = tu_seed("test_codec_round_trip_every_version");
    struct karena fill_arena;
    arena_open(&fill_arena, ARENA_BYTES);
    struct filler fl = {seed, &fill_arena};
    size_t messages = 0;
    for (size_t i = 0; i < KMSG_API_COUNT; i++) {
        const struct kmsg_api *api = &kmsg_apis[i];
        const struct kmsg_desc *descs[] = {api->request, api->response};
        for (size_t d = 0; d < 2; d++) {
            void *msg = malloc(descs[d]->size);
            assert_non_null(msg);
            for (int16_t v = api->min_version; v <= api->max_version; v++) {
                for (int n = 0; n < ROUND_TRIPS; n++) {
                    karena_reset(&fill_arena);
                    fill_struct(&fl, descs[d], v, msg, 0);
                    size_t len;
                    free(round_trip(descs[d], v, msg, &len));
                    messages++;
                }
            }
            free(msg);
        }
    }
    assert_true(messages > 5000);
    arena_close(&fill_arena);
}

/* A default-initialized message of every version round-trips too. */
static void test_codec_round_trip_defaults(void **state)
{
    (void)state;
    for (size_t i = 0; i < KMSG_API_COUNT; i++) {
        const struct kmsg_api *api = &kmsg_apis[i];
        const struct kmsg_desc *descs[] = {api->request, api->response};
        for (size_t d = 0; d < 2; d++) {
            void *msg = malloc(descs[d]->size);
            assert_non_null(msg);
            kmsg_init(descs[d], msg);
            for (int16_t v = api->min_version; v <= api->max_version; v++) {
                size_t len;
                free(round_trip(descs[d], v, msg, &len));
            }
            free(msg);
        }
    }
}

/* ================ exact bytes, worked out from Kafka's protocol description */

static void test_codec_api_versions_response_bytes(void **state)
{
    (void)state;
    struct kmsg_api_versions_response_api_version keys[] = {{18, 0, 3}};
    struct kmsg_api_versions_response_supported_feature_key features[] = {{kstr_of("x"), 1, 2}};
    struct kmsg_api_versions_response resp;
    kmsg_init(&kmsg_api_versions_response_desc, &resp);
    resp.api_keys = (struct karray){keys, 1};
    resp.supported_features = (struct karray){features, 1};
    resp.finalized_features_epoch = 5;
    resp.zk_migration_ready = true;

    /* v0: error, int32 count, then key/min/max; nothing of v1+ or tagged. */
    assert_encodes_to(&kmsg_api_versions_response_desc, 0, &resp,
                      "0000"
                      "00000001"
                      "001200000003");
    /* v1-2 add throttle_time_ms. */
    assert_encodes_to(&kmsg_api_versions_response_desc, 2, &resp,
                      "0000"
                      "00000001"
                      "001200000003"
                      "00000000");
    /* v3: compact count 1+1, an empty tagged section per item, then three
     * tagged fields in tag order (FinalizedFeatures is empty: its default,
     * left out): 0 SupportedFeatures (8 bytes), 1 the epoch (8), 3 true (1). */
    const char *v3 = "0000"
                     "02"
                     "001200000003"
                     "00"
                     "00000000"
                     "03"
                     "0008"
                     "0202780001000200"
                     "0108"
                     "0000000000000005"
                     "030101";
    assert_encodes_to(&kmsg_api_versions_response_desc, 3, &resp, v3);

    struct karena arena;
    arena_open(&arena, 4096);
    struct kmsg_api_versions_response got;
    uint8_t *frame;
    assert_int_equal(
        decode_hex(&kmsg_api_versions_response_desc, 3, v3, &got, &arena, NULL, &frame), 0);
    assert_int_equal(got.api_keys.count, 1);
    const struct kmsg_api_versions_response_api_version *k = got.api_keys.items;
    assert_int_equal(k->api_key, 18);
    assert_int_equal(k->max_version, 3);
    assert_int_equal(got.supported_features.count, 1);
    const struct kmsg_api_versions_response_supported_feature_key *sf =
        got.supported_features.items;
    assert_true(kstr_is(sf->name, "x"));
    assert_int_equal(sf->max_version, 2);
    assert_int_equal(got.finalized_features_epoch, 5);
    assert_int_equal(got.finalized_features.count, 0);
    assert_true(got.zk_migration_ready);
    free(frame);
    arena_close(&arena);
}

static void test_codec_default_tagged_fields_not_written(void **state)
{
    (void)state;
    struct kmsg_api_versions_response resp;
    kmsg_init(&kmsg_api_versions_response_desc, &resp);
    assert_int_equal(resp.finalized_features_epoch, -1); /* the schema's default */
    /* Every tagged field at its default: an empty tagged section. */
    assert_encodes_to(&kmsg_api_versions_response_desc, 3, &resp,
                      "0000"
                      "01"
                      "00000000"
                      "00");
}

static void test_codec_metadata_v12_request_bytes(void **state)
{
    (void)state;
    struct kmsg_metadata_request_metadata_request_topic topic = {{0}, kstr_of("t")};
    struct kmsg_metadata_request req;
    kmsg_init(&kmsg_metadata_request_desc, &req);
    assert_true(req.allow_auto_topic_creation); /* default true */
    req.topics = (struct karray){&topic, 1};
    /* compact count, 16-byte topic id, compact name, tagged, two bools, tagged */
    assert_encodes_to(&kmsg_metadata_request_desc, 12, &req,
                      "02"
                      "00000000000000000000000000000000"
                      "0274"
                      "00"
                      "01"
                      "00"
                      "00");
    /* v0: int32 count and int16 name length; no id, no bools. */
    assert_encodes_to(&kmsg_metadata_request_desc, 0, &req,
                      "00000001"
                      "000174");
    /* v1 all topics: a null array. */
    req.topics = (struct karray){NULL, -1};
    assert_encodes_to(&kmsg_metadata_request_desc, 1, &req, "ffffffff");
    assert_encodes_to(&kmsg_metadata_request_desc, 9, &req,
                      "00"
                      "01"
                      "00"
                      "00"
                      "00");
}

static void test_codec_produce_v9_request_bytes(void **state)
{
    (void)state;
    static const uint8_t records[] = {1, 2, 3};
    struct kmsg_produce_request_partition_produce_data part = {0, {records, 3}};
    struct kmsg_produce_request_topic_produce_data topic = {kstr_of("t"), {&part, 1}};
    struct kmsg_produce_request req;
    kmsg_init(&kmsg_produce_request_desc, &req);
    assert_int_equal(req.transactional_id.len, -1); /* default null */
    req.acks = -1;
    req.timeout_ms = 1000;
    req.topic_data = (struct karray){&topic, 1};
    assert_encodes_to(&kmsg_produce_request_desc, 9, &req,
                      "00"       /* transactional_id: compact null */
                      "ffff"     /* acks */
                      "000003e8" /* timeout_ms */
                      "02"       /* one topic */
                      "0274"     /* "t" */
                      "02"       /* one partition */
                      "00000000" /* index */
                      "04010203" /* records: compact length 3 + 1 */
                      "000000"); /* tagged sections: partition, topic, request */
    assert_encodes_to(&kmsg_produce_request_desc, 3, &req,
                      "ffff"
                      "ffff"
                      "000003e8"
                      "00000001"
                      "000174"
                      "00000001"
                      "00000000"
                      "00000003010203");
}

static void test_codec_fetch_v12_tagged_struct_bytes(void **state)
{
    (void)state;
    struct kmsg_fetch_response_partition_data part;
    kmsg_init(&kmsg_fetch_response_partition_data_desc, &part);
    assert_int_equal(part.diverging_epoch.epoch, -1);
    part.high_watermark = 10;
    part.last_stable_offset = 10;
    part.log_start_offset = 0;
    part.current_leader.leader_id = 1;
    part.current_leader.leader_epoch = 2;
    part.records = (struct kbytes){NULL, -1};
    part.aborted_transactions = (struct karray){NULL, -1};
    struct kmsg_fetch_response_fetchable_topic_response topic;
    kmsg_init(&kmsg_fetch_response_fetchable_topic_response_desc, &topic);
    topic.topic = kstr_of("t");
    topic.partitions = (struct karray){&part, 1};
    struct kmsg_fetch_response resp;
    kmsg_init(&kmsg_fetch_response_desc, &resp);
    resp.responses = (struct karray){&topic, 1};
    const char *v12 = "00000000"         /* throttle_time_ms */
                      "0000"             /* error_code */
                      "00000000"         /* session_id */
                      "02"               /* one topic */
                      "0274"             /* "t" */
                      "02"               /* one partition */
                      "00000000"         /* partition_index */
                      "0000"             /* error_code */
                      "000000000000000a" /* high_watermark */
                      "000000000000000a" /* last_stable_offset */
                      "0000000000000000" /* log_start_offset */
                      "00"               /* aborted_transactions: null */
                      "ffffffff"         /* preferred_read_replica */
                      "00"               /* records: null */
                      "01"               /* one tagged field: */
                      "0109"             /* tag 1 CurrentLeader, 9 bytes */
                      "000000010000000200"
                      "00"  /* topic's tagged fields */
                      "00"; /* response's tagged fields */
    assert_encodes_to(&kmsg_fetch_response_desc, 12, &resp, v12);
    struct karena arena;
    arena_open(&arena, 4096);
    struct kmsg_fetch_response got;
    uint8_t *frame;
    assert_int_equal(decode_hex(&kmsg_fetch_response_desc, 12, v12, &got, &arena, NULL, &frame), 0);
    const struct kmsg_fetch_response_fetchable_topic_response *t = got.responses.items;
    const struct kmsg_fetch_response_partition_data *p = t->partitions.items;
    assert_int_equal(p->current_leader.leader_id, 1);
    assert_int_equal(p->current_leader.leader_epoch, 2);
    assert_int_equal(p->diverging_epoch.epoch, -1);
    assert_int_equal(p->snapshot_id.end_offset, -1);
    assert_int_equal(p->records.len, -1);
    free(frame);
    arena_close(&arena);
}

static void test_codec_unknown_tags_skipped(void **state)
{
    (void)state;
    struct kmsg_api_versions_request req;
    uint8_t *frame;
    /* Tags 7 and 2 unknown, any order, with payloads the decoder must skip. */
    assert_int_equal(decode_hex(&kmsg_api_versions_request_desc, 3,
                                "0478797a"
                                "04312e30"
                                "02"
                                "0703aabbcc"
                                "0200",
                                &req, NULL, NULL, &frame),
                     0);
    assert_true(kstr_is(req.client_software_name, "xyz"));
    assert_true(kstr_is(req.client_software_version, "1.0"));
    free(frame);
}

static void test_codec_absent_fields_skipped_and_defaulted(void **state)
{
    (void)state;
    struct kmsg_produce_request req;
    kmsg_init(&kmsg_produce_request_desc, &req);
    req.transactional_id = kstr_of("txn"); /* v3+: left out of v0 */
    req.acks = 1;
    req.timeout_ms = 5;
    assert_encodes_to(&kmsg_produce_request_desc, 0, &req,
                      "0001"
                      "00000005"
                      "00000000");
    struct kmsg_produce_request got;
    assert_int_equal(
        decode_hex(&kmsg_produce_request_desc, 0, "000100000005ffffffff", &got, NULL, NULL, NULL),
        -EBADMSG); /* topic_data is not nullable */
    assert_int_equal(
        decode_hex(&kmsg_produce_request_desc, 0, "00010000000500000000", &got, NULL, NULL, NULL),
        0);
    assert_int_equal(got.transactional_id.len, -1); /* absent in v0: its default, null */
    assert_null(got.transactional_id.ptr);

    struct kmsg_fetch_request fetch;
    /* Fetch v0: replica_id, max_wait_ms, min_bytes, no topics. */
    assert_int_equal(decode_hex(&kmsg_fetch_request_desc, 0, "ffffffff000001f40000000100000000",
                                &fetch, NULL, NULL, NULL),
                     0);
    assert_int_equal(fetch.max_bytes, INT32_MAX); /* default 0x7fffffff */
    assert_int_equal(fetch.session_epoch, -1);
    assert_int_equal(fetch.rack_id.len, 0);
    assert_non_null(fetch.rack_id.ptr); /* "" default: a valid pointer */
    assert_int_equal(fetch.replica_state.replica_id, -1);
}

/* ====================================== requests captured from real clients */

struct client_vector {
    const char *what;
    int16_t api_key;
    int16_t api_version;
    const char *hex; /* the frame after its 4-byte size: header and body */
};

/*
 * librdkafka 2.0.2 (kcat 1.7.1) talking to a stub broker, and kafka-python
 * 2.0.2's protocol classes encoding requests with RequestHeader (no broker).
 * kafka-python's ListGroupsRequest_v2 says version 1, so it is listed as v1.
 */
static const struct client_vector client_vectors[] = {
    {"librdkafka 2.0.2: ApiVersions v3", 18, 3,
     "0012000300000001000772646b61666b61000b6c696272646b61666b6106322e302e3200"},
    {"librdkafka 2.0.2: Metadata v4", 3, 4, "0003000400000002000772646b61666b610000000100017401"},
    {"librdkafka 2.0.2: Produce v7", 0, 7,
     "0000000700000003000772646b61666b61ffffffff0000753000000001000174000000010000000000000059"
     "00000000000000000000004d000000000237a87099000000000001000001a201fa5733000001a201fa5733ff"
     "ffffffffffffffffffffffffff000000021a000000046b310a68656c6c6f001a000002046b320a776f726c64"
     "00"},
    {"kafka-python 2.0.2: api_versions_v0", 18, 0, "0012000000000064000c6b61666b612d707974686f6e"},
    {"kafka-python 2.0.2: api_versions_v2", 18, 2, "0012000200000065000c6b61666b612d707974686f6e"},
    {"kafka-python 2.0.2: metadata_v0", 3, 0,
     "0003000000000066000c6b61666b612d707974686f6e000000020007746f7069632d610007746f7069632d62"},
    {"kafka-python 2.0.2: metadata_v1_all", 3, 1,
     "0003000100000067000c6b61666b612d707974686f6effffffff"},
    {"kafka-python 2.0.2: metadata_v4", 3, 4,
     "0003000400000068000c6b61666b612d707974686f6e0000000100017401"},
    {"kafka-python 2.0.2: produce_v3", 0, 3,
     "0000000300000069000c6b61666b612d707974686f6effffffff000075300000000100017400000001000000"
     "000000005a00000000000000000000004e0000000002507addb40000000000010000018bcfe568000000018b"
     "cfe56801ffffffffffffffffffffffffffff0000000218000000026b0a68656c6c6f001e000202010a776f72"
     "6c640202680276"},
    {"kafka-python 2.0.2: produce_v7", 0, 7,
     "000000070000006a000c6b61666b612d707974686f6e000574786e2d310001000005dc000000010001740000"
     "0002000000000000005a00000000000000000000004e0000000002507addb40000000000010000018bcfe568"
     "000000018bcfe56801ffffffffffffffffffffffffffff0000000218000000026b0a68656c6c6f001e000202"
     "010a776f726c640202680276000000010000005a00000000000000000000004e0000000002507addb4000000"
     "0000010000018bcfe568000000018bcfe56801ffffffffffffffffffffffffffff0000000218000000026b0a"
     "68656c6c6f001e000202010a776f726c640202680276"},
    {"kafka-python 2.0.2: fetch_v4", 1, 4,
     "000100040000006b000c6b61666b612d707974686f6effffffff000001f40000000103200000010000000100"
     "01740000000100000000000000000000002a00100000"},
    {"kafka-python 2.0.2: fetch_v10", 1, 10,
     "0001000a0000006c000c6b61666b612d707974686f6effffffff000001f40000000103200000000000000700"
     "00000300000001000174000000020000000000000005000000000000002a0000000000000000001000000000"
     "0001ffffffff0000000000000000ffffffffffffffff0001000000000000"},
    {"kafka-python 2.0.2: fetch_v11", 1, 11,
     "0001000b0000006d000c6b61666b612d707974686f6effffffff0000006400000001000004000100000000ff"
     "ffffff0000000100017400000001000000020000000900000000000000640000000000000000000010000000"
     "000000067261636b2d61"},
    {"kafka-python 2.0.2: list_offsets_v1", 2, 1,
     "000200010000006e000c6b61666b612d707974686f6effffffff000000010001740000000200000000ffffff"
     "ffffffffff00000001fffffffffffffffe"},
    {"kafka-python 2.0.2: create_topics_v0", 19, 0,
     "0013000000000070000c6b61666b612d707974686f6e0000000200036e657700000003000200000000000000"
     "02000c726574656e74696f6e2e6d73000431303030000e636c65616e75702e706f6c696379ffff00066d616e"
     "75616cffffffffffff0000000200000000000000020000000100000002000000010000000200000002000000"
     "030000000000001388"},
    {"kafka-python 2.0.2: create_topics_v3", 19, 3,
     "0013000300000071000c6b61666b612d707974686f6e0000000100036e657700000001000100000000000000"
     "000000138801"},
    {"kafka-python 2.0.2: delete_topics_v3", 20, 3,
     "0014000300000072000c6b61666b612d707974686f6e0000000200016100016200000bb8"},
    {"kafka-python 2.0.2: join_group_v2", 11, 2,
     "000b000200000073000c6b61666b612d707974686f6e000367727000002710000493e000000008636f6e7375"
     "6d657200000002000572616e67650000000600016d657461000a726f756e64726f62696e00000000"},
    {"kafka-python 2.0.2: sync_group_v1", 14, 1,
     "000e000100000074000c6b61666b612d707974686f6e00036772700000000100086d656d6265722d31000000"
     "0100086d656d6265722d3100000008000161737369676e"},
    {"kafka-python 2.0.2: heartbeat_v1", 12, 1,
     "000c000100000075000c6b61666b612d707974686f6e00036772700000000100086d656d6265722d31"},
    {"kafka-python 2.0.2: leave_group_v1", 13, 1,
     "000d000100000076000c6b61666b612d707974686f6e000367727000086d656d6265722d31"},
    {"kafka-python 2.0.2: offset_commit_v2", 8, 2,
     "0008000200000077000c6b61666b612d707974686f6e00036772700000000100086d656d6265722d31ffffff"
     "ffffffffff000000010001740000000200000000000000000000002a00026d64000000010000000000000007"
     "0000"},
    {"kafka-python 2.0.2: offset_fetch_v3", 9, 3,
     "0009000300000078000c6b61666b612d707974686f6e0003677270ffffffff"},
    {"kafka-python 2.0.2: find_coordinator_v1", 10, 1,
     "000a000100000079000c6b61666b612d707974686f6e000367727000"},
    {"kafka-python 2.0.2: list_groups_v1", 16, 1, "001000010000007a000c6b61666b612d707974686f6e"},
    {"kafka-python 2.0.2: describe_groups_v3", 15, 3,
     "000f00030000007b000c6b61666b612d707974686f6e00000002000367727000056f7468657201"},
    {"kafka-python 2.0.2: describe_configs_v2", 32, 2,
     "002000020000007c000c6b61666b612d707974686f6e000000020200017400000001000c726574656e74696f"
     "6e2e6d7304000131ffffffff01"},
    {"kafka-python 2.0.2: delete_groups_v1", 42, 1,
     "002a00010000007d000c6b61666b612d707974686f6e000000010003677270"},
};

/* Header and body of a captured frame decode, and encode back to the frame. */
static void check_client_vector(const struct client_vector *cv)
{
    size_t len;
    uint8_t *frame = from_hex(cv->hex, &len);
    struct kmsg_request_header hdr;
    size_t hdr_len = 0;
    const char *why = NULL;
    int rc = kmsg_request_header_decode(frame, len, &hdr, &hdr_len, &why);
    if (rc != 0) {
        fail_msg("%s: header: %d (%s)", cv->what, rc, why);
    }
    assert_int_equal(hdr.request_api_key, cv->api_key);
    assert_int_equal(hdr.request_api_version, cv->api_version);
    const struct kmsg_api *api = kmsg_api_find(hdr.request_api_key);
    assert_non_null(api);

    struct karena arena;
    arena_open(&arena, 1 << 16);
    void *body = malloc(api->request->size);
    assert_non_null(body);
    uint8_t *copy;
    rc = decode_exact(api->request, hdr.request_api_version, frame + hdr_len, len - hdr_len, body,
                      &arena, &why, &copy);
    if (rc != 0) {
        fail_msg("%s: body: %d (%s)", cv->what, rc, why);
    }
    struct buf b;
    buf_init(&b, BUF_MAX);
    assert_int_equal(kmsg_request_header_encode(&b, &hdr), 0);
    assert_int_equal(b.len, hdr_len);
    assert_int_equal(kmsg_encode(api->request, hdr.request_api_version, body, &b), 0);
    assert_int_equal(b.len, len);
    assert_memory_equal(b.data, frame, len);
    buf_deinit(&b);
    free(copy);
    free(body);
    arena_close(&arena);
    free(frame);
}

static void test_codec_real_client_requests(void **state)
{
    (void)state;
    for (size_t i = 0; i < SL_ARRAY_LEN(client_vectors); i++) {
        check_client_vector(&client_vectors[i]);
    }
}

static const struct client_vector *find_vector(const char *what)
{
    for (size_t i = 0; i < SL_ARRAY_LEN(client_vectors); i++) {
        if (strcmp(client_vectors[i].what, what) == 0) {
            return &client_vectors[i];
        }
    }
    fail_msg("no vector %s", what);
    return NULL;
}

/* Decodes a vector's header and body into body (of the API's request type). */
static void decode_vector(const char *what, struct kmsg_request_header *hdr, void *body,
                          struct karena *arena, uint8_t **frame)
{
    const struct client_vector *cv = find_vector(what);
    size_t len;
    *frame = from_hex(cv->hex, &len);
    size_t hdr_len;
    assert_int_equal(kmsg_request_header_decode(*frame, len, hdr, &hdr_len, NULL), 0);
    const struct kmsg_api *api = kmsg_api_find(hdr->request_api_key);
    assert_int_equal(kmsg_decode(api->request, hdr->request_api_version, *frame + hdr_len,
                                 len - hdr_len, body, arena, NULL),
                     0);
}

static void test_codec_librdkafka_api_versions_v3(void **state)
{
    (void)state;
    struct kmsg_request_header hdr;
    struct kmsg_api_versions_request req;
    uint8_t *frame;
    decode_vector("librdkafka 2.0.2: ApiVersions v3", &hdr, &req, NULL, &frame);
    assert_int_equal(hdr.correlation_id, 1);
    /* Header v2, yet client_id keeps its int16 length. */
    assert_true(kstr_is(hdr.client_id, "rdkafka"));
    assert_true(kstr_is(req.client_software_name, "librdkafka"));
    assert_true(kstr_is(req.client_software_version, "2.0.2"));
    /* Zero copy: the strings point into the frame. */
    assert_ptr_equal(hdr.client_id.ptr, (const char *)frame + 10);
    free(frame);
}

static void test_codec_client_request_fields(void **state)
{
    (void)state;
    struct karena arena;
    arena_open(&arena, 1 << 16);
    struct kmsg_request_header hdr;
    uint8_t *frame;

    struct kmsg_metadata_request md;
    decode_vector("kafka-python 2.0.2: metadata_v0", &hdr, &md, &arena, &frame);
    assert_true(kstr_is(hdr.client_id, "kafka-python"));
    assert_int_equal(md.topics.count, 2);
    const struct kmsg_metadata_request_metadata_request_topic *mt = md.topics.items;
    assert_true(kstr_is(mt[0].name, "topic-a"));
    assert_true(kstr_is(mt[1].name, "topic-b"));
    assert_true(md.allow_auto_topic_creation); /* v0 has none: the default */
    free(frame);

    decode_vector("kafka-python 2.0.2: metadata_v1_all", &hdr, &md, &arena, &frame);
    assert_int_equal(md.topics.count, -1);
    free(frame);

    struct kmsg_produce_request pr;
    decode_vector("librdkafka 2.0.2: Produce v7", &hdr, &pr, &arena, &frame);
    assert_int_equal(pr.acks, -1);
    assert_int_equal(pr.timeout_ms, 30000);
    assert_int_equal(pr.transactional_id.len, -1);
    const struct kmsg_produce_request_topic_produce_data *pt = pr.topic_data.items;
    assert_true(kstr_is(pt->name, "t"));
    const struct kmsg_produce_request_partition_produce_data *pp = pt->partition_data.items;
    assert_int_equal(pp->index, 0);
    assert_int_equal(pp->records.len, 89);
    assert_int_equal(pp->records.ptr[16], 2); /* RecordBatch magic */
    free(frame);

    decode_vector("kafka-python 2.0.2: produce_v7", &hdr, &pr, &arena, &frame);
    assert_true(kstr_is(pr.transactional_id, "txn-1"));
    pt = pr.topic_data.items;
    assert_int_equal(pt->partition_data.count, 2);
    free(frame);

    struct kmsg_create_topics_request ct;
    decode_vector("kafka-python 2.0.2: create_topics_v0", &hdr, &ct, &arena, &frame);
    assert_int_equal(ct.timeout_ms, 5000);
    assert_int_equal(ct.topics.count, 2);
    const struct kmsg_create_topics_request_creatable_topic *topics = ct.topics.items;
    assert_true(kstr_is(topics[0].name, "new"));
    assert_int_equal(topics[0].num_partitions, 3);
    const struct kmsg_create_topics_request_creatable_topic_config *cfg = topics[0].configs.items;
    assert_true(kstr_is(cfg[0].name, "retention.ms"));
    assert_true(kstr_is(cfg[0].value, "1000"));
    assert_int_equal(cfg[1].value.len, -1);
    const struct kmsg_create_topics_request_creatable_replica_assignment *as =
        topics[1].assignments.items;
    assert_int_equal(topics[1].assignments.count, 2);
    assert_int_equal(((const int32_t *)as[1].broker_ids.items)[1], 3);
    free(frame);

    struct kmsg_join_group_request jg;
    decode_vector("kafka-python 2.0.2: join_group_v2", &hdr, &jg, &arena, &frame);
    assert_true(kstr_is(jg.group_id, "grp"));
    assert_int_equal(jg.rebalance_timeout_ms, 300000);
    const struct kmsg_join_group_request_join_group_request_protocol *jp = jg.protocols.items;
    assert_true(kstr_is(jp[0].name, "range"));
    assert_int_equal(jp[0].metadata.len, 6);
    free(frame);

    struct kmsg_fetch_request fr;
    decode_vector("kafka-python 2.0.2: fetch_v11", &hdr, &fr, &arena, &frame);
    assert_true(kstr_is(fr.rack_id, "rack-a"));
    const struct kmsg_fetch_request_fetch_topic *ft = fr.topics.items;
    const struct kmsg_fetch_request_fetch_partition *fp = ft->partitions.items;
    assert_int_equal(fp->partition, 2);
    assert_int_equal(fp->current_leader_epoch, 9);
    assert_int_equal(fp->fetch_offset, 100);
    free(frame);

    struct kmsg_offset_fetch_request of;
    decode_vector("kafka-python 2.0.2: offset_fetch_v3", &hdr, &of, &arena, &frame);
    assert_int_equal(of.topics.count, -1); /* all topics: null, allowed in v2-7 */
    free(frame);
    arena_close(&arena);
}

/* ========================================================== malformed input */

/* Every strict prefix of a valid body fails cleanly, read from a block of
 * exactly that size. */
static void check_truncations(const struct kmsg_desc *desc, int16_t version, const uint8_t *p,
                              size_t len, struct karena *arena)
{
    void *out = malloc(desc->size);
    assert_non_null(out);
    for (size_t cut = 0; cut < len; cut++) {
        const char *why = NULL;
        size_t used = arena->used;
        int rc = decode_exact(desc, version, p, cut, out, arena, &why, NULL);
        if (rc != -EBADMSG) {
            fail_msg("%s v%d cut at %zu of %zu: %d", desc->name, version, cut, len, rc);
        }
        assert_non_null(why);
        assert_int_equal(arena->used, used); /* a failed decode gives its memory back */
    }
    free(out);
}

static void test_codec_truncated_at_every_length(void **state)
{
    (void)state;
    struct karena arena;
    arena_open(&arena, ARENA_BYTES);
    for (size_t i = 0; i < SL_ARRAY_LEN(client_vectors); i++) {
        size_t len;
        uint8_t *frame = from_hex(client_vectors[i].hex, &len);
        struct kmsg_request_header hdr;
        size_t hdr_len;
        assert_int_equal(kmsg_request_header_decode(frame, len, &hdr, &hdr_len, NULL), 0);
        for (size_t cut = 0; cut < hdr_len; cut++) {
            uint8_t *copy = exact_copy(frame, cut);
            size_t consumed;
            assert_int_equal(kmsg_request_header_decode(copy, cut, &hdr, &consumed, NULL),
                             -EBADMSG);
            free(copy);
        }
        const struct kmsg_api *api = kmsg_api_find(hdr.request_api_key);
        check_truncations(api->request, hdr.request_api_version, frame + hdr_len, len - hdr_len,
                          &arena);
        free(frame);
    }
    /* Random messages in every version, flexible ones included. */
    uint64_t seed = tu_seed("test_codec_truncated_at_every_length");
    struct karena fill_arena;
    arena_open(&fill_arena, ARENA_BYTES);
    struct filler fl = {seed, &fill_arena};
    for (size_t i = 0; i < KMSG_API_COUNT; i++) {
        const struct kmsg_api *api = &kmsg_apis[i];
        const struct kmsg_desc *descs[] = {api->request, api->response};
        for (size_t d = 0; d < 2; d++) {
            void *msg = malloc(descs[d]->size);
            assert_non_null(msg);
            for (int16_t v = api->min_version; v <= api->max_version; v++) {
                karena_reset(&fill_arena);
                fill_struct(&fl, descs[d], v, msg, 0);
                size_t len;
                uint8_t *wire = encode_exact(descs[d], v, msg, &len);
                check_truncations(descs[d], v, wire, len, &arena);
                free(wire);
            }
            free(msg);
        }
    }
    arena_close(&fill_arena);
    arena_close(&arena);
}

static void expect_refused(const struct kmsg_desc *desc, int16_t version, const char *hex, int err)
{
    struct karena arena;
    arena_open(&arena, 1 << 16);
    void *out = malloc(desc->size);
    assert_non_null(out);
    const char *why = NULL;
    int rc = decode_hex(desc, version, hex, out, &arena, &why, NULL);
    if (rc != err) {
        fail_msg("%s v%d %s: got %d, want %d", desc->name, version, hex, rc, err);
    }
    assert_non_null(why);
    assert_int_equal(arena.used, 0);
    free(out);
    arena_close(&arena);
}

static void test_codec_huge_array_count_refused(void **state)
{
    (void)state;
    const struct kmsg_desc *md = &kmsg_metadata_request_desc;
    expect_refused(md, 1, "7fffffff", -EBADMSG);
    expect_refused(md, 1, "7fffffff000174", -EBADMSG);
    /* Two topics claimed, room for one minimal topic (2 bytes) only. */
    expect_refused(md, 1, "000000020000", -EBADMSG);
    /* Compact: 2^31 - 1 + 1, then a count that does not fit int32 at all. */
    expect_refused(md, 9, "80808080080000", -EBADMSG);
    expect_refused(md, 9, "ffffffff0f0000", -EBADMSG);
    /* An array of int32 claiming 1000 items in 8 bytes. */
    expect_refused(&kmsg_create_topics_request_desc, 0,
                   "00000001"
                   "000174"
                   "00000001"
                   "0001"
                   "00000001"
                   "00000000"
                   "000003e8"
                   "0000000000000000",
                   -EBADMSG);
    /* A huge tagged-field count. */
    expect_refused(&kmsg_api_versions_request_desc, 3, "01018fffffff0f", -EBADMSG);
}

static void test_codec_negative_length_refused(void **state)
{
    (void)state;
    expect_refused(&kmsg_metadata_request_desc, 1, "fffffffe", -EBADMSG); /* count -2 */
    expect_refused(&kmsg_metadata_request_desc, 1, "00000001fffe", -EBADMSG);
    expect_refused(&kmsg_metadata_request_desc, 1, "0000000180000000", -EBADMSG);
    /* Produce v3 records of length -5. */
    expect_refused(&kmsg_produce_request_desc, 3,
                   "ffff000100000005000000010001740000000100000000fffffffb", -EBADMSG);
}

static void test_codec_length_beyond_end_refused(void **state)
{
    (void)state;
    expect_refused(&kmsg_metadata_request_desc, 1, "00000001000a6162", -EBADMSG);
    expect_refused(&kmsg_metadata_request_desc, 9, "020b616200", -EBADMSG);
    expect_refused(&kmsg_produce_request_desc, 3,
                   "ffff00010000000500000001000174000000010000000000000010aabb", -EBADMSG);
    /* A tagged field whose size runs past the end. */
    expect_refused(&kmsg_api_versions_request_desc, 3, "01010107056162", -EBADMSG);
    /* An unterminated varint. */
    expect_refused(&kmsg_api_versions_request_desc, 3, "8080", -EBADMSG);
}

static void test_codec_null_where_not_nullable_refused(void **state)
{
    (void)state;
    /* ApiVersions v3: compact length 0 is null; the names are not nullable. */
    expect_refused(&kmsg_api_versions_request_desc, 3, "000100", -EBADMSG);
    expect_refused(&kmsg_api_versions_request_desc, 3, "010000", -EBADMSG);
    /* Metadata topics: null from v1 only. */
    expect_refused(&kmsg_metadata_request_desc, 0, "ffffffff", -EBADMSG);
    struct kmsg_metadata_request md;
    assert_int_equal(decode_hex(&kmsg_metadata_request_desc, 1, "ffffffff", &md, NULL, NULL, NULL),
                     0);
    /* A null topic name (int16 -1) in v1, where names are not nullable. */
    expect_refused(&kmsg_metadata_request_desc, 1, "00000001ffff", -EBADMSG);
    /* A null array item string (DeleteTopics v1 topic names). */
    expect_refused(&kmsg_delete_topics_request_desc, 1, "00000001ffff00000064", -EBADMSG);
}

static void test_codec_trailing_bytes_refused(void **state)
{
    (void)state;
    expect_refused(&kmsg_api_versions_request_desc, 0, "00", -EBADMSG);
    expect_refused(&kmsg_metadata_request_desc, 1, "ffffffff00", -EBADMSG);
    expect_refused(&kmsg_api_versions_request_desc, 3, "01010000", -EBADMSG);
    /* A tagged field longer than its content. */
    expect_refused(&kmsg_api_versions_response_desc, 3, "00000100000000010109000000000000000500",
                   -EBADMSG);
}

/* kafka-python 2.0.2 writes current_leader_epoch of ListOffsets v4+ as an
 * int64 where Kafka's schema has an int32. The body it sends is four bytes
 * too long; read field by field it would give a garbage timestamp, so it is
 * refused instead. */
static void test_codec_kafka_python_list_offsets_v5_refused(void **state)
{
    (void)state;
    expect_refused(&kmsg_list_offsets_request_desc, 5,
                   "ffffffff"          /* replica_id */
                   "01"                /* isolation_level */
                   "00000001000174"    /* one topic, "t" */
                   "00000001"          /* one partition */
                   "00000000"          /* partition_index */
                   "0000000000000003"  /* current_leader_epoch 3, as an int64 */
                   "0000018bcfe56800", /* timestamp */
                   -EBADMSG);
}

static void test_codec_unsupported_version_refused(void **state)
{
    (void)state;
    expect_refused(&kmsg_api_versions_request_desc, 5, "", -EPROTONOSUPPORT);
    expect_refused(&kmsg_api_versions_request_desc, -1, "", -EPROTONOSUPPORT);
    expect_refused(&kmsg_fetch_request_desc, 18, "", -EPROTONOSUPPORT);
    struct kmsg_api_versions_request req;
    kmsg_init(&kmsg_api_versions_request_desc, &req);
    struct buf b;
    buf_init(&b, BUF_MAX);
    assert_int_equal(kmsg_encode(&kmsg_api_versions_request_desc, 5, &req, &b), -EPROTONOSUPPORT);
    assert_int_equal(b.len, 0);
    size_t size;
    assert_int_equal(kmsg_encoded_size(&kmsg_api_versions_request_desc, 5, &req, &size),
                     -EPROTONOSUPPORT);
    buf_deinit(&b);
}

static void test_codec_arena_limit(void **state)
{
    (void)state;
    /* Metadata v1 with 100 topics of one-byte names. */
    struct buf b;
    buf_init(&b, BUF_MAX);
    assert_int_equal(buf_put_be32(&b, 100), 0);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(buf_put_be16(&b, 1), 0);
        assert_int_equal(buf_put_u8(&b, 'a'), 0);
    }
    uint8_t *frame = exact_copy(b.data, b.len);
    struct kmsg_metadata_request md;
    struct karena arena;
    arena_open(&arena, 256); /* far less than 100 items */
    const char *why = NULL;
    assert_int_equal(kmsg_decode(&kmsg_metadata_request_desc, 1, frame, b.len, &md, &arena, &why),
                     -ENOBUFS);
    assert_non_null(why);
    assert_int_equal(arena.used, 0);
    assert_int_equal(kmsg_decode(&kmsg_metadata_request_desc, 1, frame, b.len, &md, NULL, &why),
                     -ENOBUFS);
    arena_close(&arena);
    arena_open(&arena, 100 * sizeof(struct kmsg_metadata_request_metadata_request_topic) + 64);
    assert_int_equal(kmsg_decode(&kmsg_metadata_request_desc, 1, frame, b.len, &md, &arena, &why),
                     0);
    assert_int_equal(md.topics.count, 100);
    arena_close(&arena);
    free(frame);
    buf_deinit(&b);

    /* The allocator itself: aligned, bounded. */
    uint8_t mem[64];
    karena_init(&arena, mem + 1, sizeof(mem) - 1);
    uint8_t *p = karena_alloc(&arena, 8);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % _Alignof(max_align_t), 0);
    assert_null(karena_alloc(&arena, sizeof(mem)));
    karena_reset(&arena);
    assert_int_equal(arena.used, 0);
}

/* ================================================================== headers */

static void test_codec_request_header(void **state)
{
    (void)state;
    struct kmsg_request_header hdr;
    size_t consumed;
    /* v1 (Metadata v1), null client id, then a body byte. */
    const char *v1 = "0003000100000007ffff"
                     "aa";
    size_t len;
    uint8_t *p = from_hex(v1, &len);
    assert_int_equal(kmsg_request_header_decode(p, len, &hdr, &consumed, NULL), 0);
    assert_int_equal(consumed, 10);
    assert_int_equal(hdr.request_api_key, KMSG_API_METADATA);
    assert_int_equal(hdr.correlation_id, 7);
    assert_int_equal(hdr.client_id.len, -1);
    free(p);

    /* v2 (Metadata v9): client_id keeps int16 length, then tagged fields,
     * here one unknown tag to skip. */
    p = from_hex("0003000900000008000163"
                 "01050100",
                 &len);
    assert_int_equal(kmsg_request_header_decode(p, len, &hdr, &consumed, NULL), 0);
    assert_int_equal(consumed, len);
    assert_true(kstr_is(hdr.client_id, "c"));
    free(p);

    assert_int_equal(kmsg_request_header_version(KMSG_API_API_VERSIONS, 2), 1);
    assert_int_equal(kmsg_request_header_version(KMSG_API_API_VERSIONS, 3), 2);
    /* Above the range: still flexible, as the client that sent it means. */
    assert_int_equal(kmsg_request_header_version(KMSG_API_API_VERSIONS, 9), 2);
    assert_int_equal(kmsg_request_header_version(KMSG_API_PRODUCE, 8), 1);
    assert_int_equal(kmsg_request_header_version(KMSG_API_PRODUCE, 9), 2);
    /* An unknown API is read as v1: its client id is readable, no tags. */
    assert_int_equal(kmsg_request_header_version(999, 50), 1);
    p = from_hex("03e70032000000090002696400", &len);
    assert_int_equal(kmsg_request_header_decode(p, len, &hdr, &consumed, NULL), 0);
    assert_int_equal(consumed, len - 1);
    assert_true(kstr_is(hdr.client_id, "id"));
    free(p);

    /* Encode: v2 for ApiVersions v3, byte for byte what librdkafka sent. */
    hdr = (struct kmsg_request_header){KMSG_API_API_VERSIONS, 3, 1, kstr_of("rdkafka")};
    struct buf b;
    buf_init(&b, BUF_MAX);
    assert_int_equal(kmsg_request_header_encode(&b, &hdr), 0);
    p = from_hex("0012000300000001000772646b61666b6100", &len);
    assert_int_equal(b.len, len);
    assert_memory_equal(b.data, p, len);
    free(p);
    buf_deinit(&b);

    /* Too short to hold the key and version, or the client id. */
    p = from_hex("000300", &len);
    const char *why = NULL;
    assert_int_equal(kmsg_request_header_decode(p, len, &hdr, &consumed, &why), -EBADMSG);
    assert_non_null(why);
    free(p);
    p = from_hex("00030001000000070005616263", &len);
    assert_int_equal(kmsg_request_header_decode(p, len, &hdr, &consumed, NULL), -EBADMSG);
    free(p);
}

static void test_codec_response_header(void **state)
{
    (void)state;
    /* ApiVersions answers with header v0 whatever the request's version. */
    for (int16_t v = 0; v <= 10; v++) {
        assert_int_equal(kmsg_response_header_version(KMSG_API_API_VERSIONS, v), 0);
    }
    assert_int_equal(kmsg_response_header_version(KMSG_API_METADATA, 8), 0);
    assert_int_equal(kmsg_response_header_version(KMSG_API_METADATA, 9), 1);
    assert_int_equal(kmsg_response_header_version(KMSG_API_FETCH, 12), 1);
    assert_int_equal(kmsg_response_header_version(999, 0), 0);

    struct buf b;
    buf_init(&b, BUF_MAX);
    assert_int_equal(kmsg_response_header_encode(&b, 0x01020304, false), 0);
    assert_int_equal(kmsg_response_header_encode(&b, 5, true), 0);
    static const uint8_t want[] = {1, 2, 3, 4, 0, 0, 0, 5, 0};
    assert_int_equal(b.len, sizeof(want));
    assert_memory_equal(b.data, want, sizeof(want));

    uint8_t *p = exact_copy(want, sizeof(want));
    int32_t corr;
    size_t consumed;
    assert_int_equal(kmsg_response_header_decode(p, sizeof(want), false, &corr, &consumed, NULL),
                     0);
    assert_int_equal(corr, 0x01020304);
    assert_int_equal(consumed, 4);
    assert_int_equal(kmsg_response_header_decode(p + 4, 5, true, &corr, &consumed, NULL), 0);
    assert_int_equal(corr, 5);
    assert_int_equal(consumed, 5);
    assert_int_equal(kmsg_response_header_decode(p + 4, 4, true, &corr, &consumed, NULL), -EBADMSG);
    free(p);
    buf_deinit(&b);
}

/* ========================================================== encoding errors */

static void test_codec_encode_refuses_invalid(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, BUF_MAX);
    assert_int_equal(buf_put_u8(&b, 0x55), 0); /* earlier content must survive */
    struct kmsg_produce_request_partition_produce_data part = {0, {NULL, -1}};
    struct kmsg_produce_request_topic_produce_data topic = {{NULL, -1}, {&part, 1}};
    struct kmsg_produce_request req;
    kmsg_init(&kmsg_produce_request_desc, &req);
    req.topic_data = (struct karray){&topic, 1};
    /* A null topic name: names are never nullable. */
    assert_int_equal(kmsg_encode(&kmsg_produce_request_desc, 3, &req, &b), -EINVAL);
    assert_int_equal(b.len, 1);
    topic.name = kstr_of("t");
    assert_int_equal(kmsg_encode(&kmsg_produce_request_desc, 3, &req, &b), 0);
    b.len = 1;
    /* A null array that is never nullable, a negative count, missing items. */
    req.topic_data = (struct karray){NULL, -1};
    assert_int_equal(kmsg_encode(&kmsg_produce_request_desc, 9, &req, &b), -EINVAL);
    req.topic_data = (struct karray){&topic, -2};
    assert_int_equal(kmsg_encode(&kmsg_produce_request_desc, 9, &req, &b), -EINVAL);
    req.topic_data = (struct karray){NULL, 1};
    assert_int_equal(kmsg_encode(&kmsg_produce_request_desc, 9, &req, &b), -EINVAL);
    /* A string longer than Kafka allows. */
    char *big = malloc(40000);
    assert_non_null(big);
    memset(big, 'x', 40000);
    req.topic_data = (struct karray){&topic, 1};
    topic.name = (struct kstr){big, 40000};
    assert_int_equal(kmsg_encode(&kmsg_produce_request_desc, 9, &req, &b), -EINVAL);
    topic.name = (struct kstr){big, 32767};
    assert_int_equal(kmsg_encode(&kmsg_produce_request_desc, 9, &req, &b), 0);
    free(big);
    assert_int_equal(b.data[0], 0x55);
    buf_deinit(&b);
}

static void test_codec_encode_buffer_full(void **state)
{
    (void)state;
    struct kmsg_api_versions_response_api_version keys[4] = {{0}};
    struct kmsg_api_versions_response resp;
    kmsg_init(&kmsg_api_versions_response_desc, &resp);
    resp.api_keys = (struct karray){keys, 4};
    struct buf b;
    buf_init(&b, 16);
    assert_int_equal(buf_put_u8(&b, 1), 0);
    assert_int_equal(kmsg_encode(&kmsg_api_versions_response_desc, 3, &resp, &b), -ENOBUFS);
    assert_int_equal(b.len, 1);
    resp.api_keys.count = 1;
    assert_int_equal(kmsg_encode(&kmsg_api_versions_response_desc, 3, &resp, &b), 0);
    assert_int_equal(b.len, 1 + 2 + 1 + 7 + 4 + 1);
    buf_deinit(&b);
}

/* ========================================================= mutation fuzzing */

/* Applies one random mutation to wire[0 .. *len), which has room for cap. */
static void mutate(uint64_t *rng, uint8_t *wire, size_t *len, size_t cap)
{
    uint64_t r = tu_rand(rng);
    size_t at = *len > 0 ? (size_t)(tu_rand(rng) % *len) : 0;
    switch (r % 7) {
    case 0: /* flip a bit */
        if (*len > 0) {
            wire[at] ^= (uint8_t)(1u << (tu_rand(rng) % 8));
        }
        break;
    case 1: /* a random byte */
        if (*len > 0) {
            wire[at] = (uint8_t)tu_rand(rng);
        }
        break;
    case 2: /* an extreme byte: lengths -1, 0x7f.., continuation bits */
        if (*len > 0) {
            static const uint8_t extremes[] = {0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff};
            wire[at] = extremes[tu_rand(rng) % sizeof(extremes)];
        }
        break;
    case 3: /* delete a byte */
        if (*len > 0) {
            memmove(wire + at, wire + at + 1, *len - at - 1);
            (*len)--;
        }
        break;
    case 4: /* insert a byte */
        if (*len < cap) {
            memmove(wire + at + 1, wire + at, *len - at);
            wire[at] = (uint8_t)tu_rand(rng);
            (*len)++;
        }
        break;
    case 5: /* truncate */
        *len = at;
        break;
    default: /* overwrite four bytes with a large big-endian count */
        if (*len >= 4 && at <= *len - 4) {
            wire[at] = 0x7f;
            wire[at + 1] = (uint8_t)tu_rand(rng);
            wire[at + 2] = 0xff;
            wire[at + 3] = 0xff;
        }
        break;
    }
}

/* Decoding mutated bytes must not crash; what decodes must encode, and decode
 * again to the same message. */
static void fuzz_one(const struct kmsg_desc *desc, int16_t version, const uint8_t *wire, size_t len,
                     struct karena *arena, void *out, void *again)
{
    karena_reset(arena);
    uint8_t *copy;
    int rc = decode_exact(desc, version, wire, len, out, arena, NULL, &copy);
    if (rc != 0) {
        /* Refused cleanly, as malformed or as too big for the arena. */
        assert_true(rc == -EBADMSG || rc == -ENOBUFS);
        free(copy);
        return;
    }
    struct buf b;
    buf_init(&b, BUF_MAX);
    assert_int_equal(kmsg_encode(desc, version, out, &b), 0);
    uint8_t *copy_again;
    assert_int_equal(decode_exact(desc, version, b.data, b.len, again, arena, NULL, &copy_again),
                     0);
    assert_struct_equal(desc, version, out, again);
    free(copy_again);
    buf_deinit(&b);
    free(copy);
}

static void test_codec_mutation_fuzz(void **state)
{
    (void)state;
    uint64_t rng = tu_seed("test_codec_mutation_fuzz");
    struct karena arena;
    arena_open(&arena, ARENA_BYTES);
    struct karena fill_arena;
    arena_open(&fill_arena, ARENA_BYTES);
    struct filler fl = {tu_rand(&rng), &fill_arena};
    size_t decoded = 0;
    for (int round = 0; round < FUZZ_ROUNDS; round++) {
        /* A body to start from: a captured request or a random message. */
        const struct kmsg_desc *desc;
        int16_t version;
        uint8_t *base;
        size_t len;
        if (tu_rand(&rng) % 3 == 0) {
            const struct client_vector *cv =
                &client_vectors[tu_rand(&rng) % SL_ARRAY_LEN(client_vectors)];
            uint8_t *frame = from_hex(cv->hex, &len);
            struct kmsg_request_header hdr;
            size_t hdr_len;
            assert_int_equal(kmsg_request_header_decode(frame, len, &hdr, &hdr_len, NULL), 0);
            desc = kmsg_api_find(cv->api_key)->request;
            version = cv->api_version;
            len -= hdr_len;
            base = exact_copy(frame + hdr_len, len);
            free(frame);
        } else {
            const struct kmsg_api *api = &kmsg_apis[tu_rand(&rng) % KMSG_API_COUNT];
            desc = tu_rand(&rng) % 2 ? api->request : api->response;
            version = (int16_t)(api->min_version +
                                (int16_t)(tu_rand(&rng) %
                                          (uint64_t)(api->max_version - api->min_version + 1)));
            void *msg = malloc(desc->size);
            assert_non_null(msg);
            karena_reset(&fill_arena);
            fill_struct(&fl, desc, version, msg, 0);
            base = encode_exact(desc, version, msg, &len);
            free(msg);
        }
        size_t cap = len + 8;
        uint8_t *wire = malloc(cap);
        assert_non_null(wire);
        memcpy(wire, base, len);
        int mutations = 1 + (int)(tu_rand(&rng) % 4);
        for (int m = 0; m < mutations; m++) {
            mutate(&rng, wire, &len, cap);
        }
        void *out = malloc(desc->size);
        void *again = malloc(desc->size);
        assert_non_null(out);
        assert_non_null(again);
        fuzz_one(desc, version, wire, len, &arena, out, again);
        if (decode_exact(desc, version, wire, len, out, &arena, NULL, NULL) == 0) {
            decoded++;
        }
        free(again);
        free(out);
        free(wire);
        free(base);
    }
    /* Some mutations (a changed value) leave a valid message: both paths ran. */
    assert_true(decoded > 0);
    assert_true(decoded < FUZZ_ROUNDS);
    arena_close(&fill_arena);
    arena_close(&arena);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec_api_table),
        cmocka_unit_test(test_codec_descriptors_consistent),
        cmocka_unit_test(test_codec_round_trip_every_version),
        cmocka_unit_test(test_codec_round_trip_defaults),
        cmocka_unit_test(test_codec_api_versions_response_bytes),
        cmocka_unit_test(test_codec_default_tagged_fields_not_written),
        cmocka_unit_test(test_codec_metadata_v12_request_bytes),
        cmocka_unit_test(test_codec_produce_v9_request_bytes),
        cmocka_unit_test(test_codec_fetch_v12_tagged_struct_bytes),
        cmocka_unit_test(test_codec_unknown_tags_skipped),
        cmocka_unit_test(test_codec_absent_fields_skipped_and_defaulted),
        cmocka_unit_test(test_codec_real_client_requests),
        cmocka_unit_test(test_codec_librdkafka_api_versions_v3),
        cmocka_unit_test(test_codec_client_request_fields),
        cmocka_unit_test(test_codec_truncated_at_every_length),
        cmocka_unit_test(test_codec_huge_array_count_refused),
        cmocka_unit_test(test_codec_negative_length_refused),
        cmocka_unit_test(test_codec_length_beyond_end_refused),
        cmocka_unit_test(test_codec_null_where_not_nullable_refused),
        cmocka_unit_test(test_codec_trailing_bytes_refused),
        cmocka_unit_test(test_codec_kafka_python_list_offsets_v5_refused),
        cmocka_unit_test(test_codec_unsupported_version_refused),
        cmocka_unit_test(test_codec_arena_limit),
        cmocka_unit_test(test_codec_request_header),
        cmocka_unit_test(test_codec_response_header),
        cmocka_unit_test(test_codec_encode_refuses_invalid),
        cmocka_unit_test(test_codec_encode_buffer_full),
        cmocka_unit_test(test_codec_mutation_fuzz),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
