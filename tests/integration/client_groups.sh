#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# libsluice's consumer groups against a real sluiced, through `sluice
# consume -g`: members splitting a topic (range) and taking over a killed
# member's partitions at its commits; a libsluice member and a
# confluent_kafka (librdkafka) member in one group agreeing on roundrobin;
# resuming at the commits of a stopped member. The checks are in
# client_groups.py; this starts the broker with short group timings.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/broker.sh

broker_start --set group.min.session.timeout.ms=1000 --set group.initial.rebalance.delay.ms=0
trap 'pkill -9 -f "sluice consume .*-b $BROKER " 2>/dev/null || true; kill -9 $BROKER_PID 2>/dev/null || true; rm -rf "$BROKER_DIR"' EXIT
if ! BROKER=$BROKER BROKER_LOG=$BROKER_LOG WORKDIR=$BROKER_DIR SLUICE=$BUILD/sluice timeout 120 \
    /usr/bin/python3 tests/integration/client_groups.py; then
    for f in "$BROKER_DIR"/member-*.err; do
        [ -e "$f" ] && { echo "--- $f" >&2; tail -8 "$f" >&2; }
    done
    fail "client_groups.py failed"
fi
broker_stop TERM || fail "sluiced did not exit 0 on SIGTERM"
if grep -E 'assertion failed|AddressSanitizer|LeakSanitizer|runtime error' "$BROKER_LOG" \
    "$BROKER_DIR"/member-*.err >&2; then
    fail "sanitizer or assertion report in the broker log"
fi
echo "client_groups: range split and kill -9 takeover, roundrobin with librdkafka, resume, commits and seek through the API: ok"
