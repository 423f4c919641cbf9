#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# libsluice's idempotent producer (through the sluice CLI) through
# tests/lib/faultproxy.py, which drops responses (closing the connection or
# leaving it hanging until the request times out), resets connections
# mid-response and delays responses. sluiced advertises the proxy's port, so
# every connection goes through it. Every record must be delivered (exit 0,
# no errors), and a consumer reading sluiced directly must find each exactly
# once, in produce order per partition: retries that kept their sequence
# numbers were recognised, retries that did not duplicate nothing.
#
# Knobs: CLIENT_FAULT_MESSAGES (20000), FAULT_SEED (11).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/broker.sh

PY=/usr/bin/python3
N=${CLIENT_FAULT_MESSAGES:-20000}
SEED=${FAULT_SEED:-11}
PARTITIONS=4
KEYS=32
FAULTS=(--drop 0.05 --drop-mode both --reset 0.04 --delay-prob 0.2 --delay-ms 1,40)

W=$(mktemp -d "${TMPDIR:-/tmp}/sluice-cfault-XXXXXX")
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
    --set "num.partitions=$PARTITIONS"

awk -v n="$N" -v k=$KEYS 'BEGIN { for (i = 0; i < n; i++) printf "k%02d|seq=%07d\n", i % k, i }' \
    >"$W/in.txt"
# Small batches make many requests (many faults); short timeouts make a hung
# connection cost a second, not thirty.
rc=0
timeout 600 "$BUILD/sluice" produce faults -b "127.0.0.1:$PROXY_PORT" -k '|' -f "$W/in.txt" \
    -X batch.size=1024 -X linger.ms=2 -X request.timeout.ms=1500 \
    -X socket.connection.setup.timeout.ms=3000 -X retry.backoff.ms=20 \
    -X retry.backoff.max.ms=250 -X delivery.timeout.ms=300000 2>"$W/produce.err" || rc=$?
kill -TERM "$PROXY_PID"
wait "$PROXY_PID" || true
PROXY_PID=""
[ $rc -eq 0 ] || { tail -20 "$W/produce.err" >&2; fail "produce through the proxy: exit $rc"; }
grep -q "sluice produce: $N records .* 0 errors" "$W/produce.err" ||
    fail "summary: $(tail -3 "$W/produce.err")"
produce_faults=$(grep -E 'fault=(drop-|reset).* api=0\(' "$W/faults.log" | wc -l)
all_faults=$(wc -l <"$W/faults.log")
[ "$produce_faults" -ge 5 ] || fail "only $produce_faults Produce responses lost: proved nothing"

# sluiced advertises the proxy, which is gone: restart it without, on the
# same data, and read every record directly.
broker_stop TERM || fail "sluiced did not exit 0 on SIGTERM"
broker_start --set "listeners=PLAINTEXT://127.0.0.1:$BROKER_PORT" --set "num.partitions=$PARTITIONS"
timeout 60 kcat -b "$BROKER" -C -t faults -e -q -f '%p %o %k %s\n' >"$W/out.txt" ||
    fail "kcat consume"
$PY - "$N" "$KEYS" "$W/out.txt" <<'EOF' || fail "records lost, duplicated or reordered"
import collections, sys
n, keys, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
seen = collections.Counter()
last = {}
bad = 0
for line in open(path):
    part, off, key, value = line.split()
    seq = int(value.split("=")[1])
    seen[seq] += 1
    bad += key != "k%02d" % (seq % keys)
    if seq <= last.get(part, -1):
        bad += 1
        if bad < 5:
            print("partition %s: seq %d after %d" % (part, seq, last[part]), file=sys.stderr)
    last[part] = seq
dups = sum(1 for c in seen.values() if c > 1)
lost = n - len(seen)
print("records %d, distinct %d, duplicated %d, lost %d, out of order %d"
      % (sum(seen.values()), len(seen), dups, lost, bad))
sys.exit(1 if dups or lost or bad else 0)
EOF
broker_stop TERM || fail "sluiced did not exit 0 on SIGTERM"
if grep -E 'AddressSanitizer|LeakSanitizer|runtime error|assertion failed' "$W/produce.err" \
    "$BROKER_DIR"/sluiced.*.log >&2; then
    fail "sanitizer or assertion report"
fi
echo "client_faults: $N records through faultproxy (seed $SEED, $all_faults faults," \
    "$produce_faults Produce responses lost), each written once, in order: ok"
