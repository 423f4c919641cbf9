/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A real crash, repeatedly: a child process appends with flush.policy=always
 * and reports every acknowledged offset through a pipe; the parent kill -9s it
 * at a random moment, reopens the log (recovery), and checks that every
 * acknowledged batch is there, byte for byte, and that the whole log
 * validates. The next child then continues the same log.
 */
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/clock.h"
#include "tests/lib/logfix.h"
#include "tests/lib/testutil.h"

#define ROUNDS    20
#define IN_FLIGHT 8
#define RECORDS   2
#define VALUE_MAX 5000
#define TS_BASE   1000000

struct child {
    struct logfix f;
    struct log *log;
    int pipe_fd;
    struct buf batch;
    int in_flight;
};

static void child_append(struct child *c);

static void child_acked(void *opaque, int status, int64_t offset)
{
    struct child *c = opaque;
    if (status != 0) {
        _exit(3);
    }
    if (write(c->pipe_fd, &offset, sizeof(offset)) != (ssize_t)sizeof(offset)) {
        _exit(4);
    }
    c->in_flight--;
    child_append(c);
}

static void child_append(struct child *c)
{
    while (c->in_flight < IN_FLIGHT) {
        int64_t next = log_end_offset(c->log);
        buf_reset(&c->batch);
        logfix_batch(&c->batch, next, RECORDS, TS_BASE + next, VALUE_MAX);
        if (log_append(c->log, c->batch.data, c->batch.len, 0, child_acked, c, NULL) != 0) {
            _exit(5);
        }
        c->in_flight++;
    }
}

/* Runs in the forked child: never returns. */
static _Noreturn void child_main(const struct logfix *parent, int pipe_fd)
{
    static struct child c;
    c.f = *parent;
    c.f.loop = ev_loop_new(EVFLAG_AUTO);
    c.pipe_fd = pipe_fd;
    logfix_restart(&c.f, RING_URING, 16u << 20); /* a ring and shard of its own */
    c.log = logfix_open(&c.f);
    if (c.log == NULL) {
        _exit(2);
    }
    buf_init(&c.batch, 1u << 20);
    child_append(&c);
    for (;;) {
        ev_run(c.f.loop, EVRUN_ONCE);
    }
}

static void test_crash_kill9_keeps_acknowledged(void **state)
{
    (void)state;
    uint64_t rng = tu_seed("crash_kill9");
    struct logfix f;
    logfix_init(&f, "crash", RING_URING, 16u << 20);
    f.config.segment_bytes = 1u << 20; /* several rolls over the run */
    int64_t max_acked = -1;
    long total_acks = 0;
    for (int round = 0; round < ROUNDS; round++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            child_main(&f, fds[1]);
        }
        close(fds[1]);
        int64_t deadline = time_mono_ns() + (int64_t)(20 + tu_rand(&rng) % 250) * 1000000;
        int64_t off;
        for (;;) {
            int64_t left_ms = (deadline - time_mono_ns()) / 1000000;
            if (left_ms <= 0) {
                break;
            }
            struct pollfd p = {.fd = fds[0], .events = POLLIN};
            if (poll(&p, 1, (int)left_ms) > 0 && read(fds[0], &off, sizeof(off)) == sizeof(off)) {
                max_acked = off > max_acked ? off : max_acked;
                total_acks++;
            }
        }
        kill(pid, SIGKILL);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status)); /* it did not fail on its own */
        while (read(fds[0], &off, sizeof(off)) == sizeof(off)) {
            max_acked = off > max_acked ? off : max_acked; /* acks sent just before death */
            total_acks++;
        }
        close(fds[0]);

        struct log *log = logfix_open(&f);
        assert_non_null(log);
        assert_false(log_needs_repair(log));
        assert_true(log_end_offset(log) > max_acked);
        long batches = logfix_verify(&f, log, RECORDS, TS_BASE, VALUE_MAX);
        assert_int_equal(batches * RECORDS, log_end_offset(log));
        log_abandon(log); /* leave it unclean: the next child recovers too */
    }
    print_message("crash: %d kills, %ld acknowledged appends, all present\n", ROUNDS, total_acks);
    assert_true(total_acks > ROUNDS);
    logfix_deinit(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash_kill9_keeps_acknowledged),
    };
    return cmocka_run_group_tests_name("crash", tests, NULL, NULL);
}
