#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# sluice-bench against a real sluiced: a --quick run (1 s warm-up, 2 s
# measured) with one producer and one consumer, then its JSON checked:
# throughput above 0, every delivered message consumed after the drain (the
# measured window's counts equal too), no failures, latency percentiles
# ordered (p50 <= p90 <= ... <= max) and above 0, one timeline entry a second,
# the config and machine recorded. Then a rate-limited run lands near its
# rate; two consumer groups each read every message of two topics created
# with 3 partitions each (values of 50..400 bytes, uniform); --prefill and --consume-existing read exactly what is there;
# and bad options exit 2.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/broker.sh

PY=/usr/bin/python3
BENCH=$BUILD/sluice-bench

broker_start
W=$BROKER_DIR
trap 'kill -9 $BROKER_PID 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$W"' EXIT

check_json() { # FILE [RATE]
    "$PY" - "$@" <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1]))
rate = float(sys.argv[2]) if len(sys.argv) > 2 else None
res, cfg = r["results"], r["config"]
def need(cond, what):
    if not cond:
        sys.exit("FAIL: %s\n%s" % (what, json.dumps(res, indent=1)))
need(r["tool"] == "sluice-bench" and r["machine"]["cores"] >= 1 and r["machine"]["kernel"], "machine")
need(cfg["producers"] == 1 and cfg["consumers"] == 1 and cfg["quick"] is True, "config")
need(cfg["warmup_s"] == 1 and cfg["duration_s"] == 2, "quick timings")
p, c, e = res["produce"], res["consume"], res["e2e_latency_us"]
need(p["messages"] > 0 and p["msgs_per_s"] > 0 and p["mb_per_s"] > 0, "produce throughput > 0")
need(p["failed"] == 0 and c["failed"] == 0, "no failures")
need(res["drained"] is True, "drained")
need(c["consumed_total"] == p["produced_total"], "consumed == produced (whole run)")
need(c["messages"] == p["messages"], "consumed == produced (measured window)")
need(e["count"] == c["messages"], "one latency per measured record")
keys = ["p50", "p90", "p99", "p99_9", "p99_99", "max"]
vals = [e[k] for k in keys]
need(all(a <= b for a, b in zip(vals, vals[1:])), "e2e percentiles ordered: %s" % vals)
need(vals[0] > 0, "e2e p50 > 0")
ack = [p["ack_latency_us"][k] for k in keys]
need(all(a <= b for a, b in zip(ack, ack[1:])), "ack percentiles ordered: %s" % ack)
need(len(r["timeline"]) == 3 and [t["t_s"] for t in r["timeline"]] == [1, 2, 3], "timeline")
if rate is not None:
    need(abs(p["msgs_per_s"] - rate) <= 0.1 * rate, "rate %g near %g" % (p["msgs_per_s"], rate))
print("ok", sys.argv[1], "%.0f msgs/s" % p["msgs_per_s"], "e2e", dict(zip(keys, vals)))
PYEOF
}

# ---- 1. as fast as possible --------------------------------------------------
"$BENCH" -b "$BROKER" --topic bench-max --quick --producers 1 --consumers 1 --size 512 \
    --json "$W/max.json" >"$W/max.out" 2>&1 || { cat "$W/max.out"; fail "sluice-bench (max) failed"; }
grep -q 'e2e p50' "$W/max.out" || fail "no per-second line"
grep -q '^summary' "$W/max.out" || fail "no summary"
check_json "$W/max.json" || fail "max.json"

# ---- 2. a target rate ---------------------------------------------------------
"$BENCH" -b "$BROKER" --topic bench-rate --quick --rate 2000 --acks 1 --compression zstd \
    --json "$W/rate.json" >"$W/rate.out" 2>&1 || { cat "$W/rate.out"; fail "sluice-bench (rate) failed"; }
check_json "$W/rate.json" 2000 || fail "rate.json"

# ---- 3. fan-out to consumer groups, a created topic, reading what is there ------
"$BENCH" -b "$BROKER" --topic bench-groups --topics 2 --partitions 3 --quick --rate 3000 \
    --groups 2 --consumers 3 --size 50-400 --json "$W/groups.json" >"$W/groups.out" 2>&1 ||
    { cat "$W/groups.out"; fail "sluice-bench --groups failed"; }
"$BENCH" -b "$BROKER" --topic bench-fill --producers 0 --prefill 20000 --size 200 \
    --json "$W/fill.json" >"$W/fill.out" 2>&1 || { cat "$W/fill.out"; fail "--prefill failed"; }
"$BENCH" -b "$BROKER" --topic bench-fill --producers 0 --consume-existing --consumers 2 \
    --json "$W/again.json" >"$W/again.out" 2>&1 || { cat "$W/again.out"; fail "--consume-existing"; }
"$PY" - "$W" <<'PYEOF' || fail "groups, prefill, consume-existing"
import json, sys
w = sys.argv[1]
g = json.load(open(w + "/groups.json"))
need = lambda cond, what: cond or sys.exit("FAIL: %s" % what)
need(g["config"]["partitions_used"] == 3 and g["config"]["groups"] == 2 and
     g["config"]["topics"] == 2, "groups config")
need(g["config"]["size_distribution"] == "uniform" and g["config"]["message_bytes_max"] == 400,
     "size distribution recorded")
res = g["results"]
mean = res["produce"]["mb_per_s"] * 1e6 / res["produce"]["msgs_per_s"]
need(150 < mean < 300, "values of 50..400 bytes average %.0f" % mean)
need(res["drained"] and res["consume"]["consumed_total"] == 2 * res["produce"]["produced_total"],
     "each of 2 groups read every message: %s" % res["consume"])
curve = res["e2e_latency_curve_us"]
need(curve[0][0] == 0 and curve[-1][0] == 100 and
     all(a[1] <= b[1] for a, b in zip(curve, curve[1:])), "latency curve ordered")
for name in ("fill", "again"):
    r = json.load(open("%s/%s.json" % (w, name)))
    c = r["results"]["consume"]
    need(c["consumed_total"] == 20000 and c["messages"] == 20000 and c["msgs_per_s"] > 0,
         "%s: read the 20000 records there: %s" % (name, c))
print("ok: 2 groups each read everything; --prefill and --consume-existing read 20000 records")
PYEOF
# ---- 4. usage errors exit 2 -------------------------------------------------------
for bad in "--acks 1 --idempotence on" "--size 4" "--rate fast" "--compression lz4" "extra" \
    "--producers 0" "--prefill 10 --groups 1" "--groups 3 --consumers 2"; do
    rc=0
    # shellcheck disable=SC2086
    "$BENCH" -b "$BROKER" $bad >/dev/null 2>&1 || rc=$?
    [ "$rc" -eq 2 ] || fail "sluice-bench $bad: exit $rc, want 2"
done
echo "client_bench: ok"
