#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The benchmark report: runs sluice-bench's standard scenarios against one
sluiced, measures the machine's own limits in the same run, draws the charts
and writes bench/results/REPORT.md, which also gathers the figures of the
other benchmark scripts (storage, broker, client, peers, groups) from their
JSON results when `make bench` has just written them.

  bench/report.py BUILD_DIR            full run (about 6 minutes)
  QUICK=1 bench/report.py BUILD_DIR    short runs, the report under
                                       bench/results/tmp/ (under a minute)
  bench/report.py --render-only DIR    REPORT.md again from DIR's runs/ and
                                       report.json and the other scripts'
                                       results as they are now

Scenarios (1 KiB, acks=all and no compression unless named; one topic each,
created with its partition count; keyless messages, sticky partitioner):
  produce-SIZE-ACKS  producer only, as fast as it goes: 100 B, 1 KiB, 16 KiB
                     with acks=1 and acks=all
  latency            a producer at half the 1 KiB acks=all maximum and a
                     tailing consumer, end-to-end percentiles; linger.ms=0
                     (latency over batching, as OpenMessaging's latency
                     runs; every other figure uses the default 5)
  consume-cache      a consumer reading 1 GiB (quick: 64 MiB) written just
                     before, from the broker's batch cache and page cache
  consume-disk       the same after a broker restart and dropped page cache
  partitions-P       producer at max rate over 1, 16, 256 and 1,024 partitions
  fanout             one producer at half the maximum, four consumer groups
                     of one consumer each, each reading everything
  idempotence-off,   1 KiB acks=all with idempotence off, and with zstd
  zstd               (the values are random: zstd finds little to remove)

Durability, stated in the report: sluiced runs config/sluice.conf as is
(log.flush.policy=always, storage.io=direct): acks=all and acks=1 are both
answered after the fdatasync that covers the batch (one node: no replicas).

Limits in the same run: fio writing 1 MiB blocks with O_DIRECT and an
fdatasync after each (the durable write rate of the disk sluiced uses), and
iperf3 over loopback (the network stack's ceiling on this machine).
"""
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(REPO, "bench", "results")
QUICK = os.environ.get("QUICK", "0") == "1"
KIB = 1024


def log(msg):
    print("report: " + msg, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Broker:
    """sluiced with config/sluice.conf on a free port, data in scratch."""

    def __init__(self, build, scratch):
        self.build, self.scratch = build, scratch
        self.port = free_port()
        self.proc = None

    def start(self):
        self.log = open(os.path.join(self.scratch, "sluiced.log"), "a")
        self.proc = subprocess.Popen(
            [os.path.join(self.build, "sluiced"), "-c", os.path.join(REPO, "config/sluice.conf"),
             "--set", "log.dirs=" + os.path.join(self.scratch, "data"),
             "--set", "listeners=PLAINTEXT://127.0.0.1:%d" % self.port,
             "--set", "group.initial.rebalance.delay.ms=0"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120  # a restart opens every log first
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.log.flush()
        with open(self.log.name) as f:
            tail = f.read()[-2000:]
        raise RuntimeError("sluiced did not start on port %d:\n%s" % (self.port, tail))

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port


# ---------------------------------------------------------------- limits

def fio_limit(scratch):
    if shutil.which("fio") is None:
        return None
    size = "128m" if QUICK else "1g"
    r = subprocess.run(["fio", "--name=limit", "--directory=" + scratch, "--rw=write",
                        "--bs=1m", "--size=" + size, "--direct=1", "--fdatasync=1",
                        "--ioengine=psync", "--output-format=json"],
                       capture_output=True, text=True)
    for f in os.listdir(scratch):
        if f.startswith("limit."):
            os.unlink(os.path.join(scratch, f))
    if r.returncode != 0:
        log("fio failed: " + r.stderr.strip()[:200])
        return None
    job = json.loads(r.stdout)["jobs"][0]["write"]
    return job["bw_bytes"] / 1e6  # MB/s


def fio_sync_latency(scratch):
    """(p50, p99) in us of one 4 KiB O_DIRECT write plus its fdatasync: the
    disk's own floor under an acknowledgement that waits for the disk."""
    if shutil.which("fio") is None:
        return None
    r = subprocess.run(["fio", "--name=floor", "--directory=" + scratch, "--rw=write",
                        "--bs=4k", "--size=256m", "--direct=1", "--fdatasync=1",
                        "--ioengine=psync", "--time_based", "--runtime=" + ("1" if QUICK else "5"),
                        "--output-format=json"], capture_output=True, text=True)
    for f in os.listdir(scratch):
        if f.startswith("floor."):
            os.unlink(os.path.join(scratch, f))
    if r.returncode != 0:
        log("fio (latency) failed: " + r.stderr.strip()[:200])
        return None
    job = json.loads(r.stdout)["jobs"][0]
    write, sync = job["write"]["clat_ns"]["percentile"], job["sync"]["lat_ns"]["percentile"]
    return [(write[k] + sync[k]) / 1000.0 for k in ("50.000000", "99.000000")]


def iperf3_limit():
    if shutil.which("iperf3") is None:
        return None
    port = free_port()
    server = subprocess.Popen(["iperf3", "-s", "-1", "-p", str(port)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        r = subprocess.run(["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t",
                            "1" if QUICK else "5", "-J"], capture_output=True, text=True,
                           timeout=60)
        if r.returncode != 0:
            return None
        return json.loads(r.stdout)["end"]["sum_received"]["bits_per_second"] / 8e6  # MB/s
    finally:
        server.kill()
        server.wait()


def drop_page_cache():
    """Whether the page cache could be dropped (root, not in every container)."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


# ---------------------------------------------------------------- scenarios

class Runner:
    def __init__(self, build, broker, runs_dir):
        self.bench = os.path.join(build, "sluice-bench")
        self.broker, self.runs_dir = broker, runs_dir
        self.results = {}

    def run(self, name, args, warmup=3, duration=10, topic=None, keep_topic=False):
        if QUICK:
            warmup, duration = 1, 1
        path = os.path.join(self.runs_dir, name + ".json")
        cmd = [self.bench, "-b", self.broker.address, "--topic", topic or "bench-" + name,
               "--warmup", str(warmup), "--duration", str(duration), "--json", path] + args
        log("%s: %s" % (name, " ".join(cmd[1:])))
        out = open(os.path.join(self.runs_dir, name + ".txt"), "w")
        r = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, timeout=600)
        if r.returncode != 0 or not os.path.exists(path):
            log("%s: sluice-bench exited %d (see %s)" % (name, r.returncode, out.name))
            self.results[name] = None
            return None
        with open(path) as f:
            res = json.load(f)
        res["command"] = "sluice-bench " + " ".join(cmd[3:]).replace(REPO + "/", "")
        self.results[name] = res
        if keep_topic:
            return res
        # Gigabytes a scenario: gone before the next, so that the disk and a
        # restart's opening of the logs stay what one scenario needs.
        subprocess.run([os.path.join(os.path.dirname(self.bench), "sluice"), "topic", "delete",
                        topic or "bench-" + name, "-b", self.broker.address],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
        return res


def produce_msgs(res):
    return res["results"]["produce"]["msgs_per_s"] if res else None


def scenarios(runner, broker, scratch):
    r = runner
    for size in (100, 1024, 16384):
        for acks in ("1", "all"):
            r.run("produce-%d-acks%s" % (size, acks),
                  ["--producers", "1", "--consumers", "0", "--size", str(size), "--acks", acks])
    top = produce_msgs(r.results.get("produce-1024-acksall")) or 10000
    half = max(int(top / 2), 1000)
    r.run("latency", ["--producers", "1", "--consumers", "1", "--rate", str(half),
                      "-X", "linger.ms=0"])
    total = (64 if QUICK else 1024) * KIB * KIB
    r.run("consume-cache", ["--producers", "0", "--consumers", "1", "--prefill",
                            str(total // KIB)], topic="bench-consume", keep_topic=True)
    broker.stop()
    dropped = drop_page_cache()
    broker.start()
    r.run("consume-disk", ["--producers", "0", "--consumers", "1", "--consume-existing"],
          topic="bench-consume")
    if r.results.get("consume-disk"):
        r.results["consume-disk"]["page_cache_dropped"] = dropped
    for p in (1, 16, 256, 1024):
        r.run("partitions-%d" % p, ["--producers", "1", "--consumers", "0", "--partitions", str(p)])
    r.run("fanout", ["--producers", "1", "--groups", "4", "--consumers", "4",
                     "--rate", str(half)])
    r.run("idempotence-off", ["--producers", "1", "--consumers", "0", "--idempotence", "off"])
    r.run("zstd", ["--producers", "1", "--consumers", "0", "--compression", "zstd"])


# ---------------------------------------------------------------- the report

def case(name, res, what, limit=None, limit_name=None, target=None, ok=None, short=None):
    """short(res), for a missed target: by how much, in words."""
    """A row in the benchmark scripts' shared shape."""
    row = {"case": what, "scenario": name, "value": None, "unit": None, "result": "failed",
           "reference": limit_name, "reference_value": limit, "ratio": None,
           "target": target, "status": "fail" if res is None else "info"}
    if res is None:
        return row
    rs = res["results"]
    produce, consume, e2e = rs.get("produce", {}), rs.get("consume", {}), rs.get("e2e_latency_us")
    size = res["config"]["message_bytes"]
    if name.startswith("consume"):
        mb = consume.get("mb_per_s", 0.0)
        row["result"] = "%.0f msgs/s, %.1f MB/s" % (consume.get("msgs_per_s", 0), mb)
    else:
        mb = produce.get("msgs_per_s", 0.0) * size / 1e6
        row["result"] = "%.0f msgs/s, %.1f MB/s" % (produce.get("msgs_per_s", 0), mb)
        if consume.get("messages"):
            row["result"] += "; consumed %.0f msgs/s" % consume.get("msgs_per_s", 0)
    if e2e and e2e.get("count"):
        row["result"] += "; e2e p50 %s, p99 %s, p99.9 %s, max %s" % tuple(
            us_text(e2e[k]) for k in ("p50", "p99", "p99_9", "max"))
    row["value"], row["unit"] = round(mb, 1), "MB/s"
    if limit:
        row["ratio"] = round(mb / limit, 3)
    if ok is not None:
        row["status"] = "pass" if ok(res) else "miss"
        if row["status"] == "miss" and short is not None:
            row["status"] += " (%s)" % short(res)
    return row


def us_text(us):
    return "%d us" % us if us < 10000 else "%.1f ms" % (us / 1000.0)


def cases_of(results, fio_mb, floor_us=None):
    out = []
    for size in (100, 1024, 16384):
        for acks in ("1", "all"):
            name = "produce-%d-acks%s" % (size, acks)
            target = ok = short = None
            if size == 100:
                target = ">= 1,000,000 msgs/s"
                ok = (lambda r: r["results"]["produce"]["msgs_per_s"] >= 1e6)
            if size == 1024 and acks == "all":
                target = ">= 0.8x fio (O_DIRECT + fdatasync, 1 MiB)"
                ok = (lambda r: fio_mb and
                      r["results"]["produce"]["msgs_per_s"] * 1024 / 1e6 >= 0.8 * fio_mb)
                short = (lambda r: "by %.0f%%" % (100 - 100 * r["results"]["produce"]["msgs_per_s"]
                                                  * 1024 / 1e6 / (0.8 * fio_mb)))
            out.append(case(name, results.get(name), "produce %s, acks=%s, 1 producer, max rate" %
                            (size_text(size), acks), fio_mb, "fio 1 MiB O_DIRECT+fdatasync",
                            target, ok, short))
    floor = ("; the disk's own 4 KiB write+fdatasync: p50 %s, p99 %s" %
             (us_text(floor_us[0]), us_text(floor_us[1]))) if floor_us else ""
    out.append(case("latency", results.get("latency"),
                    "1 KiB acks=all at half the maximum rate, linger.ms=0, a tailing consumer"
                    + floor,
                    target="e2e p99 <= 1 ms",
                    ok=lambda r: r["results"]["e2e_latency_us"]["p99"] <= 1000,
                    short=lambda r: "p99 %.0fx the target" %
                    (r["results"]["e2e_latency_us"]["p99"] / 1000.0)))
    out.append(case("consume-cache", results.get("consume-cache"),
                    "consume 1 KiB records just written (batch and page cache)"))
    disk = results.get("consume-disk")
    what = "consume the same after a broker restart%s" % (
        " and a dropped page cache" if disk and disk.get("page_cache_dropped") else
        " (page cache not droppable here: partly cached)")
    out.append(case("consume-disk", disk, what))
    for p in (1, 16, 256, 1024):
        name = "partitions-%d" % p
        out.append(case(name, results.get(name), "produce 1 KiB acks=all over %d partition%s" %
                        (p, "" if p == 1 else "s"), fio_mb, "fio 1 MiB O_DIRECT+fdatasync"))
    out.append(case("fanout", results.get("fanout"),
                    "one producer at half the maximum, 4 consumer groups reading everything"))
    out.append(case("idempotence-off", results.get("idempotence-off"),
                    "produce 1 KiB acks=all, idempotence off (compare produce-1024-acksall: on)"))
    out.append(case("zstd", results.get("zstd"),
                    "produce 1 KiB acks=all, zstd (random values: little to compress)"))
    return out


def size_text(size):
    return "%d B" % size if size < 1024 else "%d KiB" % (size // 1024)


def md_table(rows):
    lines = ["| case | result | vs | ratio | target | status |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        ref = r.get("reference") or ""
        if r.get("reference_value") and ref:
            ref = "%s: %.1f" % (ref, r["reference_value"])
        lines.append("| %s | %s | %s | %s | %s | %s |" % (
            r["case"], r["result"], ref, "" if r.get("ratio") is None else "%.2fx" % r["ratio"],
            r.get("target") or "", r.get("status", "")))
    return "\n".join(lines)


def other_reports():
    """The cases of the other scripts' JSON results, when present."""
    out = []
    for name, title in (("storage", "Storage engine (bench/storage-bench.sh)"),
                        ("broker", "Broker beside librdkafka's mock (bench/broker-bench.sh)"),
                        ("client", "libsluice beside librdkafka (bench/client-bench.sh)"),
                        ("peers", "Peers: NATS JetStream, Redis (bench/peers.sh)"),
                        ("groups", "Consumer groups (bench/groups-bench.py)")):
        path = os.path.join(RESULTS, name + ".json")
        if not os.path.exists(path):
            continue
        with open(path) as f:
            data = json.load(f)
        out.append((title, name, data))
    return out


def md_tables(path):
    """The table lines of a results .md, each table followed by a blank line."""
    out = []
    with open(path) as f:
        for line in f:
            if line.startswith("|"):
                out.append(line.rstrip("\n"))
            elif out and out[-1] != "":
                out.append("")
    return out


def other_table(name, data):
    """The lines of a table of another script's results, by its JSON's shape."""
    cases = data.get("cases") or []
    if cases and all("result" in c for c in cases):
        return [md_table(cases)]
    if name == "client" and cases:
        rows = ["| case | libsluice msgs/s | librdkafka msgs/s | ratio | >= 1.0x |",
                "| --- | --- | --- | --- | --- |"]
        for c in cases:
            rows.append("| %s | %.0f | %.0f | %.2fx | %s |" % (
                c["case"], c["libsluice_msgs_per_s"], c["librdkafka_msgs_per_s"], c["ratio"],
                "yes" if c.get("meets") else "**no**"))
        return rows
    if name == "peers" and data.get("ratios"):
        rows = ["| ratio | message size | value | target | met |", "| --- | --- | --- | --- | --- |"]
        for r in data["ratios"]:
            rows.append("| %s | %d B | %.2fx | %s | %s |" % (
                r["ratio"], r["size"], r["value"],
                "" if r.get("target") is None else ">= %gx" % r["target"],
                "" if r.get("met") is None else ("yes" if r["met"] else "**no**")))
        return rows
    return ["(no summary table: see the .md file)"]


def git_commit():
    r = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
                       text=True)
    # Changes to the sources; the results the scripts write do not count.
    dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no",
                            "--", ".", ":!bench/results"],
                           capture_output=True, text=True).stdout.strip() != ""
    return (r.stdout.strip() or None), dirty


def machine(scratch):
    fs = subprocess.run(["findmnt", "-n", "-o", "FSTYPE", "-T", scratch], capture_output=True,
                        text=True).stdout.strip() or "unknown"
    return {"cores": os.cpu_count(), "kernel": platform.release(), "filesystem": fs,
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)}


def write_report(path, charts_rel, results, cases, limits, scratch):
    commit, dirty = git_commit()
    m = machine(scratch)
    lines = ["# Sluice benchmark report", "",
             "Written by `make bench` (`bench/report.py`)%s on %s. Commit %s%s; %d cores, "
             "%d GiB, kernel %s, data on %s." % (
                 " in quick mode" if QUICK else "", time.strftime("%Y-%m-%d %H:%M UTC",
                                                                  time.gmtime()),
                 commit, " (with uncommitted changes)" if dirty else "", m["cores"],
                 m["memory_gib"], m["kernel"], m["filesystem"]), "",
             "**Durability.** sluiced runs `config/sluice.conf` as it is: "
             "`log.flush.policy=always`, `storage.io=direct`. A produce is answered only after "
             "the `fdatasync` that covers its batch, with `acks=1` as with `acks=all` (one "
             "node, no replicas). Each figure is one run on a noisy 2-core machine whose "
             "disk moves by a factor of two from run to run: ratios are taken in the same run.",
             "", "## The machine's limits, measured in this run", "",
             "| limit | how | MB/s |", "| --- | --- | --- |",
             "| disk | fio, 1 MiB writes, O_DIRECT, fdatasync after each | %s |" % (
                 "%.0f" % limits["fio_mb_s"] if limits["fio_mb_s"] else "not measured"),
             "| network | iperf3 over loopback, one stream | %s |" % (
                 "%.0f" % limits["iperf3_mb_s"] if limits["iperf3_mb_s"] else "not measured"),
             "", "Durable-write latency (the floor of an acknowledgement that waits for the "
             "disk): fio, 4 KiB O_DIRECT writes, fdatasync after each, write plus sync: %s." % (
                 "p50 %s, p99 %s" % (us_text(limits["sync_us"][0]), us_text(limits["sync_us"][1]))
                 if limits.get("sync_us") else "not measured"),
             "", "## sluice-bench scenarios", "",
             "One sluiced, one topic per scenario (keyless 1 KiB values unless named, random "
             "bytes, sticky partitioner), libsluice clients in one process; MB are 10^6 bytes "
             "of values. Exact commands below.", "", md_table(cases), ""]
    for name in sorted(results):
        res = results[name]
        if res is None:
            continue
        pngs = [c for c in ("throughput", "latency", "distribution")
                if os.path.exists(os.path.join(os.path.dirname(path), charts_rel,
                                               "%s-%s.png" % (name, c)))]
        if not pngs:
            continue
        lines.append("### %s" % name)
        lines.append("")
        lines.append("`%s`" % res["command"])
        lines.append("")
        for c in pngs:
            lines.append("![%s %s](%s/%s-%s.png)" % (name, c, charts_rel, name, c))
        lines.append("")
    for title, name, data in other_reports():
        lines.append("## %s" % title)
        lines.append("")
        md_path = os.path.join(RESULTS, name + ".md")
        if data.get("quick") and not QUICK and os.path.exists(md_path):
            # A quick run's figures must not stand in for a full one: the
            # tables of the script's last full run, as its .md keeps them.
            lines.append("From `bench/results/%s.md` (its last full run; the newer `%s.json` "
                         "is a quick run of commit %s)." % (name, name, data.get("commit")))
            lines.append("")
            lines.extend(md_tables(md_path))
        else:
            lines.append("From `bench/results/%s.json` (commit %s%s, %s); the full table with "
                         "its method is `bench/results/%s.md`." % (
                             name, data.get("commit"), ", quick" if data.get("quick") else "",
                             data.get("date"), name))
            lines.append("")
            lines.extend(other_table(name, data))
        lines.append("")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def render_only(out_dir):
    """REPORT.md again from this directory's runs/ and report.json, with the
    other scripts' results as they are now: no benchmark is run."""
    with open(os.path.join(out_dir, "report.json")) as f:
        saved = json.load(f)
    results = {}
    runs_dir = os.path.join(out_dir, "runs")
    for name, command in saved.get("commands", {}).items():
        with open(os.path.join(runs_dir, name + ".json")) as f:
            results[name] = json.load(f)
        results[name]["command"] = command
    if "consume-disk" in results:
        results["consume-disk"]["page_cache_dropped"] = saved.get("page_cache_dropped", False)
    cases = cases_of(results, saved["limits"]["fio_mb_s"], saved["limits"].get("sync_us"))
    write_report(os.path.join(out_dir, "REPORT.md"), "charts", results, cases, saved["limits"],
                 out_dir)
    return 0


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--render-only":
        return render_only(sys.argv[2])
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    build = os.path.abspath(sys.argv[1])
    for binary in ("sluiced", "sluice-bench"):
        if not os.access(os.path.join(build, binary), os.X_OK):
            print("report.py: %s/%s not built (make all)" % (build, binary), file=sys.stderr)
            return 1
    scratch = os.path.join(RESULTS, "tmp", "report.%d" % os.getpid())
    out_dir = os.path.join(RESULTS, "tmp") if QUICK else RESULTS
    runs_dir = os.path.join(out_dir, "runs")
    charts_dir = os.path.join(out_dir, "charts")
    for d in (scratch, runs_dir, charts_dir):
        os.makedirs(d, exist_ok=True)
    limits = {"fio_mb_s": fio_limit(scratch), "iperf3_mb_s": iperf3_limit(),
              "sync_us": fio_sync_latency(scratch)}
    log("limits: fio %s MB/s, iperf3 %s MB/s" % (limits["fio_mb_s"], limits["iperf3_mb_s"]))
    broker = Broker(build, scratch)
    runner = Runner(build, broker, runs_dir)
    try:
        broker.start()
        scenarios(runner, broker, scratch)
    finally:
        broker.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    jsons = [os.path.join(runs_dir, n + ".json") for n, r in runner.results.items() if r]
    subprocess.run([sys.executable, os.path.join(REPO, "bench", "plot.py"), charts_dir] + jsons,
                   stdout=subprocess.DEVNULL)
    cases = cases_of(runner.results, limits["fio_mb_s"], limits["sync_us"])
    report = os.path.join(out_dir, "REPORT.md")
    write_report(report, "charts", runner.results, cases, limits, out_dir)
    commands = {n: r["command"] for n, r in runner.results.items() if r}
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        disk = runner.results.get("consume-disk") or {}
        json.dump({"limits": limits, "cases": cases, "quick": QUICK, "commands": commands,
                   "page_cache_dropped": disk.get("page_cache_dropped", False)}, f, indent=1)
    for r in cases:
        log("%-6s %s: %s" % (r["status"], r["case"], r["result"]))
    log("wrote " + report)
    failed = [r["scenario"] for r in cases if r["status"] == "fail"]
    if failed:
        log("scenarios that did not run: " + ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
