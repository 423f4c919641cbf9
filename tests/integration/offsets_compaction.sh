#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# 100,000 commits to one group keep __consumer_offsets small: the coordinator
# rewrites a partition's live records and deletes the segments below, so the
# bytes under <data>/__consumer_offsets-*/ stay bounded by a few segments
# while the commits, appended as they come, add up to megabytes. The commits
# are raw OffsetCommit v2 frames, 64 in flight on one connection (a
# librdkafka commit loop is an order of magnitude slower). Checked:
#   - every commit is acknowledged without error,
#   - the bytes on disk (apparent and allocated), sampled every 2,000
#     commits, never pass BOUND_BYTES, and the rewrites are in the broker log,
#   - the log start of the group's partition moved past the old commits,
#   - after a restart the group's offsets are the last ones committed, and an
#     offset committed once before the 100,000 (rewritten many times over)
#     is still there.
# Segments are 64 KiB and fallocate steps 64 KiB too: with the default 16 MiB
# step, the active segment's preallocation alone would hide what compaction
# does to the bytes.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/broker.sh

COMMITS=100000
SEGMENT_BYTES=65536
# A rewrite starts once 64 KiB (or 4x the live bytes) came in since the last
# one, and deletes the segments wholly below where it began: just before a
# rewrite the busy partition holds about three segments. 8 segments leave room
# for index files, 4 KiB blocks and a segment preallocated ahead; without
# compaction the 100,000 commits take about 13 MB (132 bytes each).
BOUND_BYTES=$((8 * SEGMENT_BYTES))

BROKER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/sluice-oc-XXXXXX")
trap 'kill -9 $BROKER_PID 2>/dev/null || true; rm -rf "$BROKER_DIR"' EXIT
SETTINGS=(--set "offsets.topic.segment.bytes=$SEGMENT_BYTES"
    --set "log.preallocate.bytes=$SEGMENT_BYTES")
broker_start "${SETTINGS[@]}"

# commit: the 100,000 commits, with the disk sampled as they go.
# check:  the offsets and the log start, after the restart.
run() {
    BROKER=$BROKER DATA=$BROKER_DIR/data COMMITS=$COMMITS BOUND=$BOUND_BYTES \
        timeout 60 /usr/bin/python3 - "$@" <<'EOF'
import os, sys, time
sys.path.insert(0, "tests/integration")
from groups import API_OFFSET_COMMIT, Wire, offset_commit, offset_commit_body, \
    offset_commit_errors, offset_fetch

broker, data = os.environ["BROKER"], os.environ["DATA"]
commits, bound = int(os.environ["COMMITS"]), int(os.environ["BOUND"])
group, busy, cold, parts, depth = "compaction-group", "oc-busy", "oc-cold", 4, 64
last = {p: commits - parts + p for p in range(parts)}  # commit i: partition i % 4, offset i


def disk():
    """(apparent bytes, allocated bytes) of every file of the offsets topic."""
    size = blocks = 0
    for d in os.listdir(data):
        if d.startswith("__consumer_offsets-"):
            for f in os.scandir(os.path.join(data, d)):
                try:
                    st = f.stat()
                except FileNotFoundError:
                    continue  # deleted by a rewrite between listing and stat
                size, blocks = size + st.st_size, blocks + st.st_blocks * 512
    return size, blocks


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


w = Wire(broker)
if sys.argv[1] == "commit":
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": broker})
    for t, n in ((busy, parts), (cold, 1)):
        admin.create_topics([NewTopic(t, n, 1)])[t].result(15)
    errs = offset_commit(w, group, [(cold, 0, 42)])
    if errs != {(cold, 0): 0}:
        fail("commit to %s: %s" % (cold, errs))
    t0 = time.monotonic()
    sent = acked = 0
    peak = (0, 0)
    while acked < commits:
        while sent < commits and sent - acked < depth:
            w.send(API_OFFSET_COMMIT, 2, offset_commit_body(group, [(busy, sent % parts, sent)]))
            sent += 1
        _, resp = w.recv()
        errs = offset_commit_errors(resp)
        if errs != [(busy, acked % parts, 0)]:
            fail("commit %d answered %s" % (acked, errs))
        acked += 1
        if acked % 2000 == 0:
            now = disk()
            peak = (max(peak[0], now[0]), max(peak[1], now[1]))
            if max(now) > bound:
                fail("after %d commits the offsets topic holds %d bytes (%d allocated), "
                     "bound %d" % (acked, now[0], now[1], bound))
    took = time.monotonic() - t0
    got = offset_fetch(w, group, busy, list(range(parts)))
    if got != last:
        fail("committed %s, want %s" % (got, last))
    print("%d commits in %.1f s (%.0f/s), offsets topic at most %d bytes (%d allocated), "
          "bound %d" % (commits, took, commits / took, peak[0], peak[1], bound))
else:
    got = offset_fetch(w, group, busy, list(range(parts)))
    got_cold = offset_fetch(w, group, cold, [0])
    if got != last or got_cold != {0: 42}:
        fail("after restart: committed %s and %s, want %s and {0: 42}" % (got, got_cold, last))
    now = disk()
    if max(now) > bound:
        fail("after restart the offsets topic holds %d bytes (%d allocated)" % now)
    # The group's partition: the one whose log starts past offset 0. Its
    # start moved past nearly all of the 100,000 commits.
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": broker, "group.id": "oc-reader"})
    md = c.list_topics("__consumer_offsets", timeout=10).topics["__consumer_offsets"]
    marks = {p: c.get_watermark_offsets(TopicPartition("__consumer_offsets", p), timeout=10)
             for p in md.partitions}
    c.close()
    used = {p: m for p, m in marks.items() if m[1] > 0}
    if len(used) != 1:
        fail("offsets partitions with records: %s, want one" % used)
    (p, (low, high)), = used.items()
    if high < commits or high - low > commits // 10:
        fail("__consumer_offsets-%d keeps offsets %d..%d of %d appended" % (p, low, high, high))
    print("after restart: offsets %s and %s=42 kept; __consumer_offsets-%d keeps %d of %d "
          "records; %d bytes (%d allocated)" % (got, cold, p, high - low, high, now[0], now[1]))
w.close()
EOF
}

run commit || fail "commits"
rewrites=$(grep -c 'offsets partition rewritten' "$BROKER_LOG" || true)
deleted=$(grep 'offsets partition rewritten' "$BROKER_LOG" | grep -vc 'segments_deleted=0' || true)
echo "rewrites: $rewrites, $deleted of them deleted segments"
if [ "$rewrites" -lt 10 ] || [ "$deleted" -lt 10 ]; then
    fail "$rewrites rewrites, $deleted deleting segments: compaction did not run"
fi
broker_stop TERM || fail "sluiced did not exit 0 on SIGTERM"
broker_start "${SETTINGS[@]}"
grep -q 'coordinator loaded groups=1 offsets=5 ' "$BROKER_LOG" ||
    fail "the restarted coordinator did not load 1 group with 5 offsets"
run check || fail "after restart"
broker_stop TERM || fail "sluiced did not exit 0 on SIGTERM"
if grep -E 'assertion failed|AddressSanitizer|LeakSanitizer|runtime error' \
    "$BROKER_DIR"/sluiced.*.log >&2; then
    fail "sanitizer or assertion report in a broker log"
fi
echo "offsets_compaction: $COMMITS commits, disk bounded by $BOUND_BYTES bytes, offsets kept: ok"
