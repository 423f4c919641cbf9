/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ring: every disk operation of a shard goes through here, asynchronously,
 * and completes on the shard's libev loop.
 *
 * Backends:
 *   RING_URING    io_uring (liburing). Completions wake the loop through an
 *                 eventfd registered with the ring and watched by an ev_io.
 *                 Submissions are queued as they come and submitted once per
 *                 loop iteration from an ev_prepare watcher (group commit:
 *                 everything queued in one iteration goes in one io_uring_enter).
 *                 Operations the running kernel does not support (found with
 *                 io_uring's probe) are run by the thread pool instead.
 *   RING_THREADS  a small pool of threads doing the same operations with
 *                 preadv/pwritev/fdatasync/...; completions are handed back
 *                 through the same eventfd. Used when io_uring_queue_init fails
 *                 (an old kernel, a seccomp profile), and selectable for tests.
 *   RING_FAULT    a test backend (see "Fault injection" below).
 *   RING_AUTO     io_uring, falling back to threads (logged once, at WARN).
 *
 * Contract:
 *   - Every submit function returns 0 or a negative errno. If it returns an
 *     error, its callback never fires. If it returns 0, the callback fires
 *     exactly once, from the loop (never from inside the submit call), with
 *     res = the syscall's result (bytes, fd, 0) or -errno.
 *   - At most `entries` operations are in flight; past that submit returns
 *     -ENOBUFS. ring_space() tells how many more fit, so a caller can reserve
 *     room for a whole linked chain before starting it.
 *   - RING_F_LINK on an operation makes the next operation submitted to the
 *     ring start only after this one completed successfully; if it fails (or
 *     for a read/write, transfers fewer bytes than asked), the rest of the
 *     chain completes with -ECANCELED. Links are supported between READV,
 *     WRITEV and FSYNC/FDATASYNC only.
 *   - Buffers, iovec arrays and paths are borrowed until the callback
 *     (paths are copied; iovecs and data are not).
 */
#ifndef SL_STORAGE_RING_H
#define SL_STORAGE_RING_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct ev_loop;
struct ring;

enum ring_backend {
    RING_AUTO = 0,
    RING_URING,
    RING_THREADS,
    RING_FAULT,
};

struct ring_config {
    enum ring_backend backend;
    unsigned entries; /* max operations in flight; io_uring SQ size (rounded up to 2^n) */
    unsigned threads; /* pool threads (RING_THREADS, and offloaded ops under RING_URING) */
};

#define RING_ENTRIES_DEFAULT 256
#define RING_ENTRIES_MAX     4096
#define RING_THREADS_DEFAULT 4
#define RING_THREADS_MAX     64

#define RING_F_LINK 0x1u
/* With RING_F_LINK: the op's completion is wanted as soon as it happens. The
 * io_uring backend otherwise folds a linked read or write's success into its
 * successor's completion (one wake-up for a write+fdatasync); with this flag
 * the write's callback may run while the fdatasync is still going. */
#define RING_F_PROMPT 0x2u

typedef void ring_cb(void *opaque, int res);

/*
 * Creates a ring driven by loop. Returns NULL and sets *err (a negative errno)
 * on failure. With RING_AUTO the backend actually used is ring_backend_of().
 */
struct ring *ring_new(struct ev_loop *loop, const struct ring_config *config, int *err);
/*
 * Waits for every operation in flight to finish (running the loop's watchers
 * for this ring only), then frees. Callbacks of those operations do fire.
 * ring_free(NULL) is a no-op.
 */
void ring_free(struct ring *ring);
enum ring_backend ring_backend_of(const struct ring *ring);
const char *ring_backend_name(enum ring_backend backend);
/* Parses "auto", "uring", "threads"; 0 or -EINVAL. */
int ring_backend_parse(const char *name, enum ring_backend *out);

unsigned ring_space(const struct ring *ring);
unsigned ring_in_flight(const struct ring *ring);
/* Submits what is queued now instead of at the end of the loop iteration. */
int ring_submit(struct ring *ring);
/*
 * Runs the loop until every operation in flight has completed (their
 * callbacks fire). For start-up, shutdown and tests; never on a hot path.
 */
void ring_drain(struct ring *ring);

int ring_readv(struct ring *ring, int fd, const struct iovec *iov, int iovcnt, off_t offset,
               unsigned flags, ring_cb *cb, void *opaque);
int ring_writev(struct ring *ring, int fd, const struct iovec *iov, int iovcnt, off_t offset,
                unsigned flags, ring_cb *cb, void *opaque);
/* fdatasync(fd) */
int ring_fdatasync(struct ring *ring, int fd, unsigned flags, ring_cb *cb, void *opaque);
/* fsync(fd): for directories after creating or removing entries. */
int ring_fsync(struct ring *ring, int fd, unsigned flags, ring_cb *cb, void *opaque);
int ring_fallocate(struct ring *ring, int fd, int mode, off_t offset, off_t len, unsigned flags,
                   ring_cb *cb, void *opaque);
int ring_ftruncate(struct ring *ring, int fd, off_t len, unsigned flags, ring_cb *cb, void *opaque);
/* res is the new fd. */
int ring_openat(struct ring *ring, int dirfd, const char *path, int open_flags, mode_t mode,
                unsigned flags, ring_cb *cb, void *opaque);
int ring_close(struct ring *ring, int fd, unsigned flags, ring_cb *cb, void *opaque);
int ring_unlinkat(struct ring *ring, int dirfd, const char *path, int unlink_flags, unsigned flags,
                  ring_cb *cb, void *opaque);
int ring_renameat(struct ring *ring, int olddirfd, const char *oldpath, int newdirfd,
                  const char *newpath, unsigned flags, ring_cb *cb, void *opaque);

/* ------------------------------------------------------- fault injection
 *
 * RING_FAULT executes each operation synchronously when it is submitted and
 * delivers the completion from the loop, like the real backends. It models a
 * disk with a volatile write cache: a write lands in memory (reads see it) and
 * reaches the file only when an fsync/fdatasync of that file completes.
 * Metadata operations (open, fallocate, ftruncate, unlink, rename) take effect
 * at once. Writes are tracked per file (device and inode), not per fd.
 */
struct ring_fault_plan {
    uint64_t write_fail_at; /* 1-based number of the write to fail (0 = none) */
    int write_fail_err;     /* e.g. -EIO, -ENOSPC */
    uint64_t fsync_fail_at; /* 1-based number of the fsync/fdatasync to fail */
    int fsync_fail_err;
    bool enospc; /* while set, every write and fallocate fails with -ENOSPC */
    /* While set, fsync/fdatasync run (their data is on disk) but their
     * completions are held back; clearing it delivers them. A slow flush on
     * demand, so tests can see what starts while a sync is in flight. Clear it
     * before draining or freeing the ring. */
    bool fsync_hold;
};

/* Replaces the plan (counters keep counting). -EINVAL unless RING_FAULT. */
int ring_fault_set(struct ring *ring, const struct ring_fault_plan *plan);
/*
 * Power loss: every write not covered by a completed fsync of its file is
 * dropped. With tear_seed != 0, a seeded random subset of each dropped write's
 * 512-byte sectors is kept instead (a torn write). Afterwards every operation
 * on this ring fails with -EIO: the machine is off; free the ring and
 * everything using it, then start again with a new ring.
 */
int ring_fault_power_loss(struct ring *ring, uint64_t tear_seed);
/* Writes and fsyncs seen so far (each counted whether it failed or not). */
uint64_t ring_fault_writes(const struct ring *ring);
uint64_t ring_fault_fsyncs(const struct ring *ring);

#endif
