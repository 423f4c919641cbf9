/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of proto/errors: codes and names as Kafka numbers them, retriable
 * flags as Kafka sets them, and the errno mapping used by the handlers.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/errors.h"

static void test_errors_codes_match_kafka(void **state)
{
    (void)state;
    assert_int_equal(KAFKA_ERR_UNKNOWN_SERVER_ERROR, -1);
    assert_int_equal(KAFKA_ERR_NONE, 0);
    assert_int_equal(KAFKA_ERR_OFFSET_OUT_OF_RANGE, 1);
    assert_int_equal(KAFKA_ERR_CORRUPT_MESSAGE, 2);
    assert_int_equal(KAFKA_ERR_NOT_LEADER_OR_FOLLOWER, 6);
    assert_int_equal(KAFKA_ERR_MESSAGE_TOO_LARGE, 10);
    assert_int_equal(KAFKA_ERR_NOT_ENOUGH_REPLICAS, 19);
    assert_int_equal(KAFKA_ERR_UNSUPPORTED_VERSION, 35);
    assert_int_equal(KAFKA_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, 45);
    assert_int_equal(KAFKA_ERR_KAFKA_STORAGE_ERROR, 56);
    assert_int_equal(KAFKA_ERR_UNKNOWN_PRODUCER_ID, 59);
    assert_int_equal(KAFKA_ERR_FENCED_LEADER_EPOCH, 74);
    assert_int_equal(KAFKA_ERR_INVALID_RECORD, 87);
    assert_int_equal(KAFKA_ERR_PRODUCER_FENCED, 90);
    assert_int_equal(KAFKA_ERR_UNKNOWN_TOPIC_ID, 100);
    assert_int_equal(KAFKA_ERR_INVALID_REGISTRATION, 119);
    assert_int_equal(KAFKA_ERR_INVALID_REGULAR_EXPRESSION, 128);
}

static void test_errors_names(void **state)
{
    (void)state;
    assert_string_equal(kafka_error_name(-1), "UNKNOWN_SERVER_ERROR");
    assert_string_equal(kafka_error_name(0), "NONE");
    assert_string_equal(kafka_error_name(2), "CORRUPT_MESSAGE");
    assert_string_equal(kafka_error_name(35), "UNSUPPORTED_VERSION");
    assert_string_equal(kafka_error_name(56), "KAFKA_STORAGE_ERROR");
    assert_string_equal(kafka_error_name(99), "POSITION_OUT_OF_RANGE");
    assert_string_equal(kafka_error_name(119), "INVALID_REGISTRATION");
    assert_string_equal(kafka_error_name(-2), "UNKNOWN_ERROR_CODE");
    assert_string_equal(kafka_error_name(KAFKA_ERR_CODE_MAX + 1), "UNKNOWN_ERROR_CODE");
    assert_string_equal(kafka_error_name(32767), "UNKNOWN_ERROR_CODE");
    /* Every code of the table has a name, and names are distinct. */
    for (int c = KAFKA_ERR_CODE_MIN; c <= KAFKA_ERR_CODE_MAX; c++) {
        assert_string_not_equal(kafka_error_name(c), "UNKNOWN_ERROR_CODE");
        for (int d = c + 1; d <= KAFKA_ERR_CODE_MAX; d++) {
            assert_string_not_equal(kafka_error_name(c), kafka_error_name(d));
        }
    }
}

static void test_errors_retriable_flags(void **state)
{
    (void)state;
    /* Retriable in Kafka. */
    assert_true(kafka_error_retriable(KAFKA_ERR_CORRUPT_MESSAGE));
    assert_true(kafka_error_retriable(KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION));
    assert_true(kafka_error_retriable(KAFKA_ERR_LEADER_NOT_AVAILABLE));
    assert_true(kafka_error_retriable(KAFKA_ERR_NOT_LEADER_OR_FOLLOWER));
    assert_true(kafka_error_retriable(KAFKA_ERR_REQUEST_TIMED_OUT));
    assert_true(kafka_error_retriable(KAFKA_ERR_NOT_ENOUGH_REPLICAS));
    assert_true(kafka_error_retriable(KAFKA_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND));
    assert_true(kafka_error_retriable(KAFKA_ERR_NOT_COORDINATOR));
    assert_true(kafka_error_retriable(KAFKA_ERR_KAFKA_STORAGE_ERROR));
    assert_true(kafka_error_retriable(KAFKA_ERR_FENCED_LEADER_EPOCH));
    assert_true(kafka_error_retriable(KAFKA_ERR_THROTTLING_QUOTA_EXCEEDED));
    /* Not retriable in Kafka. */
    assert_false(kafka_error_retriable(KAFKA_ERR_UNKNOWN_SERVER_ERROR));
    assert_false(kafka_error_retriable(KAFKA_ERR_NONE));
    assert_false(kafka_error_retriable(KAFKA_ERR_OFFSET_OUT_OF_RANGE));
    assert_false(kafka_error_retriable(KAFKA_ERR_BROKER_NOT_AVAILABLE));
    assert_false(kafka_error_retriable(KAFKA_ERR_MESSAGE_TOO_LARGE));
    assert_false(kafka_error_retriable(KAFKA_ERR_UNSUPPORTED_VERSION));
    assert_false(kafka_error_retriable(KAFKA_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER));
    assert_false(kafka_error_retriable(KAFKA_ERR_REBALANCE_IN_PROGRESS));
    assert_false(kafka_error_retriable(KAFKA_ERR_INVALID_RECORD));
    assert_false(kafka_error_retriable(KAFKA_ERR_PRODUCER_FENCED));
    /* Unknown codes: as Kafka's clients see them, UNKNOWN_SERVER_ERROR. */
    assert_false(kafka_error_retriable(-2));
    assert_false(kafka_error_retriable(KAFKA_ERR_CODE_MAX + 1));
}

static void test_errors_from_errno(void **state)
{
    (void)state;
    assert_int_equal(kafka_error_from_errno(0), KAFKA_ERR_NONE);
    assert_int_equal(kafka_error_from_errno(-EBADMSG), KAFKA_ERR_CORRUPT_MESSAGE);
    assert_int_equal(kafka_error_from_errno(-EMSGSIZE), KAFKA_ERR_MESSAGE_TOO_LARGE);
    assert_int_equal(kafka_error_from_errno(-EIO), KAFKA_ERR_KAFKA_STORAGE_ERROR);
    assert_int_equal(kafka_error_from_errno(-ENOSPC), KAFKA_ERR_KAFKA_STORAGE_ERROR);
    assert_int_equal(kafka_error_from_errno(-EDQUOT), KAFKA_ERR_KAFKA_STORAGE_ERROR);
    assert_int_equal(kafka_error_from_errno(-EROFS), KAFKA_ERR_KAFKA_STORAGE_ERROR);
    assert_int_equal(kafka_error_from_errno(-ENOBUFS), KAFKA_ERR_KAFKA_STORAGE_ERROR);
    assert_int_equal(kafka_error_from_errno(-ENOMEM), KAFKA_ERR_KAFKA_STORAGE_ERROR);
    assert_int_equal(kafka_error_from_errno(-EINVAL), KAFKA_ERR_UNKNOWN_SERVER_ERROR);
    assert_int_equal(kafka_error_from_errno(-EPERM), KAFKA_ERR_UNKNOWN_SERVER_ERROR);
    /* What a full disk or a full buffer answers must let the client retry. */
    assert_true(kafka_error_retriable(kafka_error_from_errno(-ENOSPC)));
    assert_true(kafka_error_retriable(kafka_error_from_errno(-ENOBUFS)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors_codes_match_kafka),
        cmocka_unit_test(test_errors_names),
        cmocka_unit_test(test_errors_retriable_flags),
        cmocka_unit_test(test_errors_from_errno),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
