#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Charts of sluice-bench results, drawn by gnuplot (Debian's gnuplot-nox,
pngcairo terminal): for each JSON result given,

  NAME-throughput.png    produce and consume msgs/s, second by second
                         (warm-up seconds shaded)
  NAME-latency.png       end-to-end p50 and p99 of each second, log scale
  NAME-distribution.png  the end-to-end latency distribution: latency at
                         each percentile, on the usual "nines" axis
                         (50, 90, 99, 99.9, 99.99 ... as equal steps)

Usage: plot.py OUT_DIR RESULT.json...   (NAME: the JSON's file name without
.json). Prints the PNGs it wrote. A result without a timeline or latencies
(a producer-only run has no end-to-end latency) gets only the charts it has
data for. Exit 2 on bad usage, 1 when gnuplot is missing or fails.
"""
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

STYLE = """set terminal pngcairo size 900,420 font "DejaVu Sans,10"
set grid ytics lc rgb "#dddddd"
set key top right
set border 3
set tics nomirror
"""


def gnuplot(script):
    r = subprocess.run(["gnuplot"], input=STYLE + script, text=True, capture_output=True)
    if r.returncode != 0:
        raise RuntimeError("gnuplot: " + r.stderr.strip())


def title(res):
    c = res["config"]
    return "%s: %d B, acks=%s, %s, %d producer(s), %d consumer(s), %s" % (
        c.get("topic", "?"), c["message_bytes"], c["acks"], c["compression"], c["producers"],
        c["consumers"], "max rate" if c.get("rate") is None else "%d msgs/s" % c["rate"])


def throughput(res, data_dir, out):
    path = os.path.join(data_dir, "tp.dat")
    top = max([max(t["produce_msgs_per_s"], t["consume_msgs_per_s"]) for t in res["timeline"]] +
              [1.0]) * 1.15
    with open(path, "w") as f:
        for t in res["timeline"]:
            f.write("%d %f %f %d\n" % (t["t_s"], t["produce_msgs_per_s"], t["consume_msgs_per_s"],
                                       1 if t["measuring"] else 0))
    gnuplot("""set output "%s"
set title "%s" noenhanced
set xlabel "seconds"
set ylabel "messages per second"
set yrange [0:%f]
set boxwidth 1
set style fill transparent solid 0.12 noborder
plot "%s" using 1:($4 == 0 ? %f : 1/0) with boxes lc rgb "#999999" title "warm-up", \\
     "" using 1:2 with linespoints lw 2 pt 7 ps 0.5 title "produce", \\
     "" using 1:3 with linespoints lw 2 pt 7 ps 0.5 title "consume"
""" % (out, title(res), top, path, top))


def latency(res, data_dir, out):
    rows = [t for t in res["timeline"] if t.get("e2e_p99_us", 0) > 0]
    if not rows:
        return False
    path = os.path.join(data_dir, "lat.dat")
    with open(path, "w") as f:
        for t in rows:
            f.write("%d %d %d\n" % (t["t_s"], max(t["e2e_p50_us"], 1), max(t["e2e_p99_us"], 1)))
    gnuplot("""set output "%s"
set title "end-to-end latency per second — %s" noenhanced
set xlabel "seconds"
set ylabel "microseconds"
set logscale y
plot "%s" using 1:2 with linespoints lw 2 pt 7 ps 0.5 title "p50", \\
     "" using 1:3 with linespoints lw 2 pt 7 ps 0.5 title "p99"
""" % (out, title(res), path))
    return True


def distribution(res, data_dir, out):
    curve = res["results"].get("e2e_latency_curve_us") or []
    if not curve:
        return False
    path = os.path.join(data_dir, "dist.dat")
    with open(path, "w") as f:
        for pct, us in curve:
            if pct >= 100.0:
                continue
            # The nines axis: 90% -> 1, 99% -> 2, 99.9% -> 3.
            f.write("%f %d\n" % (-math.log10(1.0 - pct / 100.0), max(us, 1)))
    gnuplot("""set output "%s"
set title "end-to-end latency distribution — %s" noenhanced
set xlabel "percentile"
set ylabel "microseconds"
set logscale y
set xtics ("0" 0, "90" 1, "99" 2, "99.9" 3, "99.99" 4, "99.999" 5)
set xrange [0:*]
plot "%s" using 1:2 with lines lw 2 title "latency at percentile"
""" % (out, title(res), path))
    return True


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    if shutil.which("gnuplot") is None:
        print("plot.py: gnuplot is not installed (scripts/deps bench)", file=sys.stderr)
        return 1
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    for path in sys.argv[2:]:
        with open(path) as f:
            res = json.load(f)
        name = os.path.splitext(os.path.basename(path))[0]
        with tempfile.TemporaryDirectory() as data_dir:
            try:
                if res.get("timeline"):
                    out = os.path.join(out_dir, name + "-throughput.png")
                    throughput(res, data_dir, out)
                    print(out)
                    out = os.path.join(out_dir, name + "-latency.png")
                    if latency(res, data_dir, out):
                        print(out)
                out = os.path.join(out_dir, name + "-distribution.png")
                if distribution(res, data_dir, out):
                    print(out)
            except RuntimeError as e:
                print("plot.py: %s: %s" % (path, e), file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
