#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# libsluice (the sluice CLI) and confluent_kafka (librdkafka) through a real
# sluiced, byte for byte: binary keys, values and headers, null against
# empty, explicit timestamps, every codec, several partitions, read by
# `sluice consume`; binary keys of `sluice produce -k` in Java's murmur2
# partitions. The checks are in client_interop.py (its top comment says
# which); this starts the broker, runs them, stops it with SIGTERM and then
# checks the codecs of the batches it stored.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/broker.sh

PY=/usr/bin/python3
start=$(date +%s)
broker_start
W=$BROKER_DIR
trap 'kill -9 $BROKER_PID 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$W"' EXIT

BROKER=$BROKER SLUICE=$BUILD/sluice $PY tests/integration/client_interop.py ||
    fail "client_interop.py"
broker_stop TERM || fail "sluiced did not exit 0 on SIGTERM"
$PY tests/integration/client_interop.py segments "$W/data" || fail "stored batches"
if grep -E 'AddressSanitizer|LeakSanitizer|runtime error|assertion failed' "$W"/sluiced.*.log >&2
then
    fail "sanitizer or assertion report in sluiced's log"
fi
echo "client_interop: confluent_kafka -> sluice consume byte-identical over 5 codecs," \
    "sluice produce -k binary keys in murmur2 partitions: ok ($(($(date +%s) - start)) s)"
