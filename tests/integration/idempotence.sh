#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Idempotent producer through a faulty network: exactly once, in order.
#
# A confluent_kafka producer (enable.idempotence=true, acks=all) sends 100,000
# numbered 100-byte records to a 4-partition topic through tests/lib/faultproxy.py,
# which (seeded) drops responses and closes or keeps the connection, resets
# connections mid-response and delays responses. sluiced advertises the
# proxy's port, so every connection the client makes goes through it. Every
# delivery report must be a success. Then the proxy is stopped, sluiced is
# restarted (SIGTERM, same data directory) on the proxy's port without the
# advertised address, and a consumer connecting directly reads each record
# exactly once, in produce order per partition, at the offset its delivery
# report named (idempotence.py verify). The proxy must have injected at least
# MIN_* faults of each kind, or the run proved nothing about retries.
#
# Knobs (environment): IDEMPOTENCE_MESSAGES (100000), FAULT_SEED (7),
# IDEMPOTENCE=false shows what the checks catch without idempotence.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/broker.sh

PY=/usr/bin/python3
N=${IDEMPOTENCE_MESSAGES:-100000}
SEED=${FAULT_SEED:-7}
IDEMPOTENCE=${IDEMPOTENCE:-true}
TOPIC=idem
PARTITIONS=4
# Fault rates per response. Produce responses are what matter (a dropped one
# means a batch written but not acknowledged: its retry must not be written
# again); the others make the client reconnect, refresh metadata, or time out.
FAULTS=(--drop 0.05 --drop-mode both --reset 0.04 --delay-prob 0.2 --delay-ms "1,40")
MIN_DROPS=5  # drop-close + drop-hang
MIN_RESETS=3
MIN_DELAYS=20
MIN_PRODUCE_FAULTS=5 # drops and resets of Produce responses

$PY -c 'import confluent_kafka' 2>/dev/null || fail "python3-confluent-kafka is not installed"

W=$(mktemp -d "${TMPDIR:-/tmp}/sluice-idem-XXXXXX")
BROKER_DIR=$W/broker
mkdir -p "$BROKER_DIR"
PROXY_PID=""
cleanup() {
    [ -z "$PROXY_PID" ] || kill -9 "$PROXY_PID" 2>/dev/null || true
    [ -z "${BROKER_PID:-}" ] || kill -9 "$BROKER_PID" 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT

free_port() {
    $PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start=$(date +%s)
BROKER_PORT=$(free_port)
: >"$W/proxy.out" # read below before the job may have opened it
$PY tests/lib/faultproxy.py --target "127.0.0.1:$BROKER_PORT" --seed "$SEED" "${FAULTS[@]}" \
    --log "$W/faults.log" >"$W/proxy.out" 2>"$W/proxy.err" &
PROXY_PID=$!
PROXY_PORT=""
for _ in $(seq 1 100); do
    PROXY_PORT=$(sed -n 's/^listening \([0-9]*\)$/\1/p' "$W/proxy.out")
    [ -n "$PROXY_PORT" ] && break
    kill -0 "$PROXY_PID" 2>/dev/null || break
    sleep 0.05
done
[ -n "$PROXY_PORT" ] || { cat "$W/proxy.err" >&2; fail "faultproxy did not start"; }

broker_start --set "listeners=PLAINTEXT://127.0.0.1:$BROKER_PORT" \
    --set "advertised.listeners=PLAINTEXT://127.0.0.1:$PROXY_PORT" \
    --set "num.partitions=$PARTITIONS" --set log.level=debug # debug: it logs each duplicate
[ "$BROKER" = "127.0.0.1:$BROKER_PORT" ] || fail "sluiced listens on $BROKER, not $BROKER_PORT"

# The topic is created by the producer's first Metadata request.
timeout 110 $PY tests/integration/idempotence.py produce --bootstrap "127.0.0.1:$PROXY_PORT" \
    --topic "$TOPIC" --count "$N" --out "$W/reports" --idempotence "$IDEMPOTENCE" ||
    fail "producing through the fault proxy"
produced=$(date +%s)

kill -TERM "$PROXY_PID"
wait "$PROXY_PID" || fail "faultproxy exited with an error: $(cat "$W/proxy.err")"
PROXY_PID=""
cat "$W/proxy.err"
count() { grep -c "$1" "$W/faults.log" || true; }
drops=$(count 'fault=drop-')
resets=$(count 'fault=reset')
delays=$(count 'fault=delay')
produce_faults=$({ grep -E 'fault=(drop-|reset).* api=0\(' "$W/faults.log" || true; } | wc -l)
[ "$drops" -ge $MIN_DROPS ] || fail "only $drops responses dropped, want >= $MIN_DROPS"
[ "$resets" -ge $MIN_RESETS ] || fail "only $resets connections reset, want >= $MIN_RESETS"
[ "$delays" -ge $MIN_DELAYS ] || fail "only $delays responses delayed, want >= $MIN_DELAYS"
[ "$produce_faults" -ge $MIN_PRODUCE_FAULTS ] ||
    fail "only $produce_faults Produce responses lost, want >= $MIN_PRODUCE_FAULTS"

dedups=$(grep -c 'duplicate batch answered' "$BROKER_LOG" || true)

broker_stop TERM || fail "sluiced did not exit 0 on SIGTERM"
broker_start --set "listeners=PLAINTEXT://127.0.0.1:$PROXY_PORT" --set "num.partitions=$PARTITIONS"
timeout 120 $PY tests/integration/idempotence.py verify --bootstrap "$BROKER" --topic "$TOPIC" \
    --partitions $PARTITIONS --dr "$W/reports" --count "$N" || fail "reading back"
# A lost Produce response was written: its retry must have been recognised.
[ "$dedups" -ge 1 ] || fail "$produce_faults Produce responses lost, but no retried batch was a duplicate"
broker_stop TERM || fail "sluiced did not exit 0 on SIGTERM"
if grep -E 'assertion failed|AddressSanitizer|LeakSanitizer|runtime error' "$BROKER_DIR"/sluiced.*.log >&2; then
    fail "sanitizer or assertion report in a broker log"
fi
end=$(date +%s)
echo "idempotence: $N records through faultproxy (seed $SEED: $drops dropped responses," \
    "$resets resets, $delays delays, $produce_faults Produce responses lost; $dedups retried" \
    "batches answered as duplicates), all delivered, read back exactly once in order; produce $((produced - start))s, total $((end - start))s: ok"
