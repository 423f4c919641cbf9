#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Consumer groups against a real sluiced, started by groups.sh, which passes
BROKER (host:port) and BROKER_LOG (the broker's log, for its "rebalance"
lines and their generation numbers). Usage: groups.py CASE... with CASE one of

  kcat          two kcat -G members share a 6-partition topic 3 + 3; one is
                killed with -9 while records keep coming, and the other owns
                all 6 within session timeout + 1 s, starting exactly at the dead
                member's commits: every (partition, offset) is read exactly
                once by the two together (the survivor's own partitions too,
                through the commit librdkafka makes as they are revoked).
  confluent     a confluent_kafka consumer subscribes, commits, reads past its
                last commit and closes; the next one resumes exactly at that
                commit; generations 1, 2 (empty), 3, 4 (empty).
  kafka_python  the same with kafka-python's KafkaConsumer.
  static        two static members (group.instance.id); one restarts inside its
                session timeout and gets its partitions back with no rebalance:
                same generation, same assignment, the other member untouched.
  revoke_commit a commit made in the revoke callback (group PreparingRebalance)
                is accepted, and nothing is read twice across the rebalance.
  sync_race     raw frames: a member joins while the leader's assignment is
                being stored; the next generation's SyncGroup is still answered.

This file also holds the small raw-socket Kafka helpers (OffsetCommit v2,
OffsetFetch v1, JoinGroup v1, SyncGroup v0) that tests/chaos/kill9_commits.sh,
tests/integration/offsets_compaction.sh and bench/groups-bench.py import: a
commit response received with error 0 is an acknowledged commit, nothing else
is. KCAT_EXTRA (e.g. "-d cgrp,protocol") adds options to the kcat members,
for debugging.
"""
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time

# ------------------------------------------------------------------ wire

API_OFFSET_COMMIT = 8
API_OFFSET_FETCH = 9


def str16(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">h", len(b)) + b


class Wire:
    """One connection speaking request header v1; requests may be pipelined
    with send() and their responses read in order with recv()."""

    def __init__(self, broker, timeout=10.0, client_id="groups-it"):
        host, port = broker.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.client_id = client_id
        self.correlation = 0
        self.inbuf = bytearray()

    def close(self):
        self.sock.close()

    def send(self, api, version, body):
        self.correlation += 1
        req = struct.pack(">hhi", api, version, self.correlation) + str16(self.client_id) + body
        self.sock.sendall(struct.pack(">i", len(req)) + req)
        return self.correlation

    def recv(self):
        """(correlation id, response body); ConnectionError when closed."""
        while True:
            if len(self.inbuf) >= 4:
                n = struct.unpack_from(">i", self.inbuf)[0]
                if len(self.inbuf) >= 4 + n:
                    frame = bytes(self.inbuf[4:4 + n])
                    del self.inbuf[:4 + n]
                    return struct.unpack_from(">i", frame)[0], frame[4:]
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("broker closed the connection")
            self.inbuf += chunk

    def request(self, api, version, body):
        corr = self.send(api, version, body)
        got, resp = self.recv()
        if got != corr:
            raise AssertionError("correlation id %d, want %d" % (got, corr))
        return resp


def offset_commit_body(group, commits, generation=-1, member=""):
    """OffsetCommit v2; commits: [(topic, partition, offset)], in topic runs."""
    topics = []
    for topic, partition, offset in commits:
        if not topics or topics[-1][0] != topic:
            topics.append((topic, []))
        topics[-1][1].append((partition, offset))
    out = str16(group) + struct.pack(">i", generation) + str16(member) + struct.pack(">q", -1)
    out += struct.pack(">i", len(topics))
    for topic, parts in topics:
        out += str16(topic) + struct.pack(">i", len(parts))
        out += b"".join(struct.pack(">iq", p, o) + str16("") for p, o in parts)
    return out


def offset_commit_errors(resp):
    """[(topic, partition, error)] of an OffsetCommit v2 response."""
    pos, out = 4, []
    for _ in range(struct.unpack_from(">i", resp)[0]):
        n = struct.unpack_from(">h", resp, pos)[0]
        topic = resp[pos + 2:pos + 2 + n].decode()
        pos += 2 + n
        count = struct.unpack_from(">i", resp, pos)[0]
        pos += 4
        for _ in range(count):
            p, e = struct.unpack_from(">ih", resp, pos)
            pos += 6
            out.append((topic, p, e))
    return out


def offset_commit(wire, group, commits):
    """Commits and returns the errors by (topic, partition)."""
    resp = wire.request(API_OFFSET_COMMIT, 2, offset_commit_body(group, commits))
    return {(t, p): e for t, p, e in offset_commit_errors(resp)}


def offset_fetch(wire, group, topic, partitions):
    """{partition: committed offset or -1} through OffsetFetch v1."""
    body = str16(group) + struct.pack(">i", 1) + str16(topic) + struct.pack(">i", len(partitions))
    body += b"".join(struct.pack(">i", p) for p in partitions)
    resp = wire.request(API_OFFSET_FETCH, 1, body)
    pos, out = 4, {}
    for _ in range(struct.unpack_from(">i", resp)[0]):
        pos += 2 + struct.unpack_from(">h", resp, pos)[0]
        count = struct.unpack_from(">i", resp, pos)[0]
        pos += 4
        for _ in range(count):
            p, off = struct.unpack_from(">iq", resp, pos)
            pos += 12
            pos += 2 + max(0, struct.unpack_from(">h", resp, pos)[0])
            err = struct.unpack_from(">h", resp, pos)[0]
            pos += 2
            if err != 0:
                raise AssertionError("OffsetFetch %s/%s[%d]: error %d" % (group, topic, p, err))
            out[p] = off
    return out


API_JOIN_GROUP = 11
API_SYNC_GROUP = 14


def bytes32(b):
    return struct.pack(">i", len(b)) + b


def join_group_body(group, member_id, topic, session_ms=10000, rebalance_ms=10000):
    """JoinGroup v1 of a consumer subscribed to one topic, protocol "range"."""
    subscription = struct.pack(">hi", 0, 1) + str16(topic) + struct.pack(">i", -1)
    return (str16(group) + struct.pack(">ii", session_ms, rebalance_ms) + str16(member_id) +
            str16("consumer") + struct.pack(">i", 1) + str16("range") + bytes32(subscription))


def join_group_result(resp):
    """(error, generation, leader, member_id) of a JoinGroup v1 response."""
    err, generation = struct.unpack_from(">hi", resp)
    pos, names = 6, []
    for _ in range(3):  # protocol, leader, member id
        n = struct.unpack_from(">h", resp, pos)[0]
        names.append(resp[pos + 2:pos + 2 + max(n, 0)].decode())
        pos += 2 + max(n, 0)
    return err, generation, names[1], names[2]


def sync_group_body(group, generation, member_id, assignments=()):
    """SyncGroup v0; assignments: [(member_id, bytes)], the leader's only."""
    out = str16(group) + struct.pack(">i", generation) + str16(member_id)
    out += struct.pack(">i", len(assignments))
    return out + b"".join(str16(m) + bytes32(a) for m, a in assignments)


def committed(broker, group, topic, partitions):
    w = Wire(broker)
    try:
        return offset_fetch(w, group, topic, partitions)
    finally:
        w.close()


# ----------------------------------------------------------------- common

BROKER = os.environ.get("BROKER", "")
BROKER_LOG = os.environ.get("BROKER_LOG", "")
PHASE_RECORDS = 50  # per partition and phase


class Failed(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failed(msg)


def wait_for(what, fn, timeout_s, interval_s=0.05):
    """Polls fn until it returns something true, which it returns."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = fn()
        if got:
            return got
        if time.monotonic() > deadline:
            raise Failed("timed out after %.1f s waiting for %s" % (timeout_s, what))
        time.sleep(interval_s)


def create_topic(topic, partitions):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": BROKER})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(15)


def produce(topic, partitions, phase, count=PHASE_RECORDS):
    """count records to each partition, value "phase-partition-i"."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": BROKER, "acks": "all", "linger.ms": 5})
    failed = []
    for part in range(partitions):
        for i in range(count):
            p.produce(topic, value=b"%s-%d-%d" % (phase.encode(), part, i), partition=part,
                      on_delivery=lambda e, m: failed.append(e) if e else None)
    check(p.flush(15) == 0 and not failed, "produce to %s: %s" % (topic, failed[:3]))


def log_events(group):
    """The broker's group lines for one group: [(kind, fields)]."""
    out = []
    pat = re.compile(r"groups (rebalance done|rebalance|group empty|member session expired|"
                     r"member left|static member back|member removed[^ ]*) .*group=%s( |$)" %
                     re.escape(group))
    with open(BROKER_LOG) as f:
        for line in f:
            m = pat.search(line)
            if m:
                fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
                out.append((m.group(1), fields))
    return out


def generations_done(group):
    """[(generation, members)] of each completed rebalance of a group."""
    return [(int(f["generation"]), int(f["members"]))
            for kind, f in log_events(group) if kind == "rebalance done"]


def decode_assignment(b):
    """ConsumerProtocolAssignment bytes -> {topic: sorted partitions}."""
    if not b or len(b) < 6:
        return {}
    pos, out = 6, {}
    for _ in range(struct.unpack_from(">i", b, 2)[0]):
        n = struct.unpack_from(">h", b, pos)[0]
        topic = b[pos + 2:pos + 2 + n].decode()
        pos += 2 + n
        count = struct.unpack_from(">i", b, pos)[0]
        pos += 4
        out[topic] = sorted(struct.unpack_from(">%di" % count, b, pos))
        pos += 4 * count
    return out


def describe(group):
    """(state, {member_id: {topic: partitions}}) through DescribeGroups."""
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": BROKER})
    gs = admin.list_groups(group, timeout=10)
    if not gs:
        return "Dead", {}  # librdkafka leaves out a group the broker calls Dead
    check(len(gs) == 1, "DescribeGroups %s: %d groups" % (group, len(gs)))
    return gs[0].state, {m.id: decode_assignment(m.assignment) for m in gs[0].members}


# -------------------------------------------------------------------- kcat

KCAT_SESSION_MS = 2000


def span(offsets):
    return "%d-%d (%d)" % (offsets[0], offsets[-1], len(offsets)) if offsets else "none"


def kcat_member(group, topic, name, workdir):
    """A kcat -G member printing "partition offset value" lines. It commits
    every 5 s (librdkafka's default: kcat puts -X auto.commit.interval.ms in
    the topic configuration, where the group consumer does not look) and as
    its partitions are revoked."""
    out = open(os.path.join(workdir, "kcat-%s.out" % name), "w")
    err = open(os.path.join(workdir, "kcat-%s.err" % name), "w")
    cmd = ["kcat", "-b", BROKER, "-G", group, topic, "-u", "-f", "%p %o %s\\n",
           "-X", "session.timeout.ms=%d" % KCAT_SESSION_MS, "-X", "heartbeat.interval.ms=200",
           "-X", "auto.offset.reset=earliest",
           "-X", "client.id=kcat-" + name] + os.environ.get("KCAT_EXTRA", "").split()
    return subprocess.Popen(cmd, stdout=out, stderr=err), out.name


def read_records(path, strict=False):
    """[(partition, offset, value)] a kcat member printed, complete lines only:
    the file is read while kcat writes it, so the last line may be cut
    anywhere, and a read racing a write can see the file longer than the
    bytes in it yet (a line with NULs or fewer fields). While polling
    (strict=False) such a line is left for the next read; the final checks
    read the settled file with strict=True, where one is a failure."""
    with open(path, errors="replace") as f:
        lines = [ln for ln in f if ln.endswith("\n") and ln.strip()]
    out = []
    for ln in lines:
        fields = ln.split()
        if len(fields) != 3 or "\0" in ln or not (fields[0].isdigit() and fields[1].isdigit()):
            check(not strict, "%s: a line that is not 'partition offset value': %r" % (path, ln))
            continue
        out.append((int(fields[0]), int(fields[1]), fields[2]))
    return out


def case_kcat(workdir):
    topic, group, parts = "grp-kcat", "kcat-group", 6
    create_topic(topic, parts)
    a, a_out = kcat_member(group, topic, "a", workdir)
    procs = [a]
    try:
        # One member at a time (a second one joining while the first waits
        # for its assignment sends librdkafka into a rejoin backoff as long
        # as this short session timeout), and both before any record exists:
        # nothing is read twice because of the rebalance that splits the topic.
        wait_for("the first kcat member, Stable",
                 lambda: describe(group)[0] == "Stable" and len(describe(group)[1]) == 1, 20)
        b, b_out = kcat_member(group, topic, "b", workdir)
        procs.append(b)

        def split():
            state, members = describe(group)
            return state == "Stable" and len(members) == 2 and members
        members = wait_for("two kcat members, Stable", split, 20)
        sets = sorted(m.get(topic, []) for m in members.values())
        check(sets == [[0, 1, 2], [3, 4, 5]],
              "6 partitions split between 2 members: got %s" % sets)
        gen_split = generations_done(group)[-1]
        events_before = len(log_events(group))
        check(gen_split[1] == 2, "last rebalance has %d members, want 2" % gen_split[1])

        produce(topic, parts, "one")
        wait_for("both members read the first 300 records",
                 lambda: len(read_records(a_out)) + len(read_records(b_out)) == 300, 20)
        mine_a = sorted({p for p, _, _ in read_records(a_out)})
        mine_b = sorted({p for p, _, _ in read_records(b_out)})
        check(sorted([mine_a, mine_b]) == sets,
              "members read partitions %s and %s, assigned %s" % (mine_a, mine_b, sets))
        want = {p: PHASE_RECORDS for p in range(parts)}
        wait_for("auto-commits of offset 50 on all 6 partitions",
                 lambda: committed(BROKER, group, topic, list(range(parts))) == want, 10)

        a.send_signal(signal.SIGKILL)
        a.wait()
        killed_at = time.monotonic()
        produce(topic, parts, "two")

        def moved():
            state, members = describe(group)
            got = list(members.values())
            return (state == "Stable" and len(got) == 1 and
                    got[0].get(topic) == list(range(parts)))
        wait_for("the survivor owns all 6 partitions", moved, 15, interval_s=0.02)
        took = time.monotonic() - killed_at
        print("kcat: partitions moved %.2f s after kill -9 (session timeout %.1f s)" %
              (took, KCAT_SESSION_MS / 1000))
        check(took <= KCAT_SESSION_MS / 1000 + 1.0,
              "partitions moved after %.2f s, more than session timeout + 1 s" % took)
        events = [k for k, _ in log_events(group)[events_before:]]
        check(events.count("member session expired") == 1,
              "want one session expiry in the broker log, got %s" % events)
        gens = generations_done(group)
        check(gens[-1] == (gen_split[0] + 1, 1),
              "after the kill: generation %s, want (%d, 1)" % (gens[-1], gen_split[0] + 1))

        wait_for("the survivor read the second 300 records",
                 lambda: len({(p, o) for p, o, _ in read_records(b_out)}) >= 150 + 300, 20)
        time.sleep(0.5)  # room for anything it would read twice
        recs = read_records(a_out, strict=True) + read_records(b_out, strict=True)
        for p in range(parts):
            got = sorted(o for q, o, _ in recs if q == p)
            twice = sorted({o for o in got if got.count(o) > 1})
            missing = sorted(set(range(2 * PHASE_RECORDS)) - set(got))
            check(not twice and not missing,
                  "partition %d: read twice: %s; never read: %s (each once wanted: the "
                  "survivor commits what it read when its partitions are revoked)" %
                  (p, span(twice), span(missing)))
        for p, o, v in recs:
            phase = "one" if o < PHASE_RECORDS else "two"
            check(v == "%s-%d-%d" % (phase, p, o % PHASE_RECORDS),
                  "partition %d offset %d holds %s" % (p, o, v))
        # What the dead member's partitions gave the survivor starts exactly
        # at its commits.
        for p in mine_a:
            got = [o for q, o, _ in read_records(b_out, strict=True) if q == p]
            check(got == list(range(PHASE_RECORDS, 2 * PHASE_RECORDS)),
                  "survivor read partition %d from offset %s, want 50..99" % (p, got[:3]))

        b.send_signal(signal.SIGTERM)
        check(b.wait(15) == 0, "kcat did not exit 0 on SIGTERM")
        want = {p: 2 * PHASE_RECORDS for p in range(parts)}
        got = committed(BROKER, group, topic, list(range(parts)))
        check(got == want, "committed after the survivor stopped: %s, want %s" % (got, want))
        print("kcat: 3 + 3 partitions, kill -9 moved 3 in %.2f s, 600 records each read once: ok"
              % took)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


# --------------------------------------------------------------- confluent

def cf_consumer(group, extra=None):
    from confluent_kafka import Consumer
    conf = {"bootstrap.servers": BROKER, "group.id": group, "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 200, "enable.partition.eof": False}
    conf.update(extra or {})
    return Consumer(conf)


def cf_take(c, n, timeout_s=20):
    """The next n messages of a consumer: [(partition, offset, value)]."""
    out = []
    deadline = time.monotonic() + timeout_s
    while len(out) < n:
        check(time.monotonic() < deadline, "read %d of %d messages in %d s" %
              (len(out), n, timeout_s))
        m = c.poll(0.2)
        if m is None:
            continue
        check(m.error() is None, "consumer error: %s" % m.error())
        out.append((m.partition(), m.offset(), m.value().decode()))
    return out


def resume_checks(label, topic, parts, first, second, last_commit):
    """first: what the stopped consumer read (all of it); second: what the
    one after it read to the end; last_commit: {partition: offset}."""
    for p in range(parts):
        start = last_commit.get(p, -1)
        start = 0 if start < 0 else start
        got = [o for q, o, _ in second if q == p]
        check(got == list(range(start, PHASE_RECORDS)),
              "%s: partition %d resumed at %s, last commit %d" %
              (label, p, got[:1] or "nothing", start))
        before = sorted(o for q, o, _ in first if q == p)
        check(before == list(range(len(before))),
              "%s: first consumer read partition %d out of order: %s" % (label, p, before[:5]))
    for p, o, v in first + second:
        check(v == "one-%d-%d" % (p, o), "%s: partition %d offset %d holds %s" % (label, p, o, v))


def case_confluent(workdir):
    topic, group, parts = "grp-cf", "cf-group", 3
    create_topic(topic, parts)
    produce(topic, parts, "one")
    c = cf_consumer(group)
    c.subscribe([topic])
    first, last_commit = [], {}
    for _ in range(6):  # 60 messages, a synchronous commit every 10
        first += cf_take(c, 10)
        pos = {}
        for p, o, _ in first:
            pos[p] = o + 1
        for tp in c.commit(asynchronous=False):  # -1001: nothing new to commit there
            check(tp.error is None and tp.offset in (pos.get(tp.partition), -1001),
                  "commit() of partition %d: %s, consumed up to %s" %
                  (tp.partition, tp, pos.get(tp.partition)))
        got = committed(BROKER, group, topic, list(range(parts)))
        check(got == {p: pos.get(p, -1) for p in range(parts)},
              "committed %s after commit(), consumed up to %s" % (got, pos))
        last_commit = pos
    first += cf_take(c, 7)  # read, never committed: read again after the restart
    c.close()
    got = committed(BROKER, group, topic, list(range(parts)))
    want = {p: last_commit.get(p, -1) for p in range(parts)}
    check(got == want, "committed after close %s, want %s" % (got, want))

    c = cf_consumer(group)
    c.subscribe([topic])
    remaining = sum(PHASE_RECORDS - max(0, last_commit.get(p, 0)) for p in range(parts))
    second = cf_take(c, remaining)
    check(c.poll(1.0) is None, "more messages than the topic holds past the commits")
    c.commit(asynchronous=False)
    c.close()
    resume_checks("confluent", topic, parts, first, second, last_commit)
    got = committed(BROKER, group, topic, list(range(parts)))
    check(got == {p: PHASE_RECORDS for p in range(parts)}, "final commits %s" % got)
    # One member at a time: join (1), leave (2, empty), join (3), leave (4).
    events = [(k, f.get("generation")) for k, f in log_events(group)
              if k in ("rebalance done", "group empty")]
    want_events = [("rebalance done", "1"), ("group empty", "2"),
                   ("rebalance done", "3"), ("group empty", "4")]
    check(events == want_events, "generations %s, want %s" % (events, want_events))
    print("confluent: resumed at %s after restart, %d re-read uncommitted, generations 1-4: ok" %
          (want, len(first) - sum(max(0, o) for o in last_commit.values())))


# ------------------------------------------------------------ kafka-python

def case_kafka_python(workdir):
    from kafka import KafkaConsumer
    topic, group, parts = "grp-kp", "kp-group", 3
    create_topic(topic, parts)
    produce(topic, parts, "one")

    def consumer():
        c = KafkaConsumer(bootstrap_servers=BROKER, group_id=group, enable_auto_commit=False,
                          auto_offset_reset="earliest", session_timeout_ms=6000,
                          heartbeat_interval_ms=200, max_poll_records=10)
        c.subscribe([topic])
        return c

    def take(c, n, timeout_s=20):
        out = []
        deadline = time.monotonic() + timeout_s
        while len(out) < n:
            check(time.monotonic() < deadline, "kafka-python read %d of %d" % (len(out), n))
            batch = c.poll(timeout_ms=200, max_records=n - len(out))
            for recs in batch.values():
                out += [(r.partition, r.offset, r.value.decode()) for r in recs]
        return out

    c = consumer()
    first, last_commit = [], {}
    for _ in range(6):
        first += take(c, 10)
        c.commit()  # the positions of everything returned so far, synchronously
        for p, o, _ in first:
            last_commit[p] = max(last_commit.get(p, 0), o + 1)
    first += take(c, 7)
    c.close(autocommit=False)
    got = committed(BROKER, group, topic, list(range(parts)))
    # kafka-python also commits position 0 of an assigned partition it has
    # not read from yet: -1 and 0 both mean "from the start" there.
    want = {p: last_commit.get(p, got[p] if got[p] in (-1, 0) else -1) for p in range(parts)}
    check(got == want, "kafka-python: committed after close %s, want %s" % (got, want))

    c = consumer()
    remaining = sum(PHASE_RECORDS - max(0, last_commit.get(p, 0)) for p in range(parts))
    second = take(c, remaining)
    check(not any(c.poll(timeout_ms=1000).values()), "kafka-python: more messages than expected")
    c.commit()
    c.close(autocommit=False)
    resume_checks("kafka-python", topic, parts, first, second, last_commit)
    got = committed(BROKER, group, topic, list(range(parts)))
    check(got == {p: PHASE_RECORDS for p in range(parts)}, "kafka-python: final commits %s" % got)
    events = [(k, f.get("generation")) for k, f in log_events(group)
              if k in ("rebalance done", "group empty")]
    want_events = [("rebalance done", "1"), ("group empty", "2"),
                   ("rebalance done", "3"), ("group empty", "4")]
    check(events == want_events, "kafka-python: generations %s, want %s" % (events, want_events))
    print("kafka-python: resumed at %s after restart: ok" % want)


# ------------------------------------------------------------------ static

STATIC_SESSION_MS = 6000


class Member:
    """A confluent consumer that records its rebalance callbacks."""

    def __init__(self, group, topic, instance):
        self.events = []
        self.records = []
        self.c = cf_consumer(group, {"group.instance.id": instance,
                                     "session.timeout.ms": STATIC_SESSION_MS,
                                     "client.id": instance})
        self.c.subscribe([topic], on_assign=self.on_assign, on_revoke=self.on_revoke)

    def on_assign(self, c, tps):
        self.events.append(("assign", sorted(tp.partition for tp in tps)))

    def on_revoke(self, c, tps):
        self.events.append(("revoke", sorted(tp.partition for tp in tps)))

    def poll(self):
        m = self.c.poll(0.05)
        if m is not None:
            check(m.error() is None, "consumer error: %s" % m.error())
            self.records.append((m.partition(), m.offset(), m.value().decode()))

    def assigned(self):
        return [p for k, p in self.events if k == "assign"]


def poll_until(members, what, cond, timeout_s=20):
    deadline = time.monotonic() + timeout_s
    while not cond():
        check(time.monotonic() < deadline, "timed out after %d s waiting for %s" %
              (timeout_s, what))
        for m in members:
            m.poll()


def case_static(workdir):
    topic, group, parts = "grp-static", "static-group", 4
    create_topic(topic, parts)
    a = Member(group, topic, "static-a")
    b = Member(group, topic, "static-b")
    poll_until([a, b], "both static members assigned 2 partitions", lambda: (
        a.assigned() and b.assigned() and len(a.assigned()[-1]) == 2 and
        len(b.assigned()[-1]) == 2))
    state, members = describe(group)
    check(state == "Stable" and len(members) == 2, "state %s members %d" % (state, len(members)))
    gens = generations_done(group)
    gen, pa, pb = gens[-1][0], a.assigned()[-1], b.assigned()[-1]
    check(gens[-1][1] == 2, "last rebalance has %d members, want 2" % gens[-1][1])
    check(sorted(pa + pb) == list(range(parts)), "assignments %s and %s" % (pa, pb))
    produce(topic, parts, "one")
    poll_until([a, b], "the first 200 records", lambda: len(a.records) + len(b.records) == 200)
    a.c.commit(asynchronous=False)
    rebalances_before = [k for k, _ in log_events(group)].count("rebalance")
    b_events = list(b.events)

    # A static member closes without LeaveGroup and comes back well inside
    # its session timeout, with a new member id.
    restart_at = time.monotonic()
    a.c.close()
    a2 = Member(group, topic, "static-a")
    poll_until([a2, b], "the restarted static member assigned", lambda: a2.assigned())
    took = time.monotonic() - restart_at
    check(took < STATIC_SESSION_MS / 1000, "restart took %.1f s" % took)
    check(a2.assigned() == [pa], "restarted member got %s, had %s" % (a2.events, pa))
    produce(topic, parts, "two")
    poll_until([a2, b], "the second 200 records", lambda: len(a2.records) + len(b.records) == 300)
    events = [k for k, _ in log_events(group)]
    check(events.count("rebalance") == rebalances_before,
          "the static restart caused a rebalance: %s" % events)
    check(events.count("static member back") == 1, "no 'static member back' line: %s" % events)
    check(generations_done(group)[-1][0] == gen,
          "generation moved from %d to %d" % (gen, generations_done(group)[-1][0]))
    check(b.events == b_events, "the other member saw %s" % b.events[len(b_events):])
    check(sorted({p for p, _, _ in a2.records}) == pa and
          sorted({p for p, _, _ in b.records}) == pb, "records from foreign partitions")
    check(all(o >= PHASE_RECORDS for _, o, _ in a2.records),
          "the restarted member re-read committed records")
    state, members = describe(group)
    check(state == "Stable" and len(members) == 2, "after: %s %d" % (state, len(members)))
    a2.c.close()
    b.c.close()
    print("static: restart in %.2f s kept partitions %s, generation %d, no rebalance: ok" %
          (took, pa, gen))


# ------------------------------------------------------- commit on revoke

def case_revoke_commit(workdir):
    """The usual way not to read twice across a rebalance: commit in the
    revoke callback. The group is then PreparingRebalance, and Kafka takes
    a commit from a member of the current generation in that state."""
    topic, group, parts = "grp-revoke", "revoke-group", 4
    create_topic(topic, parts)
    produce(topic, parts, "one")
    results = []

    def on_revoke(c, tps):
        try:
            done = c.commit(asynchronous=False)
            results.append(("ok", {tp.partition: tp.offset for tp in done}))
        except Exception as e:  # KafkaException: what the broker answered
            results.append(("error", str(e)))

    x = cf_consumer(group, {"client.id": "revoke-x"})
    x.subscribe([topic], on_revoke=on_revoke)
    got = cf_take(x, parts * PHASE_RECORDS)  # everything, nothing committed yet
    check(sorted({p for p, _, _ in got}) == list(range(parts)), "x did not own all partitions")
    y = cf_consumer(group, {"client.id": "revoke-y"})
    y.subscribe([topic])
    late = []
    deadline = time.monotonic() + 15
    while not results or len(y.assignment()) + len(x.assignment()) < parts:
        check(time.monotonic() < deadline, "timed out waiting for the rebalance (revokes %s)" %
              results)
        for c in (x, y):
            m = c.poll(0.05)
            if m is not None and m.error() is None:
                late.append((m.partition(), m.offset()))
    check(results[0][0] == "ok", "commit in the revoke callback refused: %s" % results[0][1])
    want = {p: PHASE_RECORDS for p in range(parts)}
    check(results[0][1] == want, "commit in the revoke callback: %s, want %s" %
          (results[0][1], want))
    for _ in range(20):  # a second long enough for a wrong start to show
        for c in (x, y):
            m = c.poll(0.05)
            if m is not None and m.error() is None:
                late.append((m.partition(), m.offset()))
    check(not late, "records read again after the rebalance: %s" % late[:5])
    check(committed(BROKER, group, topic, list(range(parts))) == want, "committed offsets")
    x.close()
    y.close()
    print("revoke_commit: commit in the revoke callback taken, nothing read twice: ok")


# ------------------------------------------------- leader sync during a store

def case_sync_race(workdir):
    """A member joins while the leader's assignment is being written: the
    leader's SyncGroup of the next generation must still be answered.
    librdkafka clients get there when a second member joins right after the
    first (the group then never settles: each SyncGroup waits until a
    session expires). Raw frames make the interleaving certain: the leader's
    SyncGroup and the newcomer's JoinGroup travel in one write on one
    connection, so the broker reads both before it submits the store, and
    answers them in order (the join last)."""
    group, topic = "race-group", "grp-race"
    a, b = Wire(BROKER), Wire(BROKER)
    try:
        err, gen1, leader, ida = join_group_result(a.request(
            API_JOIN_GROUP, 1, join_group_body(group, "", topic)))
        check(err == 0 and gen1 == 1 and leader == ida, "first join: %s" % ((err, gen1),))
        frames = []
        for api, body in ((API_SYNC_GROUP, sync_group_body(group, gen1, ida, [(ida, b"a1")])),
                          (API_JOIN_GROUP, join_group_body(group, "", topic))):
            a.correlation += 1
            req = struct.pack(">hhi", api, 0 if api == API_SYNC_GROUP else 1, a.correlation)
            req += str16(a.client_id) + body
            frames.append(struct.pack(">i", len(req)) + req)
        a.sock.sendall(b"".join(frames))
        a.sock.settimeout(5)
        err = struct.unpack_from(">h", a.recv()[1])[0]
        check(err == 27, "leader's sync of generation 1 while a member joins: error %d, want 27 "
              "(REBALANCE_IN_PROGRESS)" % err)
        a.send(API_JOIN_GROUP, 1, join_group_body(group, ida, topic))
        eb, genb, _, idb = join_group_result(a.recv()[1])
        ea, gen2, leader, _ = join_group_result(a.recv()[1])
        check((ea, eb, gen2, genb, leader) == (0, 0, 2, 2, ida),
              "second generation: %s" % ((ea, eb, gen2, genb),))
        b.send(API_SYNC_GROUP, 0, sync_group_body(group, gen2, idb))
        a.send(API_SYNC_GROUP, 0, sync_group_body(group, gen2, ida, [(ida, b"AA"), (idb, b"BB")]))
        b.sock.settimeout(5)
        try:
            ra, rb = a.recv()[1], b.recv()[1]
        except socket.timeout:
            raise Failed("the leader's SyncGroup of generation 2 was not answered in 5 s "
                         "(a member joined while generation 1's assignment was being stored)")
        check(ra[:2] == b"\0\0" and ra[2:] == bytes32(b"AA"), "leader's sync: %r" % ra)
        check(rb[:2] == b"\0\0" and rb[2:] == bytes32(b"BB"), "follower's sync: %r" % rb)
        state, _ = describe(group)
        check(state == "Stable", "state %s after both syncs" % state)
    finally:
        a.close()
        b.close()
    print("sync_race: a join during the leader's store, next generation synced: ok")


CASES = {"kcat": case_kcat, "confluent": case_confluent, "kafka_python": case_kafka_python,
         "static": case_static, "revoke_commit": case_revoke_commit,
         "sync_race": case_sync_race}


def main():
    workdir = os.environ.get("WORKDIR", "/tmp")
    for name in sys.argv[1:] or sorted(CASES):
        t0 = time.monotonic()
        try:
            CASES[name](workdir)
        except Failed as e:
            print("FAIL: %s: %s" % (name, e), file=sys.stderr)
            sys.exit(1)
        print("%s: %.1f s" % (name, time.monotonic() - t0))


if __name__ == "__main__":
    main()
