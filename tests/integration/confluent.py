#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
#
# confluent_kafka (Debian's, on librdkafka) against a real sluiced, started by
# confluent.sh, which passes BROKER (host:port) and BROKER_DATA (its log.dirs):
# topics created, listed, refused and deleted through the AdminClient; 3000
# keyed messages produced with acks=all and read back identical and in order by
# a consumer with manual assignment (no group coordinator involved); and the
# time from a produce's delivery report to a waiting consumer's receipt.
import os
import socket
import statistics
import struct
import sys
import threading
import time

from confluent_kafka import (OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaError, KafkaException,
                             Producer, TopicPartition)
from confluent_kafka.admin import AdminClient, NewTopic

BROKER = os.environ["BROKER"]
DATA = os.environ["BROKER_DATA"]
N = 3000
LATENCY_TRIES = 10
LATENCY_MEDIAN_MAX_MS = 50.0
LATENCY_EACH_MAX_MS = 100.0  # slack for a loaded machine: the median is the claim


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def consumer(extra=None):
    # A group.id, but assign() and no commits: the consumer never needs the
    # group coordinator (FindCoordinator is not served yet).
    conf = {
        "bootstrap.servers": BROKER,
        "group.id": "confluent-it",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": False,
    }
    conf.update(extra or {})
    return Consumer(conf)


def create_error(admin, topic):
    """The KafkaError code CreateTopics answers for one NewTopic, or None."""
    try:
        admin.create_topics([topic], operation_timeout=10)[topic.topic].result(timeout=15)
        return None
    except KafkaException as e:
        return e.args[0].code()


def partition_dirs(topic):
    return sorted(d for d in os.listdir(DATA) if d.startswith(topic + "-"))


def admin_checks(admin):
    err = create_error(admin, NewTopic("cf-main", 3, 1, config={"retention.ms": "3600000",
                                                                 "segment.bytes": "1048576"}))
    if err is not None:
        fail("create cf-main: %s" % err)
    md = admin.list_topics(timeout=10)
    if "cf-main" not in md.topics or len(md.topics["cf-main"].partitions) != 3:
        fail("cf-main not listed with 3 partitions: %s" % md.topics.get("cf-main"))
    if partition_dirs("cf-main") != ["cf-main-0", "cf-main-1", "cf-main-2"]:
        fail("cf-main directories: %s" % partition_dirs("cf-main"))

    refused = [
        (NewTopic("bad name!", 1, 1), KafkaError.TOPIC_EXCEPTION),
        (NewTopic("cf-main", 1, 1), KafkaError.TOPIC_ALREADY_EXISTS),
        (NewTopic("cf-rf3", 1, 3), KafkaError.INVALID_REPLICATION_FACTOR),
        (NewTopic("cf-p0", 0, 1), KafkaError.INVALID_PARTITIONS),
        (NewTopic("cf-cfg", 1, 1, config={"no.such.setting": "1"}), KafkaError.INVALID_CONFIG),
        (NewTopic("cf-cfg2", 1, 1, config={"retention.ms": "soon"}), KafkaError.INVALID_CONFIG),
    ]
    for topic, want in refused:
        got = create_error(admin, topic)
        if got != want:
            fail("create %s: got %s, want %s" % (topic.topic, got, want))
    fs = admin.create_topics([NewTopic("cf-dry", 2, 1)], validate_only=True)
    fs["cf-dry"].result(timeout=15)
    if "cf-dry" in admin.list_topics(timeout=10).topics or partition_dirs("cf-dry"):
        fail("validate_only created cf-dry")
    for t in ("bad name!", "cf-rf3", "cf-p0", "cf-cfg", "cf-cfg2"):
        if t in admin.list_topics(timeout=10).topics:
            fail("refused topic %s exists" % t)


def kstring(s):
    return struct.pack(">h", len(s)) + s


def parked_fetch(topic, offsets, max_wait_ms):
    """Sends a Fetch v4 that will park (each partition at its end) and
    returns the socket; fetch_errors() reads the answer. By hand, because a
    librdkafka consumer whose topic vanishes hangs in close() while the group
    coordinator is unknown."""
    parts = b"".join(struct.pack(">iqi", p, o, 1 << 20) for p, o in enumerate(offsets))
    body = (struct.pack(">iiiib", -1, max_wait_ms, 1, 1 << 20, 0) + struct.pack(">i", 1) +
            kstring(topic) + struct.pack(">i", len(offsets)) + parts)
    req = struct.pack(">hhi", 1, 4, 7) + kstring(b"confluent-it") + body
    host, port = BROKER.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=10)
    s.sendall(struct.pack(">i", len(req)) + req)
    return s


def recv_exactly(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            fail("broker closed the fetch connection")
        data += chunk
    return data


def fetch_errors(s):
    """The error code of each partition of a Fetch v4 response of one topic."""
    size, = struct.unpack(">i", recv_exactly(s, 4))
    r = recv_exactly(s, size)
    pos = 4 + 4 + 4  # correlation id, throttle_time_ms, topic count
    name_len, = struct.unpack_from(">h", r, pos)
    pos += 2 + name_len
    nparts, = struct.unpack_from(">i", r, pos)
    pos += 4
    errors = []
    for _ in range(nparts):
        _, err, _, _ = struct.unpack_from(">ihqq", r, pos)
        pos += 4 + 2 + 8 + 8
        naborted, = struct.unpack_from(">i", r, pos)
        pos += 4 + max(naborted, 0) * 16
        nbytes, = struct.unpack_from(">i", r, pos)
        pos += 4 + max(nbytes, 0)
        errors.append(err)
    return errors


def delete_checks(admin):
    """Deletes a topic while a fetch is parked on it."""
    if create_error(admin, NewTopic("cf-doomed", 2, 1)) is not None:
        fail("create cf-doomed")
    p = Producer({"bootstrap.servers": BROKER, "acks": "all"})
    p.produce("cf-doomed", b"x", partition=0)
    p.flush(10)
    # Gone before the deletion: its next metadata refresh would create the
    # topic again (auto.create.topics.enable).
    del p
    s = parked_fetch(b"cf-doomed", [1, 0], 8000)
    time.sleep(0.3)
    start = time.monotonic()
    admin.delete_topics(["cf-doomed"], operation_timeout=10)["cf-doomed"].result(timeout=15)
    errors = fetch_errors(s)
    waited = time.monotonic() - start
    s.close()
    if errors != [KafkaError.UNKNOWN_TOPIC_OR_PART] * 2 or waited > 2:
        fail("parked fetch at deletion: errors %s after %.2f s" % (errors, waited))
    if "cf-doomed" in admin.list_topics(timeout=10).topics:
        fail("cf-doomed still listed after deletion")
    left = [d for d in os.listdir(DATA) if d.startswith("cf-doomed")]
    if left:
        fail("cf-doomed directories left: %s" % left)
    try:
        admin.delete_topics(["cf-doomed"], operation_timeout=10)["cf-doomed"].result(timeout=15)
        fail("deleting cf-doomed twice succeeded")
    except KafkaException as e:
        if e.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
            fail("second delete: %s" % e.args[0])


def produce_and_consume():
    sent = {}  # partition -> [(offset, key, value)]
    errors = []

    def report(err, msg):
        if err is not None:
            errors.append(err)
        else:
            sent.setdefault(msg.partition(), []).append((msg.offset(), msg.key(), msg.value()))

    p = Producer({"bootstrap.servers": BROKER, "acks": "all", "linger.ms": 5})
    for i in range(N):
        p.produce("cf-main", key=b"key-%d" % i, value=b"value-%d-%s" % (i, b"v" * (i % 50)),
                  on_delivery=report)
        p.poll(0)
    if p.flush(20) != 0:
        fail("producer: messages left undelivered")
    if errors or sum(len(v) for v in sent.values()) != N:
        fail("delivery reports: %d ok, errors %s" % (sum(len(v) for v in sent.values()), errors[:3]))
    if len(sent) != 3:
        fail("keys went to %d partitions, want 3" % len(sent))

    c = consumer()
    c.assign([TopicPartition("cf-main", part, OFFSET_BEGINNING) for part in range(3)])
    got = {}
    deadline = time.monotonic() + 15
    count = 0
    while count < N and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error() is not None:
            fail("consume: %s" % m.error())
        got.setdefault(m.partition(), []).append((m.offset(), m.key(), m.value()))
        count += 1
    c.close()
    for part, records in sent.items():
        want = sorted(records)
        if got.get(part) != want:
            fail("partition %d: read %d records, want %d identical in order" %
                 (part, len(got.get(part, [])), len(want)))
        if [r[0] for r in want] != list(range(len(want))):
            fail("partition %d: offsets not contiguous from 0" % part)
    # Delivery order per partition is produce order: keys ascend with offsets.
    for part, records in got.items():
        order = [int(k.split(b"-")[1]) for _, k, _ in records]
        if order != sorted(order):
            fail("partition %d: out of produce order" % part)
    print("produced and read back %d messages over %d partitions" % (N, len(got)))


def latency(admin):
    """ms from a produce's delivery report to a parked consumer's receipt."""
    if create_error(admin, NewTopic("cf-lat", 1, 1)) is not None:
        fail("create cf-lat")
    p = Producer({"bootstrap.servers": BROKER, "acks": "all", "linger.ms": 0})
    p.produce("cf-lat", b"warm-up")
    p.flush(10)
    c = consumer({"fetch.wait.max.ms": 5000, "fetch.min.bytes": 1})
    c.assign([TopicPartition("cf-lat", 0, OFFSET_END)])
    received = {}
    stop = threading.Event()
    ready = threading.Event()

    def consume():
        while not stop.is_set():
            m = c.poll(0.05)
            ready.set()
            if m is not None and m.error() is None:
                received[m.value()] = time.monotonic()

    t = threading.Thread(target=consume)
    t.start()
    ready.wait(5)
    time.sleep(0.5)  # the consumer's first fetch is parked at the end
    delivered = {}
    produced = {}
    for i in range(LATENCY_TRIES):
        value = b"lat-%d" % i

        def report(err, msg, value=value):
            if err is None:
                delivered[value] = time.monotonic()

        produced[value] = time.monotonic()
        p.produce("cf-lat", value, on_delivery=report)
        p.flush(10)
        deadline = time.monotonic() + 2
        while value not in received and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(0.05)  # let the consumer park again
    stop.set()
    t.join()
    c.close()
    ms = []
    raw = []
    end_to_end = []
    for i in range(LATENCY_TRIES):
        value = b"lat-%d" % i
        if value not in delivered or value not in received:
            fail("latency try %d: delivered %s, received %s" %
                 (i, value in delivered, value in received))
        # Negative when the fetch answered before the producer saw its ack:
        # the broker wakes parked fetches before it answers the produce.
        raw.append((received[value] - delivered[value]) * 1000)
        ms.append(max(0.0, raw[-1]))
        end_to_end.append((received[value] - produced[value]) * 1000)
    median = statistics.median(ms)
    print("delivery report -> consumer receipt, ms: median %.2f max %.2f (raw: %s)" %
          (median, max(ms), " ".join("%.2f" % x for x in raw)))
    print("produce() call -> consumer receipt, ms: median %.2f max %.2f" %
          (statistics.median(end_to_end), max(end_to_end)))
    if median > LATENCY_MEDIAN_MAX_MS or max(ms) > LATENCY_EACH_MAX_MS:
        fail("latency median %.1f ms (limit %.0f), max %.1f ms (limit %.0f)" %
             (median, LATENCY_MEDIAN_MAX_MS, max(ms), LATENCY_EACH_MAX_MS))


def main():
    admin = AdminClient({"bootstrap.servers": BROKER})
    admin_checks(admin)
    delete_checks(admin)
    produce_and_consume()
    latency(admin)
    print("confluent_kafka: admin, %d messages, latency: ok" % N)


if __name__ == "__main__":
    main()
