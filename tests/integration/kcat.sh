#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# kcat (Debian's, on librdkafka) against a real sluiced: metadata listing,
# 10k keyed lines with headers produced uncompressed and with zstd, lz4 and
# gzip, read back identical and in order per partition; then a SIGTERM
# restart, after which everything is still there and offsets continue.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/broker.sh

N=10000
broker_start --set num.partitions=3
trap 'kill -9 $BROKER_PID 2>/dev/null || true; rm -rf "$BROKER_DIR"' EXIT

awk -v n=$N 'BEGIN { for (i = 1; i <= n; i++) printf "key%d:value-%d-%040d\n", i, i, i }' \
    >"$BROKER_DIR/in.txt"
for codec in none zstd lz4 gzip; do
    topic=t-$codec
    kcat -b "$BROKER" -P -t "$topic" -K: -z "$codec" -H origin=it -H codec="$codec" \
        -X linger.ms=5 <"$BROKER_DIR/in.txt" || fail "produce $codec"
    kcat -b "$BROKER" -C -t "$topic" -e -q -f '%p %o %k:%s %h\n' >"$BROKER_DIR/out-$codec.txt" ||
        fail "consume $codec"
    got=$(wc -l <"$BROKER_DIR/out-$codec.txt")
    [ "$got" -eq $N ] || fail "$codec: read $got of $N records"
    # Every line came back once, with its key and headers.
    cut -d' ' -f3 "$BROKER_DIR/out-$codec.txt" | sort >"$BROKER_DIR/got.txt"
    sort "$BROKER_DIR/in.txt" | cmp -s - "$BROKER_DIR/got.txt" || fail "$codec: records differ"
    if grep -qv "origin=it,codec=$codec" "$BROKER_DIR/out-$codec.txt"; then
        fail "$codec: headers lost"
    fi
    # Per partition, offsets run 0,1,2,... and lines keep their produce order.
    for p in 0 1 2; do
        awk -v p=$p '$1 == p { if ($2 != n) exit 1; n++ }' "$BROKER_DIR/out-$codec.txt" ||
            fail "$codec: partition $p offsets not contiguous"
        awk -v p=$p '$1 == p { split($3, a, "-"); print a[2] }' "$BROKER_DIR/out-$codec.txt" |
            sort -nc || fail "$codec: partition $p out of order"
    done
done
kcat -b "$BROKER" -L | grep -q 'topic "t-zstd" with 3 partitions' || fail "metadata listing"

# A clean restart keeps everything, and offsets continue.
broker_stop TERM || fail "sluiced did not exit 0 on SIGTERM"
broker_start --set num.partitions=3
echo "key:after-restart" | kcat -b "$BROKER" -P -t t-none -K: -p 0 || fail "produce after restart"
total=$(kcat -b "$BROKER" -C -t t-none -e -q -f '%o\n' | wc -l)
[ "$total" -eq $((N + 1)) ] || fail "after restart read $total, want $((N + 1))"
last=$(kcat -b "$BROKER" -C -t t-none -p 0 -e -q -f '%o %s\n' | tail -1)
case "$last" in *" after-restart") ;; *) fail "last record of partition 0: $last" ;; esac
broker_stop TERM || fail "second SIGTERM exit code"
echo "kcat: $N records x 4 codecs, restart: ok"
