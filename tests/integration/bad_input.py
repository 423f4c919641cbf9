# SPDX-License-Identifier: Apache-2.0
"""Bad input against one running sluiced, driven by tests/integration/bad_input.sh.

Every case runs on its own TCP connection and sends bytes built here by hand
(struct) or with kafka-python's RecordBatch builder; responses are decoded with
kafka-python's protocol classes. After every case: the broker process is alive,
and a well-behaved client still gets through (a raw ApiVersions round trip
after each case, kcat producing one message and reading it back after each
case that is not one of the many truncations). A refused case must leave a
line in the broker's log. Failures are collected, not fatal, so that one run
names every problem; the exit code is 1 if there was any.

Usage: bad_input.py --broker HOST:PORT --pid PID --log FILE --data-dir DIR
                    --request-max BYTES --message-max BYTES
"""
import argparse
import io
import os
import random
import re
import socket
import struct
import subprocess
import sys
import time

from kafka.protocol.fetch import FetchResponse
from kafka.protocol.metadata import MetadataResponse
from kafka.protocol.produce import ProduceResponse
from kafka.record.default_records import DefaultRecordBatchBuilder
from kafka.record.memory_records import MemoryRecords

API_PRODUCE, API_FETCH, API_METADATA, API_API_VERSIONS = 0, 1, 3, 18
ERR_NONE, ERR_OFFSET_OUT_OF_RANGE, ERR_CORRUPT_MESSAGE = 0, 1, 2
ERR_UNKNOWN_TOPIC_OR_PARTITION, ERR_MESSAGE_TOO_LARGE, ERR_UNSUPPORTED_VERSION = 3, 10, 35
ERR_INVALID_RECORD = 87

IO_TIMEOUT_S = 5.0  # a reply or a close must come within this
LOG_WAIT_S = 2.0  # a log line must appear within this
CLIENT_TIMEOUT_S = 15  # per kcat call
KNOWN = "known"  # created before auto-create was turned off
OOR = "oor"  # created with 3 records, for Fetch past the end

failures = []
health_checks = 0


def note_fail(case, what):
    failures.append("%s: %s" % (case, what))
    print("  FAIL %s: %s" % (case, what), flush=True)


class Broker:
    def __init__(self, args):
        host, port = args.broker.rsplit(":", 1)
        self.addr = (host, int(port))
        self.broker = args.broker
        self.pid = args.pid
        self.log = args.log
        self.data_dir = args.data_dir
        self.request_max = args.request_max
        self.message_max = args.message_max
        self.seq = 0

    def connect(self):
        s = socket.create_connection(self.addr, timeout=IO_TIMEOUT_S)
        s.settimeout(IO_TIMEOUT_S)
        return s

    def alive(self):
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        # A zombie (exited, not yet reaped by the shell) is not alive.
        try:
            with open("/proc/%d/stat" % self.pid) as f:
                return f.read().split(")")[-1].split()[0] != "Z"
        except OSError:
            return False

    def log_size(self):
        return os.path.getsize(self.log)

    def log_since(self, offset):
        with open(self.log, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")


# ------------------------------------------------------------ encoding


def i8(v):
    return struct.pack(">b", v)


def i16(v):
    return struct.pack(">h", v)


def i32(v):
    return struct.pack(">i", v)


def i64(v):
    return struct.pack(">q", v)


def string(s):
    if s is None:
        return i16(-1)
    b = s.encode() if isinstance(s, str) else s
    return i16(len(b)) + b


def nbytes(b):
    return i32(-1) if b is None else i32(len(b)) + b


def array(items):
    if items is None:
        return i32(-1)
    return i32(len(items)) + b"".join(items)


def uvarint(v):
    out = b""
    while True:
        if v < 0x80:
            return out + bytes([v])
        out += bytes([(v & 0x7F) | 0x80])
        v >>= 7


def compact_string(s):
    b = s.encode()
    return uvarint(len(b) + 1) + b


def header_v1(key, version, corr, client="bad-input"):
    return i16(key) + i16(version) + i32(corr) + string(client)


def header_v2(key, version, corr, client="bad-input"):
    return header_v1(key, version, corr, client) + uvarint(0)


def frame(payload):
    return i32(len(payload)) + payload


def api_versions_v0(corr):
    return frame(header_v1(API_API_VERSIONS, 0, corr))


def api_versions_v3(corr):
    body = compact_string("bad-input") + compact_string("1.0") + uvarint(0)
    return frame(header_v2(API_API_VERSIONS, 3, corr) + body)


def produce_v3(corr, topic, partition, records, version=3, acks=-1):
    # transactional_id appeared in v3.
    body = ((string(None) if version >= 3 else b"") + i16(acks) + i32(5000) +
            array([string(topic) + array([i32(partition) + nbytes(records)])]))
    return frame(header_v1(API_PRODUCE, version, corr) + body)


def fetch_v4(corr, topic, partition, offset, max_wait_ms=10):
    body = (i32(-1) + i32(max_wait_ms) + i32(1) + i32(1 << 20) + i8(0) +
            array([string(topic) + array([i32(partition) + i64(offset) + i32(1 << 20)])]))
    return frame(header_v1(API_FETCH, 4, corr) + body)


def metadata_v4(corr, topics, allow_auto_create=True):
    body = array(None if topics is None else [string(t) for t in topics])
    body += i8(1 if allow_auto_create else 0)
    return frame(header_v1(API_METADATA, 4, corr) + body)


def record_batch(values, key=b"k"):
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=0,
                                        producer_id=-1, producer_epoch=-1, base_sequence=-1,
                                        batch_size=1 << 30)
    ts = int(time.time() * 1000)
    for i, v in enumerate(values):
        builder.append(i, timestamp=ts, key=key, value=v, headers=[])
    return bytes(builder.build())


# ------------------------------------------------------------ socket i/o


def recv_exact(s, n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise EOFError("closed after %d of %d bytes" % (len(out), n))
        out += chunk
    return out


def read_response(s, corr):
    """One response frame; returns its body after the v0 header (the
    correlation id), which is what every non-flexible response has."""
    size = struct.unpack(">i", recv_exact(s, 4))[0]
    if size < 4 or size > 64 << 20:
        raise ValueError("response frame size %d" % size)
    payload = recv_exact(s, size)
    got = struct.unpack(">i", payload[:4])[0]
    if got != corr:
        raise ValueError("correlation id %d, sent %d" % (got, corr))
    return payload[4:]


def round_trip(s, req, corr):
    s.sendall(req)
    return read_response(s, corr)


def wait_closed(s):
    """'closed' if the broker closed the connection without sending a byte,
    'answered: ...' if it sent bytes, 'open' if nothing came within the timeout."""
    try:
        data = s.recv(65536)
    except socket.timeout:
        return "open"
    except (ConnectionResetError, BrokenPipeError):
        return "closed"
    if not data:
        return "closed"
    return "answered: %d bytes %r" % (len(data), data[:32])


def send_quietly(s, data):
    """Sends what the broker takes; it may close before the end."""
    try:
        s.sendall(data)
    except (ConnectionResetError, BrokenPipeError):
        pass


def decode(cls, body):
    return cls.decode(io.BytesIO(body))


# ------------------------------------------------------------ checks


def api_versions_ok(b):
    """A raw ApiVersions v0 round trip on a fresh connection: None or a reason."""
    try:
        with b.connect() as s:
            body = round_trip(s, api_versions_v0(7), 7)
    except Exception as e:  # noqa: BLE001 - any failure is the answer
        return "ApiVersions round trip failed: %r" % (e,)
    err = struct.unpack(">h", body[:2])[0]
    return None if err == 0 else "ApiVersions answered error %d" % err


def kcat_ok(b):
    """kcat produces one message to KNOWN partition 0 and reads it back."""
    b.seq += 1
    msg = "health-%d-%d" % (os.getpid(), b.seq)
    try:
        p = subprocess.run(["kcat", "-b", b.broker, "-P", "-t", KNOWN, "-p", "0",
                            "-X", "acks=all"],
                           input=msg + "\n", capture_output=True, text=True,
                           timeout=CLIENT_TIMEOUT_S)
        if p.returncode != 0:
            return "kcat produce rc=%d: %s" % (p.returncode, p.stderr.strip()[-300:])
        p = subprocess.run(["kcat", "-b", b.broker, "-C", "-t", KNOWN, "-p", "0", "-o", "-1",
                            "-e", "-q", "-f", "%s\n", "-X", "fetch.wait.max.ms=10"],
                           capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        return "kcat timed out: %s" % (e,)
    if p.returncode != 0:
        return "kcat consume rc=%d: %s" % (p.returncode, p.stderr.strip()[-300:])
    if p.stdout.strip().splitlines()[-1:] != [msg]:
        return "kcat read back %r, produced %r" % (p.stdout[-200:], msg)
    return None


def healthy(b, case, with_kcat):
    """(a) the process is alive, (b) a well-behaved client gets through."""
    global health_checks
    health_checks += 1
    if not b.alive():
        note_fail(case, "BROKER PROCESS IS GONE (pid %d)" % b.pid)
        tail = b.log_since(max(0, b.log_size() - 4000))
        print("  broker log tail:\n" + tail, flush=True)
        # Nothing else can be checked: stop here.
        summary()
        sys.exit(1)
    why = api_versions_ok(b)
    if why is None and with_kcat:
        why = kcat_ok(b)
    if why is not None:
        note_fail(case, "well-behaved client after it: " + why)
        return False
    return True


def expect_log(b, case, since, pattern):
    """A log line matching pattern appeared after byte offset since."""
    rx = re.compile(pattern)
    deadline = time.monotonic() + LOG_WAIT_S
    while True:
        new = b.log_since(since)
        if any(rx.search(line) for line in new.splitlines()):
            return True
        if time.monotonic() > deadline:
            note_fail(case, "no broker log line matching /%s/; new lines:\n    %s" %
                      (pattern, "\n    ".join(new.splitlines()[-5:]) or "(none)"))
            return False
        time.sleep(0.05)


def peer_rx(s):
    """Matches the peer field of a log line about this client's connection."""
    return r"peer=\S*:%d\b" % s.getsockname()[1]


class Case:
    """One case: its own connection, then the health and log checks."""

    def __init__(self, b, name, with_kcat=True):
        self.b, self.name, self.with_kcat = b, name, with_kcat

    def __enter__(self):
        self.since = self.b.log_size()
        self.fails = len(failures)
        self.s = self.b.connect()
        self.peer = peer_rx(self.s)
        return self

    def __exit__(self, etype, e, tb):
        try:
            self.s.close()
        except OSError:
            pass
        if etype is not None and issubclass(etype, Exception):
            note_fail(self.name, "unexpected: %r" % (e,))
        healthy(self.b, self.name, self.with_kcat)
        if len(failures) == self.fails:
            print("  ok   " + self.name, flush=True)
        return etype is None or issubclass(etype, Exception)

    def closed(self, what="the connection closed without a response"):
        state = wait_closed(self.s)
        if state != "closed":
            note_fail(self.name, "want %s, got %s" % (what, state))
            return False
        return True

    def log(self, pattern):
        return expect_log(self.b, self.name, self.since, pattern)


# ------------------------------------------------------------ cases


def truncated_frames(b):
    """A valid ApiVersions v3 request cut at every length, then closed; and
    the same cuts with the size prefix saying so (complete but short frames)."""
    full = api_versions_v3(11)
    with Case(b, "full ApiVersions v3 request is answered") as c:
        body = round_trip(c.s, full, 11)
        if struct.unpack(">h", body[:2])[0] != 0:
            note_fail(c.name, "error %d" % struct.unpack(">h", body[:2])[0])
    for k in range(len(full)):
        with Case(b, "ApiVersions v3 cut at %d of %d bytes, then close" % (k, len(full)),
                  with_kcat=False) as c:
            c.s.sendall(full[:k])
            c.s.shutdown(socket.SHUT_WR)
            # The broker must notice the close and close its side too.
            c.closed()
    payload = full[4:]
    for k in range(len(payload)):
        with Case(b, "ApiVersions v3 frame of %d bytes (of %d): header/body truncated" %
                  (k, len(payload)), with_kcat=False) as c:
            send_quietly(c.s, frame(payload[:k]))
            if c.closed():
                c.log(c.peer)
    with Case(b, "truncated frames: kcat still works") as c:
        pass


def bad_sizes(b):
    for size in (2**31 - 1, -1, 0, 3, b.request_max + 1, -(2**31)):
        with Case(b, "length prefix %d" % size) as c:
            # A few bytes after the prefix: a broker that waits for them must not.
            send_quietly(c.s, i32(size) + header_v1(API_API_VERSIONS, 0, 1))
            if c.closed():
                c.log(r"bad frame size.*%s.*size=%d\b" % (c.peer, size))
    with Case(b, "length prefix = socket.request.max.bytes, then close mid-frame") as c:
        # At the limit is allowed: the broker buffers, we give up half-way.
        send_quietly(c.s, i32(b.request_max) + header_v1(API_API_VERSIONS, 0, 1) +
                     bytes(b.request_max // 2))
        state = wait_closed_quick(c.s)
        if state not in ("open", "closed"):
            note_fail(c.name, "unexpected " + state)


def wait_closed_quick(s):
    s.settimeout(0.3)
    try:
        return wait_closed(s)
    finally:
        s.settimeout(IO_TIMEOUT_S)


def random_bytes(b):
    rng = random.Random(20240611)
    with Case(b, "1 KiB of random bytes") as c:
        data = bytes(rng.getrandbits(8) for _ in range(1024))
        # Make sure the size prefix is out of range, whatever the seed gives.
        data = b"\xa7" + data[1:]
        send_quietly(c.s, data)
        if c.closed():
            c.log(c.peer)
    # Random bodies behind a correct size and a known API key and version:
    # these reach the request decoders. Any outcome but a crash or a hang is
    # acceptable: a response, or a close with a log line.
    served = [(API_PRODUCE, 3, 9), (API_FETCH, 4, 17), (2, 0, 7), (API_METADATA, 0, 12),
              (API_API_VERSIONS, 0, 3), (23, 0, 4), (32, 0, 4)]
    outcomes = {}
    for i in range(60):
        key, lo, hi = served[i % len(served)]
        ver = rng.randint(lo, hi)
        n = rng.choice([0, 1, 2, 7, 16, 64, 300, 1000])
        body = bytes(rng.getrandbits(8) for _ in range(n))
        hdr = header_v2 if ver >= {0: 9, 1: 12, 2: 6, 3: 9, 18: 3, 23: 4, 32: 4}[key] else header_v1
        with Case(b, "random %d-byte body, api=%d v%d (#%d)" % (n, key, ver, i),
                  with_kcat=(i % 20 == 19)) as c:
            send_quietly(c.s, frame(hdr(key, ver, 1000 + i) + body))
            try:
                read_response(c.s, 1000 + i)
                outcome = "answered"
            except (EOFError, ConnectionResetError):
                outcome = "closed"
                c.log(c.peer)
            except socket.timeout:
                outcome = "hang"
                note_fail(c.name, "neither answered nor closed within %.0fs" % IO_TIMEOUT_S)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    print("  random bodies: %s" % outcomes, flush=True)


def bad_api(b):
    with Case(b, "unknown API key 999") as c:
        c.s.sendall(frame(header_v1(999, 0, 5)))
        if c.closed():
            c.log(r"unknown api key=999.*" + c.peer)
    with Case(b, "ApiVersions answered, then unknown API key closes (pipelined)") as c:
        c.s.sendall(api_versions_v0(1) + frame(header_v1(999, 0, 2)) + api_versions_v0(3))
        body = read_response(c.s, 1)
        if struct.unpack(">h", body[:2])[0] != 0:
            note_fail(c.name, "first ApiVersions error %d" % struct.unpack(">h", body[:2])[0])
        c.closed("the connection closed after the first response")
    with Case(b, "Metadata v99 (unsupported version)") as c:
        c.s.sendall(frame(header_v2(API_METADATA, 99, 6) + i32(-1) + i8(0)))
        if c.closed():
            c.log(r"unsupported version.*version=99.*" + c.peer)
    with Case(b, "Produce v-1 (negative version)") as c:
        c.s.sendall(frame(header_v1(API_PRODUCE, -1, 6)))
        if c.closed():
            c.log(c.peer)
    with Case(b, "ApiVersions v99 → UNSUPPORTED_VERSION in the v0 layout") as c:
        c.s.sendall(frame(header_v2(API_API_VERSIONS, 99, 77) + compact_string("x") +
                          compact_string("1") + uvarint(0)))
        body = read_response(c.s, 77)
        check_api_versions_v0_error(c, body)
        # The connection stays usable: the client retries with a version we speak.
        body = round_trip(c.s, api_versions_v0(78), 78)
        if struct.unpack(">h", body[:2])[0] != 0:
            note_fail(c.name, "retry with v0 answered error %d" % struct.unpack(">h", body[:2])[0])
        c.log(r"(?i)(version=99|" + c.peer + ")")


def check_api_versions_v0_error(c, body):
    if len(body) < 6:
        note_fail(c.name, "response body of %d bytes" % len(body))
        return
    err, n = struct.unpack(">hi", body[:6])
    if err != ERR_UNSUPPORTED_VERSION:
        note_fail(c.name, "error_code %d, want %d" % (err, ERR_UNSUPPORTED_VERSION))
    if n < 0 or len(body) != 6 + 6 * n:
        note_fail(c.name, "not the v0 layout: %d keys in %d bytes" % (n, len(body)))
        return
    ranges = {k: (lo, hi) for k, lo, hi in
              (struct.unpack(">hhh", body[6 + 6 * i:12 + 6 * i]) for i in range(n))}
    if ranges.get(API_API_VERSIONS) != (0, 3):
        note_fail(c.name, "ApiVersions range %r, want (0, 3)" % (ranges.get(API_API_VERSIONS),))
    for key in (API_PRODUCE, API_FETCH, API_METADATA):
        if key not in ranges:
            note_fail(c.name, "api key %d missing from the ranges" % key)


def produce_one(c, records, topic=KNOWN, version=3):
    body = round_trip(c.s, produce_v3(21, topic, 0, records, version), 21)
    resp = decode(ProduceResponse[version], body)
    (name, parts), = resp.topics
    part = parts[0]
    return part[1], part[2]  # error_code, base offset


def fetch_one(b, topic, offset):
    with b.connect() as s:
        body = round_trip(s, fetch_v4(31, topic, 0, offset), 31)
    resp = decode(FetchResponse[4], body)
    part = resp.topics[0][1][0]
    return part[1], part[2], part[-1]  # error_code, high watermark, records


def end_offset(b, topic):
    err, hw, _ = fetch_one(b, topic, 0)
    if err != 0:
        raise RuntimeError("fetch %s: error %d" % (topic, err))
    return hw


def bad_batches(b):
    good = record_batch([b"fine"])
    hw = end_offset(b, KNOWN)
    with Case(b, "Produce v3, valid batch (sanity)") as c:
        err, base = produce_one(c, good)
        if err != 0 or base != hw:
            note_fail(c.name, "error %d base %d, want 0 and %d" % (err, base, hw))
    bad_crc = bytearray(good)
    bad_crc[-1] ^= 0x01  # last byte of the value: inside the CRC's span
    refused = [
        ("Produce v3, batch with a wrong CRC", bytes(bad_crc), {ERR_CORRUPT_MESSAGE}, r"crc"),
        ("Produce v3, batch over message.max.bytes",
         record_batch([b"x" * (b.message_max + 1000)]), {ERR_MESSAGE_TOO_LARGE},
         r"(larger|too long|too large|max)"),
        ("Produce v3, batchLength past the end of the records",
         good[:8] + i32(len(good) - 12 + 100) + good[12:], {ERR_CORRUPT_MESSAGE}, r""),
        ("Produce v3, batchLength 2^31-1", good[:8] + i32(2**31 - 1) + good[12:],
         {ERR_CORRUPT_MESSAGE, ERR_MESSAGE_TOO_LARGE}, r""),
        ("Produce v3, batchLength -1", good[:8] + i32(-1) + good[12:],
         {ERR_CORRUPT_MESSAGE}, r""),
        ("Produce v3, magic 1", good[:16] + b"\x01" + good[17:], {ERR_CORRUPT_MESSAGE}, r""),
        ("Produce v3, 30 bytes of records", good[:30], {ERR_CORRUPT_MESSAGE}, r""),
        # Kafka takes exactly one batch per partition from v3: anything else is
        # INVALID_RECORD, refused whole.
        ("Produce v3, valid batch then 5 stray bytes", record_batch([b"stray"]) + b"\x00" * 5,
         {ERR_CORRUPT_MESSAGE, ERR_INVALID_RECORD}, r""),
        ("Produce v3, two valid batches", record_batch([b"stray1"]) + record_batch([b"stray2"]),
         {ERR_INVALID_RECORD}, r""),
    ]
    for name, records, want, why in refused:
        with Case(b, name) as c:
            before = end_offset(b, KNOWN)
            err, base = produce_one(c, records)
            if err not in want:
                note_fail(c.name, "partition error %d, want %s" % (err, sorted(want)))
            c.log(r"(?i)(batch refused.*%s-0.*%s|%s)" % (KNOWN, why, c.peer))
            after = end_offset(b, KNOWN)
            if err != 0 and after != before:
                note_fail(c.name, "answered error %d, but the end offset moved from %d to %d: "
                          "part of a refused request was stored (a client retrying it "
                          "duplicates those records)" % (err, before, after))
    for name, records in (("Produce v3, empty records", b""), ("Produce v3, null records", None)):
        with Case(b, name) as c:
            err, base = produce_one(c, records)
            if err != ERR_CORRUPT_MESSAGE:
                note_fail(c.name, "partition error %d, want %d" % (err, ERR_CORRUPT_MESSAGE))
            c.log(r"(?i)(%s.*records|%s)" % (KNOWN, c.peer))
    with Case(b, "Produce v2 (no RecordBatch v2) → UNSUPPORTED_VERSION") as c:
        err, base = produce_one(c, good, version=2)
        if err != ERR_UNSUPPORTED_VERSION:
            note_fail(c.name, "partition error %d, want %d" % (err, ERR_UNSUPPORTED_VERSION))
        c.log(c.peer)
    # Nothing refused was stored: the log holds the sanity batch and the kcat
    # health messages, read back whole.
    err, hw2, records = fetch_one(b, KNOWN, hw)
    values = []
    batches = MemoryRecords(records)
    while batches.has_next():
        for r in batches.next_batch():
            values.append(r.value)
    stray = [v[:20] for v in values[1:] if not v.startswith(b"health-")]
    if err != 0 or values[:1] != [b"fine"] or stray:
        note_fail("refused batches", "records of refused requests were stored: %r "
                  "(fetch error %d, first value %r)" % (stray, err, values[:1]))


def unknown_topics(b):
    with Case(b, "Produce to an unknown topic, auto-create off") as c:
        err, base = produce_one(c, record_batch([b"nowhere"]), topic="missing-produce")
        if err != ERR_UNKNOWN_TOPIC_OR_PARTITION:
            note_fail(c.name, "partition error %d, want %d" % (err, ERR_UNKNOWN_TOPIC_OR_PARTITION))
        c.log(r"missing-produce|" + c.peer)
    with Case(b, "Metadata v4 for an unknown topic, auto-create off") as c:
        body = round_trip(c.s, metadata_v4(41, ["missing-meta"], allow_auto_create=True), 41)
        resp = decode(MetadataResponse[4], body)
        got = {t[1]: t[0] for t in resp.topics}  # name -> error_code
        if got.get("missing-meta") != ERR_UNKNOWN_TOPIC_OR_PARTITION:
            note_fail(c.name, "topics %r, want missing-meta with error 3" % (resp.topics,))
        c.log(r"missing-meta|" + c.peer)
    with Case(b, "Metadata v4 for an invalid topic name") as c:
        body = round_trip(c.s, metadata_v4(42, ["bad/name"]), 42)
        resp = decode(MetadataResponse[4], body)
        if resp.topics[0][0] != 17:  # INVALID_TOPIC_EXCEPTION
            note_fail(c.name, "topics %r, want error 17" % (resp.topics,))
    # Neither was created: not in the metadata, not on disk.
    with b.connect() as s:
        resp = decode(MetadataResponse[4], round_trip(s, metadata_v4(43, None), 43))
    names = {t[1] for t in resp.topics}
    for t in ("missing-produce", "missing-meta"):
        if t in names:
            note_fail("unknown topics", "%s was created (metadata lists %s)" % (t, sorted(names)))
    on_disk = [d for d in os.listdir(b.data_dir) if d.startswith("missing-")]
    if on_disk:
        note_fail("unknown topics", "directories created: %s" % on_disk)
    if KNOWN not in names or OOR not in names:
        note_fail("unknown topics", "metadata lost topics: %s" % sorted(names))


def fetch_out_of_range(b):
    end = end_offset(b, OOR)
    if end != 3:
        note_fail("fetch", "topic %s has end offset %d, want 3" % (OOR, end))
    with Case(b, "Fetch at the end offset (not out of range)") as c:
        body = round_trip(c.s, fetch_v4(51, OOR, 0, end), 51)
        err = decode(FetchResponse[4], body).topics[0][1][0][1]
        if err != ERR_NONE:
            note_fail(c.name, "error %d, want 0" % err)
    for offset in (end + 1000, -5):
        with Case(b, "Fetch at offset %d, end %d" % (offset, end)) as c:
            body = round_trip(c.s, fetch_v4(52, OOR, 0, offset), 52)
            part = decode(FetchResponse[4], body).topics[0][1][0]
            if part[1] != ERR_OFFSET_OUT_OF_RANGE:
                note_fail(c.name, "error %d, want %d" % (part[1], ERR_OFFSET_OUT_OF_RANGE))
            c.log(r"%s|%s" % (OOR, c.peer))
    with Case(b, "Fetch from partition 7 of a 1-partition topic") as c:
        body = round_trip(c.s, fetch_v4(53, OOR, 7, 0), 53)
        part = decode(FetchResponse[4], body).topics[0][1][0]
        if part[1] != ERR_UNKNOWN_TOPIC_OR_PARTITION:
            note_fail(c.name, "error %d, want %d" % (part[1], ERR_UNKNOWN_TOPIC_OR_PARTITION))


def summary():
    print("bad_input: %d health checks, %d failure(s)" % (health_checks, len(failures)))
    for f in failures:
        print("  - " + f.splitlines()[0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--broker", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--request-max", type=int, required=True)
    ap.add_argument("--message-max", type=int, required=True)
    b = Broker(ap.parse_args())
    if not healthy(b, "before any case", True):
        summary()
        return 1
    for group in (bad_api, bad_sizes, truncated_frames, random_bytes, bad_batches, unknown_topics,
                  fetch_out_of_range):
        print("== " + group.__name__, flush=True)
        group(b)
    summary()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
