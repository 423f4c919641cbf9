#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Bad input against one running sluiced (auto-create off, message.max.bytes
# 64 KiB, socket.request.max.bytes 1 MiB): truncated frames, impossible size
# prefixes, random bytes, unknown APIs and versions, corrupt and oversized
# batches, unknown topics, fetches past the end. Each case on its own
# connection; after each, the broker is alive and a well-behaved client still
# gets through; each refusal leaves a log line (bad_input.py does all that).
# Then the broker's memory is bounded and it exits 0 on SIGTERM.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/broker.sh

PY=/usr/bin/python3
REQUEST_MAX=1048576
MESSAGE_MAX=65536
RSS_MAX_KB=$((400 * 1024))

command -v kcat >/dev/null || fail "kcat is not installed"
$PY -c 'import kafka' 2>/dev/null || fail "python3-kafka is not installed"

trap 'kill -9 ${BROKER_PID:-} 2>/dev/null || true; rm -rf "${BROKER_DIR:-/nonexistent}"' EXIT

# Topics can only come from auto-create here (there is no CreateTopics yet):
# make them with it on, then restart with it off.
broker_start
printf 'k:a\nk:b\nk:c\n' | timeout 20 kcat -b "$BROKER" -P -t oor -K: -p 0 -X acks=all ||
    fail "setup: produce to oor"
echo seed | timeout 20 kcat -b "$BROKER" -P -t known -p 0 -X acks=all || fail "setup: produce to known"
broker_stop TERM || fail "setup: sluiced did not exit 0 on SIGTERM"

broker_start --set auto.create.topics.enable=false --set message.max.bytes=$MESSAGE_MAX \
    --set socket.request.max.bytes=$REQUEST_MAX
# The cases report every failure and exit 1 if there was any; the memory and
# shutdown checks below still run, so that one run names every problem.
cases_rc=0
timeout 240 $PY tests/integration/bad_input.py --broker "$BROKER" --pid "$BROKER_PID" \
    --log "$BROKER_LOG" --data-dir "$BROKER_DIR/data" \
    --request-max $REQUEST_MAX --message-max $MESSAGE_MAX || cases_rc=$?
[ "$cases_rc" -ne 124 ] || fail "bad_input.py timed out: the broker hangs somewhere"

kill -0 "$BROKER_PID" 2>/dev/null || fail "sluiced is gone after the cases"
rss_kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$BROKER_PID/status")
echo "sluiced VmRSS after the cases: ${rss_kb} kB"
[ "$rss_kb" -lt $RSS_MAX_KB ] || fail "sluiced RSS ${rss_kb} kB is above ${RSS_MAX_KB} kB"

# No assertion failure, sanitizer report or crash trace slipped into the log.
if grep -E 'assertion failed|AddressSanitizer|LeakSanitizer|runtime error|SUMMARY:' \
    "$BROKER_LOG" >&2; then
    fail "sanitizer or assertion report in the broker log"
fi

# A watchdog turns a hang at shutdown into a failure (exit 137) instead of a stuck CI.
(sleep 20 && kill -9 "$BROKER_PID") 2>/dev/null &
watchdog=$!
rc=0
broker_stop TERM || rc=$?
kill "$watchdog" 2>/dev/null || true
wait "$watchdog" 2>/dev/null || true
[ "$rc" -ne 137 ] || fail "sluiced did not exit within 20 s of SIGTERM"
[ "$rc" -eq 0 ] || fail "sluiced exited $rc on SIGTERM, want 0"
if grep -E 'AddressSanitizer|LeakSanitizer|SUMMARY:' "$BROKER_LOG" >&2; then
    fail "sanitizer report at exit"
fi
[ "$cases_rc" -eq 0 ] || fail "bad input cases failed (listed above)"
echo "bad_input: ok"
