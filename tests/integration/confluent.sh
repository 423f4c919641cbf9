#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# confluent_kafka (Debian's python3-confluent-kafka, on librdkafka) against a
# real sluiced: the checks are in confluent.py; this starts and stops the
# broker and hands it the address and the data directory.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/broker.sh

broker_start
trap 'kill -9 $BROKER_PID 2>/dev/null || true; rm -rf "$BROKER_DIR"' EXIT
BROKER=$BROKER BROKER_DATA=$BROKER_DIR/data /usr/bin/python3 tests/integration/confluent.py ||
    fail "confluent.py"
broker_stop TERM || fail "sluiced did not exit 0 on SIGTERM"
