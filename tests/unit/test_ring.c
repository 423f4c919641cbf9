/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of storage/ring: one suite of behaviours run over both real backends
 * (io_uring and the thread pool), then the fault backend's model: planned
 * failures, ENOSPC, volatile writes, power loss and torn writes.
 *
 * Every callback checks that it is not running inside a submit call (the
 * SUBMIT macro marks those), and every test arms an alarm so that a loop that
 * never returns fails the run instead of hanging it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <ev.h>

#include "common/assert.h"
#include "storage/ring.h"
#include "storage/ring_internal.h" /* ring_uring_offload, to test ops io_uring lacks */
#include "tests/lib/testutil.h"

#define TEST_ALARM_S 5
#define TEST_BLOCK   4096

struct fixture {
    enum ring_backend backend;
    struct ev_loop *loop;
    struct ring *ring;
    char dir[512];
    int dirfd;
    bool in_submit; /* a submit call is running: a callback now would break the contract */
    int next_seq;   /* order in which callbacks fired */
};

struct call {
    struct fixture *fx;
    int res;
    int fired;
    int seq;
};

#define SUBMIT(fx, expr) (submit_begin(fx), submit_end((fx), (expr)))

static void submit_begin(struct fixture *fx)
{
    fx->in_submit = true;
}

static int submit_end(struct fixture *fx, int rc)
{
    fx->in_submit = false;
    return rc;
}

static void call_cb(void *opaque, int res)
{
    struct call *c = opaque;
    assert_false(c->fx->in_submit);
    c->fired++;
    c->res = res;
    c->seq = c->fx->next_seq++;
}

static void calls_init(struct call *calls, size_t n, struct fixture *fx)
{
    memset(calls, 0, n * sizeof(*calls));
    for (size_t i = 0; i < n; i++) {
        calls[i].fx = fx;
        calls[i].seq = -1;
    }
}

/* ------------------------------------------------------------ fixture */

static struct ring *fixture_ring(struct fixture *fx, unsigned entries)
{
    ring_free(fx->ring);
    struct ring_config config = {.backend = fx->backend, .entries = entries, .threads = 4};
    int err = 0;
    fx->ring = ring_new(fx->loop, &config, &err);
    assert_non_null(fx->ring);
    assert_int_equal(ring_backend_of(fx->ring), fx->backend);
    return fx->ring;
}

static int fixture_setup(void **state, enum ring_backend backend)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    alarm(TEST_ALARM_S);
    fx->backend = backend;
    fx->loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(fx->loop);
    snprintf(fx->dir, sizeof(fx->dir), "%s", tu_tmpdir("ring"));
    fx->dirfd = open(fx->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(fx->dirfd >= 0);
    fixture_ring(fx, 64);
    *state = fx;
    return 0;
}

static int setup_uring(void **state)
{
    return fixture_setup(state, RING_URING);
}

static int setup_threads(void **state)
{
    return fixture_setup(state, RING_THREADS);
}

static int setup_fault(void **state)
{
    return fixture_setup(state, RING_FAULT);
}

static int fixture_teardown(void **state)
{
    struct fixture *fx = *state;
    ring_free(fx->ring);
    close(fx->dirfd);
    tu_rmtree(fx->dir);
    ev_loop_destroy(fx->loop);
    free(fx);
    alarm(0);
    return 0;
}

/* Runs the loop until it has nothing left: the ring keeps it alive while busy. */
static void run(struct fixture *fx)
{
    ev_run(fx->loop, 0);
}

/* Submits one op through `expr` (using &c), runs the loop, and returns its result. */
#define RUN_ONE(fx, c, expr)                                                                       \
    (calls_init(&(c), 1, (fx)), assert_int_equal(SUBMIT((fx), (expr)), 0), run(fx),                \
     assert_int_equal((c).fired, 1), (c).res)

static int open_file(struct fixture *fx, const char *name, int flags)
{
    return openat(fx->dirfd, name, flags | O_CREAT | O_CLOEXEC, 0644);
}

static uint8_t *aligned_alloc_zero(size_t bytes)
{
    void *p = NULL;
    assert_int_equal(posix_memalign(&p, TEST_BLOCK, bytes), 0);
    memset(p, 0, bytes);
    return p;
}

static void fill_pattern(uint8_t *buf, size_t len, uint8_t seed)
{
    for (size_t i = 0; i < len; i++) {
        buf[i] = (uint8_t)(seed + i * 7 + (i >> 8));
    }
}

static off_t file_size(int fd)
{
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    return st.st_size;
}

/* ------------------------------------------------------------ behaviours, both backends */

static void write_read_back(struct fixture *fx, int fd, off_t offset, size_t len)
{
    uint8_t *out = aligned_alloc_zero(len);
    uint8_t *in = aligned_alloc_zero(len);
    fill_pattern(out, len, 3);
    struct iovec wv = {.iov_base = out, .iov_len = len};
    struct iovec rv = {.iov_base = in, .iov_len = len};
    struct call c[3];
    calls_init(c, 3, fx);
    struct ring *r = fx->ring;
    assert_int_equal(SUBMIT(fx, ring_writev(r, fd, &wv, 1, offset, RING_F_LINK, call_cb, &c[0])),
                     0);
    assert_int_equal(SUBMIT(fx, ring_fdatasync(r, fd, 0, call_cb, &c[1])), 0);
    run(fx);
    assert_int_equal(c[0].fired, 1);
    assert_int_equal(c[0].res, (int)len);
    assert_int_equal(c[1].fired, 1);
    assert_int_equal(c[1].res, 0);
    assert_int_equal(SUBMIT(fx, ring_readv(r, fd, &rv, 1, offset, 0, call_cb, &c[2])), 0);
    run(fx);
    assert_int_equal(c[2].fired, 1);
    assert_int_equal(c[2].res, (int)len);
    assert_memory_equal(in, out, len);
    assert_int_equal(ring_in_flight(fx->ring), 0);
    free(out);
    free(in);
}

static void test_ring_write_read_buffered(void **state)
{
    struct fixture *fx = *state;
    int fd = open_file(fx, "buffered", O_RDWR);
    assert_true(fd >= 0);
    write_read_back(fx, fd, 100, 5000);
    /* The bytes are in the file, not just in some cache of the ring. */
    uint8_t check[5000];
    uint8_t want[5000];
    fill_pattern(want, sizeof(want), 3);
    assert_int_equal(pread(fd, check, sizeof(check), 100), (ssize_t)sizeof(check));
    assert_memory_equal(check, want, sizeof(want));
    close(fd);
}

static void test_ring_write_read_direct(void **state)
{
    struct fixture *fx = *state;
    int fd = open_file(fx, "direct", O_RDWR | O_DIRECT);
    if (fd < 0 && errno == EINVAL) {
        skip(); /* a filesystem without O_DIRECT (tmpfs) */
    }
    assert_true(fd >= 0);
    write_read_back(fx, fd, TEST_BLOCK, 4 * TEST_BLOCK);
    assert_int_equal(file_size(fd), 5 * TEST_BLOCK);
    close(fd);
}

static void test_ring_writev_several_iovecs(void **state)
{
    struct fixture *fx = *state;
    int fd = open_file(fx, "iovecs", O_RDWR);
    assert_true(fd >= 0);
    uint8_t out[1 + 100 + 4096 + 7];
    uint8_t in[sizeof(out)];
    fill_pattern(out, sizeof(out), 11);
    memset(in, 0, sizeof(in));
    struct iovec wv[4] = {
        {out, 1},
        {out + 1, 100},
        {out + 101, 4096},
        {out + 4197, 7},
    };
    /* Read back split differently, so each side's iovec walking is checked. */
    struct iovec rv[3] = {{in, 2000}, {in + 2000, 5}, {in + 2005, sizeof(in) - 2005}};
    struct call c[2];
    calls_init(c, 2, fx);
    assert_int_equal(SUBMIT(fx, ring_writev(fx->ring, fd, wv, 4, 0, 0, call_cb, &c[0])), 0);
    run(fx);
    assert_int_equal(c[0].res, (int)sizeof(out));
    assert_int_equal(SUBMIT(fx, ring_readv(fx->ring, fd, rv, 3, 0, 0, call_cb, &c[1])), 0);
    run(fx);
    assert_int_equal(c[1].res, (int)sizeof(in));
    assert_memory_equal(in, out, sizeof(out));
    close(fd);
}

static void test_ring_link_write_fdatasync_in_order(void **state)
{
    struct fixture *fx = *state;
    int fd = open_file(fx, "linked", O_RDWR);
    assert_true(fd >= 0);
    uint8_t buf[3][512];
    struct iovec v[3];
    for (int i = 0; i < 3; i++) {
        fill_pattern(buf[i], sizeof(buf[i]), (uint8_t)i);
        v[i] = (struct iovec){buf[i], sizeof(buf[i])};
    }
    struct call c[5];
    calls_init(c, 5, fx);
    struct ring *r = fx->ring;
    assert_int_equal(SUBMIT(fx, ring_writev(r, fd, &v[0], 1, 0, RING_F_LINK, call_cb, &c[0])), 0);
    assert_int_equal(SUBMIT(fx, ring_writev(r, fd, &v[1], 1, 512, RING_F_LINK, call_cb, &c[1])), 0);
    assert_int_equal(SUBMIT(fx, ring_fdatasync(r, fd, 0, call_cb, &c[2])), 0);
    assert_int_equal(SUBMIT(fx, ring_writev(r, fd, &v[2], 1, 1024, RING_F_LINK, call_cb, &c[3])),
                     0);
    assert_int_equal(SUBMIT(fx, ring_fsync(r, fd, 0, call_cb, &c[4])), 0);
    assert_int_equal(ring_in_flight(r), 5);
    assert_int_equal(ring_space(r), 64 - 5);
    run(fx);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(c[i].fired, 1);
    }
    assert_int_equal(c[0].res, 512);
    assert_int_equal(c[1].res, 512);
    assert_int_equal(c[2].res, 0);
    assert_int_equal(c[3].res, 512);
    assert_int_equal(c[4].res, 0);
    /* Within a chain, an op completes only after the one it is linked from. */
    assert_true(c[0].seq < c[1].seq && c[1].seq < c[2].seq);
    assert_true(c[3].seq < c[4].seq);
    assert_int_equal(ring_in_flight(r), 0);
    assert_int_equal(ring_space(r), 64);
    assert_int_equal(file_size(fd), 1536);
    close(fd);
}

/* A file for a chain test, one 512-byte block of pattern 7 in buf (v points at
 * it) and n fresh calls. Returns the file's fd. */
static int chain_setup(struct fixture *fx, const char *name, uint8_t buf[512], struct iovec *v,
                       struct call *c, size_t n)
{
    int fd = open_file(fx, name, O_RDWR);
    assert_true(fd >= 0);
    fill_pattern(buf, 512, 7);
    *v = (struct iovec){buf, 512};
    calls_init(c, n, fx);
    return fd;
}

/* RING_F_PROMPT: the linked write reports itself (full byte count, before its
 * fdatasync) instead of being folded into the sync's completion; a failed
 * one still cancels the rest of its chain. */
static void test_ring_link_prompt_write_reports_itself(void **state)
{
    struct fixture *fx = *state;
    uint8_t buf[512];
    struct iovec v;
    struct call c[4];
    int fd = chain_setup(fx, "prompt", buf, &v, c, 4);
    struct ring *r = fx->ring;
    unsigned flags = RING_F_LINK | RING_F_PROMPT;
    assert_int_equal(SUBMIT(fx, ring_writev(r, fd, &v, 1, 0, flags, call_cb, &c[0])), 0);
    assert_int_equal(SUBMIT(fx, ring_fdatasync(r, fd, 0, call_cb, &c[1])), 0);
    run(fx);
    assert_int_equal(c[0].fired, 1);
    assert_int_equal(c[1].fired, 1);
    assert_int_equal(c[0].res, 512);
    assert_int_equal(c[1].res, 0);
    assert_true(c[0].seq < c[1].seq);
    /* A write at a bad offset fails and cancels its sync. */
    assert_int_equal(SUBMIT(fx, ring_writev(r, -1, &v, 1, 0, flags, call_cb, &c[2])), 0);
    assert_int_equal(SUBMIT(fx, ring_fdatasync(r, fd, 0, call_cb, &c[3])), 0);
    run(fx);
    assert_int_equal(c[2].res, -EBADF);
    assert_int_equal(c[3].res, -ECANCELED);
    assert_int_equal(file_size(fd), 512);
    close(fd);
}

static void test_ring_link_failure_cancels_rest(void **state)
{
    struct fixture *fx = *state;
    int fd = open_file(fx, "cancel", O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "0123456789", 10, 0), 10);
    uint8_t buf[TEST_BLOCK];
    struct iovec v = {buf, sizeof(buf)};
    struct call c[6];
    calls_init(c, 6, fx);
    struct ring *r = fx->ring;
    /* A failing write cancels everything linked after it. */
    assert_int_equal(SUBMIT(fx, ring_writev(r, -1, &v, 1, 0, RING_F_LINK, call_cb, &c[0])), 0);
    assert_int_equal(SUBMIT(fx, ring_fsync(r, fd, RING_F_LINK, call_cb, &c[1])), 0);
    assert_int_equal(SUBMIT(fx, ring_fdatasync(r, fd, 0, call_cb, &c[2])), 0);
    /* A short read (10 bytes of 4096) breaks its chain too. */
    assert_int_equal(SUBMIT(fx, ring_readv(r, fd, &v, 1, 0, RING_F_LINK, call_cb, &c[3])), 0);
    assert_int_equal(SUBMIT(fx, ring_fdatasync(r, fd, 0, call_cb, &c[4])), 0);
    /* An op outside any chain is not affected. */
    assert_int_equal(SUBMIT(fx, ring_fdatasync(r, fd, 0, call_cb, &c[5])), 0);
    run(fx);
    assert_int_equal(c[0].res, -EBADF);
    assert_int_equal(c[1].res, -ECANCELED);
    assert_int_equal(c[2].res, -ECANCELED);
    assert_int_equal(c[3].res, 10);
    assert_int_equal(c[4].res, -ECANCELED);
    assert_int_equal(c[5].res, 0);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(c[i].fired, 1);
    }
    close(fd);
}

/* A chain that fails in its middle: what ran before succeeded, what follows
 * is cancelled, each callback exactly once and in chain order (io_uring skips
 * the CQEs of successful and cancelled linked ops; the ring stands in). */
static void test_ring_link_middle_failure(void **state)
{
    struct fixture *fx = *state;
    uint8_t buf[512];
    struct iovec v;
    struct call c[4];
    int fd = chain_setup(fx, "middle", buf, &v, c, 4);
    struct ring *r = fx->ring;
    assert_int_equal(SUBMIT(fx, ring_writev(r, fd, &v, 1, 0, RING_F_LINK, call_cb, &c[0])), 0);
    assert_int_equal(SUBMIT(fx, ring_writev(r, -1, &v, 1, 512, RING_F_LINK, call_cb, &c[1])), 0);
    assert_int_equal(SUBMIT(fx, ring_writev(r, fd, &v, 1, 1024, RING_F_LINK, call_cb, &c[2])), 0);
    assert_int_equal(SUBMIT(fx, ring_fdatasync(r, fd, 0, call_cb, &c[3])), 0);
    run(fx);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(c[i].fired, 1);
    }
    assert_int_equal(c[0].res, 512);
    assert_int_equal(c[1].res, -EBADF);
    assert_int_equal(c[2].res, -ECANCELED);
    assert_int_equal(c[3].res, -ECANCELED);
    assert_true(c[0].seq < c[1].seq && c[1].seq < c[2].seq && c[2].seq < c[3].seq);
    assert_int_equal(ring_in_flight(r), 0);
    close(fd);
}

static void test_ring_file_operations(void **state)
{
    struct fixture *fx = *state;
    struct ring *r = fx->ring;
    int dirfd = fx->dirfd;
    struct call c;
    int fd = RUN_ONE(
        fx, c, ring_openat(r, dirfd, "a", O_RDWR | O_CREAT | O_CLOEXEC, 0600, 0, call_cb, &c));
    assert_true(fd >= 0);
    assert_int_equal(RUN_ONE(fx, c, ring_fallocate(r, fd, 0, 0, 1 << 20, 0, call_cb, &c)), 0);
    assert_int_equal(file_size(fd), 1 << 20);
    assert_int_equal(RUN_ONE(fx, c, ring_ftruncate(r, fd, 4096, 0, call_cb, &c)), 0);
    assert_int_equal(file_size(fd), 4096);
    assert_int_equal(RUN_ONE(fx, c, ring_renameat(r, dirfd, "a", dirfd, "b", 0, call_cb, &c)), 0);
    assert_int_equal(faccessat(dirfd, "a", F_OK, 0), -1);
    assert_int_equal(faccessat(dirfd, "b", F_OK, 0), 0);
    /* A directory is fsynced after entries in it change. */
    assert_int_equal(RUN_ONE(fx, c, ring_fsync(r, dirfd, 0, call_cb, &c)), 0);
    assert_int_equal(RUN_ONE(fx, c, ring_close(r, fd, 0, call_cb, &c)), 0);
    assert_int_equal(fcntl(fd, F_GETFD), -1);
    assert_int_equal(RUN_ONE(fx, c, ring_unlinkat(r, dirfd, "b", 0, 0, call_cb, &c)), 0);
    assert_int_equal(faccessat(dirfd, "b", F_OK, 0), -1);
    assert_int_equal(RUN_ONE(fx, c, ring_openat(r, dirfd, "missing", O_RDONLY, 0, 0, call_cb, &c)),
                     -ENOENT);
    assert_int_equal(mkdirat(dirfd, "sub", 0700), 0);
    assert_int_equal(RUN_ONE(fx, c, ring_unlinkat(r, dirfd, "sub", AT_REMOVEDIR, 0, call_cb, &c)),
                     0);
    assert_int_equal(RUN_ONE(fx, c, ring_close(r, -1, 0, call_cb, &c)), -EBADF);
}

static void test_ring_enobufs_when_full(void **state)
{
    struct fixture *fx = *state;
    struct ring *r = fixture_ring(fx, 4);
    struct call c[5];
    calls_init(c, 5, fx);
    assert_int_equal(ring_space(r), 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(SUBMIT(fx, ring_fsync(r, fx->dirfd, 0, call_cb, &c[i])), 0);
        assert_int_equal(ring_space(r), 3 - i);
        assert_int_equal(ring_in_flight(r), i + 1);
    }
    assert_int_equal(SUBMIT(fx, ring_fsync(r, fx->dirfd, 0, call_cb, &c[4])), -ENOBUFS);
    run(fx);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(c[i].fired, 1);
        assert_int_equal(c[i].res, 0);
    }
    /* A refused submit never calls back. */
    assert_int_equal(c[4].fired, 0);
    assert_int_equal(ring_space(r), 4);
    assert_int_equal(ring_in_flight(r), 0);
}

static void test_ring_refuses_bad_arguments(void **state)
{
    struct fixture *fx = *state;
    struct ring *r = fx->ring;
    uint8_t buf[16];
    struct iovec v = {buf, sizeof(buf)};
    struct call c[2];
    calls_init(c, 2, fx);
    char long_path[PATH_MAX + 1];
    memset(long_path, 'x', sizeof(long_path) - 1);
    long_path[PATH_MAX] = '\0';
    int dirfd = fx->dirfd;
    assert_int_equal(ring_fsync(r, dirfd, 0x4, call_cb, &c[0]), -EINVAL);
    assert_int_equal(ring_fsync(r, dirfd, 0, NULL, NULL), -EINVAL);
    assert_int_equal(ring_writev(r, dirfd, &v, 1, -1, 0, call_cb, &c[0]), -EINVAL);
    assert_int_equal(ring_writev(r, dirfd, &v, 0, 0, 0, call_cb, &c[0]), -EINVAL);
    assert_int_equal(ring_openat(r, dirfd, long_path, O_RDONLY, 0, 0, call_cb, &c[0]),
                     -ENAMETOOLONG);
    assert_int_equal(ring_renameat(r, dirfd, "a", dirfd, long_path, 0, call_cb, &c[0]),
                     -ENAMETOOLONG);
    /* Links join reads, writes and syncs only, on both sides. */
    assert_int_equal(ring_openat(r, dirfd, "a", O_RDONLY, 0, RING_F_LINK, call_cb, &c[0]), -EINVAL);
    assert_int_equal(ring_in_flight(r), 0);
    assert_int_equal(SUBMIT(fx, ring_fsync(r, dirfd, RING_F_LINK, call_cb, &c[0])), 0);
    assert_int_equal(ring_close(r, -1, 0, call_cb, &c[1]), -EINVAL);
    assert_int_equal(SUBMIT(fx, ring_fsync(r, dirfd, 0, call_cb, &c[1])), 0);
    run(fx);
    assert_int_equal(c[0].fired, 1);
    assert_int_equal(c[1].fired, 1);
    assert_int_equal(c[0].res, 0);
    assert_int_equal(c[1].res, 0);
}

static void test_ring_callbacks_never_inside_submit(void **state)
{
    struct fixture *fx = *state;
    struct call c[3];
    calls_init(c, 3, fx);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(SUBMIT(fx, ring_fsync(fx->ring, fx->dirfd, 0, call_cb, &c[i])), 0);
    }
    /* Submitting to the kernel now does not call back either. */
    assert_int_equal(ring_submit(fx->ring), 0);
    usleep(10000);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(c[i].fired, 0);
    }
    run(fx);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(c[i].fired, 1);
    }
}

/* Many small writes through a small ring, each completion submitting the next. */
struct stream {
    struct fixture *fx;
    int fd;
    unsigned next;
    unsigned total;
    unsigned completed;
    uint64_t words[10000];
    struct iovec iov[10000];
};

static void stream_submit(struct stream *s);

static void stream_cb(void *opaque, int res)
{
    struct stream *s = opaque;
    assert_false(s->fx->in_submit);
    assert_int_equal(res, (int)sizeof(uint64_t));
    s->completed++;
    /* The slot of this op is free again before its callback runs. */
    assert_true(ring_space(s->fx->ring) >= 1);
    stream_submit(s);
}

static void stream_submit(struct stream *s)
{
    while (s->next < s->total && ring_space(s->fx->ring) > 0) {
        unsigned i = s->next++;
        s->words[i] = 0x5155ce0000000000ull | i;
        s->iov[i] = (struct iovec){&s->words[i], sizeof(s->words[i])};
        off_t offset = (off_t)i * (off_t)sizeof(uint64_t);
        assert_int_equal(
            SUBMIT(s->fx, ring_writev(s->fx->ring, s->fd, &s->iov[i], 1, offset, 0, stream_cb, s)),
            0);
    }
}

static void test_ring_many_ops_small_ring(void **state)
{
    struct fixture *fx = *state;
    fixture_ring(fx, 8);
    struct stream *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    s->fx = fx;
    s->total = 10000;
    s->fd = open_file(fx, "stream", O_RDWR);
    assert_true(s->fd >= 0);
    stream_submit(s);
    assert_int_equal(ring_space(fx->ring), 0);
    run(fx);
    assert_int_equal(s->completed, s->total);
    assert_int_equal(ring_in_flight(fx->ring), 0);
    /* The fault backend keeps unsynced writes in memory; the others do not care. */
    struct call c;
    assert_int_equal(RUN_ONE(fx, c, ring_fdatasync(fx->ring, s->fd, 0, call_cb, &c)), 0);
    uint64_t *words = calloc(s->total, sizeof(uint64_t));
    assert_non_null(words);
    size_t bytes = s->total * sizeof(uint64_t);
    assert_int_equal(pread(s->fd, words, bytes, 0), (ssize_t)bytes);
    for (unsigned i = 0; i < s->total; i++) {
        assert_int_equal(words[i], 0x5155ce0000000000ull | i);
    }
    free(words);
    close(s->fd);
    free(s);
}

static void test_ring_free_completes_ops_in_flight(void **state)
{
    struct fixture *fx = *state;
    int fd = open_file(fx, "free", O_RDWR);
    assert_true(fd >= 0);
    uint8_t buf[16][256];
    struct iovec v[16];
    struct call c[17];
    calls_init(c, 17, fx);
    for (int i = 0; i < 16; i++) {
        memset(buf[i], 'a' + i, sizeof(buf[i]));
        v[i] = (struct iovec){buf[i], sizeof(buf[i])};
        assert_int_equal(
            SUBMIT(fx, ring_writev(fx->ring, fd, &v[i], 1, i * 256, 0, call_cb, &c[i])), 0);
    }
    assert_int_equal(SUBMIT(fx, ring_fdatasync(fx->ring, fd, 0, call_cb, &c[16])), 0);
    /* Outside ev_run, with nothing submitted to the kernel yet. */
    ring_free(fx->ring);
    fx->ring = NULL;
    for (int i = 0; i < 17; i++) {
        assert_int_equal(c[i].fired, 1);
    }
    for (int i = 0; i < 16; i++) {
        assert_int_equal(c[i].res, 256);
    }
    assert_int_equal(file_size(fd), 16 * 256);
    /* The ring's watchers are gone and the loop has nothing to wait for. */
    run(fx);
    close(fd);
}

struct freeing_call {
    struct fixture *fx;
    int fired;
};

static void free_ring_cb(void *opaque, int res)
{
    struct freeing_call *f = opaque;
    assert_int_equal(res, 0);
    f->fired++;
    /* The last user of the ring frees it from one of its callbacks. */
    ring_free(f->fx->ring);
    f->fx->ring = NULL;
}

static void test_ring_free_from_callback(void **state)
{
    struct fixture *fx = *state;
    struct freeing_call f = {fx, 0};
    struct call c[4];
    calls_init(c, 4, fx);
    assert_int_equal(SUBMIT(fx, ring_fsync(fx->ring, fx->dirfd, 0, call_cb, &c[0])), 0);
    assert_int_equal(SUBMIT(fx, ring_fsync(fx->ring, fx->dirfd, 0, free_ring_cb, &f)), 0);
    for (int i = 1; i < 4; i++) {
        assert_int_equal(SUBMIT(fx, ring_fsync(fx->ring, fx->dirfd, 0, call_cb, &c[i])), 0);
    }
    run(fx);
    assert_null(fx->ring);
    assert_int_equal(f.fired, 1);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(c[i].fired, 1);
    }
}

struct drain_chain {
    struct fixture *fx;
    int remaining;
    int fired;
};

static void drain_chain_cb(void *opaque, int res)
{
    struct drain_chain *d = opaque;
    assert_false(d->fx->in_submit);
    assert_int_equal(res, 0);
    d->fired++;
    if (--d->remaining > 0) {
        assert_int_equal(SUBMIT(d->fx, ring_fsync(d->fx->ring, d->fx->dirfd, 0, drain_chain_cb, d)),
                         0);
    }
}

static void test_ring_drain_waits_for_follow_ups(void **state)
{
    struct fixture *fx = *state;
    struct drain_chain d = {fx, 5, 0};
    ring_drain(fx->ring); /* nothing in flight: returns at once */
    assert_int_equal(SUBMIT(fx, ring_fsync(fx->ring, fx->dirfd, 0, drain_chain_cb, &d)), 0);
    ring_drain(fx->ring);
    assert_int_equal(d.fired, 5);
    assert_int_equal(ring_in_flight(fx->ring), 0);
}

static void test_ring_idle_loop_returns(void **state)
{
    struct fixture *fx = *state;
    /* An idle ring does not keep ev_run going (the alarm catches a hang). */
    run(fx);
    struct call c;
    calls_init(&c, 1, fx);
    assert_int_equal(SUBMIT(fx, ring_fsync(fx->ring, fx->dirfd, 0, call_cb, &c)), 0);
    /* A busy one does, until its last callback. */
    run(fx);
    assert_int_equal(c.fired, 1);
    run(fx);
}

/* Another module's ev_prepare that submits after the ring's own prepare already ran. */
struct late_submitter {
    ev_prepare watcher;
    struct fixture *fx;
    struct call call;
};

static void late_submit_cb(struct ev_loop *loop, ev_prepare *watcher, int revents)
{
    (void)revents;
    struct late_submitter *late = (struct late_submitter *)watcher;
    ev_prepare_stop(loop, watcher);
    struct fixture *fx = late->fx;
    assert_int_equal(SUBMIT(fx, ring_fsync(fx->ring, fx->dirfd, 0, call_cb, &late->call)), 0);
}

static void test_ring_ops_queued_after_its_prepare(void **state)
{
    struct fixture *fx = *state;
    struct late_submitter late = {.fx = fx};
    calls_init(&late.call, 1, fx);
    /* libev runs prepare watchers newest first: start ours, then make the ring's. */
    ev_prepare_init(&late.watcher, late_submit_cb);
    ev_prepare_start(fx->loop, &late.watcher);
    fixture_ring(fx, 8);
    /* Must not block forever with the op queued but never handed to the kernel. */
    run(fx);
    assert_int_equal(late.call.fired, 1);
    assert_int_equal(late.call.res, 0);
}

/* io_uring with some opcodes missing: the pool runs those, on the same eventfd. */
static void test_ring_uring_offloads_missing_ops(void **state)
{
    struct fixture *fx = *state;
    for (int kind = RING_OP_FALLOCATE; kind < RING_OP_KIND_COUNT; kind++) {
        assert_int_equal(ring_uring_offload(fx->ring, (enum ring_op_kind)kind, 2), 0);
    }
    /* A chain cannot span the kernel and the pool. */
    assert_int_equal(ring_uring_offload(fx->ring, RING_OP_WRITEV, 2), -EINVAL);
    test_ring_file_operations(state);
    int fd = open_file(fx, "mixed", O_RDWR);
    assert_true(fd >= 0);
    uint8_t data[TEST_BLOCK];
    memset(data, 'm', sizeof(data));
    struct iovec v = {data, sizeof(data)};
    struct call c[3];
    calls_init(c, 3, fx);
    struct ring *r = fx->ring;
    /* Independent ops: the pool's fallocate and the kernel's chain run side by side. */
    assert_int_equal(SUBMIT(fx, ring_fallocate(r, fd, 0, 0, 1 << 16, 0, call_cb, &c[0])), 0);
    assert_int_equal(SUBMIT(fx, ring_writev(r, fd, &v, 1, 1 << 16, RING_F_LINK, call_cb, &c[1])),
                     0);
    assert_int_equal(SUBMIT(fx, ring_fdatasync(r, fd, 0, call_cb, &c[2])), 0);
    /* Freed with kernel and pool ops both in flight. */
    ring_free(fx->ring);
    fx->ring = NULL;
    assert_int_equal(c[0].res, 0);
    assert_int_equal(c[1].res, TEST_BLOCK);
    assert_int_equal(c[2].res, 0);
    assert_int_equal(file_size(fd), (1 << 16) + TEST_BLOCK);
    close(fd);
}

/* ------------------------------------------------------------ backend-independent */

static void test_ring_backend_names(void **state)
{
    (void)state;
    enum ring_backend b = RING_FAULT;
    assert_int_equal(ring_backend_parse("auto", &b), 0);
    assert_int_equal(b, RING_AUTO);
    assert_int_equal(ring_backend_parse("uring", &b), 0);
    assert_int_equal(b, RING_URING);
    assert_int_equal(ring_backend_parse("threads", &b), 0);
    assert_int_equal(b, RING_THREADS);
    assert_int_equal(ring_backend_parse("fault", &b), -EINVAL);
    assert_int_equal(ring_backend_parse("", &b), -EINVAL);
    assert_string_equal(ring_backend_name(RING_URING), "uring");
    assert_string_equal(ring_backend_name(RING_THREADS), "threads");
    assert_string_equal(ring_backend_name(RING_FAULT), "fault");
}

static void test_ring_config_limits(void **state)
{
    (void)state;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    int err = 0;
    struct ring_config config = {.backend = RING_THREADS, .entries = RING_ENTRIES_MAX + 1};
    assert_null(ring_new(loop, &config, &err));
    assert_int_equal(err, -EINVAL);
    config = (struct ring_config){.backend = RING_THREADS, .threads = RING_THREADS_MAX + 1};
    err = 0;
    assert_null(ring_new(loop, &config, &err));
    assert_int_equal(err, -EINVAL);
    /* Zeros mean the defaults; AUTO resolves to a real backend. */
    config = (struct ring_config){.backend = RING_AUTO};
    struct ring *ring = ring_new(loop, &config, &err);
    assert_non_null(ring);
    assert_true(ring_backend_of(ring) == RING_URING || ring_backend_of(ring) == RING_THREADS);
    assert_int_equal(ring_space(ring), RING_ENTRIES_DEFAULT);
    /* The fault hooks belong to the fault backend only. */
    struct ring_fault_plan plan = {0};
    assert_int_equal(ring_fault_set(ring, &plan), -EINVAL);
    assert_int_equal(ring_fault_power_loss(ring, 0), -EINVAL);
    ring_free(ring);
    ring_free(NULL);
    ev_loop_destroy(loop);
}

/* Child side: io_uring_setup refused as a seccomp profile would; AUTO must still work. */
static int auto_fallback_child(const char *dir)
{
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = (unsigned short)SL_ARRAY_LEN(filter), .filter = filter};
    alarm(TEST_ALARM_S);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
        return 2;
    }
    struct fixture fx = {.backend = RING_AUTO, .dirfd = open(dir, O_RDONLY | O_DIRECTORY)};
    fx.loop = ev_loop_new(EVFLAG_AUTO);
    struct ring_config config = {.backend = RING_AUTO};
    int err = 0;
    fx.ring = ring_new(fx.loop, &config, &err);
    if (fx.ring == NULL || ring_backend_of(fx.ring) != RING_THREADS) {
        return 3;
    }
    struct call c;
    calls_init(&c, 1, &fx);
    if (ring_fsync(fx.ring, fx.dirfd, 0, call_cb, &c) != 0) {
        return 4;
    }
    run(&fx);
    ring_free(fx.ring);
    ev_loop_destroy(fx.loop);
    return c.fired == 1 && c.res == 0 ? 0 : 5;
}

static void test_ring_auto_falls_back_to_threads(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("ring-auto");
    char path[512];
    snprintf(path, sizeof(path), "%s", dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        _exit(auto_fallback_child(path));
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    tu_rmtree(path);
}

/* ------------------------------------------------------------ fault backend */

static void set_plan(struct fixture *fx, struct ring_fault_plan plan)
{
    assert_int_equal(ring_fault_set(fx->ring, &plan), 0);
}

static int write_block(struct fixture *fx, int fd, const void *data, size_t len, off_t offset)
{
    struct iovec v = {(void *)data, len};
    struct call c;
    return RUN_ONE(fx, c, ring_writev(fx->ring, fd, &v, 1, offset, 0, call_cb, &c));
}

static int sync_file(struct fixture *fx, int fd)
{
    struct call c;
    return RUN_ONE(fx, c, ring_fdatasync(fx->ring, fd, 0, call_cb, &c));
}

static void power_loss_and_free(struct fixture *fx, uint64_t tear_seed)
{
    assert_int_equal(ring_fault_power_loss(fx->ring, tear_seed), 0);
    ring_free(fx->ring);
    fx->ring = NULL;
}

static void test_ring_fault_kth_write_fails(void **state)
{
    struct fixture *fx = *state;
    int fd = open_file(fx, "kth", O_RDWR);
    assert_true(fd >= 0);
    set_plan(fx, (struct ring_fault_plan){.write_fail_at = 2, .write_fail_err = -EIO});
    uint8_t blocks[3][TEST_BLOCK];
    for (int i = 0; i < 3; i++) {
        memset(blocks[i], 'A' + i, TEST_BLOCK);
    }
    assert_int_equal(write_block(fx, fd, blocks[0], TEST_BLOCK, 0), TEST_BLOCK);
    assert_int_equal(write_block(fx, fd, blocks[1], TEST_BLOCK, TEST_BLOCK), -EIO);
    assert_int_equal(write_block(fx, fd, blocks[2], TEST_BLOCK, 2 * TEST_BLOCK), TEST_BLOCK);
    assert_int_equal(ring_fault_writes(fx->ring), 3);
    assert_int_equal(sync_file(fx, fd), 0);
    assert_int_equal(ring_fault_fsyncs(fx->ring), 1);
    power_loss_and_free(fx, 0);
    uint8_t got[3 * TEST_BLOCK];
    assert_int_equal(pread(fd, got, sizeof(got), 0), (ssize_t)sizeof(got));
    uint8_t zeros[TEST_BLOCK] = {0};
    assert_memory_equal(got, blocks[0], TEST_BLOCK);
    /* The failed write changed nothing: its block is still a hole. */
    assert_memory_equal(got + TEST_BLOCK, zeros, TEST_BLOCK);
    assert_memory_equal(got + 2 * TEST_BLOCK, blocks[2], TEST_BLOCK);
    close(fd);
}

static void test_ring_fault_failed_fsync_is_not_durable(void **state)
{
    struct fixture *fx = *state;
    int fd = open_file(fx, "fsync", O_RDWR);
    assert_true(fd >= 0);
    set_plan(fx, (struct ring_fault_plan){.fsync_fail_at = 1, .fsync_fail_err = -EIO});
    uint8_t data[TEST_BLOCK];
    memset(data, 'D', sizeof(data));
    assert_int_equal(write_block(fx, fd, data, sizeof(data), 0), TEST_BLOCK);
    assert_int_equal(sync_file(fx, fd), -EIO);
    assert_int_equal(ring_fault_fsyncs(fx->ring), 1);
    /* Nothing reached the file. */
    assert_int_equal(file_size(fd), 0);
    power_loss_and_free(fx, 0);
    assert_int_equal(file_size(fd), 0);
    close(fd);
}

static void test_ring_fault_enospc_toggles(void **state)
{
    struct fixture *fx = *state;
    int fd = open_file(fx, "enospc", O_RDWR);
    assert_true(fd >= 0);
    uint8_t data[512] = {1};
    struct call c;
    set_plan(fx, (struct ring_fault_plan){.enospc = true});
    assert_int_equal(write_block(fx, fd, data, sizeof(data), 0), -ENOSPC);
    assert_int_equal(RUN_ONE(fx, c, ring_fallocate(fx->ring, fd, 0, 0, 65536, 0, call_cb, &c)),
                     -ENOSPC);
    assert_int_equal(file_size(fd), 0);
    set_plan(fx, (struct ring_fault_plan){.enospc = false});
    assert_int_equal(write_block(fx, fd, data, sizeof(data), 0), (int)sizeof(data));
    assert_int_equal(RUN_ONE(fx, c, ring_fallocate(fx->ring, fd, 0, 0, 65536, 0, call_cb, &c)), 0);
    assert_int_equal(file_size(fd), 65536);
    /* Counters keep counting across plans. */
    assert_int_equal(ring_fault_writes(fx->ring), 2);
    close(fd);
}

static void test_ring_fault_power_loss_keeps_only_synced(void **state)
{
    struct fixture *fx = *state;
    int fd = open_file(fx, "power", O_RDWR);
    assert_true(fd >= 0);
    uint8_t synced[TEST_BLOCK];
    uint8_t lost[TEST_BLOCK];
    memset(synced, 'S', sizeof(synced));
    memset(lost, 'L', sizeof(lost));
    assert_int_equal(write_block(fx, fd, synced, TEST_BLOCK, 0), TEST_BLOCK);
    assert_int_equal(sync_file(fx, fd), 0);
    assert_int_equal(write_block(fx, fd, lost, 100, 0), 100);
    assert_int_equal(write_block(fx, fd, lost, TEST_BLOCK, TEST_BLOCK), TEST_BLOCK);
    power_loss_and_free(fx, 0);
    uint8_t *content = NULL;
    char path[600];
    snprintf(path, sizeof(path), "%s/power", fx->dir);
    assert_int_equal(tu_read_file(path, &content), TEST_BLOCK);
    assert_memory_equal(content, synced, TEST_BLOCK);
    free(content);
    close(fd);
}

/* Each sector the pending write touched holds either only old or only new bytes. */
static void check_torn(const uint8_t *got, const uint8_t *old, const uint8_t *new_bytes,
                       size_t write_from, size_t write_to, unsigned *kept, unsigned *dropped)
{
    for (size_t sector = write_from / 512 * 512; sector < write_to; sector += 512) {
        size_t from = sector > write_from ? sector : write_from;
        size_t to = sector + 512 < write_to ? sector + 512 : write_to;
        bool is_new = memcmp(got + from, new_bytes + from, to - from) == 0;
        bool is_old = memcmp(got + from, old + from, to - from) == 0;
        assert_true(is_new != is_old);
        *kept += is_new;
        *dropped += is_old;
    }
}

static void test_ring_fault_torn_power_loss(void **state)
{
    struct fixture *fx = *state;
    enum { LEN = 64 * 1024 };
    int fd = open_file(fx, "torn", O_RDWR);
    assert_true(fd >= 0);
    uint8_t *old = aligned_alloc_zero(LEN);
    uint8_t *new_bytes = aligned_alloc_zero(LEN);
    uint8_t *got = aligned_alloc_zero(LEN);
    fill_pattern(old, LEN, 1);
    fill_pattern(new_bytes, LEN, 2);
    assert_int_equal(write_block(fx, fd, old, LEN, 0), LEN);
    assert_int_equal(sync_file(fx, fd), 0);
    /* One aligned write over the first half, one unaligned over sectors of the second. */
    assert_int_equal(write_block(fx, fd, new_bytes, LEN / 2, 0), LEN / 2);
    assert_int_equal(write_block(fx, fd, new_bytes + 40000, 9000, 40000), 9000);
    power_loss_and_free(fx, 0x7ea5eedull);
    assert_int_equal(pread(fd, got, LEN, 0), LEN);
    unsigned kept = 0;
    unsigned dropped = 0;
    check_torn(got, old, new_bytes, 0, LEN / 2, &kept, &dropped);
    check_torn(got, old, new_bytes, 40000, 49000, &kept, &dropped);
    /* 64 + 19 sectors, each kept with probability 1/2: some of each, for this seed and most. */
    assert_true(kept > 0);
    assert_true(dropped > 0);
    /* Bytes outside both writes are untouched. */
    assert_memory_equal(got + LEN / 2, old + LEN / 2, 40000 - LEN / 2);
    assert_memory_equal(got + 49000, old + 49000, LEN - 49000);
    free(old);
    free(new_bytes);
    free(got);
    close(fd);
}

static void test_ring_fault_eio_after_power_loss(void **state)
{
    struct fixture *fx = *state;
    struct ring *r = fx->ring;
    int dirfd = fx->dirfd;
    int fd = open_file(fx, "dead", O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(ring_fault_power_loss(r, 0), 0);
    uint8_t buf[512] = {0};
    struct iovec v = {buf, sizeof(buf)};
    struct call c;
    assert_int_equal(RUN_ONE(fx, c, ring_writev(r, fd, &v, 1, 0, 0, call_cb, &c)), -EIO);
    assert_int_equal(RUN_ONE(fx, c, ring_readv(r, fd, &v, 1, 0, 0, call_cb, &c)), -EIO);
    assert_int_equal(RUN_ONE(fx, c, ring_fsync(r, fd, 0, call_cb, &c)), -EIO);
    assert_int_equal(RUN_ONE(fx, c, ring_fdatasync(r, fd, 0, call_cb, &c)), -EIO);
    assert_int_equal(RUN_ONE(fx, c, ring_fallocate(r, fd, 0, 0, 4096, 0, call_cb, &c)), -EIO);
    assert_int_equal(RUN_ONE(fx, c, ring_ftruncate(r, fd, 0, 0, call_cb, &c)), -EIO);
    assert_int_equal(
        RUN_ONE(fx, c, ring_openat(r, dirfd, "new", O_RDWR | O_CREAT, 0600, 0, call_cb, &c)), -EIO);
    assert_int_equal(faccessat(dirfd, "new", F_OK, 0), -1);
    assert_int_equal(RUN_ONE(fx, c, ring_renameat(r, dirfd, "dead", dirfd, "x", 0, call_cb, &c)),
                     -EIO);
    assert_int_equal(RUN_ONE(fx, c, ring_unlinkat(r, dirfd, "dead", 0, 0, call_cb, &c)), -EIO);
    assert_int_equal(faccessat(dirfd, "dead", F_OK, 0), 0);
    /* close reports the error but, like Linux's, still releases the fd. */
    assert_int_equal(RUN_ONE(fx, c, ring_close(r, fd, 0, call_cb, &c)), -EIO);
    assert_int_equal(fcntl(fd, F_GETFD), -1);
}

static void test_ring_fault_reads_see_pending_writes(void **state)
{
    struct fixture *fx = *state;
    int fd = open_file(fx, "pending", O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(write_block(fx, fd, "hello", 5, 8192), 5);
    assert_int_equal(write_block(fx, fd, "J", 1, 8192), 1); /* a later write wins */
    uint8_t buf[16384];
    memset(buf, 0xee, sizeof(buf));
    struct iovec v[2] = {{buf, 8190}, {buf + 8190, sizeof(buf) - 8190}};
    struct call c;
    assert_int_equal(RUN_ONE(fx, c, ring_readv(fx->ring, fd, v, 2, 0, 0, call_cb, &c)), 8197);
    uint8_t zeros[8192] = {0};
    /* The gap before the pending write reads as a hole. */
    assert_memory_equal(buf, zeros, sizeof(zeros));
    assert_memory_equal(buf + 8192, "Jello", 5);
    /* ...while the file itself has nothing yet. */
    assert_int_equal(file_size(fd), 0);
    /* ftruncate trims pending writes past the new end. */
    assert_int_equal(RUN_ONE(fx, c, ring_ftruncate(fx->ring, fd, 8194, 0, call_cb, &c)), 0);
    assert_int_equal(RUN_ONE(fx, c, ring_readv(fx->ring, fd, v, 2, 0, 0, call_cb, &c)), 8194);
    assert_int_equal(sync_file(fx, fd), 0);
    char got[8];
    assert_int_equal(pread(fd, got, sizeof(got), 8192), 2);
    assert_memory_equal(got, "Je", 2);
    close(fd);
}

static void test_ring_fault_direct_io(void **state)
{
    struct fixture *fx = *state;
    int fd = open_file(fx, "direct", O_RDWR | O_DIRECT);
    if (fd < 0 && errno == EINVAL) {
        skip(); /* a filesystem without O_DIRECT (tmpfs) */
    }
    assert_true(fd >= 0);
    uint8_t *out = aligned_alloc_zero(TEST_BLOCK);
    uint8_t *in = aligned_alloc_zero(2 * TEST_BLOCK);
    fill_pattern(out, TEST_BLOCK, 9);
    assert_int_equal(write_block(fx, fd, out, TEST_BLOCK, TEST_BLOCK), TEST_BLOCK);
    /* Misaligned O_DIRECT writes fail as the kernel's would. */
    assert_int_equal(write_block(fx, fd, out, 100, 0), -EINVAL);
    assert_int_equal(write_block(fx, fd, out, TEST_BLOCK, 100), -EINVAL);
    struct iovec v = {in, 2 * TEST_BLOCK};
    struct call c;
    assert_int_equal(RUN_ONE(fx, c, ring_readv(fx->ring, fd, &v, 1, 0, 0, call_cb, &c)),
                     2 * TEST_BLOCK);
    assert_memory_equal(in + TEST_BLOCK, out, TEST_BLOCK);
    assert_int_equal(file_size(fd), 0);
    assert_int_equal(sync_file(fx, fd), 0);
    assert_int_equal(file_size(fd), 2 * TEST_BLOCK);
    power_loss_and_free(fx, 0);
    int plain = open_file(fx, "direct", O_RDONLY);
    assert_true(plain >= 0);
    memset(in, 0, 2 * TEST_BLOCK);
    assert_int_equal(pread(plain, in, TEST_BLOCK, TEST_BLOCK), TEST_BLOCK);
    assert_memory_equal(in, out, TEST_BLOCK);
    close(plain);
    close(fd);
    free(out);
    free(in);
}

static void test_ring_fault_link_cancels_chain(void **state)
{
    struct fixture *fx = *state;
    int fd = open_file(fx, "chain", O_RDWR);
    assert_true(fd >= 0);
    set_plan(fx, (struct ring_fault_plan){.write_fail_at = 1, .write_fail_err = -EIO});
    uint8_t data[512] = {7};
    struct iovec v = {data, sizeof(data)};
    struct call c[4];
    calls_init(c, 4, fx);
    struct ring *r = fx->ring;
    assert_int_equal(SUBMIT(fx, ring_writev(r, fd, &v, 1, 0, RING_F_LINK, call_cb, &c[0])), 0);
    assert_int_equal(SUBMIT(fx, ring_writev(r, fd, &v, 1, 512, RING_F_LINK, call_cb, &c[1])), 0);
    assert_int_equal(SUBMIT(fx, ring_fdatasync(r, fd, 0, call_cb, &c[2])), 0);
    assert_int_equal(SUBMIT(fx, ring_writev(r, fd, &v, 1, 1024, 0, call_cb, &c[3])), 0);
    /* Executed already, but no callback before the loop runs. */
    for (int i = 0; i < 4; i++) {
        assert_int_equal(c[i].fired, 0);
    }
    run(fx);
    assert_int_equal(c[0].res, -EIO);
    assert_int_equal(c[1].res, -ECANCELED);
    assert_int_equal(c[2].res, -ECANCELED);
    assert_int_equal(c[3].res, 512);
    assert_true(c[0].seq < c[1].seq && c[1].seq < c[2].seq && c[2].seq < c[3].seq);
    /* Cancelled ops never reached the disk, so they are not counted. */
    assert_int_equal(ring_fault_writes(r), 2);
    assert_int_equal(ring_fault_fsyncs(r), 0);
    close(fd);
}

static void test_ring_fault_free_keeps_page_cache(void **state)
{
    struct fixture *fx = *state;
    int fd = open_file(fx, "exit", O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(write_block(fx, fd, "kept", 4, 0), 4);
    struct call c;
    /* Unlinking the last link of a file forgets its pending writes. */
    int other = open_file(fx, "gone", O_RDWR);
    assert_true(other >= 0);
    assert_int_equal(write_block(fx, other, "gone", 4, 0), 4);
    assert_int_equal(RUN_ONE(fx, c, ring_unlinkat(fx->ring, fx->dirfd, "gone", 0, 0, call_cb, &c)),
                     0);
    /* Without a power loss, freeing the ring is a process exit: written data stays. */
    ring_free(fx->ring);
    fx->ring = NULL;
    char got[4];
    assert_int_equal(pread(fd, got, sizeof(got), 0), 4);
    assert_memory_equal(got, "kept", 4);
    assert_int_equal(file_size(other), 0);
    close(other);
    close(fd);
}

static void test_ring_fault_plan_refuses_success_codes(void **state)
{
    struct fixture *fx = *state;
    struct ring_fault_plan plan = {.write_fail_at = 1, .write_fail_err = 0};
    assert_int_equal(ring_fault_set(fx->ring, &plan), -EINVAL);
    plan = (struct ring_fault_plan){.fsync_fail_at = 3, .fsync_fail_err = 5};
    assert_int_equal(ring_fault_set(fx->ring, &plan), -EINVAL);
}

/* ------------------------------------------------------------ main */

#define BACKEND_TESTS(setup)                                                                       \
    cmocka_unit_test_setup_teardown(test_ring_write_read_buffered, setup, fixture_teardown),       \
        cmocka_unit_test_setup_teardown(test_ring_write_read_direct, setup, fixture_teardown),     \
        cmocka_unit_test_setup_teardown(test_ring_writev_several_iovecs, setup, fixture_teardown), \
        cmocka_unit_test_setup_teardown(test_ring_link_write_fdatasync_in_order, setup,            \
                                        fixture_teardown),                                         \
        cmocka_unit_test_setup_teardown(test_ring_link_prompt_write_reports_itself, setup,         \
                                        fixture_teardown),                                         \
        cmocka_unit_test_setup_teardown(test_ring_link_failure_cancels_rest, setup,                \
                                        fixture_teardown),                                         \
        cmocka_unit_test_setup_teardown(test_ring_link_middle_failure, setup, fixture_teardown),   \
        cmocka_unit_test_setup_teardown(test_ring_file_operations, setup, fixture_teardown),       \
        cmocka_unit_test_setup_teardown(test_ring_enobufs_when_full, setup, fixture_teardown),     \
        cmocka_unit_test_setup_teardown(test_ring_refuses_bad_arguments, setup, fixture_teardown), \
        cmocka_unit_test_setup_teardown(test_ring_callbacks_never_inside_submit, setup,            \
                                        fixture_teardown),                                         \
        cmocka_unit_test_setup_teardown(test_ring_many_ops_small_ring, setup, fixture_teardown),   \
        cmocka_unit_test_setup_teardown(test_ring_free_completes_ops_in_flight, setup,             \
                                        fixture_teardown),                                         \
        cmocka_unit_test_setup_teardown(test_ring_free_from_callback, setup, fixture_teardown),    \
        cmocka_unit_test_setup_teardown(test_ring_drain_waits_for_follow_ups, setup,               \
                                        fixture_teardown),                                         \
        cmocka_unit_test_setup_teardown(test_ring_idle_loop_returns, setup, fixture_teardown),     \
        cmocka_unit_test_setup_teardown(test_ring_ops_queued_after_its_prepare, setup,             \
                                        fixture_teardown)

int main(void)
{
    const struct CMUnitTest uring_tests[] = {
        BACKEND_TESTS(setup_uring),
        cmocka_unit_test_setup_teardown(test_ring_uring_offloads_missing_ops, setup_uring,
                                        fixture_teardown),
    };
    const struct CMUnitTest thread_tests[] = {BACKEND_TESTS(setup_threads)};
    const struct CMUnitTest fault_tests[] = {
        BACKEND_TESTS(setup_fault),
        cmocka_unit_test_setup_teardown(test_ring_fault_kth_write_fails, setup_fault,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_ring_fault_failed_fsync_is_not_durable, setup_fault,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_ring_fault_enospc_toggles, setup_fault,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_ring_fault_power_loss_keeps_only_synced, setup_fault,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_ring_fault_torn_power_loss, setup_fault,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_ring_fault_eio_after_power_loss, setup_fault,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_ring_fault_reads_see_pending_writes, setup_fault,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_ring_fault_direct_io, setup_fault, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_ring_fault_link_cancels_chain, setup_fault,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_ring_fault_free_keeps_page_cache, setup_fault,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_ring_fault_plan_refuses_success_codes, setup_fault,
                                        fixture_teardown),
    };
    const struct CMUnitTest common_tests[] = {
        cmocka_unit_test(test_ring_backend_names),
        cmocka_unit_test(test_ring_config_limits),
        cmocka_unit_test(test_ring_auto_falls_back_to_threads),
    };
    int failed = 0;
    failed += cmocka_run_group_tests_name("ring/uring", uring_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("ring/threads", thread_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("ring/fault", fault_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("ring/common", common_tests, NULL, NULL);
    return failed == 0 ? 0 : 1;
}
