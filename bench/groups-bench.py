#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Group coordinator benchmark: offset commits per second, and how long a
10-member consumer group takes to rebalance after one member leaves. Starts
its own sluiced from BUILD_DIR (config/sluice.conf as it is: every commit is
acknowledged after the fdatasync that covers it) in a temporary directory on
an ephemeral port, prints one line per figure and writes
bench/results/groups.json.

    bench/groups-bench.py [BUILD_DIR]          (default: build)
    QUICK=1 bench/groups-bench.py [BUILD_DIR]  (fewer commits, 3 rebalances)

Commits:
  - pipelined: raw OffsetCommit v2 frames, 64 in flight on one connection,
    one partition each (what a broker does when commits arrive together:
    they share appends and syncs); then 4 such connections at once, one
    process and one group each (one Python client tops out near 30k/s on its
    own; the clients share the machine's CPUs with the broker);
  - sequential: the same frames one at a time (each waits for its own sync);
    with latency percentiles;
  - confluent_kafka: Consumer.commit(offsets=[...], asynchronous=False) in a
    loop, librdkafka's round trip included.
Rebalance: 10 confluent_kafka consumers (one thread each, heartbeat.interval.ms
100) share a 20-partition topic; one closes (LeaveGroup); the time runs from
close() until each of the other 9 has its new assignment and together they
own all 20 partitions. The broker's share (its "member left" line to its
"rebalance done" line) is reported beside it. A new member then joins to
make 10 again, and the trial repeats.
"""
import datetime
import json
import multiprocessing
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
from groups import (API_OFFSET_COMMIT, Wire, offset_commit_body,  # noqa: E402
                    offset_commit_errors, offset_fetch)

QUICK = os.environ.get("QUICK", "0") == "1"
PIPELINED_COMMITS = 20000 if QUICK else 100000
CONNECTIONS = 4
SEQUENTIAL_COMMITS = 1000 if QUICK else 5000
CLIENT_COMMITS = 500 if QUICK else 3000
DEPTH = 64
MEMBERS = 10
PARTITIONS = 20
TRIALS = 3 if QUICK else 7
HEARTBEAT_MS = 100
SESSION_MS = 10000


# ------------------------------------------------------------------ broker

class Broker:
    def __init__(self, build):
        self.dir = tempfile.mkdtemp(prefix="sluice-groups-bench-")
        self.log_path = os.path.join(self.dir, "sluiced.log")
        self.settings = {"group.initial.rebalance.delay.ms": "0"}
        cmd = [os.path.join(build, "sluiced"), "-c", os.path.join(REPO, "config", "sluice.conf"),
               "--set", "log.dirs=" + os.path.join(self.dir, "data"),
               "--set", "listeners=PLAINTEXT://127.0.0.1:0"]
        for k, v in self.settings.items():
            cmd += ["--set", "%s=%s" % (k, v)]
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        pat = re.compile(r"started .*listener=PLAINTEXT://[^:]*:(\d+)")
        for _ in range(200):
            m = pat.search(open(self.log_path).read())
            if m:
                self.address = "127.0.0.1:" + m.group(1)
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise SystemExit("groups-bench: sluiced did not start:\n" + open(self.log_path).read())

    def ring(self):
        m = re.search(r"ring=(\w+)", open(self.log_path).read())
        return m.group(1) if m else "?"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def create_topic(broker, topic, partitions):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": broker})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(15)


def percentile(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


# ---------------------------------------------------------------- commits

def commits_raw(broker, n, depth, group):
    """(commits/s, [latency ms]) of n commits with depth in flight on one
    connection. The frames are encoded beforehand: Python is the client."""
    bodies = [offset_commit_body(group, [("gb", i % 4, i)]) for i in range(n)]
    w = Wire(broker)
    sent = acked = 0
    started = [0.0] * n
    lat = []
    t0 = time.monotonic()
    while acked < n:
        while sent < n and sent - acked < depth:
            started[sent] = time.monotonic()
            w.send(API_OFFSET_COMMIT, 2, bodies[sent])
            sent += 1
        _, resp = w.recv()
        lat.append((time.monotonic() - started[acked]) * 1000)
        if resp[-2:] != b"\0\0":  # one partition: its error code ends the response
            raise SystemExit("groups-bench: commit %d refused: %s" %
                             (acked, offset_commit_errors(resp)))
        acked += 1
    took = time.monotonic() - t0
    got = offset_fetch(w, group, "gb", [0, 1, 2, 3])
    w.close()
    want = {p: max(i for i in range(max(0, n - 4), n) if i % 4 == p) for p in range(4)}
    if got != want:
        raise SystemExit("groups-bench: committed %s, want %s" % (got, want))
    return n / took, lat


def commits_raw_job(args):
    return commits_raw(*args)


def commits_raw_parallel(broker, connections, n, depth):
    """Commits/s of several connections (one process and one group each) at
    once, and their latencies together."""
    t0 = time.monotonic()
    with multiprocessing.Pool(connections) as pool:
        results = pool.map(commits_raw_job, [(broker, n, depth, "gb-parallel-%d" % i)
                                             for i in range(connections)])
    took = time.monotonic() - t0
    return connections * n / took, [x for _, lat in results for x in lat]


def commits_client(broker, n):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": broker, "group.id": "gb-client",
                  "enable.auto.commit": False})
    lat = []
    t0 = time.monotonic()
    for i in range(n):
        s = time.monotonic()
        res = c.commit(offsets=[TopicPartition("gb", i % 4, i)], asynchronous=False)
        lat.append((time.monotonic() - s) * 1000)
        if res[0].error is not None:
            raise SystemExit("groups-bench: client commit %d: %s" % (i, res[0].error))
    took = time.monotonic() - t0
    c.close()
    return n / took, lat


# -------------------------------------------------------------- rebalance

class Member(threading.Thread):
    """A consumer polled by its own thread; records its assignments."""

    def __init__(self, broker, group, topic, name):
        super().__init__(daemon=True)
        from confluent_kafka import Consumer
        self.c = Consumer({"bootstrap.servers": broker, "group.id": group,
                           "client.id": name, "session.timeout.ms": SESSION_MS,
                           "heartbeat.interval.ms": HEARTBEAT_MS,
                           "enable.auto.commit": False})
        self.c.subscribe([topic], on_assign=self.on_assign)
        self.assigned = (0.0, [])  # (when, partitions) of the latest assignment
        self.stopping = threading.Event()
        self.closed_at = None
        self.start()

    def on_assign(self, c, tps):
        self.assigned = (time.monotonic(), sorted(tp.partition for tp in tps))

    def run(self):
        while not self.stopping.is_set():
            self.c.poll(0.02)
        self.closed_at = time.monotonic()
        self.c.close()

    def leave(self):
        self.stopping.set()
        self.join(15)


def settled(members, since):
    """All members assigned after since, together owning every partition once."""
    if any(m.assigned[0] <= since for m in members):
        return None
    owned = sorted(p for m in members for p in m.assigned[1])
    return max(m.assigned[0] for m in members) if owned == list(range(PARTITIONS)) else None


def wait_settled(members, since, timeout_s=30):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done = settled(members, since)
        if done:
            return done
        time.sleep(0.002)
    raise SystemExit("groups-bench: the group did not settle in %d s" % timeout_s)


def log_time(line):
    ts = line.split()[0].rstrip("Z")
    return datetime.datetime.fromisoformat(ts).timestamp()


def broker_share(log_path, group, left_count):
    """Seconds from the broker's n-th "member left" line of a group to the
    "rebalance done" line after it."""
    left = done = None
    seen = 0
    for line in open(log_path):
        if "group=%s " % group not in line:
            continue
        if " member left " in line:
            seen += 1
            if seen == left_count:
                left = log_time(line)
        elif left is not None and " rebalance done " in line:
            done = log_time(line)
            break
    return None if left is None or done is None else done - left


def rebalance(broker, log_path):
    group, topic = "gb-rebalance", "gb-rebalance"
    create_topic(broker, topic, PARTITIONS)
    t0 = time.monotonic()
    members = [Member(broker, group, topic, "m%d" % i) for i in range(MEMBERS)]
    wait_settled(members, t0)
    if any(len(m.assigned[1]) != PARTITIONS // MEMBERS for m in members):
        raise SystemExit("groups-bench: uneven first assignment")
    client_s, broker_s = [], []
    for trial in range(TRIALS):
        leaving = members.pop(trial % len(members))
        mark = time.monotonic()
        leaving.leave()
        done = wait_settled(members, mark)
        client_s.append(done - mark)
        b = broker_share(log_path, group, trial + 1)
        if b is not None:
            broker_s.append(b)
        print("  trial %d: %d members settled %.0f ms after a member's close() (broker %.0f ms)"
              % (trial + 1, len(members), (done - mark) * 1000, (b or 0) * 1000))
        mark = time.monotonic()
        members.append(Member(broker, group, topic, "n%d" % trial))
        wait_settled(members, mark)
    for m in members:
        m.stopping.set()
    for m in members:
        m.join(15)
    return client_s, broker_s


# -------------------------------------------------------------------- main

def git(*args):
    try:
        return subprocess.run(["git", "-C", REPO] + list(args), capture_output=True,
                              text=True, timeout=10).stdout.strip()
    except Exception:
        return ""


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    build = build if os.path.isabs(build) else os.path.join(REPO, build)
    import confluent_kafka
    broker = Broker(build)
    try:
        create_topic(broker.address, "gb", 4)
        load_start = " ".join("%.2f" % x for x in os.getloadavg())
        pipelined, lat_p = commits_raw(broker.address, PIPELINED_COMMITS, DEPTH, "gb-pipelined")
        print("commits, %d in flight: %.0f/s (latency p50 %.2f ms, p99 %.2f ms)" %
              (DEPTH, pipelined, percentile(lat_p, 0.5), percentile(lat_p, 0.99)))
        parallel, lat_m = commits_raw_parallel(broker.address, CONNECTIONS,
                                               PIPELINED_COMMITS // CONNECTIONS, DEPTH)
        print("commits, %d connections x %d in flight: %.0f/s (latency p50 %.2f ms, p99 %.2f ms)"
              % (CONNECTIONS, DEPTH, parallel, percentile(lat_m, 0.5), percentile(lat_m, 0.99)))
        sequential, lat_s = commits_raw(broker.address, SEQUENTIAL_COMMITS, 1, "gb-sequential")
        print("commits, one at a time: %.0f/s (latency p50 %.2f ms, p99 %.2f ms, max %.2f ms)" %
              (sequential, percentile(lat_s, 0.5), percentile(lat_s, 0.99), max(lat_s)))
        client, lat_c = commits_client(broker.address, CLIENT_COMMITS)
        print("commits, confluent_kafka commit(asynchronous=False): %.0f/s (p50 %.2f ms, "
              "p99 %.2f ms)" % (client, percentile(lat_c, 0.5), percentile(lat_c, 0.99)))
        print("rebalance of %d members after one leaves (%d partitions, heartbeat.interval.ms "
              "%d):" % (MEMBERS, PARTITIONS, HEARTBEAT_MS))
        client_s, broker_s = rebalance(broker.address, broker.log_path)
        print("rebalance: median %.0f ms (min %.0f, max %.0f); broker's share median %.0f ms" %
              (statistics.median(client_s) * 1000, min(client_s) * 1000, max(client_s) * 1000,
               statistics.median(broker_s) * 1000 if broker_s else -1))
        ring = broker.ring()
    finally:
        broker.stop()
    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": git("rev-parse", "--short", "HEAD"),
        # Changes to the sources; the results the scripts write do not count.
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no", "--", ".",
                          ":!bench/results")),
        "quick": QUICK,
        "machine": {"nproc": os.cpu_count(), "kernel": platform.release(),
                    "loadavg": "%s at the start, %s at the end" %
                    (load_start, " ".join("%.2f" % x for x in os.getloadavg()))},
        "broker_config": dict(broker.settings, **{"config": "config/sluice.conf",
                                                  "ring_in_use": ring}),
        "librdkafka": confluent_kafka.libversion()[0],
        "commits": {
            "pipelined": {"in_flight": DEPTH, "commits": PIPELINED_COMMITS,
                          "commits_per_s": round(pipelined),
                          "p50_ms": round(percentile(lat_p, 0.5), 3),
                          "p99_ms": round(percentile(lat_p, 0.99), 3)},
            "pipelined_connections": {"connections": CONNECTIONS, "in_flight_each": DEPTH,
                                      "commits": PIPELINED_COMMITS,
                                      "commits_per_s": round(parallel),
                                      "p50_ms": round(percentile(lat_m, 0.5), 3),
                                      "p99_ms": round(percentile(lat_m, 0.99), 3)},
            "sequential": {"in_flight": 1, "commits": SEQUENTIAL_COMMITS,
                           "commits_per_s": round(sequential),
                           "p50_ms": round(percentile(lat_s, 0.5), 3),
                           "p99_ms": round(percentile(lat_s, 0.99), 3),
                           "max_ms": round(max(lat_s), 3)},
            "confluent_kafka_sync": {"commits": CLIENT_COMMITS, "commits_per_s": round(client),
                                     "p50_ms": round(percentile(lat_c, 0.5), 3),
                                     "p99_ms": round(percentile(lat_c, 0.99), 3)},
        },
        "rebalance_after_leave": {
            "members": MEMBERS, "partitions": PARTITIONS, "heartbeat_interval_ms": HEARTBEAT_MS,
            "session_timeout_ms": SESSION_MS, "trials": TRIALS,
            "median_ms": round(statistics.median(client_s) * 1000, 1),
            "min_ms": round(min(client_s) * 1000, 1), "max_ms": round(max(client_s) * 1000, 1),
            "all_ms": [round(x * 1000, 1) for x in client_s],
            "broker_median_ms": round(statistics.median(broker_s) * 1000, 1) if broker_s else None,
            "broker_all_ms": [round(x * 1000, 1) for x in broker_s],
        },
    }
    out = os.path.join(REPO, "bench", "results", "groups.json")
    with open(out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print("wrote " + os.path.relpath(out, REPO))
    write_report(result)


def write_report(r):
    """bench/results/groups.md: the same figures for people."""
    c, rb, m = r["commits"], r["rebalance_after_leave"], r["machine"]
    rows = [
        ("commits, %d in flight on one connection (raw OffsetCommit frames)"
         % c["pipelined"]["in_flight"],
         "%d/s (p50 %.2f ms, p99 %.2f ms)" % (c["pipelined"]["commits_per_s"],
                                              c["pipelined"]["p50_ms"], c["pipelined"]["p99_ms"])),
        ("commits, %d connections x %d in flight" % (c["pipelined_connections"]["connections"],
                                                    c["pipelined_connections"]["in_flight_each"]),
         "%d/s (p50 %.2f ms, p99 %.2f ms)" % (c["pipelined_connections"]["commits_per_s"],
                                              c["pipelined_connections"]["p50_ms"],
                                              c["pipelined_connections"]["p99_ms"])),
        ("commits, one at a time",
         "%d/s (p50 %.2f ms, p99 %.2f ms)" % (c["sequential"]["commits_per_s"],
                                              c["sequential"]["p50_ms"], c["sequential"]["p99_ms"])),
        ("confluent_kafka commit(asynchronous=False), one at a time",
         "%d/s (p50 %.2f ms, p99 %.2f ms)" % (c["confluent_kafka_sync"]["commits_per_s"],
                                              c["confluent_kafka_sync"]["p50_ms"],
                                              c["confluent_kafka_sync"]["p99_ms"])),
        ("%d-member group (%d partitions, heartbeat.interval.ms %d) settled again after one member's "
         "close()" % (rb["members"], rb["partitions"], rb["heartbeat_interval_ms"]),
         "median %.0f ms (min %.0f, max %.0f over %d trials); the broker's own share median %s ms"
         % (rb["median_ms"], rb["min_ms"], rb["max_ms"], rb["trials"],
            "%.0f" % rb["broker_median_ms"] if rb["broker_median_ms"] is not None else "-")),
    ]
    lines = [
        "# Consumer group benchmark",
        "",
        "Commit %s%s, %s, %d CPUs, kernel %s; load %s. Written by `bench/groups-bench.py`"
        " (`make bench`)%s; raw numbers in `groups.json`." % (
            r["commit"], " (with uncommitted changes)" if r["dirty"] else "", r["date"],
            m["nproc"], m["kernel"], m["loadavg"], " in quick mode" if r["quick"] else ""),
        "",
        "One sluiced started with `config/sluice.conf` (log.flush.policy=always: a commit is"
        " answered once its record is synced) on the repository's filesystem; clients on the"
        " same machine (librdkafka %s through confluent_kafka, and raw frames)." % r["librdkafka"],
        "",
        "| measured | result |",
        "| --- | --- |",
    ] + ["| %s | %s |" % row for row in rows] + [""]
    path = os.path.join(REPO, "bench", "results", "groups.md")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    print("wrote " + os.path.relpath(path, REPO))


if __name__ == "__main__":
    main()
