#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# kill -9 of sluiced in the middle of a stream of offset commits, five times,
# then SIGTERM. A committer sends OffsetCommit v2 frames (16 in flight) for 4
# groups x 4 partitions, each commit a larger offset than the last for its
# key, and records every acknowledgement (error 0) as it arrives. Segments of
# __consumer_offsets are 4 KiB (the least allowed), so the coordinator's
# compaction (rewrite, then delete the segments below) runs every few dozen
# commits of a partition, about 50 times a round, and a kill may land inside
# one. After each restart, for every group and partition:
#   - the committed offset is at least the last acknowledged one (nothing
#     acknowledged is lost, not even by a rewrite cut short),
#   - it is at most the last one sent, and one this key was sent (nothing
#     invented, nothing from another key),
#   - a group committed once at the start still has its offset,
#   - the coordinator reloads exactly 5 groups and 17 offsets.
# Then a confluent_kafka group member committing every message goes through
# one more kill -9 (sluiced back on the same port): its acknowledged commits
# are kept, and it reads every record, none below a commit twice.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/broker.sh

PY=/usr/bin/python3
ROUNDS=6
SIGNALS=(KILL KILL KILL KILL KILL TERM)
ACKED_BEFORE_KILL=2000
SETTINGS=(--set offsets.topic.segment.bytes=4096 --set log.preallocate.bytes=4096)

COMMITTER_PID=""
cleanup() {
    if [ -n "$COMMITTER_PID" ]; then kill -9 "$COMMITTER_PID" 2>/dev/null || true; fi
    kill -9 "${BROKER_PID:-}" 2>/dev/null || true
    rm -rf "${BROKER_DIR:-/nonexistent}"
}
trap cleanup EXIT

# wait_bounded PID SECONDS: waits for a background child (started without a
# timeout wrapper, so that cleanup's kill reaches the process itself) and
# returns its exit code; 124 when it is still running after SECONDS.
wait_bounded() {
    local _
    for _ in $(seq 1 $(($2 * 20))); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$1" 2>/dev/null; then
        kill -9 "$1" 2>/dev/null || true
        wait "$1" 2>/dev/null || true
        return 124
    fi
    wait "$1"
}

BROKER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/sluice-chaos-commits-XXXXXX")
W=$BROKER_DIR/work
mkdir -p "$W"

# commit i of round r: group kc-g(i % 4), partition (i / 4) % 4, offset
# r * 10^7 + i; so offset mod 16 names the key. Writes "group partition
# offset" per acknowledgement, and at the end (the broker gone, or the
# deadline) the largest offset sent per key.
cat >"$W/committer.py" <<'EOF'
import sys, time
sys.path.insert(0, "tests/integration")
from groups import API_OFFSET_COMMIT, Wire, offset_commit_body, offset_commit_errors

broker, round_no, acked_path, sent_path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
acked = open(acked_path, "w", buffering=1)
sent_max, inflight, i, bad = {}, [], 0, 0
w = Wire(broker, timeout=5)
deadline = time.monotonic() + 20
try:
    while time.monotonic() < deadline:
        while len(inflight) < 16:
            key = ("kc-g%d" % (i % 4), (i // 4) % 4)
            offset = round_no * 10**7 + i
            w.send(API_OFFSET_COMMIT, 2, offset_commit_body(key[0], [("kc", key[1], offset)]))
            sent_max[key] = offset
            inflight.append((key, offset))
            i += 1
        _, resp = w.recv()
        (key, offset), inflight = inflight[0], inflight[1:]
        if offset_commit_errors(resp) == [("kc", key[1], 0)]:
            acked.write("%s %d %d\n" % (key[0], key[1], offset))
        else:
            bad += 1
except (ConnectionError, OSError) as e:
    print("committer: connection ended: %r" % (e,), file=sys.stderr)
with open(sent_path, "w") as f:
    for (g, p), o in sorted(sent_max.items()):
        f.write("%s %d %d\n" % (g, p, o))
print("committer round %d: sent %d, refused %d" % (round_no, i, bad), file=sys.stderr)
sys.exit(1 if bad else 0)
EOF

# Prints "group partition committed" for every key, and the steady group's.
cat >"$W/fetch.py" <<'EOF'
import sys
sys.path.insert(0, "tests/integration")
from groups import Wire, offset_fetch
w = Wire(sys.argv[1])
for g in range(4):
    for p, o in sorted(offset_fetch(w, "kc-g%d" % g, "kc", [0, 1, 2, 3]).items()):
        print("kc-g%d %d %d" % (g, p, o))
print("kc-steady 0 %d" % offset_fetch(w, "kc-steady", "kc", [0])[0])
EOF

# Checks the committed offsets against everything acknowledged and sent.
verify() {
    local round=$1 got=$W/committed.$1
    timeout 20 $PY "$W/fetch.py" "$BROKER" >"$got" || fail "round $round: OffsetFetch"
    grep -qx 'kc-steady 0 7' "$got" || fail "round $round: the steady group lost its offset 7"
    awk 'FILENAME == ARGV[1] { if ($3 > ack[$1" "$2]) ack[$1" "$2] = $3; next }
         FILENAME == ARGV[2] { if ($3 > sent[$1" "$2]) sent[$1" "$2] = $3; next }
         $1 == "kc-steady" { next }
         {
             k = $1" "$2; n++
             g = substr($1, 5) + 0
             if (!(k in ack)) { printf "%s: nothing acknowledged?\n", k; bad = 1 }
             if ($3 < ack[k]) {
                 printf "%s: committed %s, acknowledged %s\n", k, $3, ack[k]; bad = 1
             }
             if ($3 > sent[k]) {
                 printf "%s: committed %s, largest sent %s\n", k, $3, sent[k]; bad = 1
             }
             if (($3 % 10000000) % 16 != $2 * 4 + g) {
                 printf "%s: offset %s was never sent for it\n", k, $3; bad = 1
             }
         }
         END { if (n != 16) { printf "%d keys, want 16\n", n; bad = 1 }; exit bad }' \
        "$W/acked.all" "$W/sent.all" "$got" >&2 ||
        fail "round $round: acknowledged commits lost or offsets invented after kill -9"
    grep -q 'coordinator loaded groups=5 offsets=17 ' "$BROKER_LOG" ||
        fail "round $round: the coordinator did not reload 5 groups and 17 offsets"
    echo "round $round: 16 keys at or past their last acknowledged commit" \
        "($(wc -l <"$W/acked.all") acknowledged so far)"
}

: >"$W/acked.all"
: >"$W/sent.all"
broker_start "${SETTINGS[@]}"
$PY - "$BROKER" <<'EOF' || fail "setup"
import sys
sys.path.insert(0, "tests/integration")
from confluent_kafka.admin import AdminClient, NewTopic
from groups import Wire, offset_commit
admin = AdminClient({"bootstrap.servers": sys.argv[1]})
admin.create_topics([NewTopic("kc", 4, 1)])["kc"].result(15)
assert offset_commit(Wire(sys.argv[1]), "kc-steady", [("kc", 0, 7)]) == {("kc", 0): 0}
EOF
for round in $(seq 1 $ROUNDS); do
    acked=$W/acked.$round
    : >"$acked"
    $PY "$W/committer.py" "$BROKER" "$round" "$acked" "$W/sent.$round" \
        2>"$W/committer.$round.log" &
    COMMITTER_PID=$!
    for _ in $(seq 1 400); do
        [ "$(wc -l <"$acked")" -ge $ACKED_BEFORE_KILL ] && break
        kill -0 "$COMMITTER_PID" 2>/dev/null || break
        sleep 0.025
    done
    [ "$(wc -l <"$acked")" -ge $ACKED_BEFORE_KILL ] || {
        cat "$W/committer.$round.log" >&2
        fail "round $round: only $(wc -l <"$acked") acknowledgements before the kill"
    }
    sleep "0.$((RANDOM % 4))" # land the kill at different points of the stream
    sig=${SIGNALS[$((round - 1))]}
    if [ "$sig" = TERM ]; then
        broker_stop TERM || fail "round $round: sluiced did not exit 0 on SIGTERM under commits"
    else
        broker_stop KILL || true
    fi
    rc=0
    wait_bounded "$COMMITTER_PID" 30 || rc=$?
    COMMITTER_PID=""
    cat "$W/committer.$round.log"
    [ "$rc" -eq 0 ] || fail "round $round: the committer failed (rc $rc)"
    echo "round $round: sluiced got SIG$sig after $(wc -l <"$acked") acknowledged commits," \
        "$(grep -c 'offsets partition rewritten' "$BROKER_LOG" || true) compactions"
    cat "$acked" >>"$W/acked.all"
    cat "$W/sent.$round" >>"$W/sent.all"

    broker_start "${SETTINGS[@]}" # same BROKER_DIR: recovery and replay after kill -9
    verify "$round"
done

# A real client through a kill -9: a confluent_kafka group member commits
# every message synchronously (commit(message=..., asynchronous=False)) and
# logs each read and each acknowledged commit; sluiced is killed and
# restarted on the same port, and the member carries on by itself. Right
# after the restart the group's offsets are at least the last acknowledged
# ones; at the end every record was read, none below an acknowledged commit
# twice, and the last commits are the partitions' ends.
cat >"$W/member.py" <<'EOF'
import sys, time
from confluent_kafka import Consumer, KafkaException
broker, out = sys.argv[1], open(sys.argv[2], "w", buffering=1)
c = Consumer({"bootstrap.servers": broker, "group.id": "kc-member", "enable.auto.commit": False,
              "auto.offset.reset": "earliest", "session.timeout.ms": 10000,
              "heartbeat.interval.ms": 200, "client.id": "kc-member"})
c.subscribe(["kc-client"])
seen, refused = set(), 0
deadline = time.monotonic() + 40
while len(seen) < 4000 and time.monotonic() < deadline:
    m = c.poll(0.1)
    if m is None or m.error() is not None:
        continue
    out.write("read %d %d\n" % (m.partition(), m.offset()))
    seen.add((m.partition(), m.offset()))
    try:
        c.commit(message=m, asynchronous=False)
        out.write("acked %d %d\n" % (m.partition(), m.offset() + 1))
    except KafkaException:
        refused += 1
    time.sleep(0.001)  # a steady stream of commits, not a burst
c.close()
print("member: %d distinct records read, %d commits refused" % (len(seen), refused),
      file=sys.stderr)
EOF
cat >"$W/member_fetch.py" <<'EOF'
import sys
sys.path.insert(0, "tests/integration")
from groups import Wire, offset_fetch
for p, o in sorted(offset_fetch(Wire(sys.argv[1]), "kc-member", "kc-client", [0, 1]).items()):
    print("acked %d %d" % (p, o))
EOF
$PY - "$BROKER" <<'EOF' || fail "client phase: setup"
import sys
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
admin = AdminClient({"bootstrap.servers": sys.argv[1]})
admin.create_topics([NewTopic("kc-client", 2, 1)])["kc-client"].result(15)
p = Producer({"bootstrap.servers": sys.argv[1], "acks": "all"})
for i in range(4000):
    p.produce("kc-client", value=b"%d" % i, partition=i % 2)
assert p.flush(15) == 0
EOF
port=${BROKER##*:}
member_log=$W/member.log
: >"$member_log"
$PY "$W/member.py" "$BROKER" "$member_log" 2>"$W/member.err" &
COMMITTER_PID=$!
for _ in $(seq 1 400); do
    [ "$(grep -c '^acked' "$member_log" || true)" -ge 1000 ] && break
    kill -0 "$COMMITTER_PID" 2>/dev/null || break
    sleep 0.025
done
broker_stop KILL || true
grep '^acked' "$member_log" >"$W/member.acked.before" || true
[ "$(wc -l <"$W/member.acked.before")" -ge 1000 ] ||
    fail "client phase: $(wc -l <"$W/member.acked.before") commits before the kill:" \
        "$(cat "$W/member.err")"
broker_start "${SETTINGS[@]}" --set "listeners=PLAINTEXT://127.0.0.1:$port"
timeout 20 $PY "$W/member_fetch.py" "$BROKER" >"$W/member.committed" ||
    fail "client phase: OffsetFetch after the kill"
awk 'FILENAME == ARGV[1] { if ($3 > a[$2]) a[$2] = $3; next }
     ($2 in a) && $3 < a[$2] {
         printf "partition %s: committed %s after restart, acknowledged %s\n", $2, $3, a[$2]
         bad = 1
     }
     END { exit bad }' "$W/member.acked.before" "$W/member.committed" >&2 ||
    fail "client phase: a commit acknowledged to the confluent member was lost by kill -9"
rc=0
wait_bounded "$COMMITTER_PID" 60 || rc=$?
COMMITTER_PID=""
cat "$W/member.err"
[ "$rc" -eq 0 ] || fail "client phase: the member failed (rc $rc)"
awk 'FILENAME == ARGV[1] { if ($3 > a[$2]) a[$2] = $3; next }
     $1 == "read" {
         if (++n[$2" "$3] == 2 && ($2 in a) && $3 < a[$2]) {
             printf "partition %s offset %s read again, below acknowledged commit %s\n",
                 $2, $3, a[$2]
             bad = 1
         }
     }
     END {
         for (p = 0; p < 2; p++) for (o = 0; o < 2000; o++) if (!((p" "o) in n)) missing++
         if (missing) { printf "%d records never read\n", missing; bad = 1 }
         exit bad
     }' "$W/member.acked.before" "$member_log" >&2 ||
    fail "client phase: the confluent member skipped records or read committed ones again"
timeout 20 $PY "$W/member_fetch.py" "$BROKER" >"$W/member.committed.end" ||
    fail "client phase: OffsetFetch at the end"
[ "$(cat "$W/member.committed.end")" = "acked 0 2000
acked 1 2000" ] || fail "client phase: final commits $(cat "$W/member.committed.end")"
echo "client phase: $(wc -l <"$W/member.acked.before") commits acknowledged to a confluent" \
    "member before kill -9, all kept; 4000 records read, none committed read again"

broker_stop TERM || fail "sluiced did not exit 0 on SIGTERM at the end"
if grep -E 'assertion failed|AddressSanitizer|LeakSanitizer|runtime error' \
    "$BROKER_DIR"/sluiced.*.log >&2; then
    fail "sanitizer or assertion report in a broker log"
fi
echo "kill9_commits: $ROUNDS stops under commits (kill -9 x5, SIGTERM) and a confluent member" \
    "through kill -9, every acknowledged commit kept: ok"
