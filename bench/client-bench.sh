#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The client benchmark: libsluice (build/sluice-bench) against librdkafka
# (build/kafka-bench, Debian's librdkafka) producing to the same sluiced, in
# one run, for the issue's target "libsluice >= 1.0x librdkafka's msgs/s" in
# each of 8 cases: 100 B and 1 KiB values x acks=1 and all x compression none
# and zstd. Writes bench/results/client.md (a table for people) and
# bench/results/client.json.
#
#   bench/client-bench.sh BUILD_DIR           3 rounds; 4,000,000 messages of 100 B or
#                                             1,000,000 of 1 KiB per run (about ten minutes)
#   QUICK=1 bench/client-bench.sh BUILD_DIR   1 round; 1,000,000 or 250,000 (about 30 s)
#   PARTITIONS=P ...                          partitions of every topic (default 1)
#   MAX_IN_FLIGHT=N ...                       Produce requests in flight per connection,
#                                             for both (default: each client's own)
#
# How: one sluiced with config/sluice.conf as it is (log.flush.policy
# default: a produce is acknowledged after the fdatasync that covers it), its
# data in a mktemp directory under /tmp, a listener on a free port. Each run
# is one producer process, producer only (sluice-bench --consumers 0), of the
# same number of messages to a fresh topic of PARTITIONS partitions, created
# before and deleted after it by a third client (confluent_kafka's
# AdminClient), the same for both. Both clients get the same settings:
# linger.ms=5, batch.size=1000000, a queue of 100000 messages / 1 GiB, and
# idempotence off on both (librdkafka's default; libsluice's default with
# acks=1, set off explicitly with acks=all, where its default would be on and
# librdkafka's idempotent producer keeps one request in flight per
# partition). Requests in flight: each client's default unless MAX_IN_FLIGHT
# sets both (librdkafka: max.in.flight=1000000, bounded by its queue;
# libsluice: max.in.flight.requests.per.connection=5, and 5 per partition).
# Values are incompressible random bytes in both, so zstd costs CPU and saves
# nothing. A run's figure is its messages over the time from its first send
# to its last delivery report, the measure of both tools' --count. The two
# clients run back to back in each case, the one that goes first alternating
# from case to case and round to round; per case, the table gives the median
# of the rounds of each and the median of the rounds' ratios libsluice /
# librdkafka.
#
# The script fails on a broken run only (a broker that does not start or
# stop cleanly, a client that exits with an error, a message not delivered):
# a missed target is printed and written down, not fatal.
set -euo pipefail

build=${1:?usage: bench/client-bench.sh BUILD_DIR}
repo=$(cd "$(dirname "$0")/.." && pwd)
. "$repo/tests/lib/sluiced.sh"
bindir=$(cd "$build" && pwd)
sluiced=$bindir/sluiced
kafka_bench=$bindir/kafka-bench
sluice_bench=$bindir/sluice-bench
results=$repo/bench/results
py=/usr/bin/python3 # Debian's, which has confluent_kafka for the admin calls

for bin in "$sluiced" "$kafka_bench" "$sluice_bench"; do
    [ -x "$bin" ] || { echo "client-bench.sh: $bin not built (make all)" >&2; exit 1; }
done
[ -x "$py" ] || { echo "client-bench.sh: $py missing" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "client-bench.sh: /usr/bin/time missing" >&2; exit 1; }

if [ "${QUICK:-0}" = 1 ]; then
    count_small=1000000 count_large=250000 rounds=1
else
    count_small=4000000 count_large=1000000 rounds=3
fi
partitions=${PARTITIONS:-1}
max_in_flight=${MAX_IN_FLIGHT:-}
# The settings both clients get, each by its own name.
linger_ms=5
batch_bytes=1000000
queue_messages=100000
queue_kbytes=1048576
# The longest a run may take before it counts as broken.
deadline_s=300

scratch=$(mktemp -d /tmp/sluice-client-bench.XXXXXX)
broker_pid=""
cleanup() {
    process_stop "$broker_pid"
    rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------- the broker
broker_set=(--set "log.dirs=$scratch/data" --set listeners=PLAINTEXT://127.0.0.1:0)
broker_log=$scratch/sluiced.log
sluiced_launch "$sluiced" "$repo/config/sluice.conf" "$broker_log" "${broker_set[@]}" || exit 1
broker_pid=$LAUNCH_PID
broker=127.0.0.1:$LAUNCH_PORT
flush_policy=$(cd "$repo" && "$sluiced" -c config/sluice.conf "${broker_set[@]}" --print-config |
    sed -n 's/^log.flush.policy = //p')
echo "client-bench: sluiced pid $broker_pid on $broker, data in $scratch/data" >&2

broker_cpu_ticks() { awk '{print $14 + $15}' "/proc/$broker_pid/stat"; }

# admin create|delete TOPIC: CreateTopics (PARTITIONS partitions) or
# DeleteTopics, waiting for the answer.
admin() {
    "$py" - "$broker" "$1" "$2" "$partitions" <<'EOF'
import sys
from confluent_kafka.admin import AdminClient, NewTopic
broker, op, topic, partitions = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
admin = AdminClient({"bootstrap.servers": broker})
if op == "create":
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(15)
else:
    admin.delete_topics([topic])[topic].result(15)
EOF
}

# ---------------------------------------------------------------- the runs
tsv=$scratch/runs.tsv

# run CLIENT CASE ROUND SIZE ACKS COMPRESSION COUNT: one producer run on a
# fresh topic; appends its figures (and command) to the TSV.
run() {
    local client=$1 case=$2 round=$3 size=$4 acks=$5 comp=$6 count=$7
    local topic="cb-$case-r$round-$client" out json msgs mbs secs ticks0 cmd=()
    admin create "$topic" || {
        echo "client-bench.sh: could not create $topic" >&2
        exit 1
    }
    if [ "$client" = librdkafka ]; then
        cmd=("$kafka_bench" produce --brokers "$broker" --topic "$topic" --size "$size"
            --count "$count" --acks "$acks" --compression "$comp" --linger-ms "$linger_ms"
            --batch-bytes "$batch_bytes" --inflight-msgs "$queue_messages"
            --inflight-kbytes "$queue_kbytes" --timeout-s "$deadline_s"
            -X enable.idempotence=false)
        if [ -n "$max_in_flight" ]; then
            cmd+=(-X "max.in.flight=$max_in_flight")
        fi
    else
        json=$scratch/sluice-bench.json
        cmd=("$sluice_bench" -b "$broker" --topic "$topic" --partitions "$partitions"
            --producers 1 --consumers 0 --size "$size" --count "$count" --acks "$acks"
            --compression "$comp" --idempotence off -X "linger.ms=$linger_ms"
            -X "batch.size=$batch_bytes" -X "queue.buffering.max.messages=$queue_messages"
            -X "queue.buffering.max.kbytes=$queue_kbytes" --duration "$deadline_s"
            --json "$json")
        if [ -n "$max_in_flight" ]; then
            cmd+=(-X "max.in.flight.requests.per.connection=$max_in_flight")
        fi
    fi
    echo "client-bench: $case round $round: $client" >&2
    ticks0=$(broker_cpu_ticks)
    out=$(/usr/bin/time -f 'CPU %U %S' -o "$scratch/time" "${cmd[@]}" 2>&1) || {
        printf '%s\n' "$out" >&2
        echo "client-bench.sh: $client failed in case $case round $round; the broker's log" \
            "ends with:" >&2
        tail -20 "$broker_log" >&2
        exit 1
    }
    if [ "$client" = librdkafka ]; then
        printf '%s\n' "$out" | grep '^produce ' >&2 || true
        read -r msgs mbs secs < <(printf '%s\n' "$out" | sed -n 's/^JSON //p' | "$py" -c '
import json, sys
d = json.loads(sys.stdin.read())
print(d["msgs_per_s"], d["mb_per_s"], d["seconds"])')
    else
        printf '%s\n' "$out" | grep '^produce: ' >&2 || true
        read -r msgs mbs secs < <("$py" -c '
import json, sys
r = json.load(open(sys.argv[1]))["results"]
print(r["produce"]["msgs_per_s"], r["produce"]["mb_per_s"], r["measured_s"])' "$json")
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$case" "$round" "$client" \
        "$size" "$acks" "$comp" "$count" "$msgs" "$mbs" "$secs" \
        "$(awk '/^CPU / {print $2 + $3}' "$scratch/time")|$(($(broker_cpu_ticks) - ticks0))" \
        "${cmd[*]}" >>"$tsv"
    admin delete "$topic" || {
        echo "client-bench.sh: could not delete $topic" >&2
        exit 1
    }
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for round in $(seq 1 "$rounds"); do
    index=0
    for size in 100 1024; do
        count=$count_small
        [ "$size" = 1024 ] && count=$count_large
        for acks in 1 all; do
            for comp in none zstd; do
                case_name="${size}B-acks$acks-$comp"
                first=librdkafka second=libsluice
                if [ $(((round + index) % 2)) = 0 ]; then
                    first=libsluice second=librdkafka
                fi
                run "$first" "$case_name" "$round" "$size" "$acks" "$comp" "$count"
                run "$second" "$case_name" "$round" "$size" "$acks" "$comp" "$count"
                index=$((index + 1))
            done
        done
    done
done

# A clean stop is part of the run: sluiced must exit 0 on SIGTERM.
kill -TERM "$broker_pid"
broker_rc=0
wait "$broker_pid" || broker_rc=$?
broker_pid=""
if [ "$broker_rc" != 0 ]; then
    echo "client-bench.sh: sluiced exited with $broker_rc on SIGTERM:" >&2
    tail -20 "$broker_log" >&2
    exit 1
fi

# ------------------------------------------------------------- the report
RESULTS=$results TSV=$tsv QUICK=${QUICK:-0} ROUNDS=$rounds PARTITIONS=$partitions \
    MAX_IN_FLIGHT=$max_in_flight LINGER_MS=$linger_ms BATCH_BYTES=$batch_bytes \
    QUEUE_MESSAGES=$queue_messages QUEUE_KBYTES=$queue_kbytes FLUSH_POLICY=$flush_policy \
    CLK_TCK=$(getconf CLK_TCK) \
    NPROC=$(nproc) KERNEL=$(uname -r) LOADAVG="$load_start / $(cut -d' ' -f1-3 /proc/loadavg)" \
    CPU="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)" \
    DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ) COMMIT=$(cd "$repo" && git rev-parse --short HEAD) \
    DIRTY=$(cd "$repo" && git diff --quiet HEAD -- . ':!bench/results' && echo 0 || echo 1) \
    LIBRDKAFKA=$(pkg-config --modversion rdkafka 2>/dev/null || echo "?") \
    BROKER_CMD="build/sluiced -c config/sluice.conf ${broker_set[*]}" \
    BINDIR=$bindir "$py" - <<'EOF'
import json, os, statistics

env = os.environ
rounds = int(env["ROUNDS"])
clk_tck = int(env["CLK_TCK"])
runs = []
for line in open(env["TSV"]):
    case, rnd, client, size, acks, comp, count, msgs, mbs, secs, cpu, cmd = \
        line.rstrip("\n").split("\t")
    client_cpu, broker_ticks = cpu.split("|")
    runs.append({"case": case, "round": int(rnd), "client": client, "size": int(size),
                 "acks": acks, "compression": comp, "count": int(count),
                 "msgs_per_s": float(msgs), "mb_per_s": float(mbs), "seconds": float(secs),
                 "client_cpu_s": float(client_cpu),
                 "broker_cpu_s": int(broker_ticks) / clk_tck,
                 "command": cmd.replace(env["BINDIR"] + "/", "build/")})

med = statistics.median
cases = []
for case in dict.fromkeys(r["case"] for r in runs):
    sl = sorted((r for r in runs if r["case"] == case and r["client"] == "libsluice"),
                key=lambda r: r["round"])
    rk = sorted((r for r in runs if r["case"] == case and r["client"] == "librdkafka"),
                key=lambda r: r["round"])
    ratios = [a["msgs_per_s"] / b["msgs_per_s"] for a, b in zip(sl, rk)]
    per_msg = lambda rs, k: med([r[k] / r["count"] * 1e6 for r in rs])  # us per message
    c = {
        "case": case, "size": sl[0]["size"], "acks": sl[0]["acks"],
        "compression": sl[0]["compression"], "count": sl[0]["count"],
        "libsluice_msgs_per_s": med([r["msgs_per_s"] for r in sl]),
        "libsluice_mb_per_s": med([r["mb_per_s"] for r in sl]),
        "librdkafka_msgs_per_s": med([r["msgs_per_s"] for r in rk]),
        "librdkafka_mb_per_s": med([r["mb_per_s"] for r in rk]),
        "ratio": med(ratios), "ratios": [round(x, 3) for x in ratios],
        "libsluice_cpu_us_per_msg": per_msg(sl, "client_cpu_s"),
        "librdkafka_cpu_us_per_msg": per_msg(rk, "client_cpu_s"),
        "broker_cpu_us_per_msg_libsluice": per_msg(sl, "broker_cpu_s"),
        "broker_cpu_us_per_msg_librdkafka": per_msg(rk, "broker_cpu_s"),
        "commands": {"libsluice": sl[0]["command"], "librdkafka": rk[0]["command"]},
    }
    c["meets"] = c["ratio"] >= 1.0
    cases.append(c)

rows = ["| case | libsluice msgs/s | libsluice MB/s | librdkafka msgs/s | librdkafka MB/s | "
        "ratio | rounds' ratios | client CPU us/msg (sl / rk) | >= 1.0x |",
        "|---|---:|---:|---:|---:|---:|---|---|---|"]
for c in cases:
    rows.append(
        f"| {c['size']} B, acks={c['acks']}, {c['compression']} | "
        f"{c['libsluice_msgs_per_s']:,.0f} | {c['libsluice_mb_per_s']:.1f} | "
        f"{c['librdkafka_msgs_per_s']:,.0f} | {c['librdkafka_mb_per_s']:.1f} | "
        f"{c['ratio']:.3f}x | {', '.join(f'{x:.2f}' for x in c['ratios'])} | "
        f"{c['libsluice_cpu_us_per_msg']:.2f} / {c['librdkafka_cpu_us_per_msg']:.2f} | "
        f"{'yes' if c['meets'] else '**MISSED**'} |")
table = "\n".join(rows)
met = sum(c["meets"] for c in cases)
quick = env["QUICK"] == "1"
commit = env["COMMIT"] + (" (with uncommitted changes)"
                          if env["DIRTY"] == "1" else "")
commands = []
for c in cases:
    commands.append(f"    {c['commands']['libsluice']}")
    commands.append(f"    {c['commands']['librdkafka']}")
command_block = "\n".join(commands)
if env["MAX_IN_FLIGHT"]:
    in_flight = (f"Requests in flight: {env['MAX_IN_FLIGHT']} per connection for both "
                 "(MAX_IN_FLIGHT).")
else:
    in_flight = ("Requests in flight: each client's default, librdkafka's max.in.flight=1000000 "
                 "(bounded by its queue) against libsluice's 5 per connection and 5 per "
                 "partition.")

md = f"""# Client benchmark: libsluice against librdkafka

Machine: {env['NPROC']} CPUs ({env['CPU']}), kernel {env['KERNEL']}; load average
{env['LOADAVG']} (start / end). Date {env['DATE']}, commit {commit}.
{'QUICK=1: one round, short runs: a smoke test, not a result.' if quick else f'{rounds} rounds; figures are medians.'}

Target (the issue): libsluice >= 1.0x librdkafka {env['LIBRDKAFKA']}'s msgs/s in each
case, both producing to the same sluiced in the same run. **{met} of {len(cases)} cases
meet it.**

{table}

How: one sluiced (`config/sluice.conf` as it is: log.flush.policy={env['FLUSH_POLICY']},
so a batch is acknowledged after its fdatasync; data in a temporary directory under
/tmp), and per run one producer process, producer only, sending the same number of
messages ({rounds} round{'s' if rounds > 1 else ''}; per run
{cases[0]['count']:,} of 100 B or {cases[-1]['count']:,} of 1 KiB) to a fresh topic of
{env['PARTITIONS']} partition(s), created before and deleted after the run (CreateTopics and
DeleteTopics through confluent_kafka's AdminClient, the same for both). Both clients:
linger.ms={env['LINGER_MS']}, batch.size={env['BATCH_BYTES']}, a queue of
{env['QUEUE_MESSAGES']} messages / {env['QUEUE_KBYTES']} KiB, and **idempotence off on
both** (librdkafka's default; libsluice's default with acks=1, and set off with
acks=all, where libsluice's default would be on). {in_flight} Values are incompressible random
bytes in both (kafka-bench cuts them from a random pool; sluice-bench too, and without
consumers it writes no send-time stamp into them), so zstd adds its CPU and saves
nothing. A run's msgs/s is its messages
over the time from its first send to its last delivery report; MB/s is 10^6 bytes of
values per second. In each case the two clients run back to back, which goes first
alternating from case to case and round to round. "ratio" is the median of the rounds'
ratios libsluice / librdkafka (each round's pair ran back to back); client CPU is the
process's user + system time (`/usr/bin/time`) per message, whole process.

The commands (round 1; topics differ per run; `build/` is the build directory):

    {env['BROKER_CMD']}
{command_block}

Produced by `bench/client-bench.sh` (`make bench`); raw numbers in `client.json`.
"""
open(os.path.join(env["RESULTS"], "client.md"), "w").write(md)
doc = {"date": env["DATE"], "commit": env["COMMIT"], "dirty": env["DIRTY"] == "1",
       "quick": quick, "rounds": rounds, "librdkafka": env["LIBRDKAFKA"],
       "machine": {"nproc": int(env["NPROC"]), "kernel": env["KERNEL"], "cpu": env["CPU"],
                   "loadavg": env["LOADAVG"]},
       "settings": {"partitions": int(env["PARTITIONS"]), "linger_ms": int(env["LINGER_MS"]),
                    "max_in_flight": int(env["MAX_IN_FLIGHT"]) if env["MAX_IN_FLIGHT"] else None,
                    "batch_size": int(env["BATCH_BYTES"]),
                    "queue_messages": int(env["QUEUE_MESSAGES"]),
                    "queue_kbytes": int(env["QUEUE_KBYTES"]), "idempotence": False,
                    "log_flush_policy": env["FLUSH_POLICY"]},
       "cases": cases, "runs": runs}
with open(os.path.join(env["RESULTS"], "client.json"), "w") as f:
    json.dump(doc, f, indent=2)
    f.write("\n")
print()
print(table)
print()
for c in cases:
    if not c["meets"]:
        print(f"MISSED TARGET: {c['size']} B, acks={c['acks']}, {c['compression']}: libsluice "
              f"{c['ratio']:.3f}x librdkafka's msgs/s (target >= 1.0x)")
print(f"{met} of {len(cases)} cases meet >= 1.0x; written {env['RESULTS']}/client.md and "
      "client.json")
EOF
