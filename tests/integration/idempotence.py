#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
#
# Idempotent producing, checked end to end with confluent_kafka (librdkafka).
# Two steps, run by tests/integration/idempotence.sh (through tests/lib/faultproxy.py)
# and tests/chaos/kill9_idempotent.sh (across kill -9 of the broker):
#
#   idempotence.py produce --bootstrap H:P --topic T --count N --out FILE
#       [--rate MSGS_PER_S] [--idempotence true|false] [--flush-timeout S]
#     One producer, enable.idempotence=true (so acks=all, at most 5 requests in
#     flight, retries without end), sends N records numbered 0..N-1 in order:
#     key "key-KK" (KK = seq % KEYS, murmur2 partitioner as the Java client),
#     value "seq=SSSSSSS key=key-KK " padded with '.' to VALUE_BYTES. Every
#     delivery report must be a success. FILE gets one line per report,
#     "seq partition offset", as the reports arrive (the chaos test counts them).
#     Exits 0 only if all N reports are successes.
#
#   idempotence.py verify --bootstrap H:P --topic T --partitions K --dr FILE --count N
#     Reads every partition from its start to its high watermark (assign(), no
#     group) and checks, exactly: the topic has K partitions; per partition the
#     offsets run low..high-1 with no hole; every record is one the producer
#     sent (format, key matches value); no sequence number appears twice (a
#     duplicate); every one of 0..N-1 appears (no gap); per partition sequence
#     numbers strictly increase with the offset (produce order kept); each
#     record sits in the partition and at the offset its delivery report named
#     (a retried batch is answered with its original offset).
import argparse
import collections
import re
import signal
import sys
import time

from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer,
                             TopicPartition)

VALUE_BYTES = 100
KEYS = 64
VALUE_RE = re.compile(rb"^seq=(\d{7}) key=(key-\d{2}) \.*$")
EXAMPLES = 5  # problems printed per kind
VERIFY_TIMEOUT_S = 120


def value_of(seq):
    key = "key-%02d" % (seq % KEYS)
    return key, ("seq=%07d key=%s " % (seq, key)).ljust(VALUE_BYTES, ".").encode()


# ---------------------------------------------------------------- produce ----

def producer_conf(bootstrap, idempotence):
    return {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": idempotence,
        "acks": "all",
        "partitioner": "murmur2_random",
        "linger.ms": 5,
        "batch.num.messages": 250,
        "queue.buffering.max.messages": 1000000,
        # Recover fast from a dropped response or a reset, but never give a
        # record up: a delivery failure fails the test.
        "message.timeout.ms": 100000,
        "request.timeout.ms": 1500,
        "socket.timeout.ms": 1500,
        "socket.connection.setup.timeout.ms": 3000,
        "api.version.request.timeout.ms": 1500,
        "retry.backoff.ms": 20,
        "reconnect.backoff.ms": 20,
        "reconnect.backoff.max.ms": 250,
        "topic.metadata.refresh.fast.interval.ms": 50,
        "log.connection.close": False,
    }


def produce(args):
    out = open(args.out, "w")
    state = {"ok": 0, "failed": 0, "fatal": None, "errors": collections.Counter()}
    failures = []

    def on_delivery(err, msg, seq):
        if err is not None:
            state["failed"] += 1
            if len(failures) < EXAMPLES:
                failures.append("seq %d: %s" % (seq, err))
            return
        state["ok"] += 1
        out.write("%d %d %d\n" % (seq, msg.partition(), msg.offset()))

    def on_error(err):
        # Transport errors are expected (that is the point); a fatal one is not.
        state["errors"][err.name()] += 1
        if err.fatal():
            state["fatal"] = str(err)

    conf = producer_conf(args.bootstrap, args.idempotence)
    conf["error_cb"] = on_error
    producer = Producer(conf)
    start = time.monotonic()
    for seq in range(args.count):
        if state["fatal"]:
            break
        key, value = value_of(seq)
        while True:
            try:
                producer.produce(args.topic, value, key,
                                 on_delivery=lambda err, msg, seq=seq: on_delivery(err, msg, seq))
                break
            except BufferError:
                producer.poll(0.05)
        if args.rate > 0:
            lag_s = start + (seq + 1) / args.rate - time.monotonic()
            if lag_s > 0:
                producer.poll(lag_s)
                out.flush()
        if seq % 1000 == 999:
            producer.poll(0)
            out.flush()
    # flush() returns early on a fatal error: every record must have a report.
    deadline = time.monotonic() + args.flush_timeout
    left = len(producer)
    while left > 0 and time.monotonic() < deadline and not state["fatal"]:
        left = producer.flush(min(1.0, max(0.0, deadline - time.monotonic())))
        out.flush()
    out.close()
    took = time.monotonic() - start
    transient = ", ".join("%s=%d" % kv for kv in sorted(state["errors"].items())) or "none"
    print("produce: %d records, %d delivered, %d failed, %d without a report, %.1f s; "
          "client errors: %s" % (args.count, state["ok"], state["failed"], left, took, transient))
    for f in failures:
        print("  delivery failed: " + f, file=sys.stderr)
    if state["fatal"]:
        print("FAIL: fatal producer error: %s" % state["fatal"], file=sys.stderr)
        return 1
    if state["ok"] != args.count or state["failed"] or left:
        print("FAIL: want %d successful delivery reports, got %d (%d failed, %d missing)"
              % (args.count, state["ok"], state["failed"], left), file=sys.stderr)
        return 1
    return 0


# ----------------------------------------------------------------- verify ----

def read_reports(path):
    """seq -> (partition, offset) from a produce run's report file."""
    reports = {}
    with open(path) as f:
        for line in f:
            seq, partition, offset = (int(x) for x in line.split())
            if seq in reports:
                raise SystemExit("FAIL: two delivery reports for seq %d" % seq)
            reports[seq] = (partition, offset)
    return reports


def read_partitions(bootstrap, topic, partitions):
    """{partition: [(offset, key, value)]} from low to high watermark, and the watermarks."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "idempotence-verify",
        "enable.auto.commit": False,
        "enable.partition.eof": False,
        "fetch.wait.max.ms": 10,
    })
    md = consumer.list_topics(topic, timeout=15).topics.get(topic)
    if md is None or md.error is not None or len(md.partitions) != partitions:
        raise SystemExit("FAIL: topic %s: want %d partitions, metadata says %s"
                         % (topic, partitions, md and (md.error or len(md.partitions))))
    marks = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=15)
             for p in range(partitions)}
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    records = {p: [] for p in range(partitions)}
    done = {p for p in range(partitions) if marks[p][1] == marks[p][0]}
    deadline = time.monotonic() + 60
    while len(done) < partitions:
        if time.monotonic() > deadline:
            raise SystemExit("FAIL: reading back timed out; positions %s, watermarks %s"
                             % ({p: len(r) for p, r in records.items()}, marks))
        for msg in consumer.consume(10000, timeout=0.5):
            if msg.error() is not None:
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(msg.error())
            p = msg.partition()
            records[p].append((msg.offset(), msg.key(), msg.value()))
            if msg.offset() >= marks[p][1] - 1:
                done.add(p)
    consumer.close()
    return records, marks


def verify(args):
    # librdkafka calls can outlive their own timeouts when the broker is
    # unreachable (query_watermark_offsets did): SIGALRM's default action ends us.
    signal.alarm(VERIFY_TIMEOUT_S)
    reports = read_reports(args.dr)
    records, marks = read_partitions(args.bootstrap, args.topic, args.partitions)
    problems = collections.defaultdict(list)
    seen = collections.Counter()
    total = 0
    for p in range(args.partitions):
        low, high = marks[p]
        offsets = [o for o, _, _ in records[p]]
        if offsets != list(range(low, high)):
            holes = sorted(set(range(low, high)) - set(offsets))
            problems["offset holes or repeats"].append(
                "partition %d: %d records for offsets %d..%d, missing %s"
                % (p, len(offsets), low, high - 1, holes[:EXAMPLES]))
        last_seq = -1
        for offset, key, value in records[p]:
            total += 1
            m = VALUE_RE.match(value or b"")
            if m is None or len(value) != VALUE_BYTES or key != m.group(2):
                problems["records no producer sent"].append(
                    "partition %d offset %d: key %r value %r" % (p, offset, key, value))
                continue
            seq = int(m.group(1))
            seen[seq] += 1
            if seen[seq] > 1:
                problems["duplicates"].append("seq %d again at partition %d offset %d"
                                              % (seq, p, offset))
            if seq <= last_seq:
                problems["out of order"].append("partition %d offset %d: seq %d after seq %d"
                                                 % (p, offset, seq, last_seq))
            last_seq = max(last_seq, seq)
            if reports.get(seq) != (p, offset) and seen[seq] == 1:
                problems["not where the delivery report said"].append(
                    "seq %d at partition %d offset %d, reported at %s"
                    % (seq, p, offset, reports.get(seq)))
    missing = [s for s in range(args.count) if seen[s] == 0]
    if missing:
        problems["gaps (never written)"] = ["seq %d" % s for s in missing]
    if len(reports) != args.count:
        problems["delivery reports"].append("%d reports for %d records"
                                            % (len(reports), args.count))
    per_partition = " ".join("p%d=%d" % (p, len(records[p])) for p in range(args.partitions))
    dups = len(problems["duplicates"])
    print("verify: %d records read (%s), %d sent; duplicates %d, gaps %d, out of order %d, "
          "misplaced %d" % (total, per_partition, args.count, dups, len(missing),
                            len(problems["out of order"]),
                            len(problems["not where the delivery report said"])))
    bad = False
    for kind, items in problems.items():
        if items:
            bad = True
            print("FAIL: %s: %d, e.g. %s" % (kind, len(items), "; ".join(items[:EXAMPLES])),
                  file=sys.stderr)
    if total != args.count:
        bad = True
        print("FAIL: %d records in the log, want exactly %d" % (total, args.count),
              file=sys.stderr)
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="step", required=True)
    p = sub.add_parser("produce")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--rate", type=float, default=0, help="records per second (0: as fast)")
    p.add_argument("--idempotence", default="true", choices=("true", "false"))
    p.add_argument("--flush-timeout", type=float, default=90)
    v = sub.add_parser("verify")
    v.add_argument("--bootstrap", required=True)
    v.add_argument("--topic", required=True)
    v.add_argument("--partitions", type=int, required=True)
    v.add_argument("--dr", required=True)
    v.add_argument("--count", type=int, required=True)
    args = ap.parse_args()
    if args.step == "produce":
        args.idempotence = args.idempotence == "true"
        return produce(args)
    return verify(args)


if __name__ == "__main__":
    sys.exit(main())
