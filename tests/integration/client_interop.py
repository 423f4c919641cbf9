#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
#
# Byte-exact interoperation of libsluice (through the sluice CLI) with
# confluent_kafka (librdkafka) across a real sluiced, started by
# client_interop.sh, which passes BROKER (host:port) and SLUICE (the CLI).
# What client_consume.sh and client_produce.sh already show (ASCII keys, a
# null header, the codecs with random values, the murmur2 partition of ASCII
# keys, an ASCII CLI round trip) is not repeated; this covers the edges they
# leave:
#
#   produced  confluent_kafka, to explicit partitions of a 3-partition topic
#             per codec (none, gzip, snappy, lz4, zstd), three flushes, so
#             three batches a partition: keys and values of all 256 byte
#             values, embedded NULs, invalid UTF-8; a null key, an empty key,
#             a null value, an empty value, in every combination; headers
#             with repeated names, a null and an empty value, a binary value,
#             a non-ASCII name; explicit timestamps, out of order in a batch
#             (negative deltas), from 1 ms to the year 2100.
#   consumed  `sluice consume -p N -e -f FORMAT`, with %K/%S lengths so that
#             binary keys and values are delimited exactly: byte for byte the
#             rendering of what the delivery reports say was written there
#             (offsets contiguous from 0, produce order); the same from -o
#             offsets inside the first, a middle and the last batch, whose
#             records before the start are skipped. %h cannot tell a
#             null header value from an empty one, so `sluice consume --json`
#             over all partitions at once checks, exactly, every key, value,
#             header name and value (null, text for UTF-8, base64 with
#             "<field>_encoding" for other bytes; the output strict UTF-8),
#             partition, offset, timestamp and its type.
#   keyed     `sluice produce -k SEP` of lines with binary keys (every byte
#             value but the newline and SEP; lengths 0 to 9, so every murmur2
#             tail with high bytes) and binary values to a 7-partition topic:
#             each keyed record in (murmur2(key) & 0x7fffffff) % 7, murmur2
#             written here from the algorithm and checked against Kafka's
#             vectors; the empty key empty (not null) and hashed, a line
#             without SEP a null key; read back with `sluice consume -f`,
#             every line once, key SEP value equal to the line, in order.
#   on disk   `client_interop.py segments DATA` after sluiced stopped: every
#             codec's batches were stored with that codec, so the consumer
#             really decompressed each (librdkafka sends a batch uncompressed
#             when compressing does not shrink it).
import base64
import json
import os
import random
import struct
import subprocess
import sys
import time

from confluent_kafka import TIMESTAMP_CREATE_TIME, Producer
from confluent_kafka.admin import AdminClient, NewTopic

CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
PARTITIONS = 3
ROUNDS = 3  # flushes per codec: batches per partition
KEYED_PARTITIONS = 7
KEY_SEP = b"\x1f"
CLI_TIMEOUT_S = 60
FMT = "p=%p o=%o t=%T k=%K:%k v=%S:%s h=%h|\\n"
ALL_BYTES = bytes(range(256))
FILLER = b"compressible sluice interop " * 400
INVALID_UTF8 = (b"\x80 \xbf \xc0\x80 \xc1\xbf \xc3\x28 \xe2\x28\xa1 \xed\xa0\x80 "
                b"\xe0\x80\xaf \xf0\x28\x8c\xbc \xf4\x90\x80\x80 \xf8\x88\x80\x80\x80 \xfe\xff")


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def run_cli(args, stdin=None):
    """Runs the sluice CLI; its stdout, after checking its exit code and
    that a sanitizer said nothing."""
    p = subprocess.run([os.environ["SLUICE"]] + args, input=stdin, capture_output=True,
                       timeout=CLI_TIMEOUT_S)
    if p.returncode != 0 or b"Sanitizer" in p.stderr:
        fail("sluice %s: exit %d: %s" % (" ".join(args), p.returncode,
                                         p.stderr.decode(errors="replace")[-2000:]))
    return p.stdout


# ---------------------------------------------------------------- murmur2

def murmur2(data):
    """MurmurHash2, 32 bits, as Kafka's Java client uses it: seed 0x9747b28c,
    four little-endian bytes a word, the 1-3 tail bytes unsigned."""
    mult, mask = 0x5BD1E995, 0xFFFFFFFF
    h = 0x9747B28C ^ len(data)
    whole = len(data) - len(data) % 4
    for i in range(0, whole, 4):
        k = struct.unpack_from("<I", data, i)[0]
        k = (k * mult) & mask
        k ^= k >> 24
        k = (k * mult) & mask
        h = ((h * mult) & mask) ^ k
    tail = data[whole:]
    for shift, byte in reversed(list(enumerate(tail))):
        h ^= byte << (8 * shift)
    if tail:
        h = (h * mult) & mask
    h ^= h >> 13
    h = (h * mult) & mask
    return h ^ (h >> 15)


def java_partition(key, partitions):
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def check_murmur2():
    # Kafka's UtilsTest.testMurmur2 values, as in tests/unit/test_murmur2.c.
    vectors = {b"21": -973932308, b"foobar": -790332482, b"": 275646681,
               b"a-little-bit-long-string": -985981536, b"abc": 479470107,
               b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971}
    for key, want in vectors.items():
        if murmur2(key) != want & 0xFFFFFFFF:
            fail("murmur2(%r) = %d, Kafka says %d" % (key, murmur2(key), want))
    if java_partition(b"foobar", 50) != 16:
        fail("murmur2 partition of foobar over 50")


# ---------------------------------------------------------------- confluent_kafka -> sluice consume

def cases(rnd):
    """(key, value, headers, timestamp_ms) of one round; partition chosen by
    the caller. Timestamps go backwards inside the batch on purpose."""
    return [
        (ALL_BYTES, ALL_BYTES[::-1], [("all", ALL_BYTES)], 1700000000123 + rnd),
        (None, b"", None, 1 + rnd),
        (b"", None, [], 4102444800000 + rnd),
        (b"", b"", [("empty", b"")], 1000 + rnd),
        (None, None, [("null", None)], 1600000000000 + rnd),
        (b"\0", b"\0\0nul\0inside\0", [("nul", b"\0")], 1700000000000 + rnd),
        (INVALID_UTF8, INVALID_UTF8[::-1], [("bad", INVALID_UTF8)], 1700000000001 + rnd),
        # The same text as Latin-1 and as UTF-8: told apart here, not by --json.
        (b"\xe9t\xe9", "été".encode(), [("clé", "été".encode())], 1700000000002 + rnd),
        (b"k", b"headers",
         [("dup", b"1"), ("dup", b"2"), ("null", None), ("empty", b""), ("dup", b"3"),
          ("bin", b"=,\n\0\xff")], 1700000000003 + rnd),
        (b"\n\r\t\\\"", b"{\"json\": \"\\u0000\"}\n", None, 1700000000004 + rnd),
    ]


def render(partition, offset, key, value, headers, ts):
    def part(b):
        return b"-1:" if b is None else b"%d:" % len(b) + b
    hs = b",".join(n.encode() + b"=" + (v or b"") for n, v in headers or [])
    return (b"p=%d o=%d t=%d k=" % (partition, offset, ts) + part(key) + b" v=" + part(value) +
            b" h=" + hs + b"|\n")


def produce_confluent(codec, topic):
    """Produces ROUNDS rounds of cases() to explicit partitions; returns
    {partition: [(offset, key, value, headers, ts)]} in produce order."""
    p = Producer({"bootstrap.servers": os.environ["BROKER"], "acks": "all",
                  "compression.type": codec, "linger.ms": 1000, "batch.num.messages": 10000})
    # The topic's leaders known before the first record: no record waits
    # for them, so each round leaves as one batch a partition.
    p.list_topics(topic, timeout=10)
    written = {}
    problems = []

    def report(err, msg, sent):
        if err is not None:
            problems.append(str(err))
            return
        if msg.timestamp() != (TIMESTAMP_CREATE_TIME, sent[4]) or msg.partition() != sent[0]:
            problems.append("timestamp %s [%d], want %d [%d]" %
                            (msg.timestamp(), msg.partition(), sent[4], sent[0]))
        written.setdefault(msg.partition(), []).append((msg.offset(),) + sent[1:])

    for rnd in range(ROUNDS):
        for i, (key, value, headers, ts) in enumerate(cases(rnd)):
            partition = (i + rnd) % PARTITIONS
            sent = (partition, key, value, headers, ts)
            p.produce(topic, value=value, key=key, partition=partition, headers=headers,
                      timestamp=ts, on_delivery=lambda err, msg, s=sent: report(err, msg, s))
        for partition in range(PARTITIONS):
            # Shrinks with every codec, so that librdkafka keeps each batch
            # compressed (it sends one that grows uncompressed).
            sent = (partition, b"filler", FILLER, None, 1700000000005 + rnd)
            p.produce(topic, value=FILLER, key=b"filler", partition=partition, timestamp=sent[4],
                      on_delivery=lambda err, msg, s=sent: report(err, msg, s))
        if p.flush(30) != 0:
            fail("%s: records left undelivered" % codec)
    if problems:
        fail("%s: delivery: %s" % (codec, problems[:3]))
    for partition, rows in written.items():
        # Delivery reports come in produce order per partition.
        if [r[0] for r in rows] != list(range(len(rows))):
            fail("%s [%d]: offsets %s, want 0.. in produce order" %
                 (codec, partition, [r[0] for r in rows]))
    if sorted(written) != list(range(PARTITIONS)):
        fail("%s: partitions written %s" % (codec, sorted(written)))
    return written


def check_format(codec, topic, written):
    for partition in range(PARTITIONS):
        rows = written[partition]
        # From the beginning, and from offsets inside the first, second and
        # last batch: the records before the start, in the same (perhaps
        # compressed) batch, are skipped.
        for start in (0, 1, len(rows) // 2, len(rows) - 1):
            check_format_from(codec, topic, partition, start, rows)


def check_format_from(codec, topic, partition, start, rows):
    """rows[k] is at offset k (checked when produced)."""
    want = b"".join(render(partition, *row) for row in rows[start:])
    got = run_cli(["consume", topic, "-b", os.environ["BROKER"], "-p", str(partition),
                   "-o", str(start), "-e", "-f", FMT])
    if got == want:
        return
    wl, gl = want.split(b"|\n"), got.split(b"|\n")
    first = next((i for i in range(min(len(wl), len(gl))) if wl[i] != gl[i]),
                 min(len(wl), len(gl)))
    fail("%s [%d] -o %d: -f output differs (%d records, want %d); record %d:\n got  %r\n"
         " want %r" % (codec, partition, start, len(gl) - 1, len(wl) - 1, first,
                       gl[first][:300] if first < len(gl) else None,
                       wl[first][:300] if first < len(wl) else None))


def json_field_ok(obj, name, want):
    """A --json field against the bytes sent: null for None; the text when
    they are UTF-8; else their base64 with "<name>_encoding": "base64"."""
    got = obj[name]
    if want is None:
        return got is None and name + "_encoding" not in obj
    if obj.get(name + "_encoding") == "base64":
        try:
            want.decode("utf-8")
            return False  # UTF-8 must be printed as text
        except UnicodeDecodeError:
            return base64.b64decode(got, validate=True) == want
    return isinstance(got, str) and got.encode("utf-8") == want


def check_json(codec, topic, written):
    out = run_cli(["consume", topic, "-b", os.environ["BROKER"], "-o", "beginning", "-e",
                   "--json"])
    # Strict UTF-8: --json never prints bytes that are not.
    lines = [b.decode("utf-8") for b in out.split(b"\n")[:-1]]
    got = {}
    for line in lines:
        r = json.loads(line)
        got.setdefault(r["partition"], []).append(r)
    total = sum(len(v) for v in written.values())
    if len(lines) != total:
        fail("%s --json: %d records, want %d" % (codec, len(lines), total))
    for partition, rows in written.items():
        recs = got.get(partition, [])
        if [r["offset"] for r in recs] != [row[0] for row in rows]:
            fail("%s [%d] --json: offsets %s" % (codec, partition, [r["offset"] for r in recs]))
        for r, (offset, key, value, headers, ts) in zip(recs, rows):
            where = "%s [%d] offset %d --json" % (codec, partition, offset)
            if r["topic"] != topic or r["timestamp"] != ts or r["timestamp_type"] != "CreateTime":
                fail("%s: %s" % (where, r))
            if not json_field_ok(r, "key", key) or not json_field_ok(r, "value", value):
                fail("%s: key %r value %r, sent %r %r" % (where, r["key"], r["value"], key, value))
            hs = headers or []
            if (len(r["headers"]) != len(hs) or
                    not all(json_field_ok(h, "key", n.encode() if isinstance(n, str) else n) and
                            json_field_ok(h, "value", v) for h, (n, v) in zip(r["headers"], hs))):
                fail("%s: headers %r, sent %r" % (where, r["headers"], hs))
    return out


# ---------------------------------------------------------------- sluice produce -k: binary keys

def keyed_lines():
    """(key or None, value) pairs whose lines `key SEP value` hold no newline."""
    rng = random.Random(7)
    usable = [b for b in range(256) if b not in (0x0A, KEY_SEP[0])]
    pairs = [(bytes([b]), b"one byte %d" % b) for b in usable]
    pairs += [(bytes([b, 255 - b]), b"two") for b in usable if 255 - b in usable]
    pairs += [(bytes([0x80 | b, 0xFF - b, b]), b"three") for b in usable[:128]]
    for n in range(4, 10):
        for _ in range(40):
            pairs.append((bytes(rng.choice(usable) for _ in range(n)),
                          bytes(rng.choice(usable) for _ in range(rng.randrange(0, 30)))))
    pairs += [(b"", b"empty key"), (b"", b""), (b"k", b"value" + KEY_SEP + b"with SEP\r\0")]
    pairs += [(None, b"no separator: a null key \xff\0"), (None, b"")]
    return pairs


def parse_records(out):
    """Parses `%p %o %K:%k %S:%s\\n` output into (partition, offset, key, value)."""
    recs, i = [], 0
    while i < len(out):
        sp1 = out.index(b" ", i)
        sp2 = out.index(b" ", sp1 + 1)
        colon = out.index(b":", sp2 + 1)
        partition, offset = int(out[i:sp1]), int(out[sp1 + 1:sp2])
        klen = int(out[sp2 + 1:colon])
        i = colon + 1
        key = None if klen < 0 else out[i:i + klen]
        i += max(klen, 0)
        if out[i:i + 1] != b" ":
            raise ValueError("no space after the key at byte %d" % i)
        colon = out.index(b":", i + 1)
        vlen = int(out[i + 1:colon])
        i = colon + 1
        value = None if vlen < 0 else out[i:i + vlen]
        i += max(vlen, 0)
        if out[i:i + 1] != b"\n":
            raise ValueError("no newline after the value at byte %d" % i)
        i += 1
        recs.append((partition, offset, key, value))
    return recs


def check_keyed(topic):
    pairs = keyed_lines()
    lines = []
    for seq, (key, value) in enumerate(pairs):
        # A sequence number ends each value, for the order per partition.
        lines.append((b"" if key is None else key + KEY_SEP) + value + b"#%d" % seq)
    run_cli(["produce", topic, "-b", os.environ["BROKER"], "-k", KEY_SEP.decode(), "-q"],
            stdin=b"\n".join(lines) + b"\n")
    out = run_cli(["consume", topic, "-b", os.environ["BROKER"], "-o", "beginning", "-e",
                   "-f", "%p %o %K:%k %S:%s\\n"])
    try:
        recs = parse_records(out)
    except ValueError as e:
        fail("keyed: consume output does not parse: %s" % e)
    if len(recs) != len(pairs):
        fail("keyed: %d records, want %d" % (len(recs), len(pairs)))
    seen = set()
    last = {}
    misplaced = []
    for partition, offset, key, value in recs:
        seq = int(value.rsplit(b"#", 1)[1])
        want_key, want_value = pairs[seq]
        if seq in seen or key != want_key or value != want_value + b"#%d" % seq:
            fail("keyed: record %d [%d] at %d: key %r value %r, sent %r %r" %
                 (seq, partition, offset, key, value, want_key, want_value))
        seen.add(seq)
        prev_offset, prev_seq = last.get(partition, (-1, -1))
        if offset != prev_offset + 1 or seq <= prev_seq:
            fail("keyed: [%d] offset %d (seq %d) after offset %d (seq %d)" %
                 (partition, offset, seq, prev_offset, prev_seq))
        last[partition] = (offset, seq)
        if key is not None and partition != java_partition(key, KEYED_PARTITIONS):
            misplaced.append((key, partition, java_partition(key, KEYED_PARTITIONS)))
    if misplaced:
        fail("keyed: %d of %d keys not where Java puts them, e.g. (key, got, want) %s" %
             (len(misplaced), len(recs), misplaced[:5]))
    return len(recs)


# ---------------------------------------------------------------- on disk

def segments(data):
    """Codec of every batch of every codec topic's stored segments."""
    for codec in CODECS:
        for partition in range(PARTITIONS):
            d = os.path.join(data, "ix-%s-%d" % (codec, partition))
            found = []
            for name in sorted(n for n in os.listdir(d) if n.endswith(".log")):
                blob = open(os.path.join(d, name), "rb").read()
                pos = 0
                while pos + 61 <= len(blob):
                    length = struct.unpack_from(">i", blob, pos + 8)[0]
                    if length <= 0:
                        break  # the preallocated tail
                    attributes = struct.unpack_from(">h", blob, pos + 21)[0]
                    found.append(attributes & 7)
                    pos += 12 + length
            if len(found) < ROUNDS or set(found) != {CODEC_IDS[codec]}:
                fail("ix-%s-%d: stored batch codecs %s, want %d batches or more, all %d" %
                     (codec, partition, found, ROUNDS, CODEC_IDS[codec]))
    print("ok: every codec's batches stored compressed with it")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "segments":
        segments(sys.argv[2])
        return
    check_murmur2()
    admin = AdminClient({"bootstrap.servers": os.environ["BROKER"]})
    topics = [NewTopic("ix-%s" % c, PARTITIONS, 1) for c in CODECS]
    topics.append(NewTopic("ix-keyed", KEYED_PARTITIONS, 1))
    for f in admin.create_topics(topics, operation_timeout=10).values():
        f.result(timeout=15)
    start = time.monotonic()
    for codec in CODECS:
        topic = "ix-%s" % codec
        written = produce_confluent(codec, topic)
        check_format(codec, topic, written)
        check_json(codec, topic, written)
        print("ok: confluent_kafka %s -> sluice consume: %d records byte-identical" %
              (codec, sum(len(v) for v in written.values())))
    n = check_keyed("ix-keyed")
    print("ok: sluice produce -k, %d binary keys in Java's murmur2 partitions, lines back "
          "byte-identical (%.1f s in all)" % (n, time.monotonic() - start))


if __name__ == "__main__":
    main()
