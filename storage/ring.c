/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ring's common part: the table of operation slots, the submit functions,
 * the watchers that tie every backend to the shard's libev loop, and the
 * delivery of callbacks. The backends live in ring_uring.c, ring_threads.c and
 * ring_fault.c; storage/ring_internal.h describes the life of an operation.
 *
 * The loop and the ring:
 *   - One eventfd per ring. io_uring signals it (io_uring_register_eventfd),
 *     pool threads write to it, the fault backend writes to it at flush. An
 *     ev_io watches it; its callback harvests completions and calls back.
 *   - An ev_prepare watcher flushes what was queued during the iteration just
 *     before the loop blocks: one io_uring_enter for everything that arrived
 *     in one iteration, which is what makes group commit work.
 *   - An ev_prepare that runs after ours in the same iteration (another
 *     module's; libev runs the newest first) may still queue ops, and the
 *     loop would then block with them never submitted. So while anything is
 *     queued an ev_idle is active: it makes that poll return at once, and the
 *     next iteration's ev_prepare submits. Normally our ev_prepare flushes
 *     first and stops the idle before the poll; an ev_idle costs no syscall.
 *   - The ev_io and ev_prepare stay started for the ring's whole life but are
 *     ev_unref'd, so by themselves they do not keep ev_run going. The ring holds
 *     one ev_ref on the loop exactly while in_flight > 0: ev_run keeps going
 *     while the ring has work and returns once the ring (and everything else)
 *     is idle. ev_ref/ev_unref only move a counter; starting and stopping the
 *     ev_io at every idle/busy edge would cost an epoll_ctl each time.
 *
 * Invariants: in_flight = entries - (length of the free list); ready holds
 * only ops whose res is final; a callback runs only from ring_dispatch, which
 * runs only from the ev_io callback or ring_drain, never from a submit call.
 *
 * ring_drain and ring_free do not run ev_run: they flush, then block in poll()
 * on the ring's eventfd and call back, until nothing is in flight. So they run
 * this ring's work only, work outside ev_run, and may be called from inside a
 * callback (a ring_free there is finished by the outermost dispatch).
 *
 * A chain (RING_F_LINK) ends where the queue is handed over: at the end of the
 * loop iteration, or at ring_submit/ring_drain. Submit a whole chain at once.
 */
#include "storage/ring.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/assert.h"
#include "common/log.h"
#include "storage/ring_internal.h"

/* ------------------------------------------------------------ names */

static const char *const backend_names[] = {
    [RING_AUTO] = "auto",
    [RING_URING] = "uring",
    [RING_THREADS] = "threads",
    [RING_FAULT] = "fault",
};

const char *ring_backend_name(enum ring_backend backend)
{
    if ((unsigned)backend >= SL_ARRAY_LEN(backend_names)) {
        return "unknown";
    }
    return backend_names[backend];
}

int ring_backend_parse(const char *name, enum ring_backend *out)
{
    /* The fault backend is for tests only: a configuration cannot select it. */
    static const enum ring_backend parseable[] = {RING_AUTO, RING_URING, RING_THREADS};
    for (size_t i = 0; i < SL_ARRAY_LEN(parseable); i++) {
        if (strcmp(name, backend_names[parseable[i]]) == 0) {
            *out = parseable[i];
            return 0;
        }
    }
    return -EINVAL;
}

enum ring_backend ring_backend_of(const struct ring *ring)
{
    return ring->backend;
}

unsigned ring_space(const struct ring *ring)
{
    return ring->entries - ring->in_flight;
}

unsigned ring_in_flight(const struct ring *ring)
{
    return ring->in_flight;
}

/* ------------------------------------------------------------ eventfd */

void ring_event_signal(int event_fd)
{
    uint64_t one = 1;
    ssize_t n;
    do {
        n = write(event_fd, &one, sizeof(one));
    } while (n < 0 && errno == EINTR);
    /* EAGAIN would mean the counter reached 2^64 - 2: the loop is already woken. */
    SL_ASSERT(n == (ssize_t)sizeof(one) || (n < 0 && errno == EAGAIN));
}

/* Resets the counter; must come before a harvest so that no wake-up is lost. */
static void ring_event_consume(struct ring *ring)
{
    uint64_t count;
    ssize_t n;
    do {
        n = read(ring->event_fd, &count, sizeof(count));
    } while (n < 0 && errno == EINTR);
    /* The eventfd is non-blocking: EAGAIN only means someone already consumed it. */
    SL_ASSERT(n == (ssize_t)sizeof(count) || (n < 0 && errno == EAGAIN));
}

/* Blocks until the eventfd is readable, without running any other watcher. */
static void ring_event_wait(struct ring *ring)
{
    struct pollfd pfd = {.fd = ring->event_fd, .events = POLLIN};
    int n;
    do {
        n = poll(&pfd, 1, -1);
    } while (n < 0 && errno == EINTR);
    /* poll on one valid fd with no timeout fails only on ENOMEM: nothing left to do. */
    SL_ASSERT(n == 1);
    ring_event_consume(ring);
}

/* ------------------------------------------------------------ slots */

static void ring_loop_ref(struct ring *ring)
{
    if (!ring->loop_ref_held) {
        ev_ref(ring->loop);
        ring->loop_ref_held = true;
    }
}

static void ring_loop_unref(struct ring *ring)
{
    if (ring->loop_ref_held) {
        ev_unref(ring->loop);
        ring->loop_ref_held = false;
    }
}

static struct ring_op *ring_op_take(struct ring *ring)
{
    struct ring_op *op = ring->free_ops;
    if (op == NULL) {
        return NULL;
    }
    ring->free_ops = op->next;
    /* The free list holds exactly entries - in_flight slots. */
    SL_ASSERT(ring->in_flight < ring->entries);
    if (ring->in_flight++ == 0) {
        ring_loop_ref(ring);
    }
    op->next = NULL;
    op->link_next = NULL;
    return op;
}

static void ring_op_release(struct ring *ring, struct ring_op *op)
{
    /* Only slots that were taken come back. */
    SL_ASSERT(ring->in_flight > 0);
    op->cb = NULL;
    op->opaque = NULL;
    op->next = ring->free_ops;
    ring->free_ops = op;
    if (--ring->in_flight == 0) {
        ring_loop_unref(ring);
    }
}

/* ------------------------------------------------------------ flush, harvest, dispatch */

static int ring_flush(struct ring *ring)
{
    if (ring->queued == 0) {
        return 0;
    }
    /* A chain ends where the queue is handed over (io_uring does the same). */
    ring->chain_open = false;
    int rc = 0;
    switch (ring->backend) {
    case RING_URING:
        rc = ring_uring_flush(ring);
        if (ring->pool != NULL) {
            ring_pool_flush(ring);
        }
        break;
    case RING_THREADS:
        ring_pool_flush(ring);
        break;
    case RING_FAULT:
        ring_fault_flush(ring);
        break;
    case RING_AUTO:
        /* ring_new resolves RING_AUTO to a real backend. */
        SL_ASSERT(!"ring backend unresolved");
    }
    if (rc == 0) {
        ring->queued = 0;
        ev_idle_stop(ring->loop, &ring->kick_watcher);
    }
    return rc;
}

static void ring_harvest(struct ring *ring)
{
    if (ring->uring != NULL) {
        ring_uring_harvest(ring);
    }
    if (ring->pool != NULL) {
        ring_pool_harvest(ring);
    }
    ring_list_splice(&ring->ready, &ring->local_done);
}

static void ring_destroy(struct ring *ring);

/*
 * Calls back every ready op. Callbacks may submit, drain, or free the ring: a
 * ring_free from inside a callback is deferred to the outermost dispatch.
 * Returns true when the ring is gone and must not be touched again.
 */
static bool ring_dispatch(struct ring *ring)
{
    ring->dispatch_depth++;
    struct ring_op *op;
    while ((op = ring_list_pop(&ring->ready)) != NULL) {
        ring_cb *cb = op->cb;
        void *opaque = op->opaque;
        int res = op->res;
        ring_op_release(ring, op);
        cb(opaque, res);
    }
    ring->dispatch_depth--;
    if (ring->dispatch_depth == 0 && ring->free_deferred) {
        ring_destroy(ring);
        return true;
    }
    return false;
}

/* Returns true when a callback freed the ring. */
static bool ring_drain_inner(struct ring *ring)
{
    while (ring->in_flight > 0) {
        int rc = ring_flush(ring);
        if (rc < 0 && !ring->submit_failing) {
            LOG_WARN("ring", "submit failed while draining, retrying err=%d queued=%u", rc,
                     ring->queued);
        }
        ring->submit_failing = rc < 0;
        ring_harvest(ring);
        if (ring->ready.head != NULL) {
            if (ring_dispatch(ring)) {
                return true;
            }
            continue;
        }
        /* Sleep only if something is out there to wake us; else retry the submit. */
        if (ring->in_flight > ring->queued) {
            ring_event_wait(ring);
        }
    }
    return false;
}

void ring_drain(struct ring *ring)
{
    (void)ring_drain_inner(ring);
}

int ring_submit(struct ring *ring)
{
    return ring_flush(ring);
}

static void ring_event_cb(struct ev_loop *loop, ev_io *watcher, int revents)
{
    (void)loop;
    (void)revents;
    struct ring *ring = SL_CONTAINER_OF(watcher, struct ring, event_watcher);
    ring_event_consume(ring);
    ring_harvest(ring);
    (void)ring_dispatch(ring);
}

static void ring_flush_from_loop(struct ring *ring)
{
    if (ring->queued == 0) {
        return;
    }
    int rc = ring_flush(ring);
    if (rc == 0) {
        ring->submit_failing = false;
        return;
    }
    /* The kick watcher stays active, so the loop comes back here without blocking. */
    if (!ring->submit_failing) {
        LOG_WARN("ring", "submit failed, retrying next iteration err=%d queued=%u", rc,
                 ring->queued);
        ring->submit_failing = true;
    }
}

static void ring_prepare_cb(struct ev_loop *loop, ev_prepare *watcher, int revents)
{
    (void)loop;
    (void)revents;
    ring_flush_from_loop(SL_CONTAINER_OF(watcher, struct ring, prepare_watcher));
}

static void ring_kick_cb(struct ev_loop *loop, ev_idle *watcher, int revents)
{
    (void)loop;
    (void)revents;
    ring_flush_from_loop(SL_CONTAINER_OF(watcher, struct ring, kick_watcher));
}

/* ------------------------------------------------------------ new, free */

static int ring_backend_init(struct ring *ring, const struct ring_config *config, unsigned threads)
{
    switch (config->backend) {
    case RING_URING:
        ring->backend = RING_URING;
        return ring_uring_init(ring, threads);
    case RING_THREADS:
        ring->backend = RING_THREADS;
        return ring_pool_init(ring, threads);
    case RING_FAULT:
        ring->backend = RING_FAULT;
        return ring_fault_init(ring);
    case RING_AUTO:
        break;
    }
    ring->backend = RING_URING;
    int rc = ring_uring_init(ring, threads);
    if (rc == 0) {
        return 0;
    }
    LOG_WARN("ring", "io_uring unavailable, using a thread pool err=%d threads=%u", rc, threads);
    ring->backend = RING_THREADS;
    return ring_pool_init(ring, threads);
}

struct ring *ring_new(struct ev_loop *loop, const struct ring_config *config, int *err)
{
    static const struct ring_config defaults = {.backend = RING_AUTO};
    if (config == NULL) {
        config = &defaults;
    }
    unsigned entries = config->entries != 0 ? config->entries : RING_ENTRIES_DEFAULT;
    unsigned threads = config->threads != 0 ? config->threads : RING_THREADS_DEFAULT;
    int rc = -EINVAL;
    struct ring *ring = NULL;
    if (loop == NULL || entries > RING_ENTRIES_MAX || threads > RING_THREADS_MAX ||
        (unsigned)config->backend > RING_FAULT) {
        goto err;
    }
    rc = -ENOMEM;
    ring = calloc(1, sizeof(*ring));
    if (ring == NULL) {
        goto err;
    }
    ring->loop = loop;
    ring->entries = entries;
    ring->event_fd = -1;
    ring->ops = calloc(entries, sizeof(*ring->ops));
    if (ring->ops == NULL) {
        goto err;
    }
    ring->paths = malloc((size_t)entries * 2 * PATH_MAX);
    if (ring->paths == NULL) {
        goto err;
    }
    for (unsigned i = entries; i-- > 0;) {
        struct ring_op *op = &ring->ops[i];
        op->path = ring->paths + (size_t)i * 2 * PATH_MAX;
        op->path2 = op->path + PATH_MAX;
        op->next = ring->free_ops;
        ring->free_ops = op;
    }
    ring->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ring->event_fd < 0) {
        rc = -errno;
        goto err;
    }
    rc = ring_backend_init(ring, config, threads);
    if (rc < 0) {
        goto err;
    }
    ev_io_init(&ring->event_watcher, ring_event_cb, ring->event_fd, EV_READ);
    ev_io_start(loop, &ring->event_watcher);
    ev_unref(loop);
    ev_prepare_init(&ring->prepare_watcher, ring_prepare_cb);
    ev_prepare_start(loop, &ring->prepare_watcher);
    ev_unref(loop);
    /* Only started while ops are queued, which implies in_flight > 0: no unref needed. */
    ev_idle_init(&ring->kick_watcher, ring_kick_cb);
    ring->watchers_started = true;
    return ring;
err:
    ring_destroy(ring);
    if (err != NULL) {
        *err = rc;
    }
    return NULL;
}

/* Frees a ring with nothing in flight, or a partly built one from ring_new. */
static void ring_destroy(struct ring *ring)
{
    if (ring == NULL) {
        return;
    }
    /* ring_free drains first; ring_new fails before any op exists. */
    SL_ASSERT(ring->in_flight == 0 && !ring->loop_ref_held);
    if (ring->watchers_started) {
        ev_idle_stop(ring->loop, &ring->kick_watcher);
        /* Give back the references dropped at start, as libev asks before a stop. */
        ev_ref(ring->loop);
        ev_prepare_stop(ring->loop, &ring->prepare_watcher);
        ev_ref(ring->loop);
        ev_io_stop(ring->loop, &ring->event_watcher);
    }
    ring_uring_deinit(ring);
    ring_pool_deinit(ring);
    ring_fault_deinit(ring);
    if (ring->event_fd >= 0) {
        close(ring->event_fd);
    }
    free(ring->paths);
    free(ring->ops);
    free(ring);
}

void ring_free(struct ring *ring)
{
    if (ring == NULL) {
        return;
    }
    /* A second ring_free (say, from a callback during the first) is a use after free. */
    SL_ASSERT(!ring->free_requested);
    ring->free_requested = true;
    if (ring->dispatch_depth > 0) {
        /* Called from a callback: the dispatch frames above still use the ring. */
        bool destroyed = ring_drain_inner(ring);
        /* Only the outermost dispatch (depth 0) destroys, and we are inside one. */
        SL_ASSERT(!destroyed);
        ring->free_deferred = true;
        return;
    }
    bool destroyed = ring_drain_inner(ring);
    /* free_deferred is only set by a nested ring_free, which the assertion above forbids. */
    SL_ASSERT(!destroyed);
    ring_destroy(ring);
}

/* ------------------------------------------------------------ submission */

/* Checks what every submit shares and takes a slot; NULL with *rc set when refused. */
static struct ring_op *ring_op_begin(struct ring *ring, enum ring_op_kind kind, unsigned flags,
                                     ring_cb *cb, void *opaque, int *rc)
{
    /* Submitting after ring_free returned is a use after free. */
    SL_ASSERT(!ring->free_deferred);
    *rc = -EINVAL;
    if (cb == NULL || (flags & ~(RING_F_LINK | RING_F_PROMPT)) != 0) {
        return NULL;
    }
    /* Links join READV, WRITEV and FSYNC/FDATASYNC only, on both sides of the link. */
    if (!ring_kind_linkable(kind) && ((flags & RING_F_LINK) != 0 || ring->chain_open)) {
        return NULL;
    }
    struct ring_op *op = ring_op_take(ring);
    if (op == NULL) {
        *rc = -ENOBUFS;
        return NULL;
    }
    op->kind = kind;
    op->flags = flags;
    op->cb = cb;
    op->opaque = opaque;
    op->res = 0;
    *rc = 0;
    return op;
}

/* Hands a filled op to the backend; from here on its callback will fire. */
static void ring_op_commit(struct ring *ring, struct ring_op *op)
{
    ring->chain_open = (op->flags & RING_F_LINK) != 0;
    if (ring->queued++ == 0) {
        ev_idle_start(ring->loop, &ring->kick_watcher);
    }
    switch (ring->backend) {
    case RING_URING:
        ring_uring_queue(ring, op);
        break;
    case RING_THREADS:
        ring_pool_queue(ring, op);
        break;
    case RING_FAULT:
        ring_fault_queue(ring, op);
        break;
    case RING_AUTO:
        /* ring_new resolves RING_AUTO to a real backend. */
        SL_ASSERT(!"ring backend unresolved");
    }
}

static int ring_copy_path(char *dst, const char *src)
{
    if (src == NULL) {
        return -EFAULT;
    }
    size_t len = strnlen(src, PATH_MAX);
    if (len == PATH_MAX) {
        return -ENAMETOOLONG;
    }
    memcpy(dst, src, len + 1);
    return 0;
}

static int ring_rw(struct ring *ring, enum ring_op_kind kind, int fd, const struct iovec *iov,
                   int iovcnt, off_t offset, unsigned flags, ring_cb *cb, void *opaque)
{
    /* io_uring reads offset -1 as "the file position": refuse it so backends agree. */
    if (iov == NULL || iovcnt <= 0 || iovcnt > IOV_MAX || offset < 0) {
        return -EINVAL;
    }
    size_t bytes = 0;
    for (int i = 0; i < iovcnt; i++) {
        bytes += iov[i].iov_len;
    }
    /* A completion's res is an int: a larger transfer could not be reported. */
    if (bytes > INT_MAX) {
        return -EINVAL;
    }
    int rc;
    struct ring_op *op = ring_op_begin(ring, kind, flags, cb, opaque, &rc);
    if (op == NULL) {
        return rc;
    }
    op->fd = fd;
    op->arg.rw.iov = iov;
    op->arg.rw.iovcnt = iovcnt;
    op->arg.rw.offset = offset;
    op->arg.rw.bytes = bytes;
    ring_op_commit(ring, op);
    return 0;
}

int ring_readv(struct ring *ring, int fd, const struct iovec *iov, int iovcnt, off_t offset,
               unsigned flags, ring_cb *cb, void *opaque)
{
    return ring_rw(ring, RING_OP_READV, fd, iov, iovcnt, offset, flags, cb, opaque);
}

int ring_writev(struct ring *ring, int fd, const struct iovec *iov, int iovcnt, off_t offset,
                unsigned flags, ring_cb *cb, void *opaque)
{
    return ring_rw(ring, RING_OP_WRITEV, fd, iov, iovcnt, offset, flags, cb, opaque);
}

static int ring_fd_op(struct ring *ring, enum ring_op_kind kind, int fd, unsigned flags,
                      ring_cb *cb, void *opaque)
{
    int rc;
    struct ring_op *op = ring_op_begin(ring, kind, flags, cb, opaque, &rc);
    if (op == NULL) {
        return rc;
    }
    op->fd = fd;
    ring_op_commit(ring, op);
    return 0;
}

int ring_fdatasync(struct ring *ring, int fd, unsigned flags, ring_cb *cb, void *opaque)
{
    return ring_fd_op(ring, RING_OP_FDATASYNC, fd, flags, cb, opaque);
}

int ring_fsync(struct ring *ring, int fd, unsigned flags, ring_cb *cb, void *opaque)
{
    return ring_fd_op(ring, RING_OP_FSYNC, fd, flags, cb, opaque);
}

int ring_close(struct ring *ring, int fd, unsigned flags, ring_cb *cb, void *opaque)
{
    return ring_fd_op(ring, RING_OP_CLOSE, fd, flags, cb, opaque);
}

int ring_fallocate(struct ring *ring, int fd, int mode, off_t offset, off_t len, unsigned flags,
                   ring_cb *cb, void *opaque)
{
    int rc;
    struct ring_op *op = ring_op_begin(ring, RING_OP_FALLOCATE, flags, cb, opaque, &rc);
    if (op == NULL) {
        return rc;
    }
    op->fd = fd;
    op->arg.fallocate.mode = mode;
    op->arg.fallocate.offset = offset;
    op->arg.fallocate.len = len;
    ring_op_commit(ring, op);
    return 0;
}

int ring_ftruncate(struct ring *ring, int fd, off_t len, unsigned flags, ring_cb *cb, void *opaque)
{
    int rc;
    struct ring_op *op = ring_op_begin(ring, RING_OP_FTRUNCATE, flags, cb, opaque, &rc);
    if (op == NULL) {
        return rc;
    }
    op->fd = fd;
    op->arg.ftruncate.len = len;
    ring_op_commit(ring, op);
    return 0;
}

/* Begins an op that names files: the paths are copied (the caller may reuse
 * its buffers at once). path2 may be NULL. NULL and *rc on failure. */
static struct ring_op *begin_with_paths(struct ring *ring, enum ring_op_kind kind, unsigned flags,
                                        ring_cb *cb, void *opaque, int dirfd, const char *path,
                                        const char *path2, int *rc)
{
    struct ring_op *op = ring_op_begin(ring, kind, flags, cb, opaque, rc);
    if (op == NULL) {
        return NULL;
    }
    *rc = ring_copy_path(op->path, path);
    if (*rc == 0 && path2 != NULL) {
        *rc = ring_copy_path(op->path2, path2);
    }
    if (*rc < 0) {
        ring_op_release(ring, op);
        return NULL;
    }
    op->fd = dirfd;
    return op;
}

int ring_openat(struct ring *ring, int dirfd, const char *path, int open_flags, mode_t mode,
                unsigned flags, ring_cb *cb, void *opaque)
{
    int rc;
    struct ring_op *op =
        begin_with_paths(ring, RING_OP_OPENAT, flags, cb, opaque, dirfd, path, NULL, &rc);
    if (op == NULL) {
        return rc;
    }
    op->arg.openat.flags = open_flags;
    op->arg.openat.mode = mode;
    ring_op_commit(ring, op);
    return 0;
}

int ring_unlinkat(struct ring *ring, int dirfd, const char *path, int unlink_flags, unsigned flags,
                  ring_cb *cb, void *opaque)
{
    int rc;
    struct ring_op *op =
        begin_with_paths(ring, RING_OP_UNLINKAT, flags, cb, opaque, dirfd, path, NULL, &rc);
    if (op == NULL) {
        return rc;
    }
    op->arg.unlinkat.flags = unlink_flags;
    ring_op_commit(ring, op);
    return 0;
}

int ring_renameat(struct ring *ring, int olddirfd, const char *oldpath, int newdirfd,
                  const char *newpath, unsigned flags, ring_cb *cb, void *opaque)
{
    int rc;
    struct ring_op *op = begin_with_paths(ring, RING_OP_RENAMEAT, flags, cb, opaque, olddirfd,
                                          oldpath, newpath, &rc);
    if (op == NULL) {
        return rc;
    }
    op->arg.renameat.newdirfd = newdirfd;
    ring_op_commit(ring, op);
    return 0;
}
