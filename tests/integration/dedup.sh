#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The msg-id window (topic setting dedup.window.ms): a producer that comes
# back under a new producer id and resends its last 1,000 messages with the
# same msg-id headers writes 0 duplicates, before and after a kill -9 of the
# broker; a batch holding some duplicates is stored without them (plain and
# zstd); once the window has passed the same ids are accepted again; codecs
# the broker cannot open are refused on a dedup topic.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/broker.sh

py=/usr/bin/python3
BROKER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/sluice-dedup-XXXXXX")
trap 'kill -9 $BROKER_PID 2>/dev/null || true; rm -rf "$BROKER_DIR"' EXIT
broker_start

# run OP ARGS: create TOPIC WINDOW_MS | send TOPIC FROM TO CODEC
#              | check TOPIC RECORDS (distinct ids, no id twice)
run() {
    BROKER=$BROKER $py - "$@" <<'EOF'
import os, sys
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

broker = os.environ["BROKER"]
op, args = sys.argv[1], sys.argv[2:]
if op == "create":
    a = AdminClient({"bootstrap.servers": broker})
    a.create_topics([NewTopic(args[0], 1, 1, config={"dedup.window.ms": args[1]})])[
        args[0]].result(10)
elif op == "send":
    topic, lo, hi, codec = args[0], int(args[1]), int(args[2]), args[3]
    # A new process: a new producer id, as after a crash.
    p = Producer({"bootstrap.servers": broker, "enable.idempotence": True, "acks": "all",
                  "linger.ms": 50, "compression.type": codec, "message.timeout.ms": 10000})
    errors, offsets = [], {}
    def report(err, msg):
        if err:
            errors.append(err)
        else:
            offsets[msg.value()] = msg.offset()
    for i in range(lo, hi):
        p.produce(topic, value=b"v%d" % i, headers=[("msg-id", b"id-%d" % i)],
                  partition=0, on_delivery=report)
    p.flush(20)
    if errors:
        sys.exit("delivery errors: %s" % errors[:3])
    if len(offsets) != hi - lo:
        sys.exit("%d reports for %d messages" % (len(offsets), hi - lo))
    print("offsets %d..%d" % (min(offsets.values()), max(offsets.values())))
elif op == "check":
    topic, want = args[0], int(args[1])
    c = Consumer({"bootstrap.servers": broker, "group.id": "check", "enable.auto.commit": False})
    lo, hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    c.assign([TopicPartition(topic, 0, 0)])
    ids, dups, last = set(), 0, -1
    while last < hi - 1:
        m = c.poll(5)
        if m is None:
            break
        if m.error():
            continue
        last = m.offset()
        i = dict(m.headers())["msg-id"]
        dups += i in ids
        ids.add(i)
    c.close()
    if dups != 0 or len(ids) != want:
        sys.exit("%s: %d distinct ids (want %d), %d duplicates" % (topic, len(ids), want, dups))
    print("%s: %d records, 0 duplicates" % (topic, len(ids)))
EOF
}

run create dd 60000 || fail "create dd"
run send dd 0 2000 none >/dev/null || fail "first producer"
# Back under a new producer id: the last 1,000 again, then the same as zstd.
out=$(run send dd 1000 2000 none) || fail "resend"
[ "$out" = "offsets 1000..1999" ] || fail "resent duplicates not answered with their offsets: $out"
run send dd 1000 2000 zstd >/dev/null || fail "resend zstd"
run check dd 2000 || fail "duplicates after resends"

# Batches holding some duplicates: rebuilt without them.
run send dd 1900 2100 none >/dev/null || fail "partial resend"
run send dd 2050 2200 zstd >/dev/null || fail "partial resend zstd"
run check dd 2200 || fail "duplicates after partial resends"

# kill -9: the table is rebuilt from the log's tail.
broker_stop KILL || true
broker_start
run send dd 1200 2200 zstd >/dev/null || fail "resend after kill -9"
run check dd 2200 || fail "duplicates after kill -9"
grep -q "msg-ids loaded partition=dd-0 ids=2200" "$BROKER_LOG" ||
    fail "msg-id table not rebuilt at start"

# Past the window the same ids are new again.
run create short 1500 || fail "create short"
run send short 0 100 none >/dev/null || fail "short first"
run send short 0 100 none >/dev/null || fail "short resend"
run check short 100 || fail "short: duplicates inside the window"
sleep 1.6
run send short 0 100 none >/dev/null || fail "short after the window"
ids=$(run check short 100 2>&1 || true)
case "$ids" in *"100 duplicates"*) ;; *) fail "short: ids not accepted again after the window: $ids" ;; esac

# The other codecs are read too: duplicates dropped, partial batches rebuilt.
run send dd 1200 2250 gzip >/dev/null || fail "resend gzip"
run send dd 2100 2300 lz4 >/dev/null || fail "partial resend lz4"
run send dd 2250 2400 snappy >/dev/null || fail "partial resend snappy"
run check dd 2400 || fail "duplicates after gzip, lz4 and snappy resends"
broker_stop TERM || fail "sluiced did not exit 0 on SIGTERM"
echo "dedup: msg-id window across new producer ids, every codec, partial batches, kill -9, expiry: ok"
