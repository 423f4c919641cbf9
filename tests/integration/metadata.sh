#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Topics live in the __cluster_metadata log: created (by CreateTopics with
# settings, and by Metadata's auto-create) and deleted topics come back as
# they were after kill -9 and after SIGTERM; a topic re-created under an old
# name gets a new id and none of the old data; a partition directory the
# metadata does not know is set aside, not served and not deleted.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/broker.sh

py=/usr/bin/python3
BROKER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/sluice-md-XXXXXX")
trap 'kill -9 $BROKER_PID 2>/dev/null || true; rm -rf "$BROKER_DIR"' EXIT
data=$BROKER_DIR/data

# A directory from outside the metadata: it must be set aside, not served.
mkdir -p "$data/alien-0"
echo "not ours" >"$data/alien-0/notes"

broker_start

# admin OP ARGS...: create NAME PARTS [k=v...] | delete NAME | produce NAME N
#                   | list | count NAME (records in the topic) | idle
admin() {
    BROKER=$BROKER $py - "$@" <<'EOF'
import sys
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

broker = __import__("os").environ["BROKER"]
op, args = sys.argv[1], sys.argv[2:]
a = AdminClient({"bootstrap.servers": broker})
if op == "create":
    cfg = dict(kv.split("=", 1) for kv in args[2:])
    f = a.create_topics([NewTopic(args[0], int(args[1]), 1, config=cfg)])
    f[args[0]].result(10)
elif op == "delete":
    a.delete_topics([args[0]])[args[0]].result(10)
elif op == "list":
    md = a.list_topics(timeout=10)
    for t in sorted(md.topics):
        print(t, len(md.topics[t].partitions), md.topics[t].error)
elif op == "produce":
    p = Producer({"bootstrap.servers": broker, "acks": "all"})
    failed = []
    for i in range(int(args[1])):
        p.produce(args[0], value=b"v%d" % i, partition=0,
                  on_delivery=lambda e, m: failed.append(e) if e else None)
    p.flush(10)
    sys.exit(1 if failed else 0)
elif op == "count":
    c = Consumer({"bootstrap.servers": broker, "group.id": "unused",
                  "enable.auto.commit": False})
    lo, hi = c.get_watermark_offsets(TopicPartition(args[0], 0), timeout=10)
    print(hi - lo)
    c.close()
EOF
}

admin create keep 3 retention.ms=3600000 flush.policy=interval || fail "create keep"
admin create gone 2 || fail "create gone"
admin produce gone 5 || fail "produce to gone"
admin produce keep 7 || fail "produce to keep"
# Auto-create through Metadata: a producer of an unknown topic.
admin produce auto 3 || fail "produce to auto (auto-created)"
old_gone_id=$(sed -n 's/^topic_id: //p' "$data/gone-0/partition.metadata")
[ -n "$old_gone_id" ] || fail "no partition.metadata in gone-0"
admin delete gone || fail "delete gone"
[ ! -e "$data/gone-0" ] && [ ! -e "$data/gone-1" ] || fail "gone's directories remain"
[ -d "$data"/alien-0.*-stray ] && [ ! -e "$data/alien-0" ] || fail "alien-0 not set aside"
grep -q "set aside dir=.*alien-0" "$BROKER_LOG" || fail "no log line for the stray directory"

expected="auto 1 None
keep 3 None"
check_topics() {
    local got
    got=$(admin list | grep -v '^__' || true)
    [ "$got" = "$expected" ] || fail "$1: topics are
$got
expected
$expected"
}
check_topics "before restart"

# kill -9: what the metadata log acknowledged is back, what it removed is gone.
broker_stop KILL || true
broker_start
check_topics "after kill -9"
grep -q "topic open name=keep partitions=3 overrides=2" "$BROKER_LOG" ||
    fail "keep's settings did not survive kill -9"
[ "$(admin count keep)" = 7 ] || fail "keep lost records"

# Re-created under the old name: a new id, none of the old records.
admin create gone 2 || fail "re-create gone"
new_gone_id=$(sed -n 's/^topic_id: //p' "$data/gone-0/partition.metadata")
[ -n "$new_gone_id" ] && [ "$new_gone_id" != "$old_gone_id" ] ||
    fail "re-created topic reuses id $old_gone_id"
[ "$(admin count gone)" = 0 ] || fail "re-created topic shows the old records"
expected="auto 1 None
gone 2 None
keep 3 None"

broker_stop TERM || fail "sluiced did not exit 0 on SIGTERM"
broker_start
check_topics "after SIGTERM"
[ "$(sed -n 's/^topic_id: //p' "$data/gone-0/partition.metadata")" = "$new_gone_id" ] ||
    fail "gone's id changed over a restart"
grep -q "metadata replayed .*topics=4" "$BROKER_LOG" || fail "replay did not find 4 topics (3 and __consumer_offsets)"
# Refused: the metadata log's own name.
if admin create __cluster_metadata 1 2>/dev/null; then
    fail "created a topic named __cluster_metadata"
fi
broker_stop TERM || fail "sluiced did not exit 0 on SIGTERM"
echo "metadata: topics, settings and deletions survive kill -9 and SIGTERM: ok"
