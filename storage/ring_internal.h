/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private to storage/ring*.c: the ring object, its operation slots, and the
 * functions the backends (ring_uring.c, ring_threads.c, ring_fault.c) offer to
 * the common part (ring.c). Nothing outside storage/ring*.c includes this.
 *
 * Life of an operation, on the loop thread unless said otherwise:
 *   1. A submit function takes a slot from the free list (in_flight grows) and
 *      hands it to the backend's queue function: io_uring prepares an SQE, the
 *      pool appends it to its pending list, the fault backend executes it at
 *      once and appends it to ring->local_done.
 *   2. ring_flush (from the ev_prepare watcher, ring_submit or ring_drain)
 *      hands everything queued to the kernel or the pool threads in one go.
 *   3. Completions are harvested after the eventfd fired into ring->ready;
 *      CQEs, the pool's done list (filled by pool threads under its mutex) and
 *      local_done all end up there.
 *   4. ring_dispatch pops ready ops one at a time, returns the slot to the
 *      free list (in_flight shrinks) and only then calls the callback, so a
 *      callback always finds room to submit a follow-up operation.
 * An op is on at most one list at a time, through its `next` field; the ops of
 * a linked chain in the pool are also threaded through `link_next`.
 */
#ifndef SL_STORAGE_RING_INTERNAL_H
#define SL_STORAGE_RING_INTERNAL_H

#include <ev.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/ring.h"

enum ring_op_kind {
    RING_OP_READV = 0,
    RING_OP_WRITEV,
    RING_OP_FSYNC,
    RING_OP_FDATASYNC,
    RING_OP_FALLOCATE,
    RING_OP_FTRUNCATE,
    RING_OP_OPENAT,
    RING_OP_CLOSE,
    RING_OP_UNLINKAT,
    RING_OP_RENAMEAT,
    RING_OP_KIND_COUNT,
};

struct ring_op {
    struct ring_op *next;      /* free list, backend queue, done and ready lists */
    struct ring_op *link_next; /* next op of the same linked chain (pool only) */
    /* io_uring only: the chain's next op, the predecessor whose success CQE
     * is skipped, and whether this op's own success CQE is skipped. */
    struct ring_op *chain_next;
    struct ring_op *skipped_prev;
    bool skip_success;
    ring_cb *cb;
    void *opaque;
    enum ring_op_kind kind;
    unsigned flags;
    int res;
    int fd; /* fd, or dirfd for openat/unlinkat, or olddirfd for renameat */
    union {
        struct {
            const struct iovec *iov;
            int iovcnt;
            off_t offset;
            size_t bytes; /* sum of iov_len: less than this is a short transfer */
        } rw;
        struct {
            int mode;
            off_t offset;
            off_t len;
        } fallocate;
        struct {
            off_t len;
        } ftruncate;
        struct {
            int flags;
            mode_t mode;
        } openat;
        struct {
            int flags;
        } unlinkat;
        struct {
            int newdirfd;
        } renameat;
    } arg;
    /*
     * Copies of the caller's paths (the caller may reuse its buffers at once),
     * PATH_MAX each, in ring->paths: kept out of the op so that the table of
     * ops stays small and a slot's path pages are touched only when used.
     */
    char *path;
    char *path2; /* renameat's new path */
};

struct ring_op_list {
    struct ring_op *head;
    struct ring_op *tail;
};

struct ring_uring;
struct ring_pool;
struct ring_fault;

struct ring {
    struct ev_loop *loop;
    enum ring_backend backend;
    unsigned entries;
    unsigned in_flight; /* slots taken: queued, running, or ready to call back */
    unsigned queued;    /* ops accepted since the last successful flush */
    struct ring_op *ops;
    char *paths; /* 2 * PATH_MAX bytes per op */
    struct ring_op *free_ops;
    struct ring_op_list ready;      /* completed, callback not yet called */
    struct ring_op_list local_done; /* completed on the loop thread (fault), not yet harvested */
    int event_fd;                   /* completions of every backend wake the loop here */
    ev_io event_watcher;
    ev_prepare prepare_watcher;
    ev_idle kick_watcher; /* active while ops are queued: the loop must not block on them */
    bool watchers_started;
    bool loop_ref_held; /* we hold one ev_ref on the loop while in_flight > 0 */
    bool chain_open;    /* the last op accepted had RING_F_LINK */
    bool submit_failing;
    unsigned dispatch_depth; /* nesting of ring_dispatch (callbacks may drain or free) */
    bool free_requested;     /* ring_free was called */
    bool free_deferred;      /* ...from inside a callback: the outermost dispatch frees */
    struct ring_uring *uring;
    struct ring_pool *pool;
    struct ring_fault *fault;
};

static inline void ring_list_push(struct ring_op_list *list, struct ring_op *op)
{
    op->next = NULL;
    if (list->tail == NULL) {
        list->head = op;
    } else {
        list->tail->next = op;
    }
    list->tail = op;
}

static inline struct ring_op *ring_list_pop(struct ring_op_list *list)
{
    struct ring_op *op = list->head;
    if (op != NULL) {
        list->head = op->next;
        if (list->head == NULL) {
            list->tail = NULL;
        }
        op->next = NULL;
    }
    return op;
}

/* Appends all of `from` to `to` and empties `from`. */
static inline void ring_list_splice(struct ring_op_list *to, struct ring_op_list *from)
{
    if (from->head == NULL) {
        return;
    }
    if (to->tail == NULL) {
        to->head = from->head;
    } else {
        to->tail->next = from->head;
    }
    to->tail = from->tail;
    from->head = NULL;
    from->tail = NULL;
}

/* Links join READV, WRITEV and FSYNC/FDATASYNC only (storage/ring.h). */
static inline bool ring_kind_linkable(enum ring_op_kind kind)
{
    return kind == RING_OP_READV || kind == RING_OP_WRITEV || kind == RING_OP_FSYNC ||
           kind == RING_OP_FDATASYNC;
}

/* True when res ends a linked chain: an error, or a read/write that moved fewer bytes. */
static inline bool ring_op_breaks_chain(const struct ring_op *op, int res)
{
    if (res < 0) {
        return true;
    }
    if (op->kind == RING_OP_READV || op->kind == RING_OP_WRITEV) {
        return (size_t)res < op->arg.rw.bytes;
    }
    return false;
}

/* Wakes the loop: adds one to the eventfd counter. Safe from any thread. */
void ring_event_signal(int event_fd);

/* ----------------------------------------------------------- io_uring */

/* 0, or -errno when io_uring cannot be used here (the caller may fall back). */
int ring_uring_init(struct ring *ring, unsigned threads);
void ring_uring_deinit(struct ring *ring);
void ring_uring_queue(struct ring *ring, struct ring_op *op);
int ring_uring_flush(struct ring *ring);
void ring_uring_harvest(struct ring *ring);
/*
 * For tests: from now on, runs ops of this kind on the thread pool (started
 * if needed), as if the kernel lacked the opcode. Only on an idle RING_URING,
 * and only for kinds that cannot be linked (a chain cannot span two backends).
 */
int ring_uring_offload(struct ring *ring, enum ring_op_kind kind, unsigned threads);

/* -------------------------------------------------------- thread pool */

int ring_pool_init(struct ring *ring, unsigned threads);
/* Stops and joins the threads; nothing may be queued or running. */
void ring_pool_deinit(struct ring *ring);
void ring_pool_queue(struct ring *ring, struct ring_op *op);
void ring_pool_flush(struct ring *ring);
void ring_pool_harvest(struct ring *ring);
/* Runs op with plain syscalls in the calling thread; returns its result or -errno. */
int ring_op_run(const struct ring_op *op);

/* ------------------------------------------------------------- fault */

int ring_fault_init(struct ring *ring);
void ring_fault_deinit(struct ring *ring);
/* Executes op now and appends it to ring->local_done. */
void ring_fault_queue(struct ring *ring, struct ring_op *op);
/* Ends an open chain: the next op starts a new one. */
void ring_fault_flush(struct ring *ring);

#endif
