# SPDX-License-Identifier: Apache-2.0
# Shell helpers for integration tests: start a real sluiced in a temporary
# directory on a port the kernel picks, wait until it listens, stop it.
#   . tests/lib/broker.sh
#   broker_start [--set key=value ...]   sets BROKER (host:port), BROKER_DIR, BROKER_PID
#   broker_stop [SIGNAL]                 SIGTERM by default; returns sluiced's exit code
# BUILD (default build) names the build directory.

. "$(dirname "${BASH_SOURCE[0]}")/sluiced.sh"

BUILD=${BUILD:-build}
SLUICED=$BUILD/sluiced

BROKER_STARTS=0

broker_start() {
    BROKER_DIR=${BROKER_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/sluice-it-XXXXXX")}
    BROKER_STARTS=$((BROKER_STARTS + 1))
    BROKER_LOG=$BROKER_DIR/sluiced.$BROKER_STARTS.log # one per start: its port line is its own
    sluiced_launch "$SLUICED" config/sluice.conf "$BROKER_LOG" \
        --set "log.dirs=$BROKER_DIR/data" --set listeners=PLAINTEXT://127.0.0.1:0 "$@" || return 1
    BROKER_PID=$LAUNCH_PID
    BROKER=127.0.0.1:$LAUNCH_PORT
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
