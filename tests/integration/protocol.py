#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Protocol details against one real sluiced, started by protocol.sh, which
passes BROKER (host:port) and BROKER_DATA (its log.dirs):

- DescribeConfigs through confluent_kafka's and kafka-python's admin clients,
  and by hand in v0, v3 and v4 (is_default, documentation, config types,
  key filters, the errors of bad resources);
- OffsetForLeaderEpoch v0-v4 by hand: end offsets, fenced and unknown
  epochs, unknown topics and partitions;
- Fetch v12-v17 by hand: topics by id (from Metadata v12), UNKNOWN_TOPIC_ID,
  the leader-epoch checks, divergence, fetch sessions;
- ListOffsets v4 with leader epochs;
- Produce of batches whose maxTimestamp is -1 (as sarama sends them) or that
  claim LogAppendTime: read back with the largest record timestamp and a
  valid CRC; Produce to an unknown topic refused and nothing created.

Every check compares exact values; all failures are listed, exit code 1."""
import os
import socket
import struct
import sys
import time

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, NewTopic
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource as KpConfigResource
from kafka.admin import ConfigResourceType
from kafka.record.util import calc_crc32c

BROKER = os.environ["BROKER"]
DATA = os.environ["BROKER_DATA"]
NODE_ID = 1

API_PRODUCE, API_FETCH, API_LIST_OFFSETS, API_METADATA = 0, 1, 2, 3
API_EPOCH, API_API_VERSIONS, API_DESCRIBE_CONFIGS = 23, 18, 32
# The first flexible version of each API used here.
FLEXIBLE = {API_PRODUCE: 9, API_FETCH: 12, API_LIST_OFFSETS: 6, API_METADATA: 9, API_EPOCH: 4,
            API_DESCRIBE_CONFIGS: 4, API_API_VERSIONS: 3}

NONE, OFFSET_OUT_OF_RANGE, CORRUPT_MESSAGE, UNKNOWN_TOPIC_OR_PARTITION = 0, 1, 2, 3
INVALID_TOPIC, INVALID_REQUEST, FETCH_SESSION_ID_NOT_FOUND = 17, 42, 70
FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH, UNKNOWN_TOPIC_ID = 74, 75, 100

SOURCE_TOPIC, SOURCE_STATIC_BROKER = 1, 4
TOPIC_KEYS = ["retention.ms", "retention.bytes", "segment.bytes", "segment.ms",
              "index.interval.bytes", "flush.policy", "flush.interval.ms", "max.message.bytes",
              "cleanup.policy", "dedup.window.ms"]
ZERO_ID = bytes(16)

failures = []


def check(what, got, want):
    if got != want:
        failures.append("%s: got %r, want %r" % (what, got, want))
        print("  FAIL %s: got %r, want %r" % (what, got, want), flush=True)


# ------------------------------------------------------------ encoding


class W:
    """Encoders for one version: compact (flexible) or classic forms."""

    def __init__(self, flexible):
        self.flex = flexible

    @staticmethod
    def i8(v):
        return struct.pack(">b", v)

    @staticmethod
    def i16(v):
        return struct.pack(">h", v)

    @staticmethod
    def i32(v):
        return struct.pack(">i", v)

    @staticmethod
    def i64(v):
        return struct.pack(">q", v)

    @staticmethod
    def uvarint(v):
        out = b""
        while v >= 0x80:
            out += bytes([(v & 0x7F) | 0x80])
            v >>= 7
        return out + bytes([v])

    def str(self, s):
        if s is None:
            return self.uvarint(0) if self.flex else self.i16(-1)
        b = s.encode() if isinstance(s, str) else s
        return (self.uvarint(len(b) + 1) if self.flex else self.i16(len(b))) + b

    def bytes(self, b):
        if b is None:
            return self.uvarint(0) if self.flex else self.i32(-1)
        return (self.uvarint(len(b) + 1) if self.flex else self.i32(len(b))) + b

    def arr(self, items):
        if items is None:
            return self.uvarint(0) if self.flex else self.i32(-1)
        n = len(items)
        return (self.uvarint(n + 1) if self.flex else self.i32(n)) + b"".join(items)

    def tags(self):
        return b"\x00" if self.flex else b""


class R:
    """Decoders over one response body, in the forms of its version."""

    def __init__(self, data, flexible):
        self.b = data
        self.pos = 0
        self.flex = flexible

    def take(self, n):
        if self.pos + n > len(self.b):
            raise ValueError("response truncated at %d (+%d of %d)" % (self.pos, n, len(self.b)))
        out = self.b[self.pos:self.pos + n]
        self.pos += n
        return out

    def i8(self):
        return struct.unpack(">b", self.take(1))[0]

    def bool(self):
        return self.i8() != 0

    def i16(self):
        return struct.unpack(">h", self.take(2))[0]

    def i32(self):
        return struct.unpack(">i", self.take(4))[0]

    def i64(self):
        return struct.unpack(">q", self.take(8))[0]

    def uuid(self):
        return self.take(16)

    def uvarint(self):
        v = shift = 0
        while True:
            b = self.take(1)[0]
            v |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return v

    def str(self):
        n = self.uvarint() - 1 if self.flex else self.i16()
        return None if n < 0 else self.take(n).decode()

    def bytes(self):
        n = self.uvarint() - 1 if self.flex else self.i32()
        return None if n < 0 else self.take(n)

    def arr(self, item):
        n = self.uvarint() - 1 if self.flex else self.i32()
        return None if n < 0 else [item() for _ in range(n)]

    def tags(self):
        """The tagged fields as {tag: R over its bytes}; {} when not flexible."""
        if not self.flex:
            return {}
        out = {}
        for _ in range(self.uvarint()):
            tag = self.uvarint()
            out[tag] = R(self.take(self.uvarint()), True)
        return out

    def end(self):
        if self.pos != len(self.b):
            raise ValueError("%d bytes left after the response" % (len(self.b) - self.pos))


class Conn:
    def __init__(self):
        host, port = BROKER.rsplit(":", 1)
        self.s = socket.create_connection((host, int(port)), timeout=10)
        self.corr = 0

    def recv_exact(self, n):
        out = b""
        while len(out) < n:
            chunk = self.s.recv(n - len(out))
            if not chunk:
                raise EOFError("broker closed the connection")
            out += chunk
        return out

    def request(self, key, version, body):
        """Sends one request and returns an R over its response body."""
        self.corr += 1
        flex = version >= FLEXIBLE[key]
        w = W(False)
        hdr = w.i16(key) + w.i16(version) + w.i32(self.corr) + w.str("protocol-it")
        if flex:
            hdr += b"\x00"
        self.s.sendall(w.i32(len(hdr) + len(body)) + hdr + body)
        size = struct.unpack(">i", self.recv_exact(4))[0]
        payload = self.recv_exact(size)
        r = R(payload, flex)
        corr = r.i32()
        if corr != self.corr:
            raise ValueError("correlation id %d, sent %d" % (corr, self.corr))
        if flex and key != API_API_VERSIONS:
            r.tags()
        return r

    def close(self):
        self.s.close()


# ------------------------------------------------------------ batches


def zigzag(v):
    return W.uvarint((v << 1) ^ (v >> 63))


def record_batch(timestamps, base_ts, max_ts, attributes=0):
    """An uncompressed RecordBatch v2 of one record per timestamp, with the
    header's baseTimestamp and maxTimestamp as given."""
    w = W(False)
    recs = b""
    for i, ts in enumerate(timestamps):
        key, value = b"k%d" % i, b"v%d" % i
        body = (w.i8(0) + zigzag(ts - base_ts) + zigzag(i) + zigzag(len(key)) + key +
                zigzag(len(value)) + value + zigzag(0))
        recs += zigzag(len(body)) + body
    n = len(timestamps)
    after_crc = (w.i16(attributes) + w.i32(n - 1) + w.i64(base_ts) + w.i64(max_ts) + w.i64(-1) +
                 w.i16(-1) + w.i32(-1) + w.i32(n) + recs)
    rest = w.i32(-1) + w.i8(2) + struct.pack(">I", calc_crc32c(after_crc)) + after_crc
    return w.i64(0) + w.i32(len(rest)) + rest


def parse_batches(data):
    """[(base_offset, attributes, base_ts, max_ts, record_count, crc_ok, leader_epoch)]"""
    out = []
    pos = 0
    while pos + 61 <= len(data):
        base, length, epoch, magic, crc = struct.unpack_from(">qiibI", data, pos)
        end = pos + 12 + length
        if end > len(data):
            break
        attrs, _, base_ts, max_ts = struct.unpack_from(">hiqq", data, pos + 21)
        count = struct.unpack_from(">i", data, pos + 57)[0]
        out.append((base, attrs, base_ts, max_ts, count, calc_crc32c(data[pos + 21:end]) == crc,
                    epoch))
        pos = end
    return out


# ------------------------------------------------------------ requests


def produce(conn, topic, partition, records, version=7):
    w = W(False)
    body = (w.str(None) + w.i16(-1) + w.i32(5000) +
            w.arr([w.str(topic) + w.arr([w.i32(partition) + w.bytes(records)])]))
    r = conn.request(API_PRODUCE, version, body)
    topics = r.arr(lambda: (r.str(), r.arr(lambda: (r.i32(), r.i16(), r.i64(), r.i64(), r.i64()))))
    r.i32()
    r.end()
    _, err, base, _, _ = topics[0][1][0]
    return err, base


def metadata_v12(conn, topics, allow_auto_create=False):
    w = W(True)
    body = (w.arr([ZERO_ID + w.str(t) + w.tags() for t in topics]) +
            w.i8(1 if allow_auto_create else 0) + w.i8(0) + w.tags())
    r = conn.request(API_METADATA, 12, body)
    r.i32()

    def broker():
        b = (r.i32(), r.str(), r.i32(), r.str())
        r.tags()
        return b

    def partition():
        p = {"error": r.i16(), "index": r.i32(), "leader": r.i32(), "leader_epoch": r.i32()}
        r.arr(r.i32)
        r.arr(r.i32)
        r.arr(r.i32)
        r.tags()
        return p

    def topic():
        t = {"error": r.i16(), "name": r.str(), "id": r.uuid(), "internal": r.bool(),
             "partitions": r.arr(partition)}
        r.i32()
        r.tags()
        return t

    brokers = r.arr(broker)
    r.str()
    r.i32()
    out = r.arr(topic)
    r.tags()
    r.end()
    return brokers, {t["name"]: t for t in out}


def metadata_v4(conn, topic):
    """The error code of one topic, asked without auto-creation."""
    w = W(False)
    r = conn.request(API_METADATA, 4, w.arr([w.str(topic)]) + w.i8(0))
    r.i32()
    r.arr(lambda: (r.i32(), r.str(), r.i32(), r.str()))
    r.str()
    r.i32()
    topics = r.arr(lambda: (r.i16(), r.str(), r.bool(),
                            r.arr(lambda: (r.i16(), r.i32(), r.i32(), r.arr(r.i32),
                                           r.arr(r.i32)))))
    r.end()
    return topics[0][0]


def fetch(conn, version, topic, partitions, session=(0, -1), max_wait_ms=0):
    """topic: a name (v < 13) or an id; partitions: [(partition, offset,
    current_leader_epoch, last_fetched_epoch)]. Returns the response as a dict."""
    flex = version >= 12
    w = W(flex)
    body = w.i32(-1) if version <= 14 else b""
    body += w.i32(max_wait_ms) + w.i32(1) + w.i32(1 << 20) + w.i8(0)
    body += w.i32(session[0]) + w.i32(session[1])
    parts = []
    for p, offset, current, last_fetched in partitions:
        item = w.i32(p) + w.i32(current) + w.i64(offset)
        if version >= 12:
            item += w.i32(last_fetched)
        item += w.i64(-1) + w.i32(1 << 20) + w.tags()
        parts.append(item)
    name = topic if version >= 13 else w.str(topic)
    body += w.arr([name + w.arr(parts) + w.tags()]) + w.arr([])
    body += w.str("") + w.tags()
    r = conn.request(API_FETCH, version, body)

    def partition():
        p = {"index": r.i32(), "error": r.i16(), "hw": r.i64(), "lso": r.i64(), "start": r.i64()}
        r.arr(lambda: (r.i64(), r.i64(), r.tags()))
        r.i32()
        p["records"] = r.bytes() or b""
        tags = r.tags()
        if 0 in tags:
            p["diverging"] = (tags[0].i32(), tags[0].i64())
        if 1 in tags:
            p["current_leader"] = (tags[1].i32(), tags[1].i32())
        return p

    def topic_response():
        t = {"topic": r.uuid() if version >= 13 else r.str(), "partitions": r.arr(partition)}
        r.tags()
        return t

    resp = {"throttle": r.i32(), "error": r.i16(), "session_id": r.i32()}
    resp["responses"] = r.arr(topic_response)
    tags = r.tags()
    if 0 in tags:
        t = tags[0]

        def endpoint():
            e = (t.i32(), t.str(), t.i32(), t.str())
            t.tags()
            return e
        resp["node_endpoints"] = t.arr(endpoint)
    r.end()
    return resp


def list_offsets_v4(conn, topic, partition, timestamp, current_epoch):
    w = W(False)
    body = (w.i32(-1) + w.i8(0) +
            w.arr([w.str(topic) + w.arr([w.i32(partition) + w.i32(current_epoch) +
                                         w.i64(timestamp)])]))
    r = conn.request(API_LIST_OFFSETS, 4, body)
    r.i32()
    topics = r.arr(lambda: (r.str(), r.arr(lambda: (r.i32(), r.i16(), r.i64(), r.i64(),
                                                     r.i32()))))
    r.end()
    _, err, ts, offset, epoch = topics[0][1][0]
    return err, ts, offset, epoch


def offset_for_epoch(conn, version, topics, replica_id=-1):
    """topics: [(name, [(partition, current_leader_epoch, leader_epoch)])].
    Returns {(topic, partition): (error, leader_epoch or None, end_offset)}."""
    w = W(version >= 4)
    body = w.i32(replica_id) if version >= 3 else b""
    body += w.arr([w.str(name) + w.arr([w.i32(p) + (w.i32(cur) if version >= 2 else b"") +
                                        w.i32(ep) + w.tags() for p, cur, ep in parts]) + w.tags()
                   for name, parts in topics])
    body += w.tags()
    r = conn.request(API_EPOCH, version, body)
    if version >= 2:
        r.i32()

    def partition():
        err, p = r.i16(), r.i32()
        epoch = r.i32() if version >= 1 else None
        end = r.i64()
        r.tags()
        return p, (err, epoch, end)

    def topic():
        name = r.str()
        parts = r.arr(partition)
        r.tags()
        return name, parts

    out = {}
    for name, parts in r.arr(topic):
        for p, answer in parts:
            out[(name, p)] = answer
    r.tags()
    r.end()
    return out


def describe_configs(conn, version, resources, synonyms=False, documentation=False):
    """resources: [(type, name, keys or None)]. Returns [(error, message, type,
    name, {config name: entry dict})]."""
    w = W(version >= 4)
    body = w.arr([w.i8(t) + w.str(n) + w.arr(None if keys is None else [w.str(k) for k in keys]) +
                  w.tags() for t, n, keys in resources])
    if version >= 1:
        body += w.i8(1 if synonyms else 0)
    if version >= 3:
        body += w.i8(1 if documentation else 0)
    body += w.tags()
    r = conn.request(API_DESCRIBE_CONFIGS, version, body)
    r.i32()

    def synonym():
        s = (r.str(), r.str(), r.i8())
        r.tags()
        return s

    def entry():
        e = {"name": r.str(), "value": r.str(), "read_only": r.bool()}
        if version == 0:
            e["is_default"] = r.bool()
        else:
            e["source"] = r.i8()
        e["sensitive"] = r.bool()
        if version >= 1:
            e["synonyms"] = r.arr(synonym)
        if version >= 3:
            e["type"] = r.i8()
            e["doc"] = r.str()
        r.tags()
        return e

    def result():
        res = (r.i16(), r.str(), r.i8(), r.str(), {e["name"]: e for e in r.arr(entry)})
        r.tags()
        return res

    out = r.arr(result)
    r.tags()
    r.end()
    return out


# ------------------------------------------------------------ checks


def api_versions(conn):
    r = conn.request(API_API_VERSIONS, 0, b"")
    check("ApiVersions error", r.i16(), NONE)
    ranges = {k: (lo, hi) for k, lo, hi in r.arr(lambda: (r.i16(), r.i16(), r.i16()))}
    check("Fetch range", ranges.get(API_FETCH), (0, 17))
    check("OffsetForLeaderEpoch range", ranges.get(API_EPOCH), (0, 4))
    check("DescribeConfigs range", ranges.get(API_DESCRIBE_CONFIGS), (0, 4))


def confluent_describe(admin):
    res = ConfigResource("topic", "pc-cfg")
    entries = admin.describe_configs([res])[res].result(timeout=15)
    check("confluent: topic keys", sorted(entries), sorted(TOPIC_KEYS))
    ret = entries["retention.ms"]
    check("confluent: retention.ms", (ret.value, ret.source, ret.is_read_only, ret.is_default),
          ("3600000", ConfigSource.DYNAMIC_TOPIC_CONFIG.value, False, False))
    check("confluent: retention.ms synonyms",
          sorted((s.name, s.value, s.source) for s in ret.synonyms.values()),
          [("log.retention.ms", "604800000", ConfigSource.STATIC_BROKER_CONFIG.value),
           ("retention.ms", "3600000", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)])
    seg = entries["segment.bytes"]
    check("confluent: segment.bytes", (seg.value, seg.source, seg.is_read_only),
          ("1073741824", ConfigSource.STATIC_BROKER_CONFIG.value, False))
    others = {k: e.source for k, e in entries.items() if k != "retention.ms"}
    check("confluent: sources of the other keys", others,
          {k: ConfigSource.STATIC_BROKER_CONFIG.value for k in TOPIC_KEYS if k != "retention.ms"})

    res = ConfigResource("broker", str(NODE_ID))
    entries = admin.describe_configs([res])[res].result(timeout=15)
    node = entries.get("node.id")
    check("confluent: broker node.id",
          None if node is None else (node.value, node.source, node.is_read_only),
          (str(NODE_ID), ConfigSource.STATIC_BROKER_CONFIG.value, True))
    check("confluent: broker log.dirs", entries["log.dirs"].value if "log.dirs" in entries else None,
          DATA)
    check("confluent: broker keys are all static and read-only",
          {(e.source, e.is_read_only) for e in entries.values()},
          {(ConfigSource.STATIC_BROKER_CONFIG.value, True)})

    res = ConfigResource("topic", "pc-no-such-topic")
    try:
        admin.describe_configs([res])[res].result(timeout=15)
        check("confluent: unknown topic", "described", "an error")
    except KafkaException as e:
        check("confluent: unknown topic", e.args[0].code(), UNKNOWN_TOPIC_OR_PARTITION)


def kafka_python_describe():
    admin = KafkaAdminClient(bootstrap_servers=BROKER, request_timeout_ms=10000)
    try:
        resp = admin.describe_configs([KpConfigResource(ConfigResourceType.TOPIC, "pc-cfg")],
                                      include_synonyms=True)
        check("kafka-python: responses", len(resp), 1)
        err, _, rtype, name, entries = resp[0].resources[0]
        check("kafka-python: topic result", (err, rtype, name), (NONE, 2, "pc-cfg"))
        by_name = {e[0]: e for e in entries}
        check("kafka-python: topic keys", sorted(by_name), sorted(TOPIC_KEYS))
        check("kafka-python: retention.ms", by_name["retention.ms"][1:5],
              ("3600000", False, SOURCE_TOPIC, False))
        check("kafka-python: retention.ms synonyms", by_name["retention.ms"][5],
              [("retention.ms", "3600000", SOURCE_TOPIC),
               ("log.retention.ms", "604800000", SOURCE_STATIC_BROKER)])
        check("kafka-python: segment.ms", by_name["segment.ms"][1:6],
              ("604800000", False, SOURCE_STATIC_BROKER, False,
               [("log.roll.ms", "604800000", SOURCE_STATIC_BROKER)]))
        resp = admin.describe_configs([KpConfigResource(ConfigResourceType.BROKER, str(NODE_ID),
                                                        configs={"num.partitions": None})])
        err, _, rtype, name, entries = resp[0].resources[0]
        check("kafka-python: broker result", (err, rtype, name, len(entries)),
              (NONE, 4, str(NODE_ID), 1))
        check("kafka-python: num.partitions", entries[0][:5],
              ("num.partitions", "1", True, SOURCE_STATIC_BROKER, False))
    finally:
        admin.close()


def raw_describe(conn):
    v0 = describe_configs(conn, 0, [(2, "pc-cfg", None)])
    err, msg, _, _, entries = v0[0]
    check("v0: topic error", (err, msg), (NONE, None))
    check("v0: is_default", {k: e["is_default"] for k, e in entries.items()},
          {k: k != "retention.ms" for k in TOPIC_KEYS})
    check("v0: read_only", {e["read_only"] for e in entries.values()}, {False})

    v3 = describe_configs(conn, 3, [(2, "pc-cfg", ["retention.ms", "no.such.key"])],
                          documentation=True)
    err, _, _, _, entries = v3[0]
    check("v3: filtered keys", (err, sorted(entries)), (NONE, ["retention.ms"]))
    e = entries["retention.ms"]
    check("v3: retention.ms", (e["value"], e["source"], e["type"], e["synonyms"], e["doc"]),
          ("3600000", SOURCE_TOPIC, 5, [], "delete segments older than this (-1: never)"))

    v4 = describe_configs(conn, 4, [(2, "pc-cfg", ["flush.policy", "cleanup.policy"]),
                                    (4, "", ["message.max.bytes", "auto.create.topics.enable"]),
                                    (4, str(NODE_ID + 1), None),
                                    (4, "one", None),
                                    (8, str(NODE_ID), None),
                                    (2, "pc-no-such-topic", None),
                                    (2, "bad name!", None)], synonyms=True)
    check("v4: results", len(v4), 7)
    err, _, _, _, entries = v4[0]
    check("v4: topic", (err, {k: (e["value"], e["source"], e["type"], e["doc"], e["synonyms"])
                              for k, e in entries.items()}),
          (NONE, {"flush.policy": ("always", SOURCE_STATIC_BROKER, 2, None,
                                   [("log.flush.policy", "always", SOURCE_STATIC_BROKER)]),
                  "cleanup.policy": ("delete", SOURCE_STATIC_BROKER, 7, None,
                                     [("log.cleanup.policy", "delete", SOURCE_STATIC_BROKER)])}))
    err, _, rtype, name, entries = v4[1]
    check("v4: broker by empty name", (err, rtype, name, {
        k: (e["value"], e["source"], e["read_only"], e["type"], e["synonyms"])
        for k, e in entries.items()}),
        (NONE, 4, "", {"message.max.bytes": ("1048588", SOURCE_STATIC_BROKER, True, 3,
                                             [("message.max.bytes", "1048588",
                                               SOURCE_STATIC_BROKER)]),
                       "auto.create.topics.enable": ("true", SOURCE_STATIC_BROKER, True, 1,
                                                     [("auto.create.topics.enable", "true",
                                                       SOURCE_STATIC_BROKER)])}))
    check("v4: another broker", v4[2][:4],
          (INVALID_REQUEST, "Unexpected broker id, expected %d or empty string, but received %d"
           % (NODE_ID, NODE_ID + 1), 4, str(NODE_ID + 1)))
    check("v4: another broker has no configs", v4[2][4], {})
    check("v4: broker name not a number", v4[3][:2],
          (INVALID_REQUEST, "Broker id must be an integer, but it is: one"))
    check("v4: BROKER_LOGGER", (v4[4][0], v4[4][2], v4[4][3], v4[4][4]),
          (INVALID_REQUEST, 8, str(NODE_ID), {}))
    check("v4: BROKER_LOGGER message", "BROKER_LOGGER" in (v4[4][1] or ""), True)
    check("v4: unknown topic", v4[5][0], UNKNOWN_TOPIC_OR_PARTITION)
    check("v4: unknown topic message", v4[5][1], "Topic 'pc-no-such-topic' does not exist.")
    check("v4: invalid topic name", v4[6][0], INVALID_TOPIC)


def produce_checks(conn, now):
    # sarama-style: maxTimestamp -1 in a CreateTime batch.
    ts = [now, now + 50, now + 20]
    err, base = produce(conn, "pc-data", 0, record_batch(ts, now, -1))
    check("produce maxTimestamp=-1", (err, base), (NONE, 0))
    # A batch that claims LogAppendTime, with a made-up maxTimestamp: the
    # topic is CreateTime, so Kafka stores it as CreateTime with its records'.
    ts2 = [now + 5, now + 7]
    err, base = produce(conn, "pc-data", 0, record_batch(ts2, now + 5, 1, attributes=0x08))
    check("produce LogAppendTime batch", (err, base), (NONE, 3))
    # A corrupt batch with maxTimestamp -1 is refused, not given a fresh CRC.
    bad = bytearray(record_batch([now], now, -1))
    bad[-1] ^= 0xFF
    err, _ = produce(conn, "pc-data", 0, bytes(bad))
    check("produce corrupt batch with maxTimestamp=-1", err, CORRUPT_MESSAGE)
    # Unknown topic: refused, and Produce does not create it (Metadata would).
    err, _ = produce(conn, "pc-ghost", 0, record_batch([now], now, now))
    check("produce to an unknown topic", err, UNKNOWN_TOPIC_OR_PARTITION)
    check("unknown topic not created: directories",
          [d for d in os.listdir(DATA) if d.startswith("pc-ghost")], [])
    check("unknown topic not created: metadata", metadata_v4(conn, "pc-ghost"),
          UNKNOWN_TOPIC_OR_PARTITION)
    return max(ts), max(ts2)


def fetch_checks(conn, topic_id, max1, max2, now):
    host, port = BROKER.rsplit(":", 1)
    r = fetch(conn, 13, topic_id, [(0, 0, -1, -1)])
    check("fetch v13: top level", (r["error"], r["session_id"], len(r["responses"])), (NONE, 0, 1))
    t = r["responses"][0]
    check("fetch v13: topic id echoed", t["topic"], topic_id)
    p = t["partitions"][0]
    check("fetch v13: partition", (p["index"], p["error"], p["hw"], p["lso"], p["start"]),
          (0, NONE, 5, 5, 0))
    check("fetch v13: batches (offset, attributes, base ts, max ts, count, crc ok, epoch)",
          parse_batches(p["records"]),
          [(0, 0, now, max1, 3, True, 0), (3, 0, now + 5, max2, 2, True, 0)])

    r = fetch(conn, 13, b"\x11" * 16, [(0, 0, -1, -1)])
    p = r["responses"][0]["partitions"][0]
    check("fetch v13: unknown topic id", (r["responses"][0]["topic"], p["error"], p["hw"],
                                          p["records"]), (b"\x11" * 16, UNKNOWN_TOPIC_ID, -1, b""))
    r = fetch(conn, 13, topic_id, [(9, 0, -1, -1)])
    check("fetch v13: unknown partition", r["responses"][0]["partitions"][0]["error"],
          UNKNOWN_TOPIC_OR_PARTITION)

    r = fetch(conn, 13, topic_id, [(0, 0, 1, -1), (1, 0, -2, -1), (0, 0, 0, -1)])
    ps = r["responses"][0]["partitions"]
    check("fetch v13: leader epoch checks", [(p["error"], p.get("current_leader")) for p in ps],
          [(UNKNOWN_LEADER_EPOCH, None), (FENCED_LEADER_EPOCH, (NODE_ID, 0)), (NONE, None)])
    check("fetch v13: no node_endpoints before v16", r.get("node_endpoints"), None)
    r = fetch(conn, 16, topic_id, [(1, 0, -2, -1)])
    check("fetch v16: fenced names its leader",
          (r["responses"][0]["partitions"][0]["error"], r.get("node_endpoints")),
          (FENCED_LEADER_EPOCH, [(NODE_ID, host, int(port), None)]))

    # last_fetched_epoch (v12+): the epoch of the fetcher's last record.
    r = fetch(conn, 13, topic_id, [(0, 5, -1, 0)])
    p = r["responses"][0]["partitions"][0]
    check("fetch: last epoch 0 at the end", (p["error"], p.get("diverging"), p["records"]),
          (NONE, None, b""))
    r = fetch(conn, 13, topic_id, [(0, 7, -1, 0)])
    p = r["responses"][0]["partitions"][0]
    check("fetch: epoch 0 ended before offset 7", (p["error"], p.get("diverging"), p["hw"]),
          (NONE, (0, 5), 5))
    r = fetch(conn, 13, topic_id, [(0, 3, -1, 4)])
    check("fetch: unknown last fetched epoch", r["responses"][0]["partitions"][0]["error"],
          OFFSET_OUT_OF_RANGE)

    # Fetch sessions: none kept; a full fetch asking for one gets session 0.
    r = fetch(conn, 13, topic_id, [(0, 3, -1, -1)], session=(0, 0))
    p = r["responses"][0]["partitions"][0]
    check("fetch: new session refused politely", (r["error"], r["session_id"], p["error"],
                                                   [b[0] for b in parse_batches(p["records"])]),
          (NONE, 0, NONE, [3]))
    r = fetch(conn, 13, topic_id, [(0, 3, -1, -1)], session=(1234, 5))
    check("fetch: incremental fetch of an unknown session",
          (r["error"], r["session_id"], r["responses"]), (FETCH_SESSION_ID_NOT_FOUND, 0, []))

    r = fetch(conn, 17, topic_id, [(0, 3, 0, 0)])
    p = r["responses"][0]["partitions"][0]
    check("fetch v17", (p["error"], [b[0] for b in parse_batches(p["records"])]), (NONE, [3]))
    r = fetch(conn, 12, "pc-data", [(0, 0, 0, -1)])
    p = r["responses"][0]["partitions"][0]
    check("fetch v12 by name", (r["responses"][0]["topic"], p["error"], len(parse_batches(
        p["records"]))), ("pc-data", NONE, 2))


def list_offsets_checks(conn):
    check("list offsets latest", list_offsets_v4(conn, "pc-data", 0, -1, -1), (NONE, -1, 5, 0))
    check("list offsets earliest", list_offsets_v4(conn, "pc-data", 0, -2, 0), (NONE, -1, 0, 0))
    check("list offsets newer epoch", list_offsets_v4(conn, "pc-data", 0, -1, 1)[0],
          UNKNOWN_LEADER_EPOCH)
    check("list offsets older epoch", list_offsets_v4(conn, "pc-data", 0, -1, -2)[0],
          FENCED_LEADER_EPOCH)
    check("list offsets, no such time", list_offsets_v4(conn, "pc-data", 0, 1 << 60, -1),
          (NONE, -1, -1, -1))


def epoch_checks(conn):
    t = "pc-data"
    # Partition 0 holds 5 records, partition 1 none; their epoch is 0.
    cases = [
        ((0, -1, 0), (NONE, 0, 5)),  # the current epoch: ends at the log end offset
        ((1, -1, 0), (NONE, 0, 0)),
        ((0, -1, 1), (NONE, -1, -1)),  # newer than any: undefined
        ((0, -1, -1), (NONE, -1, -1)),  # undefined asked, undefined answered
        ((0, -1, -3), (NONE, -3, 0)),  # older than the first: ended where it began
        ((5, -1, 0), (UNKNOWN_TOPIC_OR_PARTITION, -1, -1)),
    ]
    for version in range(5):
        for (p, cur, ep), want in cases:
            if version == 0:
                want = (want[0], None, want[2])  # v0 answers no epoch
            check("OffsetForLeaderEpoch v%d partition %d epoch %d" % (version, p, ep),
                  offset_for_epoch(conn, version, [(t, [(p, cur, ep)])]), {(t, p): want})
    # current_leader_epoch (v2+): -1 is no check.
    for version in (2, 3, 4):
        check("OffsetForLeaderEpoch v%d newer current epoch, unknown topic" % version,
              offset_for_epoch(conn, version, [(t, [(0, 1, 0)]), ("pc-nope", [(0, -1, 0)])]),
              {(t, 0): (UNKNOWN_LEADER_EPOCH, -1, -1),
               ("pc-nope", 0): (UNKNOWN_TOPIC_OR_PARTITION, -1, -1)})
        check("OffsetForLeaderEpoch v%d older current epoch" % version,
              offset_for_epoch(conn, version, [(t, [(0, -2, 0)])]),
              {(t, 0): (FENCED_LEADER_EPOCH, -1, -1)})
        check("OffsetForLeaderEpoch v%d same current epoch" % version,
              offset_for_epoch(conn, version, [(t, [(0, 0, 0)])]), {(t, 0): (NONE, 0, 5)})
    # A follower's replica id (v3+) is answered as a consumer's.
    check("OffsetForLeaderEpoch v3 from replica 5",
          offset_for_epoch(conn, 3, [(t, [(0, 0, 0)])], replica_id=5), {(t, 0): (NONE, 0, 5)})


def main():
    admin = AdminClient({"bootstrap.servers": BROKER})
    fs = admin.create_topics([NewTopic("pc-cfg", 1, 1, config={"retention.ms": "3600000"}),
                              NewTopic("pc-data", 2, 1)], operation_timeout=10)
    for name, f in fs.items():
        f.result(timeout=15)
    conn = Conn()
    try:
        api_versions(conn)
        confluent_describe(admin)
        kafka_python_describe()
        raw_describe(conn)
        now = int(time.time() * 1000)
        max1, max2 = produce_checks(conn, now)
        brokers, topics = metadata_v12(conn, ["pc-data"])
        md = topics.get("pc-data")
        check("metadata v12: pc-data known", md is not None and md["error"] == NONE, True)
        if md is None:
            raise SystemExit(1)
        check("metadata v12: a topic id", md["id"] != ZERO_ID, True)
        check("metadata v12: leaders and epochs",
              [(p["index"], p["leader"], p["leader_epoch"]) for p in md["partitions"]],
              [(0, NODE_ID, 0), (1, NODE_ID, 0)])
        fetch_checks(conn, md["id"], max1, max2, now)
        list_offsets_checks(conn)
        epoch_checks(conn)
    finally:
        conn.close()
    if failures:
        print("protocol: %d failures" % len(failures), file=sys.stderr)
        for f in failures:
            print("  " + f, file=sys.stderr)
        sys.exit(1)
    print("protocol: DescribeConfigs, OffsetForLeaderEpoch, Fetch v12-17, ListOffsets, "
          "Produce timestamps: ok")


if __name__ == "__main__":
    main()
