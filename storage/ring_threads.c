/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The thread-pool backend of the ring: a few threads doing each operation with
 * its plain syscall (preadv, pwritev, fdatasync, ...). It serves RING_THREADS,
 * and under RING_URING the operations the running kernel's io_uring lacks.
 *
 * Jobs: at flush the loop cuts its pending ops into jobs, one per linked chain
 * (an op without RING_F_LINK is a chain of one), and appends them to the job
 * queue. A thread runs a job's ops in order; when one fails or a read/write
 * moves fewer bytes than asked, the rest of the chain completes with
 * -ECANCELED, as io_uring does. Transfers are not retried to completion: a
 * short count is reported as the syscall returned it, like io_uring does; only
 * EINTR is retried. The job queue needs no bound of its own: it only ever holds
 * ops that own a slot, so it never holds more than `entries`.
 *
 * Completions: a thread appends each finished op to the done list and writes
 * the ring's eventfd when that list was empty (the loop reads the eventfd
 * before it takes the list, so a non-empty list always has a wake-up coming).
 * A thread never touches an op again once it is on the done list: the loop may
 * reuse the slot at once.
 *
 * Threads block every signal: the process's handlers run on the loop thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/assert.h"
#include "storage/ring_internal.h"

struct ring_pool {
    pthread_mutex_t lock;
    pthread_cond_t wake;      /* signalled when jobs are added or stopping is set */
    struct ring_op_list jobs; /* under lock: first ops of chains waiting for a thread */
    struct ring_op_list done; /* under lock: finished ops waiting for the loop */
    bool stopping;            /* under lock */
    int event_fd;
    unsigned nthreads;
    pthread_t threads[RING_THREADS_MAX];
    struct ring_op_list pending; /* loop thread only: accepted, not yet flushed */
};

/* ------------------------------------------------------------ syscalls */

static ssize_t op_syscall(const struct ring_op *op)
{
    switch (op->kind) {
    case RING_OP_READV:
        return preadv(op->fd, op->arg.rw.iov, op->arg.rw.iovcnt, op->arg.rw.offset);
    case RING_OP_WRITEV:
        return pwritev(op->fd, op->arg.rw.iov, op->arg.rw.iovcnt, op->arg.rw.offset);
    case RING_OP_FSYNC:
        return fsync(op->fd);
    case RING_OP_FDATASYNC:
        return fdatasync(op->fd);
    case RING_OP_FALLOCATE:
        return fallocate(op->fd, op->arg.fallocate.mode, op->arg.fallocate.offset,
                         op->arg.fallocate.len);
    case RING_OP_FTRUNCATE:
        return ftruncate(op->fd, op->arg.ftruncate.len);
    case RING_OP_OPENAT:
        return openat(op->fd, op->path, op->arg.openat.flags, op->arg.openat.mode);
    case RING_OP_CLOSE:
        return close(op->fd);
    case RING_OP_UNLINKAT:
        return unlinkat(op->fd, op->path, op->arg.unlinkat.flags);
    case RING_OP_RENAMEAT:
        return renameat(op->fd, op->path, op->arg.renameat.newdirfd, op->path2);
    case RING_OP_KIND_COUNT:
        break;
    }
    /* ring.c only creates ops of real kinds. */
    SL_ASSERT(!"bad op kind");
    return -1;
}

int ring_op_run(const struct ring_op *op)
{
    ssize_t n;
    do {
        n = op_syscall(op);
        /* close is never retried: Linux frees the fd even when it says EINTR. */
    } while (n < 0 && errno == EINTR && op->kind != RING_OP_CLOSE);
    if (n < 0) {
        return op->kind == RING_OP_CLOSE && errno == EINTR ? 0 : -errno;
    }
    /* ring.c refuses transfers whose size does not fit a completion's int. */
    SL_ASSERT(n <= INT_MAX);
    return (int)n;
}

/* ------------------------------------------------------------ threads */

static void pool_complete(struct ring_pool *pool, struct ring_op *op)
{
    pthread_mutex_lock(&pool->lock);
    bool was_empty = pool->done.head == NULL;
    ring_list_push(&pool->done, op);
    pthread_mutex_unlock(&pool->lock);
    if (was_empty) {
        ring_event_signal(pool->event_fd);
    }
}

static void pool_run_chain(struct ring_pool *pool, struct ring_op *op)
{
    bool cancelled = false;
    while (op != NULL) {
        /* Read before completing: from then on the op belongs to the loop. */
        struct ring_op *next = op->link_next;
        int res = cancelled ? -ECANCELED : ring_op_run(op);
        if (!cancelled && ring_op_breaks_chain(op, res)) {
            cancelled = true;
        }
        op->res = res;
        pool_complete(pool, op);
        op = next;
    }
}

static void *pool_main(void *arg)
{
    struct ring_pool *pool = arg;
    for (;;) {
        pthread_mutex_lock(&pool->lock);
        while (pool->jobs.head == NULL && !pool->stopping) {
            pthread_cond_wait(&pool->wake, &pool->lock);
        }
        struct ring_op *job = ring_list_pop(&pool->jobs);
        pthread_mutex_unlock(&pool->lock);
        if (job == NULL) {
            return NULL;
        }
        pool_run_chain(pool, job);
    }
}

static void pool_stop_threads(struct ring_pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    pool->stopping = true;
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    for (unsigned i = 0; i < pool->nthreads; i++) {
        pthread_join(pool->threads[i], NULL);
    }
    pool->nthreads = 0;
}

static int pool_start_threads(struct ring_pool *pool, unsigned threads)
{
    /* Threads inherit the creator's mask: block everything around pthread_create. */
    sigset_t all;
    sigset_t old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = 0;
    while (pool->nthreads < threads) {
        rc = -pthread_create(&pool->threads[pool->nthreads], NULL, pool_main, pool);
        if (rc < 0) {
            break;
        }
        pool->nthreads++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

/* ------------------------------------------------------------ ring side */

int ring_pool_init(struct ring *ring, unsigned threads)
{
    /* ring_new caps threads; the array is sized for the cap. */
    SL_ASSERT(threads > 0 && threads <= RING_THREADS_MAX);
    struct ring_pool *pool = calloc(1, sizeof(*pool));
    if (pool == NULL) {
        return -ENOMEM;
    }
    pool->event_fd = ring->event_fd;
    int rc = -pthread_mutex_init(&pool->lock, NULL);
    if (rc == 0) {
        rc = -pthread_cond_init(&pool->wake, NULL);
        if (rc < 0) {
            pthread_mutex_destroy(&pool->lock);
        }
    }
    if (rc < 0) {
        free(pool);
        return rc;
    }
    rc = pool_start_threads(pool, threads);
    if (rc < 0) {
        goto err;
    }
    ring->pool = pool;
    return 0;
err:
    pool_stop_threads(pool);
    pthread_cond_destroy(&pool->wake);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
    return rc;
}

void ring_pool_deinit(struct ring *ring)
{
    struct ring_pool *pool = ring->pool;
    if (pool == NULL) {
        return;
    }
    /* ring_free drained the ring: no op is pending, queued, running or unharvested. */
    SL_ASSERT(pool->pending.head == NULL && pool->jobs.head == NULL && pool->done.head == NULL);
    pool_stop_threads(pool);
    pthread_cond_destroy(&pool->wake);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
    ring->pool = NULL;
}

void ring_pool_queue(struct ring *ring, struct ring_op *op)
{
    ring_list_push(&ring->pool->pending, op);
}

void ring_pool_flush(struct ring *ring)
{
    struct ring_pool *pool = ring->pool;
    struct ring_op_list jobs = {NULL, NULL};
    unsigned njobs = 0;
    struct ring_op *prev = NULL;
    struct ring_op *op = pool->pending.head;
    while (op != NULL) {
        struct ring_op *next = op->next;
        if (prev != NULL && (prev->flags & RING_F_LINK) != 0) {
            prev->link_next = op;
            op->next = NULL;
        } else {
            ring_list_push(&jobs, op);
            njobs++;
        }
        prev = op;
        op = next;
    }
    pool->pending.head = NULL;
    pool->pending.tail = NULL;
    if (njobs == 0) {
        return;
    }
    pthread_mutex_lock(&pool->lock);
    ring_list_splice(&pool->jobs, &jobs);
    if (njobs == 1) {
        pthread_cond_signal(&pool->wake);
    } else {
        pthread_cond_broadcast(&pool->wake);
    }
    pthread_mutex_unlock(&pool->lock);
}

void ring_pool_harvest(struct ring *ring)
{
    struct ring_pool *pool = ring->pool;
    pthread_mutex_lock(&pool->lock);
    ring_list_splice(&ring->ready, &pool->done);
    pthread_mutex_unlock(&pool->lock);
}
