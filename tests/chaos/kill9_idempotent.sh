#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# kill -9 under an idempotent producer, twice: no duplicate, no gap.
#
# A confluent_kafka producer (enable.idempotence=true, acks=all) sends a
# numbered stream at a steady rate to a 4-partition topic on a sluiced that
# listens on a fixed port. Twice, once enough records are acknowledged, sluiced
# is killed with SIGKILL and restarted at once on the same data directory and
# the same port. Batches in flight at the kill may or may not have been
# written; librdkafka retries them with their original producer id, epoch and
# sequence numbers, so the restarted broker must know (from its producer-state
# snapshots and the log tail it replays) which ones it already holds, answer
# those with their original offsets, and write the rest once. Segments are
# small (256 KiB), so the logs roll and snapshots are taken many times before
# each kill: recovery starts from a snapshot, not only from a full replay. After the
# producer has flushed (every delivery report a success), a consumer reads the
# log: per partition, offsets without holes and sequence numbers strictly
# increasing; over all, each of 0..N-1 exactly once, at the offset its delivery
# report named (tests/integration/idempotence.py verify).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/broker.sh

PY=/usr/bin/python3
N=${KILL9_IDEMPOTENT_MESSAGES:-60000}
IDEMPOTENCE=${IDEMPOTENCE:-true} # false shows what the checks catch without it
RATE=5000 # records per second: the stream lasts about N / RATE seconds
TOPIC=idem-chaos
PARTITIONS=4
KILLS=2
ACKED_BEFORE_KILL=(10000 30000) # acknowledgements to wait for before each kill

$PY -c 'import confluent_kafka' 2>/dev/null || fail "python3-confluent-kafka is not installed"

W=$(mktemp -d "${TMPDIR:-/tmp}/sluice-chaos-idem-XXXXXX")
BROKER_DIR=$W/broker
mkdir -p "$BROKER_DIR"
PRODUCER_PID=""
cleanup() {
    [ -z "$PRODUCER_PID" ] || kill -9 "$PRODUCER_PID" 2>/dev/null || true
    [ -z "${BROKER_PID:-}" ] || kill -9 "$BROKER_PID" 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT

PORT=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
start_fixed() {
    # log.level=debug: the broker logs each retried batch it answers as a duplicate.
    broker_start --set "listeners=PLAINTEXT://127.0.0.1:$PORT" --set "num.partitions=$PARTITIONS" \
        --set log.level=debug --set log.segment.bytes=262144
    [ "$BROKER" = "127.0.0.1:$PORT" ] || fail "sluiced listens on $BROKER, not port $PORT"
}

acked() { wc -l <"$W/reports"; }

start=$(date +%s)
start_fixed
: >"$W/reports"
$PY tests/integration/idempotence.py produce --bootstrap "$BROKER" --topic "$TOPIC" \
    --count "$N" --rate $RATE --out "$W/reports" --flush-timeout 60 \
    --idempotence "$IDEMPOTENCE" >"$W/producer.log" 2>&1 &
PRODUCER_PID=$!
for k in $(seq 1 $KILLS); do
    want=${ACKED_BEFORE_KILL[$((k - 1))]}
    for _ in $(seq 1 600); do
        [ "$(acked)" -ge "$want" ] && break
        kill -0 "$PRODUCER_PID" 2>/dev/null || break
        sleep 0.05
    done
    [ "$(acked)" -ge "$want" ] || {
        cat "$W/producer.log" >&2
        fail "kill $k: only $(acked) acknowledgements, want $want before the kill"
    }
    broker_stop KILL || true
    echo "kill $k: sluiced got SIGKILL with $(acked) of $N acknowledged"
    start_fixed # at once, same directory, same port
done
# The producer ends by itself: its flush gives up after --flush-timeout.
for _ in $(seq 1 1200); do
    kill -0 "$PRODUCER_PID" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$PRODUCER_PID" 2>/dev/null && { cat "$W/producer.log" >&2; fail "the producer hung"; }
rc=0
wait "$PRODUCER_PID" || rc=$?
PRODUCER_PID=""
cat "$W/producer.log"
[ "$rc" -eq 0 ] || fail "the idempotent producer did not get $N successful delivery reports"

timeout 120 $PY tests/integration/idempotence.py verify --bootstrap "$BROKER" --topic "$TOPIC" \
    --partitions $PARTITIONS --dr "$W/reports" --count "$N" || fail "reading back after kill -9"
broker_stop TERM || fail "sluiced did not exit 0 on SIGTERM"
if grep -E 'assertion failed|AddressSanitizer|LeakSanitizer|runtime error' "$BROKER_DIR"/sluiced.*.log >&2; then
    fail "sanitizer or assertion report in a broker log"
fi
dedups=$(cat "$BROKER_DIR"/sluiced.*.log | grep -c 'duplicate batch answered' || true)
echo "kill9_idempotent: $N records, sluiced killed -9 $KILLS times mid-stream and restarted" \
    "on port $PORT, all delivered, 0 duplicates and 0 gaps ($dedups retried batches answered" \
    "as duplicates) in $(($(date +%s) - start))s: ok"
