#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Protocol details against a real sluiced: DescribeConfigs (confluent_kafka,
# kafka-python and raw frames), OffsetForLeaderEpoch, Fetch v12-17 by topic id,
# ListOffsets leader epochs, Produce timestamp rewriting and no auto-create.
# The checks are in protocol.py; this starts and stops the broker.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/broker.sh

broker_start --set node.id=1
trap 'kill -9 $BROKER_PID 2>/dev/null || true; rm -rf "$BROKER_DIR"' EXIT
BROKER=$BROKER BROKER_DATA=$BROKER_DIR/data timeout 60 /usr/bin/python3 \
    tests/integration/protocol.py || fail "protocol.py"
if grep -E 'assertion failed|AddressSanitizer|LeakSanitizer|runtime error' "$BROKER_LOG" >&2; then
    fail "assertion or sanitizer report in the broker log"
fi
broker_stop TERM || fail "sluiced did not exit 0 on SIGTERM"
if grep -E 'AddressSanitizer|LeakSanitizer|SUMMARY:' "$BROKER_LOG" >&2; then
    fail "sanitizer report at exit"
fi
echo "protocol: ok"
