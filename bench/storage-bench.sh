#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The storage benchmark: fio and build/storage-bench on the same filesystem, in
# one run, compared against the targets of the storage engine's issue. Writes
# bench/results/storage.md (a table for people) and bench/results/storage.json.
#
#   bench/storage-bench.sh BUILD_DIR        full sizes (about two minutes)
#   QUICK=1 bench/storage-bench.sh BUILD_DIR   sizes 8x smaller, 1000 segments
#
# Scratch data goes to bench/results/tmp (ignored by git), on the repository's
# filesystem so that fio and the log see the same disk; it is removed at exit.
# The script fails on errors only: a missed target is reported, not fatal.
set -euo pipefail

build=${1:?usage: bench/storage-bench.sh BUILD_DIR}
repo=$(cd "$(dirname "$0")/.." && pwd)
bin=$(cd "$build" && pwd)/storage-bench
results=$repo/bench/results
scratch=$results/tmp/run.$$
py=/usr/bin/python3 # Debian's, which has json without a virtualenv

[ -x "$bin" ] || { echo "storage-bench.sh: $bin not built (make all)" >&2; exit 1; }
command -v fio >/dev/null || { echo "storage-bench.sh: fio not installed" >&2; exit 1; }
[ -x "$py" ] || { echo "storage-bench.sh: $py missing" >&2; exit 1; }

mkdir -p "$scratch"
cleanup() {
    rm -rf "$scratch"
    rmdir "$results/tmp" 2>/dev/null || true
}
trap cleanup EXIT

if [ "${QUICK:-0}" = 1 ]; then
    fio64_size=128m fio1m_size=256m append1_total=128m append32_total=256m
    records_total=128m read_total=128m recover_total=128m segments=1000
else
    fio64_size=1g fio1m_size=2g append1_total=1g append32_total=2g
    records_total=1g read_total=1g recover_total=1g segments=10000
fi

# fio_write NAME BS SIZE: sequential O_DIRECT writes, fdatasync after each, one
# job at queue depth 1 (psync); prints the bandwidth in bytes/s.
fio_write() {
    local out=$scratch/fio-$1.json
    echo "fio: $1 (bs=$2, size=$3)" >&2
    fio --name="$1" --filename="$scratch/fio.dat" --ioengine=psync --direct=1 --fdatasync=1 \
        --bs="$2" --rw=write --size="$3" --output-format=json --output="$out" >&2
    rm -f "$scratch/fio.dat"
    local bw='import json, sys; print(json.load(open(sys.argv[1]))["jobs"][0]["write"]["bw_bytes"])'
    "$py" -c "$bw" "$out"
}

# bench CASE SUBCOMMAND ARGS...: runs storage-bench in a fresh directory, shows
# its line for people and keeps its JSON line under CASE.
bench() {
    local name=$1 out
    shift
    echo "storage-bench: $name" >&2
    out=$("$bin" "$@" --dir "$scratch/data") || {
        echo "storage-bench.sh: case $name failed" >&2
        exit 1
    }
    printf '%s\n' "$out" | grep -v '^JSON '
    printf '%s\t%s\n' "$name" "$(printf '%s\n' "$out" | sed -n 's/^JSON //p')" \
        >>"$scratch/results.tsv"
    rm -rf "$scratch/data"
}

# Each fio reference runs right before the case it is compared with: on a
# shared or virtual disk the speed drifts, and adjacent runs drift least.
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
fio64=$(fio_write seq64k 64k "$fio64_size")
echo "fio: bs=64k $((fio64 / 1000000)) MB/s"
bench append64k_inflight1 append --batch-bytes 64k --record-bytes 64k --inflight 1 \
    --total-bytes "$append1_total" --flush always
fio1m=$(fio_write seq1m 1m "$fio1m_size")
echo "fio: bs=1m $((fio1m / 1000000)) MB/s"
bench append64k_inflight32 append --batch-bytes 64k --record-bytes 64k --inflight 32 \
    --total-bytes "$append32_total" --flush always
bench records100_16k_inflight32 append --batch-bytes 16k --record-bytes 100 --inflight 32 \
    --total-bytes "$records_total" --flush always
bench read read --total-bytes "$read_total" --passes 2
bench recover recover --total-bytes "$recover_total"
bench open_many open-many --segments "$segments"

# What the report states about the run, handed to the report through the environment.
FIO64=$fio64 FIO1M=$fio1m FIO64_SIZE=$fio64_size FIO1M_SIZE=$fio1m_size QUICK=${QUICK:-0}
NPROC=$(nproc)
KERNEL=$(uname -r)
FSTYPE=$(stat -f -c %T "$scratch")
FSMOUNT=$(findmnt -n -o FSTYPE -T "$scratch" 2>/dev/null || echo unknown)
DEVICE=$(df --output=source "$scratch" | tail -n 1)
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
export FIO64 FIO1M FIO64_SIZE FIO1M_SIZE QUICK NPROC KERNEL FSTYPE FSMOUNT DEVICE CPU MEMORY \
    COMMIT DIRTY DATE LOADAVG RESULTS

"$py" - "$scratch/results.tsv" <<'EOF'
import json, os, sys

env = os.environ
raw = {}
for line in open(sys.argv[1]):
    name, _, data = line.rstrip("\n").partition("\t")
    raw[name] = json.loads(data)

fio64, fio1m = int(env["FIO64"]), int(env["FIO1M"])
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

a1 = raw["append64k_inflight1"]
a32 = raw["append64k_inflight32"]
rec = raw["records100_16k_inflight32"]
rd = raw["read"]
rc = raw["recover"]
om = raw["open_many"]

def lat(a):
    return f"p50 {a['lat_p50_us']:.0f} us, p99 {a['lat_p99_us']:.0f} us"

fio64_ref = f"fio bs=64k: {fio64 / 1e6:.1f} MB/s"
fio1m_ref = f"fio bs=1m: {fio1m / 1e6:.1f} MB/s"
case("append 64 KiB batches, inflight 1, flush=always",
     f"{a1['mb_per_s']:.1f} MB/s ({lat(a1)})", a1["mb_per_s"], "MB/s",
     fio64_ref, fio64 / 1e6, ">= 0.9x fio bs=64k", a1["mb_per_s"] >= 0.9 * fio64 / 1e6)
case("append 64 KiB batches, inflight 32, flush=always",
     f"{a32['mb_per_s']:.1f} MB/s ({lat(a32)})", a32["mb_per_s"], "MB/s",
     fio1m_ref, fio1m / 1e6, ">= 0.8x fio bs=1m", a32["mb_per_s"] >= 0.8 * fio1m / 1e6)
case(f"append 100 B records, {rec['batch_bytes']} B batches of {rec['records_per_batch']}, "
     "inflight 32, flush=always",
     f"{rec['records_per_s'] / 1e6:.2f} M records/s ({rec['mb_per_s']:.1f} MB/s, {lat(rec)})",
     rec["records_per_s"], "records/s")
case(f"read {rd['bytes'] >> 20} MiB from the batch cache (no reopen)",
     f"{rd['cache_gb_per_s']:.2f} GB/s ({rd['cache_disk_reads']} disk reads)",
     rd["cache_gb_per_s"], "GB/s", None, None, ">= 2 GB/s", rd["cache_gb_per_s"] >= 2)
case("read after reopen, pass 1 (disk: written with O_DIRECT, not cached)",
     f"{rd['disk_gb_per_s']:.2f} GB/s", rd["disk_gb_per_s"], "GB/s")
case("read after reopen, pass 2 (page cache)",
     f"{rd['page_cache_gb_per_s']:.2f} GB/s", rd["page_cache_gb_per_s"], "GB/s",
     None, None, ">= 2 GB/s", rd["page_cache_gb_per_s"] >= 2)
case(f"recovery: log_open after kill -9 of a writer, {rc['bytes'] / 2**30:.2f} GiB",
     f"{rc['seconds']:.3f} s (end offset {rc['end_offset']} = acknowledged)",
     rc["seconds"], "s", None, None, "< 2 s", rc["seconds"] < 2)
case(f"open a log of {om['segments']} segments (clean shutdown)",
     f"{om['seconds']:.3f} s (RSS +{om['rss_bytes_per_segment']:.0f} B/segment)",
     om["seconds"], "s", None, None, "< 1 s", om["seconds"] < 1)

machine = {
    "nproc": int(env["NPROC"]), "kernel": env["KERNEL"], "filesystem": env["FSTYPE"],
    "mount_type": env["FSMOUNT"], "device": env["DEVICE"], "cpu": env["CPU"],
    "memory": env["MEMORY"], "loadavg": env["LOADAVG"],
}
commit = env["COMMIT"] + (" (with uncommitted changes)" if env["DIRTY"] == "1" else "")
quick = env["QUICK"] == "1"

def cell(v):
    return "-" if v is None else str(v).replace("|", "/")

rows = ["| case | result | reference | ratio | target | pass/miss |",
        "|---|---|---|---|---|---|"]
for c in cases:
    ratio = f"{c['ratio']:.2f}x" if c["ratio"] is not None else None
    rows.append("| " + " | ".join(cell(v) for v in (
        c["case"], c["result"], c["reference"], ratio, c["target"], c["status"])) + " |")
table = "\n".join(rows)

md = f"""# Storage benchmark

Machine: {machine['nproc']} CPUs ({machine['cpu']}), {machine['memory']} RAM, kernel
{machine['kernel']}, scratch filesystem {machine['filesystem']} (`stat -f`; mounted as
{machine['mount_type']}) on {machine['device']}.
Commit {commit}, {env['DATE']}{', QUICK=1 (sizes 8x smaller)' if quick else ''}.
Load average {machine['loadavg']}.
Anything else using the disk or the CPUs skews the numbers: compare a case with its
reference, which ran right before it.

References: fio 1 job, ioengine=psync, direct=1, fdatasync=1, rw=write, bs=64k
(size {env['FIO64_SIZE']}) and bs=1m (size {env['FIO1M_SIZE']}), on the same filesystem.
The log runs on one io_uring ring with O_DIRECT writes; MB and GB are 10^6 and 10^9 bytes.

{table}

Produced by `bench/storage-bench.sh` (`make bench`); raw numbers in `storage.json`.
"""
open(os.path.join(env["RESULTS"], "storage.md"), "w").write(md)
doc = {"date": env["DATE"], "commit": env["COMMIT"], "dirty": env["DIRTY"] == "1",
       "quick": quick, "machine": machine,
       "fio": {"bs64k_bytes_per_s": fio64, "bs64k_size": env["FIO64_SIZE"],
               "bs1m_bytes_per_s": fio1m, "bs1m_size": env["FIO1M_SIZE"]},
       "cases": cases, "raw": raw}
with open(os.path.join(env["RESULTS"], "storage.json"), "w") as f:
    json.dump(doc, f, indent=2)
    f.write("\n")
print()
print(table)
misses = sum(c["status"] == "miss" for c in cases)
print(f"\n{misses} target(s) missed; written {env['RESULTS']}/storage.md and storage.json")
EOF
