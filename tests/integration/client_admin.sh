#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# libsluice's admin calls, through `sluice topic|group|cluster`, against a
# real sluiced, checked with exact values and, where it matters, by
# confluent_kafka (librdkafka) as a second opinion:
#   1. cluster info (human and --json).
#   2. topic create with partitions and configs (AdminClient confirms both),
#      again (TOPIC_ALREADY_EXISTS, exit 1), a bad replication factor,
#      --validate-only (nothing created); list and describe, human and
#      --json (offsets after a produce); a missing topic exits 4.
#   3. A confluent_kafka consumer in a group commits known offsets and stays:
#      group list, group describe (member, its assignment, lag) in both
#      forms; seek is refused while it is there.
#   4. Once it left: seek to the beginning and to an offset, each checked by
#      a fresh confluent consumer of the group starting there; seek to the
#      end shows no lag; delete the group (then exit 4).
#   5. topic delete, twice (exit 4); an unreachable broker exits 3 and names
#      the address and the cause.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/broker.sh

PY=/usr/bin/python3
SLUICE=$BUILD/sluice

broker_start --set group.initial.rebalance.delay.ms=0
W=$BROKER_DIR
CONSUMER_PID=""
trap '[ -n "$CONSUMER_PID" ] && kill -9 $CONSUMER_PID 2>/dev/null; kill -9 $BROKER_PID 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$W"' EXIT
export SLUICE_BROKERS=$BROKER
PORT=${BROKER##*:}

# Runs the CLI: stdout to $W/out, stderr to $W/err, exit code to $RC.
run() {
    RC=0
    "$SLUICE" "$@" >"$W/out" 2>"$W/err" || RC=$?
}
expect_rc() { # expect_rc CODE WHAT
    [ "$RC" = "$1" ] || {
        cat "$W/out" "$W/err" >&2
        fail "$2: exit $RC, expected $1"
    }
}
has() { grep -Eq -- "$1" "$2" || { cat "$2" >&2; fail "no line matching /$1/ in $(basename "$2")"; }; }
# json 'PYTHON EXPRESSION over d' : true or fail (stdout must parse as JSON).
json() {
    $PY -c 'import json, sys; d = json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' \
        "$W/out" "$1" || { cat "$W/out" >&2; fail "JSON check failed: $1"; }
}

# ---- 1. cluster info ---------------------------------------------------------
run cluster info
expect_rc 0 "cluster info"
has '^CLUSTER +sluice-cluster$' "$W/out"
has '^CONTROLLER +1$' "$W/out"
has "^1\\* +127\\.0\\.0\\.1 +$PORT +-$" "$W/out"
run cluster info --json
expect_rc 0 "cluster info --json"
json "d['cluster_id'] == 'sluice-cluster' and d['controller'] == 1 and d['brokers'] == [{'id': 1, 'host': '127.0.0.1', 'port': $PORT, 'rack': None}]"
echo "ok: cluster info"

# ---- 2. topics ---------------------------------------------------------------
run topic create orders -p 3 -c retention.ms=3600000 -c segment.ms=86400000
expect_rc 0 "topic create"
has '^orders +OK' "$W/out"
$PY - "$BROKER" <<'EOF' || fail "AdminClient does not see orders as created"
import sys
from confluent_kafka.admin import AdminClient, ConfigResource
a = AdminClient({"bootstrap.servers": sys.argv[1]})
md = a.list_topics(timeout=10)
assert len(md.topics["orders"].partitions) == 3, md.topics["orders"].partitions
res = ConfigResource(ConfigResource.Type.TOPIC, "orders")
cfg = a.describe_configs([res])[res].result(timeout=10)
assert cfg["retention.ms"].value == "3600000", cfg["retention.ms"]
assert cfg["segment.ms"].value == "86400000", cfg["segment.ms"]
EOF
run topic create orders -p 3
expect_rc 1 "create of an existing topic"
has '^orders +TOPIC_ALREADY_EXISTS +Topic .orders. already exists' "$W/out"
has 'orders: TOPIC_ALREADY_EXISTS' "$W/err"
run topic create wide -r 3 --json
expect_rc 1 "replication factor 3 on one broker"
json "d[0]['topic'] == 'wide' and d[0]['error'] == 'INVALID_REPLICATION_FACTOR' and d[0]['message']"
run topic create compacted -c cleanup.policy=compact
expect_rc 1 "a setting the broker refuses"
has 'compacted: INVALID_CONFIG: Invalid value compact for configuration cleanup.policy' "$W/err"
run topic create dryrun -p 2 --validate-only
expect_rc 0 "--validate-only"
run topic create events -p 2
expect_rc 0 "topic create events"
echo "ok: topic create (partitions, configs, exists, bad replication, bad config, validate-only)"

run topic list
expect_rc 0 "topic list"
has '^NAME +PARTITIONS +REPLICAS$' "$W/out"
has '^orders +3 +1$' "$W/out"
has '^events +2 +1$' "$W/out"
grep -q dryrun "$W/out" && fail "--validate-only created the topic"
run topic list --json
expect_rc 0 "topic list --json"
json "sorted((t['name'], t['partitions'], t['replicas'], t['internal']) for t in d) == [('events', 2, 1, False), ('orders', 3, 1, False)] and all(len(t['id']) == 22 for t in d)"

printf 'a\nb\nc\nd\ne\n' | "$SLUICE" produce orders -p 2 -q || fail "produce to orders"
run topic describe orders
expect_rc 0 "topic describe"
has '^PARTITIONS +3$' "$W/out"
has '^retention\.ms +3600000 +DYNAMIC_TOPIC_CONFIG$' "$W/out"
has '^segment\.ms +86400000 +DYNAMIC_TOPIC_CONFIG$' "$W/out"
has '^cleanup\.policy +delete +STATIC_BROKER_CONFIG$' "$W/out"
has '^PARTITION +LEADER +EPOCH +REPLICAS +ISR +LOG-START +HIGH-WATERMARK$' "$W/out"
has '^0 +1 +[0-9]+ +\[1\] +\[1\] +0 +0$' "$W/out"
has '^2 +1 +[0-9]+ +\[1\] +\[1\] +0 +5$' "$W/out"
run topic describe orders --json
expect_rc 0 "topic describe --json"
json "d['name'] == 'orders' and [(p['partition'], p['leader'], p['replicas'], p['isr'], p['log_start'], p['high_watermark']) for p in d['partitions']] == [(0, 1, [1], [1], 0, 0), (1, 1, [1], [1], 0, 0), (2, 1, [1], [1], 0, 5)]"
json "{c['name']: (c['value'], c['source'], c['default']) for c in d['configs']}['retention.ms'] == ('3600000', 'DYNAMIC_TOPIC_CONFIG', False)"
run topic describe missing
expect_rc 4 "describe of a missing topic"
has 'topic missing does not exist' "$W/err"
echo "ok: topic list and describe (human, --json), missing topic exits 4"

# ---- 3. a group with a member ------------------------------------------------
printf '0\n1\n2\n3\n' | "$SLUICE" produce events -p 0 -q || fail "produce to events/0"
printf '0\n1\n2\n3\n4\n5\n' | "$SLUICE" produce events -p 1 -q || fail "produce to events/1"

# member.py BROKER GROUP MODE: "stay" reads all 10 records, commits 3 of
# partition 0 and 6 of partition 1, says "ready", and stays until $W/stop
# appears; "read" commits nothing and prints the first offset it reads per
# partition once both partitions went quiet.
cat >"$W/member.py" <<'EOF'
import os, sys, time
from confluent_kafka import Consumer, TopicPartition
broker, group, mode, stop = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
c = Consumer({"bootstrap.servers": broker, "group.id": group, "client.id": "pymember",
              "auto.offset.reset": "latest", "enable.auto.commit": False,
              "session.timeout.ms": 6000})
c.subscribe(["events"])
first, count, deadline, quiet = {}, 0, time.time() + 20, None
while time.time() < deadline:
    m = c.poll(0.1)
    if m is not None and not m.error():
        first.setdefault(m.partition(), m.offset())
        count += 1
        quiet = time.time()
    if mode == "stay" and count == 10:
        c.commit(offsets=[TopicPartition("events", 0, 3), TopicPartition("events", 1, 6)],
                 asynchronous=False)
        print("ready", flush=True)
        while not os.path.exists(stop) and time.time() < deadline:
            c.poll(0.1)
        break
    if mode == "read" and quiet is not None and time.time() - quiet > 1.0:
        print(" ".join("%d:%d" % kv for kv in sorted(first.items())), count, flush=True)
        break
c.close()
EOF
# "latest" would skip what is there: the member starts from the beginning
# by a seek of the group made before it joins.
run group seek readers --to beginning --topic events
expect_rc 0 "seek of a new group"
has '^events +0 +- +0$' "$W/out"
$PY "$W/member.py" "$BROKER" readers stay "$W/stop" >"$W/member.out" 2>&1 &
CONSUMER_PID=$!
for _ in $(seq 1 150); do
    grep -q ready "$W/member.out" && break
    kill -0 $CONSUMER_PID 2>/dev/null || { cat "$W/member.out" >&2; fail "the member died"; }
    sleep 0.1
done
grep -q ready "$W/member.out" || fail "the member did not commit within 15 s"

run group list
expect_rc 0 "group list"
has '^GROUP +STATE +PROTOCOL-TYPE$' "$W/out"
has '^readers +Stable +consumer$' "$W/out"
run group list --json
json "[g for g in d if g['group'] == 'readers'] == [{'group': 'readers', 'state': 'Stable', 'protocol_type': 'consumer'}]"
run group describe readers
expect_rc 0 "group describe"
has '^readers +1 +Stable +consumer +range +1$' "$W/out"
has '^events +0 +3 +4 +1 +pymember-[^ ]+ +pymember +127\.0\.0\.1$' "$W/out"
has '^events +1 +6 +6 +0 +pymember-[^ ]+ +pymember +127\.0\.0\.1$' "$W/out"
run group describe readers --json
expect_rc 0 "group describe --json"
json "d['state'] == 'Stable' and len(d['members']) == 1 and d['members'][0]['client_id'] == 'pymember' and d['members'][0]['assignment'] == [{'topic': 'events', 'partitions': [0, 1]}]"
json "[(o['partition'], o['current_offset'], o['log_end_offset'], o['lag'], o['member_id'] == d['members'][0]['member_id']) for o in d['offsets']] == [(0, 3, 4, 1, True), (1, 6, 6, 0, True)]"
run group seek readers --to beginning
expect_rc 1 "seek while a member is in the group"
has 'group readers has 1 active member.*stop its consumers first' "$W/err"
echo "ok: group list and describe with a member (assignment, lag); seek refused while it is there"

# ---- 4. seeks of the empty group ---------------------------------------------
touch "$W/stop"
wait $CONSUMER_PID || fail "the member failed: $(cat "$W/member.out")"
CONSUMER_PID=""
run group describe readers
has '^readers +1 +Empty +consumer +- +0$' "$W/out"

run group seek readers --to beginning
expect_rc 0 "seek to beginning"
has '^events +0 +3 +0$' "$W/out"
has '^events +1 +6 +0$' "$W/out"
$PY "$W/member.py" "$BROKER" readers read "$W/stop" >"$W/read.out" 2>&1 || fail "reader: $(cat "$W/read.out")"
[ "$(cat "$W/read.out")" = "0:0 1:0 10" ] || fail "after seek to beginning the group read: $(cat "$W/read.out")"

run group seek readers --to 2 --topic events -p 1 --json
expect_rc 0 "seek to an offset"
json "d == [{'topic': 'events', 'partition': 1, 'previous_offset': 0, 'new_offset': 2}]"
run group seek readers --to 3 --topic events -p 0
expect_rc 0 "seek to an offset"
$PY "$W/member.py" "$BROKER" readers read "$W/stop" >"$W/read.out" 2>&1 || fail "reader: $(cat "$W/read.out")"
[ "$(cat "$W/read.out")" = "0:3 1:2 5" ] || fail "after seek to 3 and 2 the group read: $(cat "$W/read.out")"

run group seek readers --to end
expect_rc 0 "seek to end"
run group describe readers --json
json "[(o['partition'], o['current_offset'], o['lag']) for o in d['offsets']] == [(0, 4, 0), (1, 6, 0)]"
run group seek readers --to 1 --topic missing
expect_rc 4 "seek of a missing topic"

run group delete readers
expect_rc 0 "group delete"
run group describe readers
expect_rc 4 "describe of a deleted group"
has 'group readers does not exist' "$W/err"
echo "ok: group seek (beginning, offset, end; read back by librdkafka), delete"

# ---- 5. topic delete, failures -----------------------------------------------
run topic delete orders
expect_rc 0 "topic delete"
has '^orders +OK' "$W/out"
run topic list
grep -q '^orders ' "$W/out" && fail "orders still listed after delete"
run topic delete orders
expect_rc 4 "delete of a missing topic"
has 'orders: UNKNOWN_TOPIC_OR_PARTITION' "$W/err"

dead=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
run topic list -b 127.0.0.1:$dead
expect_rc 3 "unreachable broker"
has "127\\.0\\.0\\.1:$dead: connect: Connection refused" "$W/err"
has "no broker reachable at 127\\.0\\.0\\.1:$dead" "$W/err"
for cmd in "topic create" "topic delete" "topic list" "topic describe" "group list" \
    "group describe" "group seek" "group delete" "cluster info"; do
    # shellcheck disable=SC2086
    run $cmd --help
    expect_rc 0 "$cmd --help"
    has '^usage: sluice ' "$W/out"
done
run topic frobnicate
expect_rc 2 "unknown subcommand"
echo "ok: topic delete, unreachable broker, --help"
