/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The fault-injection backend of the ring (RING_FAULT): a disk with a volatile
 * write cache, failures on demand, and power loss. Tests of the layers above
 * the ring use it to check what survives a crash; see storage/ring.h.
 *
 * Model:
 *   - Each op runs synchronously inside the submit call, with real syscalls,
 *     and its completion waits on ring->local_done; the flush at the end of
 *     the loop iteration signals the eventfd and the loop calls back, as with
 *     the real backends. A chain broken by a failure or a short read cancels
 *     the rest of itself with -ECANCELED.
 *   - A write to a regular file does not touch the file: it is kept in memory
 *     as (offset, bytes), per file (st_dev, st_ino), in submission order. At
 *     most RING_FAULT_PENDING_BYTES_MAX bytes are kept; past that a write
 *     fails with -ENOBUFS.
 *   - A read reads the file, then lays the pending writes of that file over
 *     the result, oldest first, so later writes win. The file's logical size
 *     is the larger of its real size and the end of its last pending write;
 *     a gap between the real end and a pending write reads as zeros.
 *   - fsync/fdatasync of a file first writes its pending writes to the file,
 *     then really syncs: the data is on disk afterwards. A failed fsync
 *     (fsync_fail_at) applies nothing and the writes stay pending, so a later
 *     power loss still drops them.
 *   - ftruncate trims pending writes past the new length; open with O_TRUNC
 *     trims them all; unlinking or renaming over the last link of a file drops
 *     them (the inode may be reused by a new file).
 *   - Power loss drops every pending write, or with a tear seed writes a
 *     seeded random subset of each one's 512-byte sectors (aligned on the
 *     file's sectors, as a disk tears) before dropping the rest. Afterwards
 *     every op fails with -EIO; close still releases its fd, as Linux's does
 *     when close reports an error, so tests do not leak descriptors.
 *   - ring_free without a power loss writes pending data to the files without
 *     syncing: a process that exits does not lose the page cache.
 *   - fsync_hold: fsyncs still run at once, but their completions wait until
 *     the plan clears it (a device slow to flush, on demand).
 *
 * O_DIRECT: the caller's buffers are aligned (an O_DIRECT write whose offset,
 * buffers or lengths are not 512-byte aligned fails with -EINVAL, as the
 * kernel's would), and reads go to the caller's fd and buffers with preadv, so
 * the kernel checks those. Pending writes are applied through a second, buffered
 * descriptor of the same inode, opened through /proc/self/fd/N when the file
 * gets its first pending write and closed when it has none left: no bounce
 * buffers, no read-modify-write of partial blocks, and the file's size stays
 * exact. That descriptor also keeps the inode alive while writes are pending.
 *
 * Not modelled: O_APPEND (writes go to the offset given), and reads through a
 * descriptor of an unlinked file whose pending writes were dropped.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/assert.h"
#include "common/log.h"
#include "storage/ring_internal.h"

/* Generous for any test, small enough that a runaway test fails instead of swapping. */
#define RING_FAULT_PENDING_BYTES_MAX ((size_t)1 << 30)
/* The unit a disk writes atomically, and so the unit of a torn write. */
#define RING_FAULT_SECTOR_BYTES 512
/* The smallest alignment the kernel accepts for O_DIRECT (a 512-byte logical block). */
#define RING_FAULT_DIRECT_ALIGN 512

struct fault_write {
    struct fault_write *next;
    off_t offset;
    size_t len;
    uint8_t data[];
};

struct fault_file {
    struct fault_file *next;
    dev_t dev;
    ino_t ino;
    int apply_fd; /* buffered O_WRONLY descriptor of the inode, open while writes are pending */
    struct fault_write *head; /* oldest first */
    struct fault_write *tail;
};

struct ring_fault {
    struct ring_fault_plan plan;
    uint64_t writes;
    uint64_t fsyncs;
    bool powered_off;
    bool chain_broken;        /* the previous op was linked and its chain failed */
    struct ring_op_list held; /* fsync completions held back (plan.fsync_hold) */
    size_t pending_bytes;
    struct fault_file *files;
};

/* ------------------------------------------------------------ files and pending writes */

/* Returns the link that points at the file's record (*link is NULL when it has none). */
static struct fault_file **fault_find(struct ring_fault *fault, dev_t dev, ino_t ino)
{
    struct fault_file **link = &fault->files;
    while (*link != NULL && ((*link)->dev != dev || (*link)->ino != ino)) {
        link = &(*link)->next;
    }
    return link;
}

static void fault_file_drop(struct ring_fault *fault, struct fault_file **link)
{
    struct fault_file *file = *link;
    struct fault_write *w = file->head;
    while (w != NULL) {
        struct fault_write *next = w->next;
        /* pending_bytes is the sum of the lengths of every kept write. */
        SL_ASSERT(fault->pending_bytes >= w->len);
        fault->pending_bytes -= w->len;
        free(w);
        w = next;
    }
    close(file->apply_fd);
    *link = file->next;
    free(file);
}

static void fault_drop_inode(struct ring_fault *fault, dev_t dev, ino_t ino)
{
    struct fault_file **link = fault_find(fault, dev, ino);
    if (*link != NULL) {
        fault_file_drop(fault, link);
    }
}

/* Finds or creates the record of the file open as fd; NULL with *rc set on failure. */
static struct fault_file *fault_file_get(struct ring_fault *fault, int fd, const struct stat *st,
                                         int *rc)
{
    struct fault_file **link = fault_find(fault, st->st_dev, st->st_ino);
    if (*link != NULL) {
        return *link;
    }
    struct fault_file *file = calloc(1, sizeof(*file));
    if (file == NULL) {
        *rc = -ENOMEM;
        return NULL;
    }
    char proc_path[64];
    snprintf(proc_path, sizeof(proc_path), "/proc/self/fd/%d", fd);
    file->apply_fd = open(proc_path, O_WRONLY | O_CLOEXEC);
    if (file->apply_fd < 0) {
        *rc = -errno;
        free(file);
        return NULL;
    }
    file->dev = st->st_dev;
    file->ino = st->st_ino;
    *link = file;
    return file;
}

static int fault_pwrite_all(int fd, const uint8_t *data, size_t len, off_t offset)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, data, len, offset);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -errno;
        }
        data += n;
        len -= (size_t)n;
        offset += n;
    }
    return 0;
}

/* Writes the file's pending writes to it, oldest first, and forgets the file. */
static int fault_file_apply(struct ring_fault *fault, struct fault_file **link)
{
    struct fault_file *file = *link;
    while (file->head != NULL) {
        struct fault_write *w = file->head;
        int rc = fault_pwrite_all(file->apply_fd, w->data, w->len, w->offset);
        if (rc < 0) {
            return rc;
        }
        file->head = w->next;
        fault->pending_bytes -= w->len;
        free(w);
    }
    file->tail = NULL;
    fault_file_drop(fault, link);
    return 0;
}

/* Drops what lies at or past len, as a truncation of the file to len does. */
static void fault_trim(struct ring_fault *fault, dev_t dev, ino_t ino, off_t len)
{
    struct fault_file **link = fault_find(fault, dev, ino);
    struct fault_file *file = *link;
    if (file == NULL) {
        return;
    }
    struct fault_write **wlink = &file->head;
    file->tail = NULL;
    while (*wlink != NULL) {
        struct fault_write *w = *wlink;
        if (w->offset >= len) {
            *wlink = w->next;
            fault->pending_bytes -= w->len;
            free(w);
            continue;
        }
        if (w->offset + (off_t)w->len > len) {
            size_t keep = (size_t)(len - w->offset);
            fault->pending_bytes -= w->len - keep;
            w->len = keep;
        }
        file->tail = w;
        wlink = &w->next;
    }
    if (file->head == NULL) {
        fault_file_drop(fault, link);
    }
}

/* ------------------------------------------------------------ scatter lists */

/* Copies len bytes from src (or zeros when src is NULL) to position pos of the iovecs. */
static void iov_put(const struct iovec *iov, int iovcnt, size_t pos, const uint8_t *src, size_t len)
{
    for (int i = 0; i < iovcnt && len > 0; i++) {
        if (pos >= iov[i].iov_len) {
            pos -= iov[i].iov_len;
            continue;
        }
        size_t n = SL_MIN(len, iov[i].iov_len - pos);
        uint8_t *dst = (uint8_t *)iov[i].iov_base + pos;
        if (src != NULL) {
            memcpy(dst, src, n);
            src += n;
        } else {
            memset(dst, 0, n);
        }
        len -= n;
        pos = 0;
    }
}

static void iov_gather(const struct iovec *iov, int iovcnt, uint8_t *dst)
{
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len > 0) {
            memcpy(dst, iov[i].iov_base, iov[i].iov_len);
            dst += iov[i].iov_len;
        }
    }
}

static bool iov_direct_aligned(const struct ring_op *op)
{
    if (op->arg.rw.offset % RING_FAULT_DIRECT_ALIGN != 0) {
        return false;
    }
    for (int i = 0; i < op->arg.rw.iovcnt; i++) {
        const struct iovec *v = &op->arg.rw.iov[i];
        if ((uintptr_t)v->iov_base % RING_FAULT_DIRECT_ALIGN != 0 ||
            v->iov_len % RING_FAULT_DIRECT_ALIGN != 0) {
            return false;
        }
    }
    return true;
}

/* ------------------------------------------------------------ operations */

static int fault_write(struct ring_fault *fault, const struct ring_op *op)
{
    fault->writes++;
    if (fault->plan.write_fail_at == fault->writes) {
        return fault->plan.write_fail_err;
    }
    if (fault->plan.enospc) {
        return -ENOSPC;
    }
    struct stat st;
    int flags = fcntl(op->fd, F_GETFL);
    if (flags < 0 || fstat(op->fd, &st) != 0) {
        return -errno;
    }
    if ((flags & O_ACCMODE) == O_RDONLY) {
        return -EBADF;
    }
    if (!S_ISREG(st.st_mode)) {
        /* Only regular files sit behind the modelled write cache. */
        return ring_op_run(op);
    }
    if ((flags & O_DIRECT) != 0 && !iov_direct_aligned(op)) {
        return -EINVAL;
    }
    size_t bytes = op->arg.rw.bytes;
    if (bytes == 0) {
        return 0;
    }
    if (bytes > RING_FAULT_PENDING_BYTES_MAX - fault->pending_bytes) {
        return -ENOBUFS;
    }
    struct fault_write *w = malloc(sizeof(*w) + bytes);
    if (w == NULL) {
        return -ENOMEM;
    }
    int rc = 0;
    struct fault_file *file = fault_file_get(fault, op->fd, &st, &rc);
    if (file == NULL) {
        free(w);
        return rc;
    }
    w->next = NULL;
    w->offset = op->arg.rw.offset;
    w->len = bytes;
    iov_gather(op->arg.rw.iov, op->arg.rw.iovcnt, w->data);
    if (file->tail == NULL) {
        file->head = w;
    } else {
        file->tail->next = w;
    }
    file->tail = w;
    fault->pending_bytes += bytes;
    return (int)bytes;
}

static int fault_read(struct ring_fault *fault, const struct ring_op *op)
{
    ssize_t n;
    do {
        n = preadv(op->fd, op->arg.rw.iov, op->arg.rw.iovcnt, op->arg.rw.offset);
    } while (n < 0 && errno == EINTR);
    struct stat st;
    if (n < 0 || fstat(op->fd, &st) != 0) {
        return -errno;
    }
    struct fault_file *file = *fault_find(fault, st.st_dev, st.st_ino);
    if (file == NULL) {
        return (int)n;
    }
    off_t start = op->arg.rw.offset;
    off_t end = start + (off_t)op->arg.rw.bytes;
    off_t logical_size = st.st_size;
    for (const struct fault_write *w = file->head; w != NULL; w = w->next) {
        logical_size = SL_MAX(logical_size, w->offset + (off_t)w->len);
    }
    size_t got = (size_t)n;
    if (logical_size > start + n) {
        size_t more = (size_t)(SL_MIN(end, logical_size) - start);
        iov_put(op->arg.rw.iov, op->arg.rw.iovcnt, got, NULL, more - got);
        got = more;
    }
    for (const struct fault_write *w = file->head; w != NULL; w = w->next) {
        off_t from = SL_MAX(start, w->offset);
        off_t to = SL_MIN(end, w->offset + (off_t)w->len);
        if (from < to) {
            iov_put(op->arg.rw.iov, op->arg.rw.iovcnt, (size_t)(from - start),
                    w->data + (from - w->offset), (size_t)(to - from));
        }
    }
    return (int)got;
}

static int fault_sync(struct ring_fault *fault, const struct ring_op *op)
{
    fault->fsyncs++;
    if (fault->plan.fsync_fail_at == fault->fsyncs) {
        return fault->plan.fsync_fail_err;
    }
    struct stat st;
    if (fstat(op->fd, &st) == 0) {
        struct fault_file **link = fault_find(fault, st.st_dev, st.st_ino);
        if (*link != NULL) {
            int rc = fault_file_apply(fault, link);
            if (rc < 0) {
                return rc;
            }
        }
    }
    /* On a bad fd the real call reports the error. */
    return ring_op_run(op);
}

static int fault_ftruncate(struct ring_fault *fault, const struct ring_op *op)
{
    int res = ring_op_run(op);
    struct stat st;
    if (res == 0 && fstat(op->fd, &st) == 0) {
        fault_trim(fault, st.st_dev, st.st_ino, op->arg.ftruncate.len);
    }
    return res;
}

static int fault_openat(struct ring_fault *fault, const struct ring_op *op)
{
    int res = ring_op_run(op);
    struct stat st;
    if (res >= 0 && (op->arg.openat.flags & O_TRUNC) != 0 && fstat(res, &st) == 0) {
        fault_trim(fault, st.st_dev, st.st_ino, 0);
    }
    return res;
}

/* True when path names a regular file whose last link an unlink or rename would remove. */
static bool fault_last_link(int dirfd, const char *path, struct stat *st)
{
    return fstatat(dirfd, path, st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st->st_mode) &&
           st->st_nlink == 1;
}

static int fault_unlinkat(struct ring_fault *fault, const struct ring_op *op)
{
    struct stat st;
    bool last = fault_last_link(op->fd, op->path, &st);
    int res = ring_op_run(op);
    if (res == 0 && last) {
        fault_drop_inode(fault, st.st_dev, st.st_ino);
    }
    return res;
}

static int fault_renameat(struct ring_fault *fault, const struct ring_op *op)
{
    struct stat target;
    struct stat source;
    bool last = fault_last_link(op->arg.renameat.newdirfd, op->path2, &target);
    /* Renaming a file onto another link of itself changes nothing. */
    if (last && fstatat(op->fd, op->path, &source, AT_SYMLINK_NOFOLLOW) == 0 &&
        source.st_dev == target.st_dev && source.st_ino == target.st_ino) {
        last = false;
    }
    int res = ring_op_run(op);
    if (res == 0 && last) {
        fault_drop_inode(fault, target.st_dev, target.st_ino);
    }
    return res;
}

static int fault_exec(struct ring_fault *fault, const struct ring_op *op)
{
    if (fault->powered_off) {
        if (op->kind == RING_OP_CLOSE) {
            /* Linux frees the fd even when close fails; do the same so nothing leaks. */
            (void)ring_op_run(op);
        }
        return -EIO;
    }
    switch (op->kind) {
    case RING_OP_READV:
        return fault_read(fault, op);
    case RING_OP_WRITEV:
        return fault_write(fault, op);
    case RING_OP_FSYNC:
    case RING_OP_FDATASYNC:
        return fault_sync(fault, op);
    case RING_OP_FALLOCATE:
        return fault->plan.enospc ? -ENOSPC : ring_op_run(op);
    case RING_OP_FTRUNCATE:
        return fault_ftruncate(fault, op);
    case RING_OP_OPENAT:
        return fault_openat(fault, op);
    case RING_OP_UNLINKAT:
        return fault_unlinkat(fault, op);
    case RING_OP_RENAMEAT:
        return fault_renameat(fault, op);
    case RING_OP_CLOSE:
        return ring_op_run(op);
    case RING_OP_KIND_COUNT:
        break;
    }
    /* ring.c only creates ops of real kinds. */
    SL_ASSERT(!"bad op kind");
    return -EINVAL;
}

/* ------------------------------------------------------------ power loss */

static uint64_t fault_rand(uint64_t *state)
{
    /* splitmix64: seeded, so one tear seed always tears the same sectors. */
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Writes a random subset of the sectors of each pending write, oldest write first. */
static void fault_file_tear(struct fault_file *file, uint64_t *rng)
{
    for (const struct fault_write *w = file->head; w != NULL; w = w->next) {
        off_t end = w->offset + (off_t)w->len;
        off_t sector = SL_ALIGN_DOWN(w->offset, RING_FAULT_SECTOR_BYTES);
        for (; sector < end; sector += RING_FAULT_SECTOR_BYTES) {
            if ((fault_rand(rng) & 1) == 0) {
                continue;
            }
            off_t from = SL_MAX(sector, w->offset);
            off_t to = SL_MIN(sector + RING_FAULT_SECTOR_BYTES, end);
            int rc = fault_pwrite_all(file->apply_fd, w->data + (from - w->offset),
                                      (size_t)(to - from), from);
            if (rc < 0) {
                LOG_WARN("ring", "torn write could not be applied err=%d offset=%lld", rc,
                         (long long)from);
            }
        }
    }
}

int ring_fault_power_loss(struct ring *ring, uint64_t tear_seed)
{
    struct ring_fault *fault = ring->fault;
    if (fault == NULL) {
        return -EINVAL;
    }
    uint64_t rng = tear_seed;
    while (fault->files != NULL) {
        if (tear_seed != 0) {
            fault_file_tear(fault->files, &rng);
        }
        fault_file_drop(fault, &fault->files);
    }
    /* Every kept write was in some file's list. */
    SL_ASSERT(fault->pending_bytes == 0);
    fault->powered_off = true;
    return 0;
}

/* ------------------------------------------------------------ ring side */

int ring_fault_init(struct ring *ring)
{
    ring->fault = calloc(1, sizeof(*ring->fault));
    return ring->fault == NULL ? -ENOMEM : 0;
}

void ring_fault_deinit(struct ring *ring)
{
    struct ring_fault *fault = ring->fault;
    if (fault == NULL) {
        return;
    }
    while (fault->files != NULL) {
        int rc = fault_file_apply(fault, &fault->files);
        if (rc < 0) {
            LOG_WARN("ring", "pending writes lost at ring_free err=%d", rc);
            fault_file_drop(fault, &fault->files);
        }
    }
    free(fault);
    ring->fault = NULL;
}

void ring_fault_queue(struct ring *ring, struct ring_op *op)
{
    struct ring_fault *fault = ring->fault;
    bool cancelled = fault->chain_broken;
    int res = cancelled ? -ECANCELED : fault_exec(fault, op);
    if ((op->flags & RING_F_LINK) != 0) {
        fault->chain_broken = cancelled || ring_op_breaks_chain(op, res);
    } else {
        fault->chain_broken = false;
    }
    op->res = res;
    if (fault->plan.fsync_hold && (op->kind == RING_OP_FSYNC || op->kind == RING_OP_FDATASYNC)) {
        ring_list_push(&fault->held, op);
        return;
    }
    ring_list_push(&ring->local_done, op);
}

void ring_fault_flush(struct ring *ring)
{
    ring->fault->chain_broken = false;
    if (ring->local_done.head != NULL) {
        ring_event_signal(ring->event_fd);
    }
}

int ring_fault_set(struct ring *ring, const struct ring_fault_plan *plan)
{
    if (ring->fault == NULL || plan == NULL) {
        return -EINVAL;
    }
    /* A planned failure must be an error, or the op would "succeed" with a bogus result. */
    if ((plan->write_fail_at != 0 && plan->write_fail_err >= 0) ||
        (plan->fsync_fail_at != 0 && plan->fsync_fail_err >= 0)) {
        return -EINVAL;
    }
    ring->fault->plan = *plan;
    if (!plan->fsync_hold && ring->fault->held.head != NULL) {
        ring_list_splice(&ring->local_done, &ring->fault->held);
        ring_event_signal(ring->event_fd);
    }
    return 0;
}

uint64_t ring_fault_writes(const struct ring *ring)
{
    return ring->fault != NULL ? ring->fault->writes : 0;
}

uint64_t ring_fault_fsyncs(const struct ring *ring)
{
    return ring->fault != NULL ? ring->fault->fsyncs : 0;
}
