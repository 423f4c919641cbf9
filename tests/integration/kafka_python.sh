#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# kafka-python against a real sluiced, and kafka-python <-> kcat both ways.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/broker.sh

broker_start
trap 'kill -9 $BROKER_PID 2>/dev/null || true; rm -rf "$BROKER_DIR"' EXIT
seq -f 'kcat-%g' 0 99 | timeout 30 kcat -b "$BROKER" -P -t from-kcat -p 0 || fail "kcat produce"
timeout 60 /usr/bin/python3 tests/integration/kafka_python.py "$BROKER" from-kcat ||
    fail "kafka-python"
timeout 30 kcat -b "$BROKER" -C -t to-kcat -p 0 -e -q -f '%s\n' >"$BROKER_DIR/to-kcat.txt" ||
    fail "kcat consume"
seq -f 'kp-%g' 0 99 | cmp -s - "$BROKER_DIR/to-kcat.txt" || fail "kcat read what kafka-python wrote"
broker_stop TERM || fail "sluiced did not exit 0 on SIGTERM"
echo "kafka_python: ok"
