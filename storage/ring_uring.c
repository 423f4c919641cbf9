/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The io_uring backend of the ring.
 *
 * An op becomes an SQE as soon as it is accepted (user_data = the op); the SQ
 * holds at least `entries` SQEs and no more than `entries` ops are in flight,
 * so an SQE is always free. ring_uring_flush submits them all with one
 * io_uring_enter. The ring's eventfd is registered with the kernel, which
 * signals it for every CQE; ring_uring_harvest copies each CQE's result into
 * its op and advances the CQ before any callback runs, so no pointer into the
 * CQ is held while user code runs. The CQ is twice the SQ, so it cannot
 * overflow either.
 *
 * RING_F_LINK maps to IOSQE_IO_LINK; the kernel then fails the rest of a chain
 * with -ECANCELED when an op fails or a read/write is short, which is the
 * ring's contract. A linked read or write that is followed by its successor in
 * the same submission also gets IOSQE_CQE_SKIP_SUCCESS: a write+fdatasync
 * group then posts one CQE and wakes the loop once, not twice. The successor's
 * CQE stands for the skipped one (delivered first, with the full byte count)
 * unless it says -ECANCELED; a failed or short op always posts its own CQE,
 * since the kernel drops the skip flag on failure. It then also suppresses
 * the -ECANCELED CQEs of the rest of that chain (REQ_F_SKIP_LINK_CQES), so
 * those are delivered here, from the failed op's CQE. RING_F_PROMPT opts a
 * write out of the skip, when its caller acts on its completion at once. Ops whose opcode the
 * running kernel lacks (io_uring's probe says so, e.g. IORING_OP_FTRUNCATE before Linux 6.9) go to
 * a thread pool created for that purpose only; links never involve them (only READV, WRITEV and
 * FSYNC link, and every io_uring has those).
 */
#include <errno.h>
#include <liburing.h>
#include <stdlib.h>

#include "common/assert.h"
#include "storage/ring_internal.h"

/* IORING_OP_FTRUNCATE (Linux 6.9) is missing from the headers of liburing 2.3. */
#define RING_URING_OP_FTRUNCATE 55

/* The kernel refuses SQs above IORING_MAX_ENTRIES (32768); the ring's cap stays below. */
_Static_assert(RING_ENTRIES_MAX <= 32768, "RING_ENTRIES_MAX exceeds io_uring's SQ limit");

struct ring_uring {
    struct io_uring uring;
    bool supported[RING_OP_KIND_COUNT];
    bool cqe_skip; /* IORING_FEAT_CQE_SKIP (Linux 5.17) */
    /* The last queued linked read/write, until its successor is queued. */
    struct ring_op *link_open;
    struct io_uring_sqe *link_open_sqe;
    struct ring_op *chain_tail; /* the last queued op if it links to the next */
};

static const int uring_opcodes[RING_OP_KIND_COUNT] = {
    [RING_OP_READV] = IORING_OP_READV,         [RING_OP_WRITEV] = IORING_OP_WRITEV,
    [RING_OP_FSYNC] = IORING_OP_FSYNC,         [RING_OP_FDATASYNC] = IORING_OP_FSYNC,
    [RING_OP_FALLOCATE] = IORING_OP_FALLOCATE, [RING_OP_FTRUNCATE] = RING_URING_OP_FTRUNCATE,
    [RING_OP_OPENAT] = IORING_OP_OPENAT,       [RING_OP_CLOSE] = IORING_OP_CLOSE,
    [RING_OP_UNLINKAT] = IORING_OP_UNLINKAT,   [RING_OP_RENAMEAT] = IORING_OP_RENAMEAT,
};

static unsigned uring_round_pow2(unsigned n)
{
    unsigned p = 1;
    while (p < n) {
        p <<= 1;
    }
    return p;
}

/* Fills supported[]; -EOPNOTSUPP when even the linkable basics are missing. */
static int uring_probe(struct ring_uring *u, bool *any_missing)
{
    struct io_uring_probe *probe = io_uring_get_probe_ring(&u->uring);
    int rc = 0;
    *any_missing = false;
    for (int kind = 0; kind < RING_OP_KIND_COUNT; kind++) {
        /* Without a probe (before Linux 5.6) only the Linux 5.1 opcodes are known to exist. */
        bool basic = ring_kind_linkable((enum ring_op_kind)kind);
        u->supported[kind] =
            probe != NULL ? io_uring_opcode_supported(probe, uring_opcodes[kind]) != 0 : basic;
        if (!u->supported[kind]) {
            *any_missing = true;
            rc = basic ? -EOPNOTSUPP : rc;
        }
    }
    if (probe != NULL) {
        io_uring_free_probe(probe);
    }
    return rc;
}

int ring_uring_init(struct ring *ring, unsigned threads)
{
    struct ring_uring *u = calloc(1, sizeof(*u));
    if (u == NULL) {
        return -ENOMEM;
    }
    unsigned sq_entries = uring_round_pow2(ring->entries);
    /* SUBMIT_ALL (5.18) keeps submitting past an SQE that fails; older kernels refuse it. */
    int rc = io_uring_queue_init(sq_entries, &u->uring, IORING_SETUP_SUBMIT_ALL);
    if (rc == -EINVAL) {
        rc = io_uring_queue_init(sq_entries, &u->uring, 0);
    }
    if (rc < 0) {
        free(u);
        return rc;
    }
    bool any_missing;
    rc = uring_probe(u, &any_missing);
    if (rc < 0) {
        goto err;
    }
    rc = io_uring_register_eventfd(&u->uring, ring->event_fd);
    if (rc < 0) {
        goto err;
    }
    /* Every op in flight fits in the SQ before submission and in the CQ after. */
    SL_ASSERT(u->uring.sq.ring_entries >= ring->entries &&
              u->uring.cq.ring_entries >= ring->entries);
    if (any_missing) {
        rc = ring_pool_init(ring, threads);
        if (rc < 0) {
            goto err;
        }
    }
    u->cqe_skip = (u->uring.features & IORING_FEAT_CQE_SKIP) != 0;
    ring->uring = u;
    return 0;
err:
    io_uring_queue_exit(&u->uring);
    free(u);
    return rc;
}

void ring_uring_deinit(struct ring *ring)
{
    struct ring_uring *u = ring->uring;
    if (u == NULL) {
        return;
    }
    io_uring_queue_exit(&u->uring);
    free(u);
    ring->uring = NULL;
}

static void uring_prep(struct io_uring_sqe *sqe, const struct ring_op *op)
{
    switch (op->kind) {
    case RING_OP_READV:
        io_uring_prep_readv(sqe, op->fd, op->arg.rw.iov, (unsigned)op->arg.rw.iovcnt,
                            (uint64_t)op->arg.rw.offset);
        break;
    case RING_OP_WRITEV:
        io_uring_prep_writev(sqe, op->fd, op->arg.rw.iov, (unsigned)op->arg.rw.iovcnt,
                             (uint64_t)op->arg.rw.offset);
        break;
    case RING_OP_FSYNC:
        io_uring_prep_fsync(sqe, op->fd, 0);
        break;
    case RING_OP_FDATASYNC:
        io_uring_prep_fsync(sqe, op->fd, IORING_FSYNC_DATASYNC);
        break;
    case RING_OP_FALLOCATE:
        io_uring_prep_fallocate(sqe, op->fd, op->arg.fallocate.mode, op->arg.fallocate.offset,
                                op->arg.fallocate.len);
        break;
    case RING_OP_FTRUNCATE:
        /* The kernel reads the new length from sqe->off and wants every other field zero. */
        io_uring_prep_rw(RING_URING_OP_FTRUNCATE, sqe, op->fd, NULL, 0,
                         (uint64_t)op->arg.ftruncate.len);
        break;
    case RING_OP_OPENAT:
        io_uring_prep_openat(sqe, op->fd, op->path, op->arg.openat.flags, op->arg.openat.mode);
        break;
    case RING_OP_CLOSE:
        io_uring_prep_close(sqe, op->fd);
        break;
    case RING_OP_UNLINKAT:
        io_uring_prep_unlinkat(sqe, op->fd, op->path, op->arg.unlinkat.flags);
        break;
    case RING_OP_RENAMEAT:
        io_uring_prep_renameat(sqe, op->fd, op->path, op->arg.renameat.newdirfd, op->path2, 0);
        break;
    case RING_OP_KIND_COUNT:
        /* ring.c only creates ops of real kinds. */
        SL_ASSERT(!"bad op kind");
    }
}

void ring_uring_queue(struct ring *ring, struct ring_op *op)
{
    struct ring_uring *u = ring->uring;
    if (!u->supported[op->kind]) {
        /* The pool exists whenever some kind is unsupported (ring_uring_init). */
        SL_ASSERT(ring->pool != NULL);
        ring_pool_queue(ring, op);
        return;
    }
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->uring);
    /* At most `entries` ops are in flight and the SQ holds at least that many. */
    SL_ASSERT(sqe != NULL);
    uring_prep(sqe, op);
    io_uring_sqe_set_data(sqe, op);
    if ((op->flags & RING_F_LINK) != 0) {
        io_uring_sqe_set_flags(sqe, IOSQE_IO_LINK);
    }
    op->skipped_prev = NULL;
    op->chain_next = NULL;
    op->skip_success = false;
    if (u->chain_tail != NULL) {
        u->chain_tail->chain_next = op;
    }
    u->chain_tail = (op->flags & RING_F_LINK) != 0 ? op : NULL;
    if (u->link_open != NULL) {
        /* Its chain goes on with this op, in the same submission: the
         * predecessor's success can be told by this op's CQE. */
        io_uring_sqe_set_flags(u->link_open_sqe, IOSQE_IO_LINK | IOSQE_CQE_SKIP_SUCCESS);
        u->link_open->skip_success = true;
        op->skipped_prev = u->link_open;
        u->link_open = NULL;
    }
    bool rw = op->kind == RING_OP_READV || op->kind == RING_OP_WRITEV;
    if (u->cqe_skip && rw && (op->flags & RING_F_LINK) != 0 && (op->flags & RING_F_PROMPT) == 0) {
        u->link_open = op;
        u->link_open_sqe = sqe;
    }
}

int ring_uring_flush(struct ring *ring)
{
    struct io_uring *uring = &ring->uring->uring;
    ring->uring->link_open = NULL; /* a chain split by a submit keeps every CQE */
    ring->uring->chain_tail = NULL;
    while (io_uring_sq_ready(uring) > 0) {
        int n = io_uring_submit(uring);
        if (n == -EINTR) {
            continue;
        }
        if (n < 0) {
            return n;
        }
        if (n == 0) {
            /* The kernel took nothing without saying why: let the caller retry later. */
            return -EAGAIN;
        }
    }
    return 0;
}

/* Delivers a linked predecessor whose success CQE the kernel skipped. */
static void deliver_skipped(struct ring *ring, struct ring_op *op)
{
    if (op->skipped_prev != NULL) {
        deliver_skipped(ring, op->skipped_prev);
    }
    op->res = (int)op->arg.rw.bytes; /* skipped only on success: the whole transfer */
    ring_list_push(&ring->ready, op);
}

void ring_uring_harvest(struct ring *ring)
{
    struct io_uring *uring = &ring->uring->uring;
    struct io_uring_cqe *cqe;
    unsigned head;
    unsigned seen = 0;
    io_uring_for_each_cqe(uring, head, cqe)
    {
        struct ring_op *op = io_uring_cqe_get_data(cqe);
        /* Every SQE we prepare carries its op. */
        SL_ASSERT(op != NULL);
        op->res = cqe->res;
        if (op->skipped_prev != NULL && op->res != -ECANCELED) {
            deliver_skipped(ring, op->skipped_prev); /* in chain order, before op */
        }
        ring_list_push(&ring->ready, op);
        if (op->skip_success) {
            /* Its success would have posted nothing: it failed, and the kernel
             * posts nothing for the rest of its chain either. */
            for (struct ring_op *next = op->chain_next; next != NULL; next = next->chain_next) {
                next->res = -ECANCELED;
                ring_list_push(&ring->ready, next);
            }
        }
        seen++;
    }
    io_uring_cq_advance(uring, seen);
}

int ring_uring_offload(struct ring *ring, enum ring_op_kind kind, unsigned threads)
{
    if (ring->uring == NULL || ring->in_flight > 0 || (unsigned)kind >= RING_OP_KIND_COUNT ||
        ring_kind_linkable(kind)) {
        return -EINVAL;
    }
    if (ring->pool == NULL) {
        int rc = ring_pool_init(ring, threads);
        if (rc < 0) {
            return rc;
        }
    }
    ring->uring->supported[kind] = false;
    return 0;
}
