/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sl_err: names and descriptions. The Kafka half of the enum in sluice.h
 * repeats proto/errors.h's table by hand (the public header may include
 * nothing of ours); the static assertions below check every name and number
 * against that table at compile time, so the two cannot drift apart.
 */
#include "proto/errors.h"
#include "client/internal.h"

#define CHECK_SAME(code, name, retriable)                                                          \
    _Static_assert((int)SL_ERR_##name == (int)KAFKA_ERR_##name && (code) == KAFKA_ERR_##name,      \
                   "sluice.h's SL_ERR_" #name " differs from proto/errors.h");
KAFKA_ERRORS(CHECK_SAME)
#undef CHECK_SAME

/* X(ENUM_SUFFIX, description) for the local errors. */
#define LOCAL_ERRORS(X)                                                                            \
    X(QUEUE_FULL, "local: queue full (queue.buffering.max.messages or .kbytes)")                   \
    X(MSG_TIMED_OUT, "local: message timed out (delivery.timeout.ms)")                             \
    X(MSG_SIZE_TOO_LARGE, "local: message larger than message.max.bytes")                          \
    X(UNKNOWN_PARTITION, "local: no such partition")                                               \
    X(INVALID_ARG, "local: invalid argument")                                                      \
    X(TRANSPORT, "local: broker transport failure")                                                \
    X(RESOLVE, "local: host name resolution failed")                                               \
    X(ALL_BROKERS_DOWN, "local: all brokers are down")                                             \
    X(TIMED_OUT, "local: timed out")                                                               \
    X(CLOSED_UNSENT, "local: client closed before the message was sent")                           \
    X(CLOSED_INFLIGHT, "local: client closed while the message was in flight (outcome unknown)")   \
    X(FATAL, "local: fatal producer error")                                                        \
    X(UNSUPPORTED_FEATURE, "local: the broker does not support a needed API version")              \
    X(BAD_RESPONSE, "local: malformed response from broker")                                       \
    X(NOMEM, "local: out of memory")                                                               \
    X(CONF_UNKNOWN, "local: unknown configuration key")                                            \
    X(CONF_INVALID, "local: invalid configuration value")                                          \
    X(STATE, "local: call not allowed in this state")                                              \
    X(COMPRESSION, "local: compression failed")                                                    \
    X(PARTITION_EOF, "local: reached the end of the partition (high watermark)")                   \
    X(BAD_MSG, "local: a fetched batch could not be read")

const char *sl_err_name(sl_err err)
{
    switch (err) {
#define LOCAL_NAME(name, desc)                                                                     \
    case SL_ERR_##name:                                                                            \
        return #name;
        LOCAL_ERRORS(LOCAL_NAME)
#undef LOCAL_NAME
    default:
        return kafka_error_name((int)err);
    }
}

const char *sl_err_str(sl_err err)
{
    if (err == SL_OK) {
        return "no error";
    }
    switch (err) {
#define LOCAL_DESC(name, desc)                                                                     \
    case SL_ERR_##name:                                                                            \
        return desc;
        LOCAL_ERRORS(LOCAL_DESC)
#undef LOCAL_DESC
#define KAFKA_DESC(code, name, retriable)                                                          \
    case SL_ERR_##name:                                                                            \
        return "broker: " #name;
        KAFKA_ERRORS(KAFKA_DESC)
#undef KAFKA_DESC
    }
    return "unknown error code";
}

const char *sl_version_str(void)
{
    return SL_VERSION_STR;
}
