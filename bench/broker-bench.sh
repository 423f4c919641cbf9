#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The broker benchmark: the same librdkafka driver (build/kafka-bench) against
# a real sluiced and against librdkafka's in-memory mock broker, in one run,
# back to back, then 10,000 idle connections against sluiced; and on sluiced
# alone, pairs run back to back: an idempotent producer against a plain one,
# and msg-ids to a topic with dedup.window.ms against msg-ids to one without.
# Compared with the targets of the broker's issues; writes
# bench/results/broker.md (a table for people) and bench/results/broker.json.
#
#   bench/broker-bench.sh BUILD_DIR           2 GiB per produce, 3 rounds of one pair each
#                                             (about three minutes)
#   QUICK=1 bench/broker-bench.sh BUILD_DIR   256 MiB per produce, 1 round of three pairs
#                                             (under 30 s)
#
# sluiced runs with config/sluice.conf as it is (flush.policy=always,
# storage.io=direct: acknowledged means fdatasync'ed) plus a listener on a
# free port, max.connections=20000 and its data in bench/results/tmp, on the
# repository's filesystem so that the fdatasync is real. The broker and the
# scratch data are removed at exit. The script fails on errors only (a
# broker that does not start, a message that is not delivered, a consume that
# does not reach the end): a missed target is reported, not fatal.
set -euo pipefail

build=${1:?usage: bench/broker-bench.sh BUILD_DIR}
repo=$(cd "$(dirname "$0")/.." && pwd)
. "$repo/tests/lib/sluiced.sh"
bindir=$(cd "$build" && pwd)
sluiced=$bindir/sluiced
driver=$bindir/kafka-bench
idle=$bindir/idle-conns
results=$repo/bench/results
scratch=$results/tmp/broker.$$
py=/usr/bin/python3 # Debian's, which has json without a virtualenv

for bin in "$sluiced" "$driver" "$idle"; do
    [ -x "$bin" ] || { echo "broker-bench.sh: $bin not built (make all)" >&2; exit 1; }
done
[ -x "$py" ] || { echo "broker-bench.sh: $py missing" >&2; exit 1; }
have_fio=0
command -v fio >/dev/null && have_fio=1

# pairs: idempotence and dedup pairs per round, so that even the one round of
# QUICK has a median of three; sluiced's figures move by a third from run to run.
if [ "${QUICK:-0}" = 1 ]; then
    produce_count=256k rounds=1 pairs=3 consume_prefill=96k consume_passes=4 fio_size=256m
else
    produce_count=2m rounds=3 pairs=1 consume_prefill=160k consume_passes=5 fio_size=1g
fi
# The topic setting of the dedup cases: a window far longer than a run, so
# that every id of the run is looked up against the table (none is a
# duplicate: kafka-bench's ids are unique across runs).
dedup_window_ms=60000
conns=10000
# What the mock keeps of a partition: it drops its oldest batches past about
# 5 MB (librdkafka's rdkafka_mock.c), so its consume reads 4 MiB many times over.
mock_prefill=4096

mkdir -p "$scratch"
broker_pid=""
cleanup() {
    process_stop "$broker_pid"
    rm -rf "$scratch"
    rmdir "$results/tmp" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 10,000 connections on each side of loopback: raise the descriptor limit as
# far as it goes (root may raise the hard limit too); sluiced inherits it.
ulimit -n 30000 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fd_limit=$(ulimit -n)

# ------------------------------------------------------------- the broker
broker_set=(--set "log.dirs=$scratch/data" --set listeners=PLAINTEXT://127.0.0.1:0
    --set max.connections=20000)
config=$(cd "$repo" && "$sluiced" -c config/sluice.conf "${broker_set[@]}" --print-config)
conf() { printf '%s\n' "$config" | sed -n "s/^$1 = //p"; }

broker_log=$scratch/sluiced.log
sluiced_launch "$sluiced" "$repo/config/sluice.conf" "$broker_log" "${broker_set[@]}" || exit 1
broker_pid=$LAUNCH_PID
broker=127.0.0.1:$LAUNCH_PORT
echo "broker-bench: sluiced pid $broker_pid on $broker, data in $scratch/data" >&2

broker_cpu_ticks() { awk '{print $14 + $15}' "/proc/$broker_pid/stat"; }
broker_read_bytes() { awk '/^read_bytes:/ {print $2}' "/proc/$broker_pid/io"; }
broker_refusals() { grep -c 'produce refused' "$broker_log" || true; }

# kb CASE DRIVER-ARGS...: runs kafka-bench, shows its lines for people and
# keeps its JSON line under CASE with what sluiced spent meanwhile: CPU (all
# its threads, io_uring workers included), bytes read from disk, and produce
# requests it refused (librdkafka retries those after retry.backoff.ms).
kb() {
    local name=$1 out ticks0 read0 refused0
    shift
    echo "kafka-bench: $name" >&2
    ticks0=$(broker_cpu_ticks) read0=$(broker_read_bytes) refused0=$(broker_refusals)
    out=$("$driver" "$@") || {
        printf '%s\n' "$out"
        echo "broker-bench.sh: case $name failed; the broker's log ends with:" >&2
        tail -20 "$broker_log" >&2
        exit 1
    }
    printf '%s\n' "$out" | grep -v '^JSON '
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$(printf '%s\n' "$out" | sed -n 's/^JSON //p')" \
        "$(($(broker_cpu_ticks) - ticks0))" "$(($(broker_read_bytes) - read0))" \
        "$(($(broker_refusals) - refused0))" >>"$scratch/results.tsv"
}

# fio_write: what the disk itself gives to synced sequential writes, as
# storage-bench.sh measures it (O_DIRECT, 1 MiB, fdatasync after each, queue
# depth 1), on the broker's filesystem; prints bytes/s, 0 without fio.
fio_write() {
    local out=$scratch/fio.json
    if [ "$have_fio" = 0 ]; then
        echo 0
        return
    fi
    echo "fio: bs=1m size=$fio_size fdatasync=1" >&2
    fio --name=seq1m --filename="$scratch/fio.dat" --ioengine=psync --direct=1 --fdatasync=1 \
        --bs=1m --rw=write --size="$fio_size" --output-format=json --output="$out" >&2
    rm -f "$scratch/fio.dat"
    "$py" -c 'import json, sys; print(json.load(open(sys.argv[1]))["jobs"][0]["write"]["bw_bytes"])' \
        "$out"
}

# The producer's whole queue (and so what it has in flight) kept below the
# write backlog a sluiced partition accepts before it refuses appends:
# FLUSH_IOV_MAX - 2 pool buffers of storage.buffer.bytes (storage/log.c), less
# an eighth for framing. The issue's own case leaves librdkafka's default.
iov_max=$(sed -n 's/^#define FLUSH_IOV_MAX[[:space:]]*\([0-9]*\).*/\1/p' "$repo/storage/log.c")
buffer_bytes=$(conf storage.buffer.bytes)
bounded_kbytes=$(((${iov_max:-128} - 2) * ${buffer_bytes:-131072} * 7 / 8 / 1024))

# --------------------------------------------------------------- the runs
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
# Idle connections first, on the fresh broker: its heap has not been through
# a burst of connections yet, whose freed memory would hide the cost.
if [ "$fd_limit" -ge $((conns + 100)) ]; then
    echo "idle-conns: $conns connections" >&2
    out=$("$idle" --broker "$broker" --pid "$broker_pid" --count "$conns") || {
        printf '%s\n' "$out"
        echo "broker-bench.sh: idle-conns failed; the broker's log ends with:" >&2
        tail -20 "$broker_log" >&2
        exit 1
    }
    printf '%s\n' "$out" | grep -v '^JSON '
    printf 'idle_conns\t%s\t0\t0\t0\n' "$(printf '%s\n' "$out" | sed -n 's/^JSON //p')" \
        >>"$scratch/results.tsv"
else
    echo "broker-bench.sh: ulimit -n is $fd_limit, too low for $conns connections: skipped" >&2
fi

common=(--size 1024 --acks all --linger-ms 5 --partitions 1 --create)
# The "bounded" shape on sluiced: the disk is the only limit.
bounded=(--brokers "$broker" "${common[@]}" --count "$produce_count"
    --inflight-kbytes "$bounded_kbytes" --delete)

# sl CASE TOPIC SLUICE-ARGS...: the same shape through libsluice (the sluice
# CLI reading 1 KiB lines from a file), whose idempotent producer keeps up
# to 5 requests in flight per partition; the summary line becomes a JSON line
# like kafka-bench's.
sl() {
    local name=$1 topic=$2 out mbs secs ticks0 read0 refused0
    shift 2
    "$py" -c 'import sys
from confluent_kafka.admin import AdminClient, NewTopic
admin = AdminClient({"bootstrap.servers": sys.argv[1]})
admin.create_topics([NewTopic(sys.argv[2], 1, 1)])[sys.argv[2]].result(10)' "$broker" "$topic"
    echo "sluice produce: $name" >&2
    ticks0=$(broker_cpu_ticks) read0=$(broker_read_bytes) refused0=$(broker_refusals)
    out=$("$bindir/sluice" produce -b "$broker" -X acks=all -X linger.ms=5 "$@" "$topic" \
        -f "$lines" 2>&1) || {
        printf '%s\n' "$out"
        echo "broker-bench.sh: case $name failed" >&2
        exit 1
    }
    printf '%s\n' "$out"
    mbs=$(printf '%s\n' "$out" | sed -n 's/.*records\/s, \([0-9.]*\) MB\/s.*/\1/p' | tail -1)
    secs=$(printf '%s\n' "$out" | sed -n 's/.* in \([0-9.]*\) s: .*/\1/p' | tail -1)
    printf '%s\t{"mb_per_s": %s, "seconds": %s, "bytes": %s, "lat_p50_ms": 0, "client_cpu_s": 0}\t%s\t%s\t%s\n' \
        "$name" "${mbs:-0}" "${secs:-0}" "$lines_bytes" "$(($(broker_cpu_ticks) - ticks0))" \
        "$(($(broker_read_bytes) - read0))" "$(($(broker_refusals) - refused0))" \
        >>"$scratch/results.tsv"
}

# pair_cases N: the idempotence and dedup cases of pair N, on sluiced only.
# Each comparison runs back to back, and which side goes first alternates
# from pair to pair, so that neither always follows the other's deletion.
# "idem_one" is the control: no idempotence, but one request in flight per
# partition, which is all librdkafka's idempotent producer sends (it counts
# messages in flight against its limit of 5 requests, rdkafka_broker.c;
# librdkafka PR #4989): it tells the broker's cost from the client's.
pair_cases() {
    local n=$1 idem=(off on one) dedup=(on off) c
    if [ $((n % 2)) = 0 ]; then
        idem=(one on off) dedup=(off on)
    fi
    for c in "${idem[@]}"; do
        case $c in
        on) kb "idem_on_$n" produce --topic "idem-on-$n" "${bounded[@]}" \
            -X enable.idempotence=true ;;
        off) kb "idem_off_$n" produce --topic "idem-off-$n" "${bounded[@]}" \
            -X enable.idempotence=false ;;
        one) kb "idem_one_$n" produce --topic "idem-one-$n" "${bounded[@]}" \
            -X enable.idempotence=false -X max.in.flight=1 ;;
        esac
    done
    for c in "${dedup[@]}"; do
        case $c in
        on) kb "dedup_on_$n" produce --topic "dedup-on-$n" "${bounded[@]}" --msg-id \
            --topic-config "dedup.window.ms=$dedup_window_ms" ;;
        off) kb "dedup_off_$n" produce --topic "dedup-off-$n" "${bounded[@]}" --msg-id ;;
        esac
    done
    for c in "${dedup[@]}"; do # the same alternation, for libsluice
        case $c in
        on) sl "sl_on_$n" "sl-on-$n" -X enable.idempotence=true ;;
        off) sl "sl_off_$n" "sl-off-$n" -X enable.idempotence=false ;;
        esac
    done
}

# The lines libsluice produces: as many 1 KiB records as the kafka-bench cases.
lines=$scratch/lines.txt
"$py" -c 'import sys
n = int(sys.argv[2][:-1]) * {"k": 1 << 10, "m": 1 << 20}[sys.argv[2][-1]] \
    if sys.argv[2][-1] in "km" else int(sys.argv[2])
line = b"x" * 1023 + b"\n"
with open(sys.argv[1], "wb") as f:
    for _ in range(n):
        f.write(line)' "$lines" "$produce_count"
lines_bytes=$(($(stat -c %s "$lines") * 1023 / 1024))

fio_bytes=""
for round in $(seq 1 "$rounds"); do
    # The disk's own figure, once per round, right before the sluiced cases.
    fio_bytes="$fio_bytes $(fio_write)"
    # Each pair runs back to back, so that the machine's mood is shared.
    kb "produce_sluiced_$round" produce --brokers "$broker" --topic "produce-$round" \
        "${common[@]}" --count "$produce_count" --delete
    kb "produce_mock_$round" produce --mock --topic "produce-$round" "${common[@]}" \
        --count "$produce_count"
    kb "bounded_sluiced_$round" produce --brokers "$broker" --topic "bounded-$round" \
        "${common[@]}" --count "$produce_count" --inflight-kbytes "$bounded_kbytes" --delete
    kb "bounded_mock_$round" produce --mock --topic "bounded-$round" "${common[@]}" \
        --count "$produce_count" --inflight-kbytes "$bounded_kbytes"
    for k in $(seq 1 "$pairs"); do
        pair_cases $(((round - 1) * pairs + k))
    done
done

# Consume: the topic is written right before it is read, small enough to stay
# in the broker's batch cache (storage.memory.bytes), and read several times
# over; the broker's disk reads during the case prove where it came from.
kb consume_sluiced consume --brokers "$broker" --topic consume "${common[@]}" \
    --prefill "$consume_prefill" --passes "$consume_passes" --inflight-kbytes "$bounded_kbytes"
mock_passes=$("$py" -c "import sys; k = lambda s: int(s[:-1]) * 1024 if s[-1] == 'k' else int(s)
print(-(-k(sys.argv[1]) * int(sys.argv[2]) // int(sys.argv[3])))" \
    "$consume_prefill" "$consume_passes" "$mock_prefill")
kb consume_mock consume --mock --topic consume "${common[@]}" --prefill "$mock_prefill" \
    --passes "$mock_passes"
# And sluiced in the mock's shape, for a like-for-like ratio.
kb consume_small_sluiced consume --brokers "$broker" --topic consume-small "${common[@]}" \
    --prefill "$mock_prefill" --passes "$mock_passes"

# A clean stop is part of the run: sluiced must exit 0 on SIGTERM.
kill -TERM "$broker_pid"
broker_rc=0
wait "$broker_pid" || broker_rc=$?
broker_pid=""
if [ "$broker_rc" != 0 ]; then
    echo "broker-bench.sh: sluiced exited with $broker_rc on SIGTERM:" >&2
    tail -20 "$broker_log" >&2
    exit 1
fi

# ------------------------------------------------------------- the report
FIO_BYTES=$fio_bytes FIO_SIZE=$fio_size QUICK=${QUICK:-0} ROUNDS=$rounds PRODUCE_COUNT=$produce_count CONNS=$conns FD_LIMIT=$fd_limit
BOUNDED_KBYTES=$bounded_kbytes CLK_TCK=$(getconf CLK_TCK) PAIRS=$pairs DEDUP_WINDOW_MS=$dedup_window_ms
DEDUP_IDS_MAX=$(conf dedup.window.ids.max)
# Dedup topics whose msg-id table filled up during their run (msgids.c logs it).
DEDUP_EVICTING=$(sed -n 's/.*msg-id table full.* partition=\(dedup-on-[0-9]*-[0-9]*\) .*/\1/p' \
    "$broker_log" | sort -u | wc -l)
FLUSH_POLICY=$(conf log.flush.policy) STORAGE_IO=$(conf storage.io)
STORAGE_RING=$(conf storage.ring) BUFFER_BYTES=$buffer_bytes
MEMORY_BYTES=$(conf storage.memory.bytes) SEGMENT_BYTES=$(conf log.segment.bytes)
RING_USED=$(sed -n 's/.*sluiced started .* ring=\([a-z]*\).*/\1/p' "$broker_log" | head -n 1)
NPROC=$(nproc)
KERNEL=$(uname -r)
FSMOUNT=$(findmnt -n -o FSTYPE -T "$results" 2>/dev/null || echo unknown)
DEVICE=$(df --output=source "$results" | tail -n 1)
CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
MEMORY=$(free -g | awk '/^Mem:/ {print $2 " GiB"}')
COMMIT=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=0 # changes to the sources; the results the other scripts write do not count
if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no -- . ':!bench/results' 2>/dev/null)" ]; then
    DIRTY=1
fi
DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
LOADAVG="$load_start at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
RESULTS=$results
export FIO_BYTES FIO_SIZE QUICK ROUNDS PRODUCE_COUNT CONNS FD_LIMIT BOUNDED_KBYTES CLK_TCK FLUSH_POLICY STORAGE_IO \
    PAIRS DEDUP_WINDOW_MS DEDUP_IDS_MAX DEDUP_EVICTING \
    STORAGE_RING BUFFER_BYTES MEMORY_BYTES SEGMENT_BYTES RING_USED NPROC KERNEL FSMOUNT DEVICE \
    CPU MEMORY COMMIT DIRTY DATE LOADAVG RESULTS

"$py" - "$scratch/results.tsv" <<'EOF'
import json, os, statistics, sys

env = os.environ
raw = {}
for line in open(sys.argv[1]):
    name, data, ticks, read_bytes, refusals = line.rstrip("\n").split("\t")
    d = json.loads(data)
    d["broker_cpu_s"] = int(ticks) / int(env["CLK_TCK"])
    d["broker_disk_read_bytes"] = int(read_bytes)
    d["broker_refusals"] = int(refusals)
    raw[name] = d

rounds = int(env["ROUNDS"])
cases = []

def case(name, result, value, unit, reference=None, ref_value=None, target=None, ok=None):
    ratio = value / ref_value if ref_value else None
    cases.append({
        "case": name, "result": result, "value": value, "unit": unit,
        "reference": reference, "reference_value": ref_value,
        "ratio": round(ratio, 3) if ratio is not None else None,
        "target": target,
        "status": "info" if ok is None else ("pass" if ok else "miss"),
    })

def produce_pair(prefix):
    """Medians over the rounds: sluiced, mock, and the ratio of each round's pair."""
    s = [raw[f"{prefix}_sluiced_{r}"] for r in range(1, rounds + 1)]
    m = [raw[f"{prefix}_mock_{r}"] for r in range(1, rounds + 1)]
    med = lambda xs: statistics.median(xs)
    return {
        "sluiced_mb_s": med([x["mb_per_s"] for x in s]),
        "mock_mb_s": med([x["mb_per_s"] for x in m]),
        "ratio": med([a["mb_per_s"] / b["mb_per_s"] for a, b in zip(s, m)]),
        "sluiced_all": [round(x["mb_per_s"], 1) for x in s],
        "mock_all": [round(x["mb_per_s"], 1) for x in m],
        "p50_ms": med([x["lat_p50_ms"] for x in s]),
        "p99_ms": med([x["lat_p99_ms"] for x in s]),
        "mock_p50_ms": med([x["lat_p50_ms"] for x in m]),
        "refusals": sum(x["broker_refusals"] for x in s),
        "broker_cpu_s_per_gb": med([x["broker_cpu_s"] / (x["bytes"] / 1e9) for x in s]),
        "client_cpu_s_per_gb": med([x["client_cpu_s"] / (x["bytes"] / 1e9) for x in s]),
        "mock_cpu_s_per_gb": med([x["client_cpu_s"] / (x["bytes"] / 1e9) for x in m]),
        "bytes": s[0]["bytes"],
    }

fio = [int(x) / 1e6 for x in env["FIO_BYTES"].split() if int(x) > 0]
fio_mb_s = statistics.median(fio) if fio else None

def disk(p):
    if fio_mb_s is None:
        return ""
    return f"; {p['sluiced_mb_s'] / fio_mb_s:.2f}x the disk's fio figure"

def runs(p):
    if rounds == 1:
        return ""
    return f"; rounds: {', '.join(map(str, p['sluiced_all']))} vs {', '.join(map(str, p['mock_all']))}"

pd = produce_pair("produce")
pb = produce_pair("bounded")
gib = pd["bytes"] / 2**30
case(f"produce {gib:g} GiB of 1 KiB messages, acks=all, linger.ms=5, 1 partition, "
     "librdkafka's default queue (100000 msgs / 1 GiB)",
     f"{pd['sluiced_mb_s']:.1f} MB/s vs mock {pd['mock_mb_s']:.1f} MB/s "
     f"(ack p50 {pd['p50_ms']:.0f} ms, p99 {pd['p99_ms']:.0f} ms; "
     f"{pd['refusals']} produce requests refused and retried{disk(pd)}{runs(pd)})",
     pd["sluiced_mb_s"], "MB/s", "mock broker, same client and settings", pd["mock_mb_s"],
     ">= 600 MB/s and >= 0.5x mock",
     pd["sluiced_mb_s"] >= 600 and pd["ratio"] >= 0.5)
cases[-1]["ratio"] = round(pd["ratio"], 3)
case(f"produce, the same with queue.buffering.max.kbytes={env['BOUNDED_KBYTES']} "
     "(below the partition's write backlog)",
     f"{pb['sluiced_mb_s']:.1f} MB/s vs mock {pb['mock_mb_s']:.1f} MB/s "
     f"(ack p50 {pb['p50_ms']:.0f} ms, p99 {pb['p99_ms']:.0f} ms; "
     f"{pb['refusals']} refused{disk(pb)}{runs(pb)})",
     pb["sluiced_mb_s"], "MB/s", "mock broker, same client and settings", pb["mock_mb_s"],
     ">= 600 MB/s and >= 0.5x mock",
     pb["sluiced_mb_s"] >= 600 and pb["ratio"] >= 0.5)
cases[-1]["ratio"] = round(pb["ratio"], 3)

npairs = rounds * int(env["PAIRS"])

def sluiced_pair(a, b):
    """Medians over the pairs of case a against case b, both on sluiced, run back to back."""
    xa = [raw[f"{a}_{n}"] for n in range(1, npairs + 1)]
    xb = [raw[f"{b}_{n}"] for n in range(1, npairs + 1)]
    med = statistics.median
    cpu_gb = lambda x, k: x[k] / (x["bytes"] / 1e9)
    return {
        "mb_s": med([x["mb_per_s"] for x in xa]),
        "ref_mb_s": med([x["mb_per_s"] for x in xb]),
        "ratio": med([p["mb_per_s"] / q["mb_per_s"] for p, q in zip(xa, xb)]),
        "ratios": [round(p["mb_per_s"] / q["mb_per_s"], 2) for p, q in zip(xa, xb)],
        "all": [round(x["mb_per_s"], 1) for x in xa],
        "ref_all": [round(x["mb_per_s"], 1) for x in xb],
        "p50_ms": med([x["lat_p50_ms"] for x in xa]),
        "ref_p50_ms": med([x["lat_p50_ms"] for x in xb]),
        "broker_cpu_s_per_gb": med([cpu_gb(x, "broker_cpu_s") for x in xa]),
        "ref_broker_cpu_s_per_gb": med([cpu_gb(x, "broker_cpu_s") for x in xb]),
        "broker_cpu_delta_s_per_gb": med([cpu_gb(p, "broker_cpu_s") - cpu_gb(q, "broker_cpu_s")
                                          for p, q in zip(xa, xb)]),
        "client_cpu_s_per_gb": med([cpu_gb(x, "client_cpu_s") for x in xa]),
        "ref_client_cpu_s_per_gb": med([cpu_gb(x, "client_cpu_s") for x in xb]),
        "refusals": sum(x["broker_refusals"] for x in xa + xb),
        "pairs": npairs,
        "bytes": xa[0]["bytes"],
    }

def pairs_note(p):
    return f"{p['pairs']} pairs: {', '.join(f'{r:.2f}' for r in p['ratios'])}"

bounded_shape = (f"{gib:g} GiB of 1 KiB messages, acks=all, linger.ms=5, 1 partition, "
                 f"queue.buffering.max.kbytes={env['BOUNDED_KBYTES']}")
pi = sluiced_pair("idem_on", "idem_off")
case(f"idempotent producer: produce {bounded_shape}, enable.idempotence=true",
     f"{pi['mb_s']:.1f} MB/s vs {pi['ref_mb_s']:.1f} MB/s (ack p50 {pi['p50_ms']:.0f} vs "
     f"{pi['ref_p50_ms']:.0f} ms; broker CPU {pi['broker_cpu_s_per_gb']:.2f} vs "
     f"{pi['ref_broker_cpu_s_per_gb']:.2f} s/GB, client CPU {pi['client_cpu_s_per_gb']:.2f} vs "
     f"{pi['ref_client_cpu_s_per_gb']:.2f} s/GB; {pi['refusals']} refused; {pairs_note(pi)})",
     pi["mb_s"], "MB/s", "the same with enable.idempotence=false, back to back", pi["ref_mb_s"],
     ">= 0.95x off", pi["ratio"] >= 0.95)
cases[-1]["ratio"] = round(pi["ratio"], 3)
ps = sluiced_pair("sl_on", "sl_off")
case(f"idempotent producer through libsluice (the sluice CLI, 1 KiB lines from a file, acks=all, "
     f"linger.ms=5, up to 5 requests in flight per partition): enable.idempotence=true",
     f"{ps['mb_s']:.1f} MB/s vs {ps['ref_mb_s']:.1f} MB/s (broker CPU "
     f"{ps['broker_cpu_s_per_gb']:.2f} vs {ps['ref_broker_cpu_s_per_gb']:.2f} s/GB; "
     f"{pairs_note(ps)})",
     ps["mb_s"], "MB/s", "the same with enable.idempotence=false, back to back", ps["ref_mb_s"],
     ">= 0.95x off", ps["ratio"] >= 0.95)
cases[-1]["ratio"] = round(ps["ratio"], 3)
po = sluiced_pair("idem_on", "idem_one")
case("idempotent producer against a plain one held to librdkafka's idempotent pipeline "
     "(max.in.flight=1: librdkafka's idempotent producer keeps one Produce in flight per "
     "partition)",
     f"{po['mb_s']:.1f} MB/s vs {po['ref_mb_s']:.1f} MB/s (ack p50 {po['p50_ms']:.0f} vs "
     f"{po['ref_p50_ms']:.0f} ms; broker CPU {po['broker_cpu_s_per_gb']:.2f} vs "
     f"{po['ref_broker_cpu_s_per_gb']:.2f} s/GB, client CPU {po['client_cpu_s_per_gb']:.2f} vs "
     f"{po['ref_client_cpu_s_per_gb']:.2f} s/GB; {pairs_note(po)})",
     po["mb_s"], "MB/s", "enable.idempotence=false, max.in.flight=1, back to back", po["ref_mb_s"])
cases[-1]["ratio"] = round(po["ratio"], 3)
pm = sluiced_pair("dedup_on", "dedup_off")
case(f"msg-id dedup: produce {bounded_shape}, each with a unique msg-id header, to a topic "
     f"with dedup.window.ms={env['DEDUP_WINDOW_MS']}",
     f"{pm['mb_s']:.1f} MB/s vs {pm['ref_mb_s']:.1f} MB/s (ack p50 {pm['p50_ms']:.0f} vs "
     f"{pm['ref_p50_ms']:.0f} ms); cost: {pm['ratio']:.2f}x the throughput, broker CPU "
     f"{pm['broker_cpu_s_per_gb']:.2f} vs {pm['ref_broker_cpu_s_per_gb']:.2f} s/GB "
     f"({pm['broker_cpu_delta_s_per_gb']:+.2f} s/GB); msg-id table full (dedup.window.ids.max="
     f"{env['DEDUP_IDS_MAX']}) in {env['DEDUP_EVICTING']} of {npairs} runs; {pairs_note(pm)}",
     pm["mb_s"], "MB/s", "the same msg-ids to a topic without dedup.window.ms, back to back",
     pm["ref_mb_s"], "cost printed")
cases[-1]["ratio"] = round(pm["ratio"], 3)

cs, cm, cq = raw["consume_sluiced"], raw["consume_mock"], raw["consume_small_sluiced"]
def consumed(c):
    return (f"{c['mb_per_s'] / 1e3:.2f} GB/s ({c['broker_disk_read_bytes']} B read from disk, "
            f"broker CPU {c['broker_cpu_s']:.2f} s, client CPU {c['client_cpu_s']:.2f} s)")
case(f"consume {cs['bytes'] / cs['passes'] / 2**20:.0f} MiB x {cs['passes']} passes from the batch "
     "cache, 1 partition, assign from the beginning",
     consumed(cs), cs["mb_per_s"] / 1e3, "GB/s", None, None, ">= 1 GB/s",
     cs["mb_per_s"] >= 1e3)
case(f"consume in the mock's shape: {cq['bytes'] / cq['passes'] / 2**20:.0f} MiB x "
     f"{cq['passes']} passes",
     consumed(cq), cq["mb_per_s"] / 1e3, "GB/s",
     f"mock, same shape: {cm['mb_per_s'] / 1e3:.2f} GB/s", cm["mb_per_s"] / 1e3)

ic = raw.get("idle_conns")
if ic is not None:
    delta_mb = ic["rss_delta_bytes"] / 1e6
    case(f"{ic['connections']} idle connections to a fresh broker, each past one ApiVersions "
         "round trip",
         f"VmRSS +{delta_mb:.1f} MB ({ic['bytes_per_connection']:.0f} B per connection; "
         f"{ic['rss_before_bytes'] / 1e6:.0f} MB before, {ic['rss_closed_bytes'] / 1e6:.0f} MB "
         f"after closing them; ApiVersions with all open: {ic['ping_us']} us)",
         delta_mb, "MB", None, None, "< 100 MB", ic["idle"] == ic["connections"] and delta_mb < 100)
else:
    case(f"{env['CONNS']} idle connections", f"not measured: ulimit -n is {env['FD_LIMIT']}",
         0, "MB", None, None, "< 100 MB", False)

machine = {
    "nproc": int(env["NPROC"]), "kernel": env["KERNEL"], "mount_type": env["FSMOUNT"],
    "device": env["DEVICE"], "cpu": env["CPU"], "memory": env["MEMORY"],
    "loadavg": env["LOADAVG"],
}
broker_config = {
    "log.flush.policy": env["FLUSH_POLICY"], "storage.io": env["STORAGE_IO"],
    "storage.ring": env["STORAGE_RING"], "ring_in_use": env["RING_USED"],
    "storage.buffer.bytes": int(env["BUFFER_BYTES"]),
    "storage.memory.bytes": int(env["MEMORY_BYTES"]),
    "log.segment.bytes": int(env["SEGMENT_BYTES"]),
}
commit = env["COMMIT"] + (" (with uncommitted changes)" if env["DIRTY"] == "1" else "")
quick = env["QUICK"] == "1"
librdkafka = raw["produce_sluiced_1"].get("librdkafka", "?")

def cell(v):
    return "-" if v is None else str(v).replace("|", "/")

rows = ["| case | result | reference | ratio | target | pass/miss |",
        "|---|---|---|---|---|---|"]
for c in cases:
    ratio = f"{c['ratio']:.2f}x" if c["ratio"] is not None else None
    rows.append("| " + " | ".join(cell(v) for v in (
        c["case"], c["result"], c["reference"], ratio, c["target"], c["status"])) + " |")
table = "\n".join(rows)

fio_line = ("The disk: fio " + ", ".join(f"{x:.0f}" for x in fio) + " MB/s (ioengine=psync, "
            f"direct=1, fdatasync=1, bs=1m, size {env['FIO_SIZE']}, once per round right before the "
            "sluiced cases, on the same filesystem): the disk's own rate for synced sequential "
            "writes, which a broker that syncs before it acknowledges writes through as well."
            if fio else "The disk: fio not installed, no figure.")
cost = (f"CPU per GB produced (median): sluiced {pd['broker_cpu_s_per_gb']:.2f} s (all its threads), "
        f"the client {pd['client_cpu_s_per_gb']:.2f} s; the mock run's process (client and mock "
        f"together) {pd['mock_cpu_s_per_gb']:.2f} s.")
# How to read the idempotence rows: the client's pipeline changes with the setting.
idem_note = (f"Idempotence: with enable.idempotence=true librdkafka {librdkafka} sends one Produce "
             "at a time per partition and its broker thread polls in a loop while it waits "
             f"(client CPU {pi['client_cpu_s_per_gb']:.2f} vs {pi['ref_client_cpu_s_per_gb']:.2f} s/GB), "
             "on CPUs it shares with sluiced; a broker that acknowledges after fdatasync pays each "
             "sync's latency per batch. The second row holds the plain producer to the same one "
             f"request in flight: {po['ratio']:.2f}x. sluiced's own share is its CPU: "
             f"{pi['broker_cpu_s_per_gb']:.2f} s/GB on, {pi['ref_broker_cpu_s_per_gb']:.2f} off, "
             f"{po['ref_broker_cpu_s_per_gb']:.2f} with one request in flight.")

md = f"""# Broker benchmark

Machine: {machine['nproc']} CPUs ({machine['cpu']}), {machine['memory']} RAM, kernel
{machine['kernel']}, data on {machine['mount_type']} ({machine['device']}).
Commit {commit}, {env['DATE']}{', QUICK=1 (256 MiB per produce, one round)' if quick else f', {rounds} rounds (medians)'}.
Load average {machine['loadavg']}.
The client, the broker and everything else on the machine share its CPUs: each sluiced
figure ran right before the mock figure it is compared with, and the ratio is the
median of those pairs.

How: `build/kafka-bench` on Debian's librdkafka {librdkafka}, 1 KiB values (incompressible),
acks=all, linger.ms=5, compression none, one partition filled by one producer, one
consumer assigned to every partition from the beginning (no group).

- **sluiced**: `config/sluice.conf` as it is: log.flush.policy={broker_config['log.flush.policy']},
  storage.io={broker_config['storage.io']} (ring: {broker_config['ring_in_use']}), so a produce
  is acknowledged only after the fdatasync that covers it, on the repository's filesystem.
  Topics created with CreateTopics and deleted after each produce case.
- **mock**: librdkafka's mock cluster (`rd_kafka_mock_cluster_new`, one broker) inside the
  driver's process: keeps messages in memory, syncs nothing, and keeps only about 5 MB per
  partition, so its consume reads the same 4 MiB many times. It is the client's ceiling on
  this machine, not a durable broker.
- **pairs**, sluiced alone, in the shape of the bounded case: {npairs} pairs{', three in the one round' if quick else ', one per round'},
  each run back to back, the side that goes first alternating from pair to pair. An
  idempotent producer (enable.idempotence=true) against a plain one, and against a plain
  one held to max.in.flight=1, the pipeline librdkafka {librdkafka}'s idempotent producer
  has: it counts messages in flight against its limit of 5 requests, so it never has more
  than one Produce in flight per partition (rdkafka_broker.c; librdkafka PR #4989). And
  messages with a `msg-id` header (unique across runs: no duplicates, every id looked up)
  to a topic created with dedup.window.ms={env['DEDUP_WINDOW_MS']} against the same to a topic without.
  Ratios and CPU differences are the medians of the pairs' own; broker CPU is all of
  sluiced's threads during the run.

MB and GB are 10^6 and 10^9 bytes of message values.

{table}

{fio_line}
{cost}
{idem_note}
"Refused" counts the produce requests sluiced answered with an error (its log's
`produce refused` lines); librdkafka retries them after retry.backoff.ms (100 ms).

Produced by `bench/broker-bench.sh` (`make bench`); raw numbers in `broker.json`.
"""
open(os.path.join(env["RESULTS"], "broker.md"), "w").write(md)
doc = {"date": env["DATE"], "commit": env["COMMIT"], "dirty": env["DIRTY"] == "1",
       "quick": quick, "rounds": rounds, "machine": machine, "broker_config": broker_config,
       "librdkafka": librdkafka, "bounded_kbytes": int(env["BOUNDED_KBYTES"]),
       "produce": pd, "produce_bounded": pb, "pairs": npairs,
       "idempotence": pi, "idempotence_libsluice": ps, "idempotence_vs_one_in_flight": po,
       "dedup": dict(pm, window_ms=int(env["DEDUP_WINDOW_MS"]), ids_max=int(env["DEDUP_IDS_MAX"]),
                     runs_table_full=int(env["DEDUP_EVICTING"])),
       "fio_seq1m_fdatasync_mb_s": fio, "fio_size": env["FIO_SIZE"], "cases": cases, "raw": raw}
with open(os.path.join(env["RESULTS"], "broker.json"), "w") as f:
    json.dump(doc, f, indent=2)
    f.write("\n")
print()
print(table)
misses = sum(c["status"] == "miss" for c in cases)
print(f"\n{misses} target(s) missed; written {env['RESULTS']}/broker.md and broker.json")
EOF
