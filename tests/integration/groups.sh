#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Consumer groups with real clients against a real sluiced: kcat -G members
# splitting a topic and surviving a kill -9 of one of them, confluent_kafka
# and kafka-python consumers resuming exactly at their last commit, a static
# member restarting without a rebalance, a commit from the revoke callback,
# and a join that lands while the leader's assignment is being stored. The
# checks are in groups.py; this starts the broker with short group timings
# and hands it the address and the log (whose "rebalance" lines carry the
# generations). Every case runs; the test fails if any did.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/broker.sh

command -v kcat >/dev/null || fail "kcat is not installed"
BROKER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/sluice-groups-XXXXXX")
trap 'kill -9 $BROKER_PID 2>/dev/null || true; rm -rf "$BROKER_DIR"' EXIT

# Session timeouts down to 1 s, and no wait for more members before a new
# group's first rebalance: the test's clock, not the defaults'.
broker_start --set group.min.session.timeout.ms=1000 --set group.initial.rebalance.delay.ms=0
failed=""
for case in kcat confluent kafka_python static revoke_commit sync_race; do
    if ! BROKER=$BROKER BROKER_LOG=$BROKER_LOG WORKDIR=$BROKER_DIR timeout 60 \
        /usr/bin/python3 tests/integration/groups.py "$case"; then
        failed="$failed $case"
    fi
done
if [ -n "$failed" ]; then
    for f in "$BROKER_DIR"/kcat-*.err; do
        [ -e "$f" ] && { echo "--- $f" >&2; tail -8 "$f" >&2; }
    done
    fail "groups.py cases failed:$failed"
fi
broker_stop TERM || fail "sluiced did not exit 0 on SIGTERM"
if grep -E 'assertion failed|AddressSanitizer|LeakSanitizer|runtime error' "$BROKER_LOG" >&2; then
    fail "sanitizer or assertion report in the broker log"
fi
echo "groups: kcat, confluent, kafka-python, static members, revoke commits, sync race: ok"
