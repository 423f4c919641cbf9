#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# libsluice's consumer, through `sluice consume`, against a real sluiced:
#   1. confluent_kafka (librdkafka) produces keyed and keyless records with
#      arbitrary bytes (newlines and NULs included), null values, headers
#      (a null one too), uncompressed and gzip, snappy, lz4, zstd, to a topic
#      of 4 partitions. `sluice consume -p N -o beginning -e -f FORMAT` must
#      print, per partition, byte for byte what the producer's delivery
#      reports say was written there (offset, key, value, headers,
#      timestamp), in offset order; over every partition at once the count
#      and the order per partition hold (--json, parsed).
#   2. A CLI round trip: `sluice produce` (keys, headers) then `sluice
#      consume -e` with -f and with --json, compared with what was sent;
#      -n COUNT, -o OFFSET, -o end, -o @TIMESTAMP.
#   3. Failures: a missing partition (exit 4), an unreachable broker (exit 3),
#      auto.offset.reset = none past the end (exit 1, the partition named).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/broker.sh

PY=/usr/bin/python3
SLUICE=$BUILD/sluice
N=${CLIENT_CONSUME_MESSAGES:-3000}
PARTITIONS=4
FMT='o=%o k=%K:%k v=%S:%s h=%h t=%T|\n'

broker_start --set num.partitions=$PARTITIONS
W=$BROKER_DIR
trap 'kill -9 $BROKER_PID 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$W"' EXIT

# ---- 1. confluent_kafka producer -> sluiced -> sluice consume ---------------
cat >"$W/produce.py" <<'EOF'
import os, random, sys
from confluent_kafka import Producer

broker, topic, codec, n, outdir = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
rng = random.Random(hash(codec) & 0xffff)
p = Producer({"bootstrap.servers": broker, "acks": "all", "compression.type": codec,
              "linger.ms": 20, "batch.num.messages": 500, "api.version.request": True})
written = {}  # partition -> [(offset, line bytes)]
errors = []

def fmt(offset, key, value, headers, ts):
    def part(b):
        return (b"-1:" if b is None else str(len(b)).encode() + b":" + b)
    hs = b",".join(name.encode() + b"=" + (v or b"") for name, v in (headers or []))
    return (b"o=%d k=" % offset + part(key) + b" v=" + part(value) + b" h=" + hs +
            b" t=%d|\n" % ts)

def report(err, msg, headers):
    # Delivery reports carry no headers: the ones sent are passed along.
    if err is not None:
        errors.append(err)
        return
    ts = msg.timestamp()[1]
    written.setdefault(msg.partition(), []).append(
        (msg.offset(), fmt(msg.offset(), msg.key(), msg.value(), headers, ts)))

for i in range(n):
    key = None if i % 7 == 0 else b"key-%d" % (i % 97)
    size = rng.choice([0, 1, 10, 100, 1000, 5000])
    if i % 2:  # random bytes, which no codec shrinks (sent uncompressed by librdkafka)
        value = bytes(rng.getrandbits(8) for _ in range(size))
    else:  # repetitive ones, which every codec does
        value = (b"%d\n\0 sluice " % i * (size // 8 + 1))[:size]
    if i % 50 == 3:
        value = None
    headers = [("seq", b"%d" % i)]
    if i % 3 == 0:
        headers.append(("bin", bytes([0, 10, 255, 44])))
    if i % 11 == 0:
        headers.append(("nul", None))
    while True:
        try:
            p.produce(topic, value=value, key=key, headers=headers,
                      on_delivery=lambda err, msg, h=headers: report(err, msg, h))
            break
        except BufferError:
            p.poll(0.1)
    p.poll(0)
left = p.flush(30)
if left or errors:
    sys.exit("produce %s: %d left, errors %s" % (codec, left, errors[:3]))
total = 0
for part, rows in written.items():
    rows.sort()
    with open(os.path.join(outdir, "%s.p%d" % (codec, part)), "wb") as f:
        for _, line in rows:
            f.write(line)
    total += len(rows)
print(total)
EOF

cat >"$W/check_json.py" <<'EOF'
import json, sys
n = int(sys.argv[1])
last = {}
count = 0
for line in sys.stdin:
    r = json.loads(line)
    p, o = r["partition"], r["offset"]
    if p in last and o <= last[p]:
        sys.exit("partition %d: offset %d after %d" % (p, o, last[p]))
    last[p] = o
    count += 1
if count != n:
    sys.exit("%d records, want %d" % (count, n))
EOF

for codec in none gzip snappy lz4 zstd; do
    topic=cc-$codec
    total=$($PY "$W/produce.py" "$BROKER" $topic $codec $N "$W") || fail "confluent produce $codec"
    [ "$total" = "$N" ] || fail "$codec: $total delivered, want $N"
    for p in $(seq 0 $((PARTITIONS - 1))); do
        [ -f "$W/$codec.p$p" ] || : >"$W/$codec.p$p"
        timeout 60 "$SLUICE" consume $topic -b "$BROKER" -p $p -o beginning -e -f "$FMT" \
            >"$W/got.$codec.p$p" || fail "$codec: consume -p $p exited $?"
        cmp "$W/$codec.p$p" "$W/got.$codec.p$p" || fail "$codec partition $p differs"
    done
    timeout 60 "$SLUICE" consume $topic -b "$BROKER" -o beginning -e --json |
        $PY "$W/check_json.py" $N || fail "$codec: --json over every partition"
    echo "ok: confluent_kafka $codec -> sluice consume, $N records byte-identical"
done

# ---- 2. CLI round trip ------------------------------------------------------
awk 'BEGIN { for (i = 1; i <= 500; i++) printf "key%d:value \"%d\" \\ tab\there\n", i, i }' \
    >"$W/lines"
"$SLUICE" produce rt -b "$BROKER" -k : -H origin=cli -H n=1 -q <"$W/lines" ||
    fail "sluice produce exited $?"
timeout 60 "$SLUICE" consume rt -b "$BROKER" -o beginning -e -f '%k:%s|%h|%t\n' >"$W/rt.out" ||
    fail "sluice consume -f exited $?"
sed 's/$/|origin=cli,n=1|rt/' "$W/lines" | sort >"$W/rt.want"
sort "$W/rt.out" | cmp - "$W/rt.want" || fail "round trip with -f differs"
timeout 60 "$SLUICE" consume rt -b "$BROKER" -o beginning -e --json >"$W/rt.json" ||
    fail "sluice consume --json exited $?"
$PY - "$W/lines" "$W/rt.json" <<'EOF' || fail "round trip with --json differs"
import json, sys
want = sorted(l.rstrip("\n").split(":", 1) for l in open(sys.argv[1]))
recs = [json.loads(l) for l in open(sys.argv[2])]
got = sorted([r["key"], r["value"]] for r in recs)
assert got == want, "records differ"
for r in recs:
    assert r["topic"] == "rt" and r["timestamp_type"] == "CreateTime", r
    assert r["headers"] == [{"key": "origin", "value": "cli"}, {"key": "n", "value": "1"}], r
last = {}
for r in recs:
    assert r["offset"] > last.get(r["partition"], -1), "order"
    last[r["partition"]] = r["offset"]
EOF
[ "$(timeout 60 "$SLUICE" consume rt -b "$BROKER" -o beginning -n 7 | wc -l)" = 7 ] ||
    fail "-n 7"
p0=$(timeout 60 "$SLUICE" consume rt -b "$BROKER" -p 0 -o beginning -e -f '%o\n' | wc -l)
[ "$(timeout 60 "$SLUICE" consume rt -b "$BROKER" -p 0 -o 2 -e -f '%o\n' | head -1)" = 2 ] ||
    fail "-o 2"
[ "$(timeout 60 "$SLUICE" consume rt -b "$BROKER" -p 0 -o 2 -e -f '%o\n' | wc -l)" = $((p0 - 2)) ] ||
    fail "-o 2: count"
[ -z "$(timeout 60 "$SLUICE" consume rt -b "$BROKER" -o end -e)" ] || fail "-o end printed records"
future=$(($(date +%s) * 1000 + 3600000))
[ -z "$(timeout 60 "$SLUICE" consume rt -b "$BROKER" -o @$future -e)" ] || fail "-o @future"
[ "$(timeout 60 "$SLUICE" consume rt -b "$BROKER" -o @0 -e | wc -l)" = 500 ] || fail "-o @0"
echo "ok: sluice produce -> sluice consume round trip (-f, --json, -n, -o)"

# ---- 3. failures --------------------------------------------------------------
rc=0
"$SLUICE" consume rt -b "$BROKER" -p 99 -e 2>"$W/err" || rc=$?
[ $rc = 4 ] && grep -q "no partition 99" "$W/err" || fail "missing partition: exit $rc"
rc=0
port=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$SLUICE" consume rt -b 127.0.0.1:$port -e 2>"$W/err" || rc=$?
[ $rc = 3 ] && grep -q "127.0.0.1:$port" "$W/err" || fail "unreachable: exit $rc"
rc=0
timeout 60 "$SLUICE" consume rt -b "$BROKER" -p 0 -o 100000 -e -X auto.offset.reset=none \
    2>"$W/err" || rc=$?
[ $rc = 1 ] && grep -q "rt \[0\].*OFFSET_OUT_OF_RANGE" "$W/err" || {
    cat "$W/err" >&2
    fail "auto.offset.reset=none: exit $rc"
}
echo "ok: failures (exit 4, 3, 1)"

broker_stop TERM || fail "sluiced did not exit 0 on SIGTERM"
echo "client_consume: all ok"
