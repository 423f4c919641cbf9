# SPDX-License-Identifier: Apache-2.0
# Starts a sluiced and waits until it listens: the one way the tests
# (tests/lib/broker.sh) and the benchmark scripts (bench/*.sh) start one.
#   . tests/lib/sluiced.sh
#   sluiced_launch SLUICED CONFIG LOG [ARGS...]
# runs SLUICED -c CONFIG ARGS in the background with its output in LOG (ARGS
# name a listener on port 0, which the kernel picks), and waits up to 5 s for
# its "started" line: sets LAUNCH_PID and LAUNCH_PORT and returns 0, or
# prints LOG and returns 1.
#   process_stop PID
# stops a background job of the caller's shell (a sluiced or any server
# started beside it): SIGTERM, up to 10 s to exit, then SIGKILL; reaps it.
# Quiet, for cleanup paths; a run that needs a clean exit waits on its own.

sluiced_launch() {
    local sluiced=$1 config=$2 log=$3 i
    shift 3
    # The log exists before the loop reads it: the job's redirection happens
    # in the child, possibly after the first read, and a failed read inside
    # $(...) under `set -e -o pipefail` would end the caller without a word.
    : >"$log"
    "$sluiced" -c "$config" "$@" >"$log" 2>&1 &
    LAUNCH_PID=$!
    LAUNCH_PORT=""
    for i in $(seq 1 100); do
        LAUNCH_PORT=$(sed -n 's/.*started .*listener=PLAINTEXT:\/\/[^:]*:\([0-9]*\).*/\1/p' \
            "$log" | tail -1) || LAUNCH_PORT=""
        [ -n "$LAUNCH_PORT" ] && return 0
        kill -0 "$LAUNCH_PID" 2>/dev/null || break
        sleep 0.05
    done
    echo "sluiced did not start:" >&2
    cat "$log" >&2
    return 1
}

process_stop() {
    local pid=$1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
