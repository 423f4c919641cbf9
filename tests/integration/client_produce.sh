#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# libsluice's producer, through the sluice CLI, against a real sluiced, read
# back with kcat (librdkafka):
#   1. 10k keyed lines with two headers, uncompressed and zstd: every record
#      comes back byte for byte with its key and headers, offsets contiguous
#      and produce order kept per partition, and each key in the partition
#      Java's client would choose (murmur2, computed here in Python from
#      Kafka's Utils.murmur2); with -X partitioner=crc32, librdkafka's
#      consistent partition (zlib.crc32(key) % partitions).
#   2. Failures that say why: an unreachable broker names its address and the
#      cause (exit 3), a partition that does not exist (exit 4), a command
#      not written yet (exit 2); at the end, a topic that does not exist on a
#      broker that does not create topics (exit 4).
#   3. An idempotent run through a broker restart: lines trickle in while
#      sluiced is stopped with SIGTERM and started again on the same port;
#      every record is written exactly once, in order per partition.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/broker.sh

PY=/usr/bin/python3
SLUICE=$BUILD/sluice
N=10000
PARTITIONS=4
RESTART_N=${CLIENT_RESTART_MESSAGES:-60000}

free_port() {
    $PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

PORT=$(free_port)
broker_start --set "listeners=PLAINTEXT://127.0.0.1:$PORT" --set num.partitions=$PARTITIONS
W=$BROKER_DIR
GEN_PID=""
trap 'kill -9 $BROKER_PID 2>/dev/null || true; [ -z "$GEN_PID" ] || kill -9 $GEN_PID 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$W"' EXIT

# Python's copy of Kafka's Utils.murmur2 and of the two partitioners.
cat >"$W/partition.py" <<'EOF'
import sys, zlib

def murmur2(data):
    m, h = 0x5bd1e995, (0x9747b28c ^ len(data)) & 0xffffffff
    n4 = len(data) // 4
    for i in range(n4):
        k = int.from_bytes(data[4 * i:4 * i + 4], "little")
        k = (k * m) & 0xffffffff
        k ^= k >> 24
        k = (k * m) & 0xffffffff
        h = ((h * m) & 0xffffffff) ^ k
    tail = data[4 * n4:]
    if len(tail) == 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if len(tail) >= 1:
        h ^= tail[0]
        h = (h * m) & 0xffffffff
    h ^= h >> 13
    h = (h * m) & 0xffffffff
    h ^= h >> 15
    return h

assert murmur2(b"21") == (-973932308) & 0xffffffff  # Kafka's UtilsTest
assert murmur2(b"foobar") == (-790332482) & 0xffffffff
which, parts = sys.argv[1], int(sys.argv[2])
bad = 0
for line in sys.stdin.buffer:
    key, part = line.rstrip(b"\n").rsplit(b" ", 1)
    want = (murmur2(key) & 0x7fffffff) % parts if which == "murmur2" else zlib.crc32(key) % parts
    if want != int(part):
        bad += 1
        if bad <= 5:
            print("key %r in partition %s, want %d" % (key, part.decode(), want), file=sys.stderr)
sys.exit(1 if bad else 0)
EOF

# ---- 1. round trips ---------------------------------------------------------
awk -v n=$N 'BEGIN { for (i = 1; i <= n; i++) printf "key%d:value-%d-%040d\n", i, i, i }' \
    >"$W/in.txt"
sort "$W/in.txt" >"$W/in.sorted"
for codec in none zstd; do
    topic=c-$codec
    rc=0
    timeout 120 "$SLUICE" produce "$topic" -b "$BROKER" -k : -H origin=it -H "codec=$codec" \
        -z "$codec" -f "$W/in.txt" 2>"$W/produce-$codec.err" || rc=$?
    [ $rc -eq 0 ] || { cat "$W/produce-$codec.err" >&2; fail "sluice produce ($codec) exited $rc"; }
    grep -q "sluice produce: $N records .* 0 errors" "$W/produce-$codec.err" ||
        fail "$codec: summary: $(cat "$W/produce-$codec.err")"
    timeout 60 kcat -b "$BROKER" -C -t "$topic" -e -q -f '%p %o %k:%s %h\n' \
        >"$W/out-$codec.txt" || fail "kcat consume $codec"
    got=$(wc -l <"$W/out-$codec.txt")
    [ "$got" -eq $N ] || fail "$codec: read $got of $N records"
    cut -d' ' -f3 "$W/out-$codec.txt" | sort | cmp -s - "$W/in.sorted" ||
        fail "$codec: records differ from the input"
    if grep -qv " origin=it,codec=$codec\$" "$W/out-$codec.txt"; then
        fail "$codec: headers lost or changed"
    fi
    for p in $(seq 0 $((PARTITIONS - 1))); do
        awk -v p=$p '$1 == p { if ($2 != n) exit 1; n++ }' "$W/out-$codec.txt" ||
            fail "$codec: partition $p offsets not contiguous"
        awk -v p=$p '$1 == p { split($3, a, "-"); print a[2] }' "$W/out-$codec.txt" | sort -nc ||
            fail "$codec: partition $p out of produce order"
    done
    timeout 60 kcat -b "$BROKER" -C -t "$topic" -e -q -f '%k %p\n' |
        $PY "$W/partition.py" murmur2 $PARTITIONS || fail "$codec: keys not where Java puts them"
done
timeout 120 "$SLUICE" produce c-crc32 -b "$BROKER" -k : -X partitioner=crc32 -q \
    -f "$W/in.txt" || fail "produce with partitioner=crc32"
timeout 60 kcat -b "$BROKER" -C -t c-crc32 -e -q -f '%k %p\n' | $PY "$W/partition.py" crc32 \
    $PARTITIONS || fail "crc32: keys not where librdkafka's consistent partitioner puts them"
echo "round trips: $N records x none, zstd; murmur2 and crc32 partitions: ok"

# ---- 2. failures that say why ----------------------------------------------
dead=$(free_port)
rc=0
echo x | timeout 30 "$SLUICE" produce c-none -b "127.0.0.1:$dead" 2>"$W/dead.err" || rc=$?
[ $rc -eq 3 ] || fail "unreachable broker: exit $rc, want 3: $(cat "$W/dead.err")"
grep -q "127.0.0.1:$dead: connect: Connection refused" "$W/dead.err" ||
    fail "unreachable broker: the address and cause are not named: $(cat "$W/dead.err")"
rc=0
echo x | timeout 30 "$SLUICE" produce c-none -b "$BROKER" -p 99 2>"$W/part.err" || rc=$?
[ $rc -eq 4 ] || fail "no such partition: exit $rc, want 4: $(cat "$W/part.err")"
rc=0
timeout 10 "$SLUICE" frobnicate -b "$BROKER" 2>"$W/ni.err" || rc=$?
[ $rc -eq 2 ] && grep -q 'unknown command "frobnicate"' "$W/ni.err" || fail "unknown command: exit $rc"
"$SLUICE" --help | grep -q "3  no broker could be reached" || fail "--help lacks the exit codes"
echo "failures: unreachable broker (exit 3, address and cause named), no partition, usage: ok"

# ---- 3. idempotent through a broker restart ---------------------------------
# KEYS keys, so each partition's records are a known subsequence; lines come
# at about 20k/s while the broker goes down and comes back.
KEYS=16
mkfifo "$W/lines"
$PY - "$RESTART_N" $KEYS >"$W/lines" <<'EOF' &
import sys, time
n, keys = int(sys.argv[1]), int(sys.argv[2])
out = sys.stdout
for i in range(n):
    out.write("k%02d|seq=%07d\n" % (i % keys, i))
    if i % 1000 == 999:
        out.flush()
        time.sleep(0.05)
out.flush()
EOF
GEN_PID=$!
timeout 300 "$SLUICE" produce idem -b "$BROKER" -k '|' -X retry.backoff.max.ms=200 \
    <"$W/lines" 2>"$W/idem.err" &
CLI_PID=$!
sleep 1
broker_stop TERM || fail "sluiced did not exit 0 on SIGTERM"
sleep 0.5
broker_start --set "listeners=PLAINTEXT://127.0.0.1:$PORT" --set num.partitions=$PARTITIONS
rc=0
wait $CLI_PID || rc=$?
wait $GEN_PID || true
GEN_PID=""
[ $rc -eq 0 ] || { cat "$W/idem.err" >&2; fail "produce through the restart: exit $rc"; }
grep -q "sluice produce: $RESTART_N records .* 0 errors" "$W/idem.err" ||
    fail "restart run summary: $(tail -3 "$W/idem.err")"
grep -q "connection closed by broker\|Connection refused" "$W/idem.err" ||
    fail "the client never saw the broker go away: the restart proved nothing"
timeout 60 kcat -b "$BROKER" -C -t idem -e -q -f '%p %o %k %s\n' >"$W/idem.txt" ||
    fail "kcat consume idem"
$PY - "$RESTART_N" "$W/idem.txt" <<'EOF' || fail "restart run: records lost, duplicated or reordered"
import collections, sys
n, path = int(sys.argv[1]), sys.argv[2]
seen = collections.Counter()
last = {}
bad = 0
for line in open(path):
    part, off, key, value = line.split()
    seq = int(value.split("=")[1])
    seen[seq] += 1
    if key != "k%02d" % (seq % 16):
        bad += 1
    if seq <= last.get(part, -1):
        print("partition %s: seq %d after %d" % (part, seq, last[part]), file=sys.stderr)
        bad += 1
    last[part] = seq
dups = [s for s, c in seen.items() if c > 1]
lost = [s for s in range(n) if s not in seen]
print("records %d, distinct %d, duplicated %d, lost %d" % (sum(seen.values()), len(seen), len(dups), len(lost)))
sys.exit(1 if dups or lost or bad else 0)
EOF
# A topic that does not exist, where the broker does not create topics.
broker_stop TERM || fail "sluiced did not exit 0 on SIGTERM"
broker_start --set "listeners=PLAINTEXT://127.0.0.1:$PORT" --set auto.create.topics.enable=false
rc=0
echo x | timeout 30 "$SLUICE" produce no-such-topic -b "$BROKER" 2>"$W/notopic.err" || rc=$?
[ $rc -eq 4 ] && grep -q "topic no-such-topic does not exist" "$W/notopic.err" ||
    fail "unknown topic: exit $rc: $(cat "$W/notopic.err")"
broker_stop TERM || fail "sluiced did not exit 0 on the last SIGTERM"
if grep -E 'AddressSanitizer|LeakSanitizer|runtime error|assertion failed' "$W"/*.err \
    "$W"/sluiced.*.log >&2; then
    fail "sanitizer or assertion report"
fi
echo "client_produce: $N records x 2 codecs byte-identical, partitions as Java and librdkafka," \
    "$RESTART_N idempotent records through a restart exactly once: ok"
