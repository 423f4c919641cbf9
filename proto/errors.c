/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Lookups over Kafka's error table (proto/errors.h): code -> name, code ->
 * retriable, and local errno -> the Kafka code a response carries.
 *
 * The table is an array indexed by code - KAFKA_ERR_CODE_MIN, filled from the
 * X-macro list by designated initializers, so a gap in the codes would leave a
 * NULL name, which the lookups treat as "not in the table".
 */
#include "proto/errors.h"

#include <errno.h>
#include <stddef.h>

#include "common/assert.h"

struct kafka_error_info {
    const char *name;
    bool retriable;
};

#define KAFKA_ERROR_INFO(code, ename, eretriable)                                                  \
    [(code)-KAFKA_ERR_CODE_MIN] = {.name = #ename, .retriable = (eretriable)},

static const struct kafka_error_info kafka_error_table[] = {KAFKA_ERRORS(KAFKA_ERROR_INFO)};

#undef KAFKA_ERROR_INFO

/* The bounds in the header must match the list; a new code at the end of the
 * list that is not reflected in KAFKA_ERR_CODE_MAX fails here. */
_Static_assert(sizeof(kafka_error_table) / sizeof(kafka_error_table[0]) ==
                   KAFKA_ERR_CODE_MAX - KAFKA_ERR_CODE_MIN + 1,
               "KAFKA_ERR_CODE_MIN/MAX do not match the KAFKA_ERRORS list");
_Static_assert(KAFKA_ERR_UNKNOWN_SERVER_ERROR == KAFKA_ERR_CODE_MIN, "table starts at -1");
_Static_assert(KAFKA_ERR_NONE == 0, "NONE is zero on the wire");

static const struct kafka_error_info *kafka_error_lookup(int code)
{
    if (code < KAFKA_ERR_CODE_MIN || code > KAFKA_ERR_CODE_MAX) {
        return NULL;
    }
    const struct kafka_error_info *info = &kafka_error_table[code - KAFKA_ERR_CODE_MIN];
    return info->name != NULL ? info : NULL;
}

const char *kafka_error_name(int code)
{
    const struct kafka_error_info *info = kafka_error_lookup(code);
    return info != NULL ? info->name : "UNKNOWN_ERROR_CODE";
}

bool kafka_error_retriable(int code)
{
    const struct kafka_error_info *info = kafka_error_lookup(code);
    return info != NULL && info->retriable;
}

/*
 * Why -ENOBUFS (and -ENOMEM) become KAFKA_STORAGE_ERROR: both mean that a
 * bounded buffer of ours (produce memory, the ring, the batch cache) is full
 * right now, a transient shortage on the broker. The client should back off
 * and retry the same request, so the code must be retriable, known to every
 * client that sends v2 batches (Produce v3+, Kafka 0.11+), and must not blame
 * the request. The candidates:
 *   - REQUEST_TIMED_OUT: retriable, but says the request waited too long,
 *     which sends an operator looking for slow replication;
 *   - NOT_LEADER_OR_FOLLOWER, NOT_ENOUGH_REPLICAS: retriable, but false;
 *   - THROTTLING_QUOTA_EXCEEDED: the closest meaning, but Kafka sends it only
 *     for topic creation and deletion, so older clients do not expect it on a
 *     produce and may treat it as fatal;
 *   - KAFKA_STORAGE_ERROR: retriable, understood on produce and fetch by every
 *     client (they refresh metadata and retry), and it names the layer that
 *     refused. The broker's log line says which buffer was full.
 * Handlers that can apply back-pressure instead (stop reading the socket)
 * should; this mapping is for the answers that cannot wait.
 */
int kafka_error_from_errno(int neg_errno)
{
    /* Callers pass what a function returned: 0 or a negative errno. */
    SL_ASSERT(neg_errno <= 0);
    switch (neg_errno) {
    case 0:
        return KAFKA_ERR_NONE;
    case -EBADMSG:
        return KAFKA_ERR_CORRUPT_MESSAGE;
    case -EMSGSIZE:
        return KAFKA_ERR_MESSAGE_TOO_LARGE;
    case -EIO:
    case -ENOSPC:
    case -EDQUOT:
    case -EROFS:
        return KAFKA_ERR_KAFKA_STORAGE_ERROR;
    case -ENOBUFS:
    case -ENOMEM:
        return KAFKA_ERR_KAFKA_STORAGE_ERROR;
    default:
        return KAFKA_ERR_UNKNOWN_SERVER_ERROR;
    }
}
