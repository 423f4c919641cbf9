#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# kill -9 under produce load, three times, then SIGTERM under load. A kafka-python producer (acks=all,
# retries) writes numbered values to one partition and records the offset of
# every acknowledged one; sluiced is SIGKILLed mid-stream and restarted on the
# same data directory. After each restart:
#   - offsets in the log run 0, 1, 2, ... with no gap,
#   - every acknowledged value is at the offset its acknowledgement named,
#     byte for byte,
#   - every record is one the producer sent (nothing torn or invented),
#   - what was there after the previous restart is still there, unchanged,
#   - new appends continue from the recovered end offset.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/broker.sh

PY=/usr/bin/python3
ROUNDS=4
# Rounds 1-3 end with kill -9, round 4 with SIGTERM in the middle of the stream
# (the broker must finish what is in flight, flush, and exit 0).
SIGNALS=(KILL KILL KILL TERM)
TOPIC=chaos
ACKED_BEFORE_KILL=300 # acknowledgements to wait for before the kill

command -v kcat >/dev/null || fail "kcat is not installed"
$PY -c 'import kafka' 2>/dev/null || fail "python3-kafka is not installed"

PRODUCER_PID=""
cleanup() {
    if [ -n "$PRODUCER_PID" ]; then kill -9 "$PRODUCER_PID" 2>/dev/null || true; fi
    kill -9 "${BROKER_PID:-}" 2>/dev/null || true
    rm -rf "${BROKER_DIR:-/nonexistent}"
}
trap cleanup EXIT

BROKER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/sluice-chaos-XXXXXX")
W=$BROKER_DIR/work
mkdir -p "$W"

# The producer: sends until its first failure (the broker is gone) or its
# deadline, writes "offset value" for each acknowledgement as it arrives.
cat >"$W/producer.py" <<'EOF'
import sys, time
from kafka import KafkaProducer

broker, topic, round_no, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
acked = open(out, "w", buffering=1)
state = {"errors": 0, "acked": 0}

def ok(value, md):
    acked.write("%d %s\n" % (md.offset, value))
    state["acked"] += 1

def bad(value, exc):
    state["errors"] += 1

producer = KafkaProducer(bootstrap_servers=broker, acks="all", retries=3, linger_ms=1,
                         request_timeout_ms=2000, max_block_ms=2000, retry_backoff_ms=50,
                         reconnect_backoff_ms=50, reconnect_backoff_max_ms=200,
                         metadata_max_age_ms=60000)
sent = 0
deadline = time.monotonic() + 12
try:
    while state["errors"] == 0 and time.monotonic() < deadline:
        value = "r%d-%07d-%s" % (round_no, sent, "v" * (sent % 61))
        fut = producer.send(topic, value=value.encode(), partition=0)
        fut.add_callback(ok, value)
        fut.add_errback(bad, value)
        sent += 1
        if sent % 100 == 0:
            time.sleep(0.01)  # a steady stream, not one huge backlog
except Exception as e:  # the broker is gone: max_block_ms ran out
    print("producer: send stopped: %r" % (e,), file=sys.stderr)
try:
    producer.flush(timeout=8)
except Exception as e:
    print("producer: flush: %r" % (e,), file=sys.stderr)
producer.close(timeout=3)
print("producer round %d: sent %d acked %d failed %d" % (round_no, sent, state["acked"],
      state["errors"]), file=sys.stderr)
EOF

# Dumps the partition as "offset value" lines; checks the offsets run 0..n-1.
dump() {
    local out=$1
    timeout 30 kcat -b "$BROKER" -C -t "$TOPIC" -p 0 -o beginning -e -q -f '%o %s\n' \
        -X fetch.wait.max.ms=10 >"$out" || fail "consume after restart"
    awk '$1 != NR - 1 { printf "offset %s at line %d\n", $1, NR; exit 1 }' "$out" >&2 ||
        fail "offsets are not contiguous from 0 in $out"
}

# Checks the log dump against everything acknowledged so far and the dump
# taken after the previous restart.
verify() {
    local round=$1 cur=$W/dump.$1
    dump "$cur"
    local n
    n=$(wc -l <"$cur")
    # Every acknowledged value sits at its acknowledged offset.
    awk 'NR == FNR { at[$1] = $2; next }
         !($1 in at) { printf "acknowledged offset %s (%s) is missing\n", $1, $2; bad = 1; next }
         at[$1] != $2 { printf "offset %s holds %s, acknowledged %s\n", $1, at[$1], $2; bad = 1 }
         END { exit bad }' "$cur" "$W/acked.all" >&2 ||
        fail "round $round: acknowledged records lost or changed after kill -9"
    # Every record is one the producer could have sent.
    if grep -Ev '^[0-9]+ r[0-9]+-[0-9]{7}-v*$' "$cur" | head -3 | grep . >&2; then
        fail "round $round: records that no producer sent"
    fi
    # The previous restart's records are unchanged.
    if [ "$round" -gt 1 ]; then
        local prev=$W/dump.$((round - 1))
        head -n "$(wc -l <"$prev")" "$cur" | cmp -s - "$prev" ||
            fail "round $round: records recovered after the previous crash changed"
    fi
    echo "round $round: $n records in the log, $(wc -l <"$W/acked.all") acknowledged, all there"
}

: >"$W/acked.all"
broker_start
for round in $(seq 1 $ROUNDS); do
    # Offsets continue: what this round gets acknowledged starts at the end
    # recovered so far.
    end=0
    [ "$round" -eq 1 ] || end=$(wc -l <"$W/dump.$((round - 1))")
    acked=$W/acked.$round
    : >"$acked"
    timeout 30 $PY "$W/producer.py" "$BROKER" "$TOPIC" "$round" "$acked" 2>"$W/producer.$round.log" &
    PRODUCER_PID=$!
    for _ in $(seq 1 200); do
        [ "$(wc -l <"$acked")" -ge $ACKED_BEFORE_KILL ] && break
        kill -0 "$PRODUCER_PID" 2>/dev/null || break
        sleep 0.05
    done
    [ "$(wc -l <"$acked")" -ge $ACKED_BEFORE_KILL ] || {
        cat "$W/producer.$round.log" >&2
        fail "round $round: only $(wc -l <"$acked") acknowledgements before the kill"
    }
    sleep "0.$((RANDOM % 3))" # land the kill at different points of the stream
    sig=${SIGNALS[$((round - 1))]}
    if [ "$sig" = TERM ]; then
        broker_stop TERM || fail "round $round: sluiced did not exit 0 on SIGTERM under load"
    else
        broker_stop KILL || true
    fi
    echo "round $round: sluiced got SIG$sig with $(wc -l <"$acked") acknowledged so far"
    rc=0
    wait "$PRODUCER_PID" || rc=$?
    PRODUCER_PID=""
    cat "$W/producer.$round.log"
    [ "$rc" -ne 124 ] || fail "round $round: the producer hung after the kill"
    min=$(awk 'NR == 1 || $1 < m { m = $1 } END { print m + 0 }' "$acked")
    [ "$min" -ge "$end" ] || fail "round $round: acknowledged offset $min below recovered end $end"
    cat "$acked" >>"$W/acked.all"

    broker_start # same BROKER_DIR: recovery after kill -9
    verify "$round"
done

# After the last recovery, appends continue at the recovered end offset.
end=$(wc -l <"$W/dump.$ROUNDS")
echo "r9-9999999-" | timeout 20 kcat -b "$BROKER" -P -t "$TOPIC" -p 0 -X acks=all ||
    fail "produce after the last recovery"
last=$(timeout 20 kcat -b "$BROKER" -C -t "$TOPIC" -p 0 -o -1 -e -q -f '%o %s\n' \
    -X fetch.wait.max.ms=10)
[ "$last" = "$end r9-9999999-" ] || fail "after recovery: last record '$last', want '$end r9-9999999-'"
broker_stop TERM || fail "sluiced did not exit 0 on SIGTERM after recovery"
if grep -E 'assertion failed|AddressSanitizer|LeakSanitizer|runtime error' "$BROKER_DIR"/sluiced.*.log >&2; then
    fail "sanitizer or assertion report in a broker log"
fi
echo "kill9_produce: $ROUNDS stops under load (kill -9 x3, SIGTERM), every acknowledged record kept: ok"
