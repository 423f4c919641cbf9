#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""libsluice's consumer groups against a real sluiced, driven through
`sluice consume -g` (SLUICE names the binary); started by client_groups.sh,
which passes BROKER, BROKER_LOG and WORKDIR. Cases:

  takeover    two members split a 6-partition topic 3 + 3 (range); one is
              killed with -9 after its auto-commits, and the other owns all
              6 within session timeout + 1.5 s, starting exactly at the dead
              member's commits: every (partition, offset) printed once by
              the two together; SIGTERM commits the rest and leaves.
  roundrobin  a libsluice member and a confluent_kafka member, both offering
              only roundrobin, get partitions dealt in turn by member id
              (whichever of them leads), and read exactly their own.
  resume      a member stopped after -n 40 records commits them as it leaves;
              the next one (-e) prints exactly the rest.
  api         client/examples/group_consumer: sl_commit after every record,
              synchronous (each answered OK, the group's offsets exactly what
              was printed) and asynchronous (the commit callback says OK, the
              next member resumes after them); sl_seek from the assign
              callback reads everything again.
"""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import groups  # noqa: E402  (the shared Kafka helpers of the groups test)
from groups import Failed, check, wait_for, create_topic, produce, committed, describe  # noqa

BROKER = os.environ["BROKER"]
SLUICE = os.environ.get("SLUICE", "build/sluice")
WORKDIR = os.environ.get("WORKDIR", "/tmp")
SESSION_MS = 2000
PHASE = groups.PHASE_RECORDS


def member(group, topic, name, *extra):
    """A `sluice consume -g` member printing "partition offset value" lines."""
    out = open(os.path.join(WORKDIR, "member-%s.out" % name), "w")
    err = open(os.path.join(WORKDIR, "member-%s.err" % name), "w")
    cmd = [SLUICE, "consume", topic, "-b", BROKER, "-g", group, "-f", "%p %o %s\\n",
           "-X", "session.timeout.ms=%d" % SESSION_MS, "-X", "heartbeat.interval.ms=200",
           "-X", "auto.commit.interval.ms=300", "-X", "client.id=member-" + name] + list(extra)
    return subprocess.Popen(cmd, stdout=out, stderr=err), out.name


def lines(path, strict=False):
    """[(partition, offset, value)] of a member's complete output lines; a
    line not yet whole (read racing the write) is left for the next read
    while polling, and is a failure with strict=True (the settled file)."""
    return groups.read_records(path, strict)


def members_of(group):
    state, ms = describe(group)
    return state, ms


def stable_with(group, n):
    state, ms = describe(group)
    return state == "Stable" and len(ms) == n and ms


def case_takeover():
    topic, group, parts = "cg-split", "cg-split-group", 6
    create_topic(topic, parts)
    a, a_out = member(group, topic, "a")
    procs = [a]
    try:
        wait_for("the first member, Stable", lambda: stable_with(group, 1), 20)
        b, b_out = member(group, topic, "b")
        procs.append(b)
        ms = wait_for("two members, Stable", lambda: stable_with(group, 2), 20)
        sets = sorted(m.get(topic, []) for m in ms.values())
        check(sets == [[0, 1, 2], [3, 4, 5]], "range split of 6 over 2: got %s" % sets)

        produce(topic, parts, "one")
        wait_for("both members printed the first 300 records",
                 lambda: len(lines(a_out)) + len(lines(b_out)) == parts * PHASE, 20)
        mine_a = sorted({p for p, _, _ in lines(a_out)})
        mine_b = sorted({p for p, _, _ in lines(b_out)})
        check(sorted([mine_a, mine_b]) == sets,
              "members printed partitions %s and %s, assigned %s" % (mine_a, mine_b, sets))
        want = {p: PHASE for p in range(parts)}
        wait_for("auto-commits of offset %d on all 6 partitions" % PHASE,
                 lambda: committed(BROKER, group, topic, list(range(parts))) == want, 10)

        a.send_signal(signal.SIGKILL)
        a.wait()
        killed_at = time.monotonic()
        produce(topic, parts, "two")

        def moved():
            state, ms = describe(group)
            got = list(ms.values())
            return state == "Stable" and len(got) == 1 and got[0].get(topic) == list(range(parts))
        wait_for("the survivor owns all 6 partitions", moved, 15, interval_s=0.02)
        took = time.monotonic() - killed_at
        check(took <= SESSION_MS / 1000 + 1.5,
              "partitions moved after %.2f s, more than session timeout + 1.5 s" % took)

        wait_for("the survivor printed the second 300 records",
                 lambda: len(lines(b_out)) >= len(mine_b) * PHASE + parts * PHASE, 20)
        time.sleep(0.5)  # room for anything it would print twice
        recs = lines(a_out, strict=True) + lines(b_out, strict=True)
        for p in range(parts):
            got = sorted(o for q, o, _ in recs if q == p)
            twice = sorted({o for o in got if got.count(o) > 1})
            missing = sorted(set(range(2 * PHASE)) - set(got))
            check(not twice and not missing, "partition %d: printed twice %s, never %s" %
                  (p, twice[:5], missing[:5]))
        for p, o, v in recs:
            check(v == "%s-%d-%d" % ("one" if o < PHASE else "two", p, o % PHASE),
                  "partition %d offset %d holds %s" % (p, o, v))
        for p in mine_a:
            got = [o for q, o, _ in lines(b_out, strict=True) if q == p]
            check(got == list(range(PHASE, 2 * PHASE)),
                  "survivor read partition %d from %s, want %d.." % (p, got[:3], PHASE))

        b.send_signal(signal.SIGTERM)
        check(b.wait(15) == 0, "sluice consume did not exit 0 on SIGTERM")
        got = committed(BROKER, group, topic, list(range(parts)))
        check(got == {p: 2 * PHASE for p in range(parts)},
              "committed after the survivor stopped: %s" % got)
        state, ms = describe(group)
        check(state == "Empty" and not ms, "group after the last member left: %s %s" % (state, ms))
        print("takeover: 3 + 3, kill -9 moved 3 in %.2f s, 600 records each printed once: ok" %
              took)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def case_roundrobin():
    from confluent_kafka import Consumer
    topic, group, parts = "cg-rr", "cg-rr-group", 4
    create_topic(topic, parts)
    s, s_out = member(group, topic, "rr", "-X", "partition.assignment.strategy=roundrobin")
    cf = None
    try:
        wait_for("the libsluice member, Stable", lambda: stable_with(group, 1), 20)
        cf = Consumer({"bootstrap.servers": BROKER, "group.id": group,
                       "partition.assignment.strategy": "roundrobin",
                       "auto.offset.reset": "earliest", "session.timeout.ms": 6000,
                       "heartbeat.interval.ms": 200, "enable.auto.commit": False})
        cf.subscribe([topic])
        deadline = time.monotonic() + 20
        ms = None
        while ms is None:
            check(time.monotonic() < deadline, "no Stable group of 2 within 20 s")
            cf.poll(0.1)
            ms = stable_with(group, 2) or None
        ids = sorted(ms)
        want = {ids[0]: [0, 2], ids[1]: [1, 3]}
        got = {k: v.get(topic, []) for k, v in ms.items()}
        check(got == want, "roundrobin over members %s: got %s, want %s" % (ids, got, want))
        cf_parts = sorted(tp.partition for tp in cf.assignment())
        s_parts = sorted(set(range(parts)) - set(cf_parts))
        check(cf_parts in ([0, 2], [1, 3]), "librdkafka member holds %s" % cf_parts)

        produce(topic, parts, "rr", count=40)
        read = []
        deadline = time.monotonic() + 20
        while len(read) < 2 * 40:
            check(time.monotonic() < deadline, "librdkafka member read %d of 80" % len(read))
            m = cf.poll(0.1)
            if m is not None and m.error() is None:
                read.append((m.partition(), m.offset()))
        wait_for("the libsluice member printed its 80 records", lambda: len(lines(s_out)) >= 80, 20)
        time.sleep(0.3)
        mine = lines(s_out, strict=True)
        check(len(mine) == 80 and sorted({p for p, _, _ in mine}) == s_parts,
              "libsluice member printed %d records of partitions %s, want 80 of %s" %
              (len(mine), sorted({p for p, _, _ in mine}), s_parts))
        check(sorted({p for p, _ in read}) == cf_parts and len(set(read)) == 80,
              "librdkafka member read %d records of %s" % (len(set(read)), cf_parts))
        print("roundrobin: libsluice and librdkafka members dealt %s and %s: ok" %
              (s_parts, cf_parts))
    finally:
        if cf is not None:
            cf.close()
        s.send_signal(signal.SIGTERM)
        s.wait(15)


def case_resume():
    topic, group, parts = "cg-resume", "cg-resume-group", 3
    create_topic(topic, parts)
    produce(topic, parts, "r", count=30)
    fmt = "%p %o %s\\n"
    first = subprocess.run([SLUICE, "consume", topic, "-b", BROKER, "-g", group, "-n", "40",
                            "-f", fmt], capture_output=True, text=True, timeout=30)
    check(first.returncode == 0, "first member: exit %d: %s" % (first.returncode, first.stderr))
    second = subprocess.run([SLUICE, "consume", topic, "-b", BROKER, "-g", group, "-e",
                             "-f", fmt], capture_output=True, text=True, timeout=30)
    check(second.returncode == 0, "second member: exit %d: %s" % (second.returncode,
                                                                  second.stderr))
    a = [tuple(ln.split()[:2]) for ln in first.stdout.splitlines()]
    b = [tuple(ln.split()[:2]) for ln in second.stdout.splitlines()]
    check(len(a) == 40, "first member printed %d records, want 40" % len(a))
    check(not set(a) & set(b), "printed by both: %s" % sorted(set(a) & set(b))[:5])
    check(len(b) == 50 and len(set(a) | set(b)) == 90,
          "second member printed %d, together %d distinct, want 50 and 90" %
          (len(b), len(set(a) | set(b))))
    got = committed(BROKER, group, topic, list(range(parts)))
    check(got == {p: 30 for p in range(parts)}, "committed at the end: %s" % got)
    print("resume: 40 then exactly the other 50: ok")


def example(group, topic, *args):
    """build/examples/group_consumer: (exit code, [(p, o)], stderr lines)."""
    binary = os.path.join(os.path.dirname(SLUICE), "examples", "group_consumer")
    r = subprocess.run([binary, BROKER, group, topic] + list(args), capture_output=True,
                       text=True, timeout=60)
    recs = [tuple(int(x) for x in ln.split()[:2]) for ln in r.stdout.splitlines()]
    return r.returncode, recs, r.stderr.splitlines()


def case_api():
    """sl_commit synchronous and asynchronous (with the commit callback) and
    sl_seek from the assign callback, through the example program."""
    topic, group, parts = "cg-api", "cg-api-group", 2
    create_topic(topic, parts)
    produce(topic, parts, "a", count=20)
    rc, recs, err = example(group, topic, "--commit", "sync", "--count", "15")
    check(rc == 0 and len(recs) == 15, "sync: exit %d, %d records: %s" % (rc, len(recs), err[-5:]))
    sync_ok = [ln for ln in err if ln.startswith("commit: OK")]
    check(len(sync_ok) == 15, "sync: %d commits OK of 15: %s" % (len(sync_ok), err[-5:]))
    want = {p: max([o + 1 for q, o in recs if q == p], default=-1) for p in range(parts)}
    got = committed(BROKER, group, topic, list(range(parts)))
    check(all(got[p] == want[p] for p in range(parts) if want[p] >= 0),
          "sync: committed %s, printed up to %s" % (got, want))

    rc, recs2, err = example(group, topic, "--commit", "async", "--count", "10")
    check(rc == 0 and len(recs2) == 10, "async: exit %d, %d records: %s" % (rc, len(recs2),
                                                                           err[-5:]))
    check(not set(recs) & set(recs2), "async: re-read %s" % sorted(set(recs) & set(recs2))[:3])
    callbacks = [ln for ln in err if ln.startswith("commit: ")]
    check(callbacks and all(ln.startswith("commit: OK") for ln in callbacks),
          "async: commit callbacks %s" % callbacks[-3:])
    got = committed(BROKER, group, topic, list(range(parts)))
    check(sum(got.values()) == 25, "async: committed %s, want 25 in all" % got)

    rc, recs3, err = example(group, topic, "--seek-on-assign", "0", "--count", "40")
    check(rc == 0 and sorted(recs3) == sorted((p, o) for p in range(parts) for o in range(20)),
          "seek to 0 on assign: exit %d, read %d records %s" % (rc, len(recs3), err[-5:]))
    got = committed(BROKER, group, topic, list(range(parts)))
    check(got == {p: 20 for p in range(parts)}, "after the seek and auto-commit: %s" % got)
    print("api: 15 sync commits, 10 async with callbacks, seek from the assign callback: ok")


def main():
    for name, case in (("takeover", case_takeover), ("roundrobin", case_roundrobin),
                       ("resume", case_resume), ("api", case_api)):
        t0 = time.monotonic()
        try:
            case()
        except Failed as e:
            print("FAIL: %s: %s" % (name, e), file=sys.stderr)
            sys.exit(1)
        print("%s: %.1f s" % (name, time.monotonic() - t0))


if __name__ == "__main__":
    main()
