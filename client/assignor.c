/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The consumer protocol's byte formats and the two assignors a group leader
 * runs: pure functions, no I/O, so tests drive them directly.
 *
 * Formats (Kafka's "consumer" protocol type, big-endian, version 0; later
 * versions only append fields, so a reader takes what it knows and ignores
 * the rest):
 *
 *   Subscription (JoinGroup protocol metadata)
 *     i16 version
 *     i32 topic count, then per topic: i16 length + name bytes
 *     i32 user data length (-1: null) + bytes
 *
 *   Assignment (SyncGroup)
 *     i16 version
 *     i32 topic count, then per topic: i16 length + name bytes,
 *         i32 partition count + that many i32 partitions
 *     i32 user data length (-1: null) + bytes
 *
 * Assignors (the Java client's, so that a group mixing clients agrees):
 *   range       per topic, the members subscribed to it sorted by member
 *               id; P partitions over M members: each gets P / M
 *               consecutive partitions, the first P % M one more.
 *   roundrobin  every (topic, partition) of every subscribed topic, sorted
 *               by topic then partition, dealt to the members sorted by id
 *               in turn, skipping members not subscribed to its topic.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client/internal.h"
#include "common/assert.h"
#include "common/bytes.h"

/* ================================================================ encoding */

static int put_name(struct buf *out, const char *name)
{
    size_t len = strlen(name);
    if (len > INT16_MAX) {
        return -EINVAL;
    }
    int rc = buf_put_be16(out, (uint16_t)len);
    return rc != 0 ? rc : buf_put(out, name, len);
}

int slc_subscription_encode(struct buf *out, const char *const *topics, size_t count)
{
    int rc = buf_put_be16(out, 0);
    rc = rc != 0 ? rc : buf_put_be32(out, (uint32_t)count);
    for (size_t i = 0; rc == 0 && i < count; i++) {
        rc = put_name(out, topics[i]);
    }
    return rc != 0 ? rc : buf_put_be32(out, UINT32_MAX); /* user data: null */
}

int slc_assignment_encode(struct buf *out, const struct slc_assign_member *m,
                          const struct slc_assign_topic *topics)
{
    /* m->parts is sorted by topic index then partition: one run per topic. */
    uint32_t runs = 0;
    for (uint32_t i = 0; i < m->count; i++) {
        runs += i == 0 || m->parts[i].topic != m->parts[i - 1].topic;
    }
    int rc = buf_put_be16(out, 0);
    rc = rc != 0 ? rc : buf_put_be32(out, runs);
    for (uint32_t i = 0; rc == 0 && i < m->count;) {
        uint32_t end = i;
        while (end < m->count && m->parts[end].topic == m->parts[i].topic) {
            end++;
        }
        rc = put_name(out, topics[m->parts[i].topic].name);
        rc = rc != 0 ? rc : buf_put_be32(out, end - i);
        for (uint32_t k = i; rc == 0 && k < end; k++) {
            rc = buf_put_be32(out, (uint32_t)m->parts[k].partition);
        }
        i = end;
    }
    return rc != 0 ? rc : buf_put_be32(out, UINT32_MAX);
}

/* ================================================================ decoding */

/* A topic name of the wire, checked. */
static int take_name(struct reader *r, const char **name, size_t *len)
{
    int16_t n = reader_i16(r);
    if (r->bad || n <= 0) {
        return -EBADMSG;
    }
    const uint8_t *p = reader_take(r, (size_t)n);
    if (p == NULL || !slc_topic_name_valid((const char *)p, (size_t)n)) {
        return -EBADMSG;
    }
    *name = (const char *)p;
    *len = (size_t)n;
    return 0;
}

int slc_subscription_decode(const uint8_t *p, size_t len, slc_name_fn *fn, void *arg)
{
    struct reader r = {p, len, false};
    int16_t version = reader_i16(&r);
    int32_t count = reader_i32(&r);
    if (r.bad || version < 0 || count < 0 || (size_t)count > len / 3) {
        return -EBADMSG;
    }
    for (int32_t i = 0; i < count; i++) {
        const char *name;
        size_t name_len;
        int rc = take_name(&r, &name, &name_len);
        rc = rc != 0 ? rc : fn(arg, name, name_len, -1);
        if (rc != 0) {
            return rc;
        }
    }
    return 0; /* user data and later versions' fields: not ours */
}

int slc_assignment_decode(const uint8_t *p, size_t len, slc_name_fn *fn, void *arg)
{
    if (len == 0) {
        return 0; /* an empty assignment: nothing for this member */
    }
    struct reader r = {p, len, false};
    int16_t version = reader_i16(&r);
    int32_t count = reader_i32(&r);
    if (r.bad || version < 0 || count < 0 || (size_t)count > len / 7) {
        return -EBADMSG;
    }
    for (int32_t i = 0; i < count; i++) {
        const char *name;
        size_t name_len;
        int rc = take_name(&r, &name, &name_len);
        int32_t parts = reader_i32(&r);
        if (rc != 0 || r.bad || parts < 0 || (size_t)parts > r.left / 4) {
            return -EBADMSG;
        }
        for (int32_t k = 0; k < parts; k++) {
            int32_t partition = reader_i32(&r);
            if (r.bad || partition < 0) {
                return -EBADMSG;
            }
            rc = fn(arg, name, name_len, partition);
            if (rc != 0) {
                return rc;
            }
        }
    }
    return 0;
}

/* ================================================================ assignors */

static int add_part(struct slc_assign_member *m, uint32_t topic, int32_t partition)
{
    if (m->count == m->cap) {
        uint32_t cap = m->cap > 0 ? m->cap * 2 : 16;
        struct slc_assign_tp *parts = realloc(m->parts, cap * sizeof(*parts));
        if (parts == NULL) {
            return -ENOMEM;
        }
        m->parts = parts;
        m->cap = cap;
    }
    m->parts[m->count++] = (struct slc_assign_tp){topic, partition};
    return 0;
}

static bool subscribed(const struct slc_assign_member *m, uint32_t topic)
{
    for (uint32_t i = 0; i < m->topic_count; i++) {
        if (m->topics[i] == topic) {
            return true;
        }
    }
    return false;
}

static int by_member_id(const void *x, const void *y)
{
    const struct slc_assign_member *a = x;
    const struct slc_assign_member *b = y;
    int rc = strcmp(a->id, b->id);
    return rc;
}

static int by_topic_partition(const void *x, const void *y)
{
    const struct slc_assign_tp *a = x;
    const struct slc_assign_tp *b = y;
    if (a->topic != b->topic) {
        return a->topic < b->topic ? -1 : 1;
    }
    return a->partition < b->partition ? -1 : a->partition > b->partition;
}

static int assign_range(struct slc_assign_member *members, uint32_t n,
                        const struct slc_assign_topic *topics, uint32_t topic_count)
{
    struct slc_assign_member **subs = malloc((n > 0 ? n : 1) * sizeof(*subs));
    if (subs == NULL) {
        return -ENOMEM;
    }
    int rc = 0;
    for (uint32_t t = 0; rc == 0 && t < topic_count; t++) {
        uint32_t m = 0;
        for (uint32_t i = 0; i < n; i++) {
            if (subscribed(&members[i], t)) {
                subs[m++] = &members[i];
            }
        }
        int32_t parts = SL_MAX(topics[t].partitions, 0);
        if (m == 0 || parts == 0) {
            continue;
        }
        int32_t each = parts / (int32_t)m;
        int32_t extra = parts % (int32_t)m;
        int32_t next = 0;
        for (uint32_t i = 0; rc == 0 && i < m; i++) {
            int32_t take = each + ((int32_t)i < extra ? 1 : 0);
            for (int32_t k = 0; rc == 0 && k < take; k++) {
                rc = add_part(subs[i], t, next++);
            }
        }
        SL_ASSERT(rc != 0 || next == parts); /* every partition dealt exactly once */
    }
    free(subs);
    return rc;
}

static int assign_roundrobin(struct slc_assign_member *members, uint32_t n,
                             const struct slc_assign_topic *topics, uint32_t topic_count)
{
    uint32_t turn = 0;
    for (uint32_t t = 0; t < topic_count; t++) {
        for (int32_t p = 0; p < topics[t].partitions; p++) {
            /* The next member in turn subscribed to t; one exists when any does. */
            uint32_t k = 0;
            while (k < n && !subscribed(&members[(turn + k) % n], t)) {
                k++;
            }
            if (k == n) {
                break; /* nobody wants this topic */
            }
            int rc = add_part(&members[(turn + k) % n], t, p);
            if (rc != 0) {
                return rc;
            }
            turn = (turn + k + 1) % n;
        }
    }
    return 0;
}

int slc_assign(const char *protocol, struct slc_assign_member *members, uint32_t n,
               const struct slc_assign_topic *topics, uint32_t topic_count)
{
    qsort(members, n, sizeof(*members), by_member_id);
    for (uint32_t i = 0; i < n; i++) {
        members[i].count = 0;
    }
    int rc;
    if (strcmp(protocol, "range") == 0) {
        rc = assign_range(members, n, topics, topic_count);
    } else if (strcmp(protocol, "roundrobin") == 0) {
        rc = assign_roundrobin(members, n, topics, topic_count);
    } else {
        return -ENOTSUP;
    }
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        if (members[i].count > 1) { /* parts is NULL for a member given nothing */
            qsort(members[i].parts, members[i].count, sizeof(*members[i].parts),
                  by_topic_partition);
        }
    }
    return rc;
}

int slc_assignors_parse(const char *list, char names[][SLC_ASSIGNOR_NAME_BYTES], size_t max,
                        size_t *count)
{
    *count = 0;
    const char *p = list;
    while (*p != '\0') {
        while (*p == ' ' || *p == ',') {
            p++;
        }
        size_t len = strcspn(p, ", ");
        if (len == 0) {
            break;
        }
        const char *name = NULL;
        /* Java's class names mean the same assignors. */
        if ((len == 5 && memcmp(p, "range", 5) == 0) ||
            (len == 47 && memcmp(p, "org.apache.kafka.clients.consumer.RangeAssignor", 47) == 0)) {
            name = "range";
        } else if ((len == 10 && memcmp(p, "roundrobin", 10) == 0) ||
                   (len == 52 &&
                    memcmp(p, "org.apache.kafka.clients.consumer.RoundRobinAssignor", 52) == 0)) {
            name = "roundrobin";
        }
        if (name == NULL || *count >= max) {
            return -EINVAL;
        }
        for (size_t i = 0; i < *count; i++) {
            if (strcmp(names[i], name) == 0) {
                return -EINVAL;
            }
        }
        strcpy(names[(*count)++], name);
        p += len;
    }
    return *count > 0 ? 0 : -EINVAL;
}
