# SPDX-License-Identifier: Apache-2.0
# Shell helpers for integration tests: start a real sluiced in a temporary
# directory on a port the kernel picks, wait until it listens, stop it.
#   . tests/lib/broker.sh
#   broker_start [--set key=value ...]   sets BROKER (host:port), BROKER_DIR, BROKER_PID
#   broker_stop [SIGNAL]                 SIGTERM by default; returns sluiced's exit code
# BUILD (default build) names the build directory.

BUILD=${BUILD:-build}
SLUICED=$BUILD/sluiced

BROKER_STARTS=0

broker_start() {
    BROKER_DIR=${BROKER_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/sluice-it-XXXXXX")}
    BROKER_STARTS=$((BROKER_STARTS + 1))
    BROKER_LOG=$BROKER_DIR/sluiced.$BROKER_STARTS.log # one per start: its port line is its own
    # The log exists before the loop below reads it: the redirection of a
    # background job happens in the child, possibly after the first read, and
    # a failed read inside $(...) under `set -e -o pipefail` would end the
    # calling test without a word.
    : >"$BROKER_LOG"
    "$SLUICED" -c config/sluice.conf --set "log.dirs=$BROKER_DIR/data" \
        --set listeners=PLAINTEXT://127.0.0.1:0 "$@" >"$BROKER_LOG" 2>&1 &
    BROKER_PID=$!
    local i port=""
    for i in $(seq 1 100); do
        port=$(sed -n 's/.*started .*listener=PLAINTEXT:\/\/[^:]*:\([0-9]*\).*/\1/p' \
            "$BROKER_LOG" | tail -1) || port=""
        [ -n "$port" ] && break
        kill -0 "$BROKER_PID" 2>/dev/null || break
        sleep 0.05
    done
    if [ -z "$port" ]; then
        echo "broker_start: sluiced did not start:" >&2
        cat "$BROKER_LOG" >&2
        return 1
    fi
    BROKER=127.0.0.1:$port
}

broker_stop() {
    local sig=${1:-TERM} rc=0
    kill -"$sig" "$BROKER_PID" 2>/dev/null
    wait "$BROKER_PID" || rc=$?
    return $rc
}

# Fails the test with a message and the broker's log.
fail() {
    echo "FAIL: $*" >&2
    [ -n "${BROKER_LOG:-}" ] && tail -30 "$BROKER_LOG" >&2
    exit 1
}
